"""Screening inputs before training: class folders walked, unreadable files skipped, values described.

Shared by image and audio data (``images.py``, ``audio.py``) and by the loaders above them
(``inputs.py``, ``tables.py``, ``split.py``); it imports none of them, so none of them import each
other to screen files. A file check is a function ``problem(path) -> reason | None``
(``images.image_problem``, ``audio.audio_problem``); :func:`screen_files` runs it over every file.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headstart.errors import DataError, DataPathError


@dataclass
class SkippedInput:
    """One input left out because it could not be read."""

    where: str  # "/abs/path/cat/3.jpg", "/abs/img.png (row 17 of reviews.csv)", "X[5] (/abs/a.jpg)"
    reason: str  # "truncated image file (image file is truncated (8 bytes not processed))"


def screen_files(
    paths: list[str], wheres: list[str], problem, *, singular: str, plural: str, hint: str,
    strict: bool, stacklevel: int, threads: bool = False,
) -> tuple[list[int], list[SkippedInput]]:
    """Check every file with ``problem(path) -> reason | None``; return the indices that pass and a
    SkippedInput for each that does not, warning once about them (``strict``: raise at the first)."""
    workers = min(8, os.cpu_count() or 1)
    if threads and len(paths) > 32 and workers > 1:  # decoding releases the GIL
        with ThreadPoolExecutor(workers) as pool:
            problems = list(pool.map(problem, paths))
    else:
        problems = [problem(p) for p in paths]
    keep, skipped = [], []
    for i, (where, reason) in enumerate(zip(wheres, problems)):
        if reason is None:
            keep.append(i)
        elif strict:
            raise DataError(
                f"cannot read {singular} {where}: {reason}. Delete or re-export the file, or leave strict "
                "off to skip it."
            )
        else:
            skipped.append(SkippedInput(where, reason))
    if skipped and not keep:
        raise DataError(
            f"none of the {len(paths)} {plural} could be read; the first, {skipped[0].where}: "
            f"{skipped[0].reason}. Check that these are {hint}; {singular} paths in a "
            "table are resolved relative to the table's folder."
        )
    if skipped:
        shown = "; ".join(f"{s.where} ({s.reason})" for s in skipped[:3])
        more = f"; … and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(
            f"skipped {len(skipped)} of {len(paths)} {plural} that could not be read: {shown}{more}. "
            "All are listed in the returned data's .skipped (pass strict=True to fail instead).",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    return keep, skipped


# --------------------------------------------------------------------------- class folders


def check_no_loose_files(root: Path, entries: list[Path], wanted, *, kind: str, placeholder: str,
                         example: str) -> None:
    """Refuse files of ``kind`` (``wanted(name)`` holds) lying directly in ``root``: a folder dataset
    keeps them in one subfolder per class, whose name is their label."""
    loose = [p.name for p in entries if p.is_file() and wanted(p.name)]
    if loose:
        raise DataPathError(
            f"{root} has {len(loose)} {kind}(s) directly inside it ({first_names(loose)}). {kind.capitalize()}s "
            f"must sit in one subfolder per class, {root}/<class>/{placeholder}, e.g. {root}/{example}; the "
            "subfolder name is the label. Move them into class folders (or point at a table with a label column)."
        )


def walk_class_folders(root: Path, entries: list[Path], wanted) -> tuple[list[str], list[str], list[str]]:
    """Walk every class subfolder among ``entries`` (sorted, hidden entries skipped): the files for
    which ``wanted(name)`` holds with their class (the subfolder's name), and the other files
    relative to ``root``."""
    paths: list[str] = []
    labels: list[str] = []
    other: list[str] = []
    for class_dir in (p for p in entries if p.is_dir()):
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(f for f in filenames if not f.startswith(".")):
                full = Path(dirpath) / name
                if wanted(name):
                    paths.append(str(full))
                    labels.append(class_dir.name)
                else:
                    other.append(str(full.relative_to(root)))
    return paths, labels, other


# --------------------------------------------------------------------------- values in messages


def first_names(names: list[str], n: int = 5) -> str:
    """The first ``n`` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names) - n} more)" if len(names) > n else "")


def plain(value):
    """numpy scalars (and 0-d arrays) as plain Python values, so messages read 'cat' rather than
    np.str_('cat')."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def short(value, width: int = 60) -> str:
    """``repr`` of a plain value for an error message, cut to ``width`` characters."""
    text = repr(plain(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def is_missing(value) -> bool:
    """None, pandas' NA/NaT or a float NaN (a blank cell or label)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)
