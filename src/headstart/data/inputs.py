"""The ways data comes in: :func:`load_dataset` (a labeled folder or table), :func:`load_unlabeled`
(what to predict on: any folder, a table, one file, lines of text) and :func:`from_arrays`.

All return a :class:`LabeledData`. Image and audio files are checked once here; unreadable ones are
skipped and reported (a ``UserWarning`` plus ``LabeledData.skipped``), or raise with ``strict=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from headstart.errors import DataError, DataPathError, did_you_mean

from .audio import (AUDIO_EXTENSIONS, audio_items, find_audio_column, is_audio_folder, is_audio_path, list_audio_folder,
                    screen_audio)
from .images import IMAGE_EXTENSIONS, is_image_path, list_image_folder, screen_images
from .screen import SkippedInput, short
from .tables import TABLE_EXTENSIONS, Table, read_table


@dataclass
class LabeledData:
    """Inputs, their labels and where they came from.

    ``inputs``: for modality ``"image"`` each item is a str path, a PIL image or a uint8 array
    ``(h, w)``/``(h, w, c)``; for ``"text"`` a str; for ``"features"`` a float32 row of a 2-D array.
    ``labels`` holds the original label values (None at predict time), aligned with ``inputs``.
    ``kept``: where files were screened, the position of each input among all that were read, so that
    ``skipped`` (in the same order) fills the gaps: ``headstart predict`` writes one row per input read.
    """

    inputs: list
    labels: np.ndarray | None
    modality: str
    source: str
    skipped: list[SkippedInput] = field(default_factory=list)
    kept: list[int] | None = None

    def __len__(self) -> int:
        return len(self.inputs)


# --------------------------------------------------------------------------- load_dataset


def load_dataset(
    path,
    *,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    require_labels: bool = True,
    strict: bool = False,
    audio_column: str | None = None,
) -> LabeledData:
    """Load an image folder (``root/<class>/<image>``) or a table (.csv .tsv .jsonl .json .parquet).

    A folder of audio files (``root/<class>/<file>.wav|.flac|.ogg``, no images) or a table whose
    ``audio`` (or ``path``/``file``…, all audio file names) column, or ``audio_column``, names audio
    files gives modality ``"audio"``: the items stay file paths, each checked to decode (see
    :mod:`headstart.data.audio`).

    Columns are found automatically unless named (see :mod:`headstart.data.tables`). Image files are
    decoded once to check them; unreadable ones are skipped with a warning and listed in
    ``.skipped``, or raise :class:`DataError` when ``strict=True``. With ``require_labels=False``
    (predict time) the label column may be absent and ``labels`` is then None.
    """
    root = _existing(path)
    if root.is_dir():
        return _load_folder(root, strict)
    return _load_table(root, text_column, image_column, audio_column, label_column, require_labels, strict, 3)


def _existing(path) -> Path:
    """``path`` as an absolute Path; DataPathError (naming close names) when nothing is there."""
    root = Path(os.fspath(path)).expanduser().absolute()
    if not root.exists():
        raise DataPathError(not_found_message(root))
    return root


def _load_table(root: Path, text_column, image_column, audio_column, label_column, require_labels: bool,
                strict: bool, stacklevel: int = 2) -> LabeledData:
    """A table's inputs: texts, or image or audio paths screened like a folder's files.

    ``stacklevel``: as for ``warnings.warn`` here; the skipped-files warning names that frame."""
    _check_table_file(root)
    if audio_column is None and text_column is None and image_column is None:
        audio_column = find_audio_column(root)
    table = read_table(
        root, text_column=text_column, image_column=audio_column or image_column,
        label_column=label_column, require_labels=require_labels,
    )
    if audio_column is not None:  # a column of audio file paths, resolved like image paths
        return _screen_table(table, root, "audio", strict, stacklevel=stacklevel + 1)
    if table.modality == "image":
        return _screen_table(table, root, "image", strict, stacklevel=stacklevel + 1)
    return LabeledData(table.inputs, table.labels, table.modality, str(root), [])


def _load_folder(root: Path, strict: bool) -> LabeledData:
    """The class folder ``root/<class>/<file>`` as LabeledData, unreadable files screened out.

    Modality ``"audio"`` when the folder holds audio files and no images (the files stay paths),
    else ``"image"``.
    """
    audio = is_audio_folder(root)
    paths, labels = list_audio_folder(root) if audio else list_image_folder(root)
    return _screened(paths, paths, np.array(labels), "audio" if audio else "image", str(root), strict, 4)


_SCREENS = {"image": screen_images, "audio": screen_audio}


def _screened(paths: list[str], wheres: list[str], labels, modality: str, source: str, strict: bool,
              stacklevel: int) -> LabeledData:
    """The files of ``paths`` that decode, as LabeledData of ``modality`` (labels kept aligned).

    ``stacklevel`` counts from here, as for ``warnings.warn``: the warning names the loader's caller."""
    keep, skipped = _SCREENS[modality](paths, wheres, strict, stacklevel=stacklevel)
    labels = None if labels is None else labels[keep]
    return LabeledData([paths[i] for i in keep], labels, modality, source, skipped, kept=keep)


def _check_table_file(root: Path) -> None:
    """Return None if the file ``root`` can be a table; raise DataPathError if it is empty or not a table format."""
    if root.stat().st_size == 0:
        raise DataPathError(
            f"{root} is empty (0 bytes). A table needs a header row and one row per example; re-export "
            "the file (was it saved before it was written?), or pass a folder of images."
        )
    ext = root.suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        hint = (
            f" A single image is not a dataset: put images in {root.parent}/<class>/<image> and pass the folder."
            if is_image_path(root.name) else ""
        )
        raise DataPathError(
            f"cannot read {root}: {ext or 'no extension'} is not a supported format. Pass a folder of "
            f"images laid out as <root>/<class>/<image>, or a table: {', '.join(TABLE_EXTENSIONS)}.{hint}"
        )


def _screen_table(table: Table, root: Path, modality: str, strict: bool, stacklevel: int) -> LabeledData:
    """The table's rows whose files can be read, as LabeledData of ``modality``, labels kept aligned."""
    wheres = [f"{p} ({w})" for p, w in zip(table.inputs, table.wheres)]
    return _screened(table.inputs, wheres, table.labels, modality, str(root), strict, stacklevel + 1)


def not_found_message(root: Path) -> str:
    fix = f" Check the path; a relative path is read from the current folder, {Path.cwd()}."
    parent = root.parent
    if not parent.is_dir():
        return f"no such file or folder: {root} (its folder {parent} does not exist either).{fix}"
    siblings = [p.name for p in parent.iterdir() if not p.name.startswith(".")]
    hint = did_you_mean(root.name, siblings)
    return f"no such file or folder: {root}.{hint[:-1] + f' (in {parent})?' if hint else fix}"


# --------------------------------------------------------------------------- load_unlabeled


def load_unlabeled(
    path,
    *,
    modality: str | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    strict: bool = False,
) -> LabeledData:
    """What to predict on (``labels`` None): a folder, a table, one image or audio file, or a .txt file
    holding one text per line.

    A folder needs no class layout, since nothing is learned from folder names: its files of
    ``modality`` (the model's; default audio when the folder holds audio and no images, else images)
    are read from every subfolder, hidden ones left out. Tables and files are read and screened as
    :func:`load_dataset` reads them: unreadable files are skipped with a warning, listed in
    ``.skipped`` and placed by ``.kept``, or raise with ``strict=True``.
    """
    root = _existing(path)
    if root.is_dir():
        return _unlabeled_folder(root, modality, strict)
    kind = "image" if is_image_path(root.name) else "audio" if is_audio_path(root.name) else None
    if kind is not None:
        return _screened([str(root)], [str(root)], None, kind, str(root), strict, 3)
    if root.suffix.lower() == ".txt":
        return _text_lines(root)
    if root.suffix.lower() in TABLE_EXTENSIONS:
        return _load_table(root, text_column, image_column, audio_column, None, False, strict, 3)
    raise DataPathError(
        f"cannot predict on {root}: pass a folder of images or audio files, a table ({', '.join(TABLE_EXTENSIONS)}), "
        f"a single image ({', '.join(IMAGE_EXTENSIONS)}) or audio file ({', '.join(AUDIO_EXTENSIONS)}), or a .txt "
        "file with one text per line"
    )


def _unlabeled_folder(root: Path, modality: str | None, strict: bool) -> LabeledData:
    """Every file of ``modality`` below ``root``, in a stable order, screened."""
    if modality in ("text", "features"):
        raise DataPathError(
            f"{root} is a folder, but this model reads {'texts' if modality == 'text' else 'feature vectors'}: "
            "pass a table with one input per row" + (" or a .txt file with one text per line" if modality == "text"
                                                    else " (or predict from Python)")
        )
    kind = modality or ("audio" if is_audio_folder(root) else "image")
    wanted, extensions = (is_audio_path, AUDIO_EXTENSIONS) if kind == "audio" else (is_image_path, IMAGE_EXTENSIONS)
    paths = [str(path) for path in _files_below(root, wanted)]
    if not paths:
        what = "audio files" if kind == "audio" else "images"
        raise DataPathError(f"no {what} found in {root} (searched every subfolder for {', '.join(extensions)}); "
                            "to predict on a table, pass the table's path")
    return _screened(paths, paths, None, kind, str(root), strict, 4)


def _files_below(root: Path, wanted) -> list[Path]:
    """The files below ``root`` whose name ``wanted`` accepts, sorted folder by folder, hidden ones left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in sorted(filenames) if not name.startswith(".") and wanted(name)]
    return found


def _text_lines(root: Path) -> LabeledData:
    texts = [line.strip() for line in root.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise DataPathError(f"{root} holds no text (one text per line is expected); write the texts into it, one a line")
    return LabeledData(texts, None, "text", str(root))


# --------------------------------------------------------------------------- from_arrays


def from_arrays(
    X, y=None, *, strict: bool = False, name: str = "X", modality: str | None = None, sample_rate: int | None = None
) -> LabeledData:
    """Wrap in-memory inputs, inferring the modality.

    Accepted ``X``: a list/tuple/array of str (text, or image file paths if every one is an existing
    file with an image extension); a list of PIL images; a list of uint8 arrays ``(h, w)``/``(h, w, c)``;
    a uint8 (or uint16) array ``(n, h, w)`` or ``(n, h, w, c)`` with c in 1, 3, 4 (images); a 2-D
    numeric array (modality ``"features"``, rows as float32, for ``backbone="precomputed"``).
    Unreadable image files are skipped (and ``y`` filtered alike) or raise with ``strict=True``.

    Audio (modality ``"audio"``): a list of 1-D float arrays of differing lengths (waveforms), or a
    list of existing audio file paths. Equal-length 1-D float arrays still read as a feature matrix
    unless ``modality="audio"`` is passed (then a 2-D array is one clip per row). Waveforms are taken
    to be sampled at ``sample_rate`` (default 16000 Hz; passing it also marks the arrays as audio)
    and are resampled to 16 kHz here, the rate every in-memory audio item is held at.
    """
    source = f"array {name}"
    if X is None:
        raise DataError(f"{name} is None; pass a list of texts, images or image paths, or an array.")
    if isinstance(X, (str, os.PathLike)):
        raise DataError(
            f"{name} is a single path or string ({str(X)[:80]!r}); pass a list of inputs, or use "
            "load_dataset(path) to load a folder or a table."
        )
    if hasattr(X, "columns") and X.shape[1] == 1:  # one-column DataFrame: that column
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy"):  # pandas Series or DataFrame
        X = X.to_numpy()
    audio = audio_items(X, name, modality=modality, sample_rate=sample_rate)
    if audio is not None:
        labels = _labels(y, len(audio), name)
        skipped: list[SkippedInput] = []
        if isinstance(audio[0], str):
            keep, skipped = screen_audio(audio, [f"{name}[{i}] ({p})" for i, p in enumerate(audio)], strict, 2)
            audio, labels = [audio[i] for i in keep], None if labels is None else labels[keep]
        return LabeledData(audio, labels, "audio", source, skipped)
    if isinstance(X, np.ndarray) and X.ndim == 0:
        raise DataError(
            f"{name} is a single value (a 0-d array of dtype {X.dtype}: {short(X)}), not a collection of "
            f"examples. {_ACCEPTED}"
        )
    if isinstance(X, np.ndarray) and X.dtype.kind not in "OUS":
        items, modality = _numeric_array(X, name)
    else:
        items = list(X)
        if not items:
            raise DataError(f"{name} is empty (0 examples); there is nothing to learn from.")
        items, modality = _sequence(items, name)

    labels = _labels(y, len(items), name)
    skipped: list[SkippedInput] = []
    if modality == "image" and isinstance(items[0], str):
        wheres = [f"{name}[{i}] ({p})" for i, p in enumerate(items)]
        keep, skipped = screen_images(items, wheres, strict, stacklevel=2)
        items = [items[i] for i in keep]
        labels = None if labels is None else labels[keep]
    return LabeledData(items, labels, modality, source, skipped)


def _labels(y, n: int, name: str) -> np.ndarray | None:
    if y is None:
        return None
    if isinstance(y, (str, bytes)):
        raise DataError(f"y is a single string ({y[:40]!r}); pass one label per example of {name}.")
    labels = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"y must be 1-D, one label per example; got shape {labels.shape}. "
            "If it is one-hot encoded, pass y.argmax(axis=1)."
        )
    if len(labels) != n:
        raise DataError(f"{name} has {n} examples but y has {len(labels)} labels; they must match one to one.")
    return labels


_ACCEPTED = (
    "Accepted: uint8 images of shape (n, h, w) or (n, h, w, c) with c in 1, 3, 4; a 2-D array "
    "(n, features) of precomputed features (use backbone='precomputed'); or a list of texts, "
    "image paths, PIL images or uint8 arrays."
)


def _numeric_array(X: np.ndarray, name: str) -> tuple[list, str]:
    if X.ndim == 0 or len(X) == 0:
        raise DataError(f"{name} is empty (shape {X.shape}); there is nothing to learn from.")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {X.dtype}, which headstart cannot use. {_ACCEPTED}")
    if X.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            idx = tuple(int(v) for v in bad[0])
            raise DataError(
                f"{name} contains {X[idx]} at index {idx} (row, col…); NaN and inf are not allowed. "
                "Fill or drop those values first."
            )
    if X.ndim == 2:
        if X.shape[1] == 0:
            raise DataError(f"{name} has shape {X.shape}: {len(X)} rows but 0 feature columns. {_ACCEPTED}")
        with np.errstate(over="ignore"):  # overflow is reported below, as an error naming the value
            features = X.astype(np.float32)
        if X.dtype.kind in "iuf" and not np.isfinite(features).all():  # finite, but beyond float32's range
            idx = tuple(int(v) for v in np.argwhere(~np.isfinite(features))[0])
            raise DataError(
                f"{name} holds {X[idx]} at index {idx} (row, col), beyond the float32 range (±3.4e38) that "
                "features are stored in. Rescale the features, e.g. standardise each column."
            )
        return list(features), "features"
    if X.ndim in (3, 4):
        if X.ndim == 4 and X.shape[3] not in (1, 3, 4):
            raise DataError(
                f"{name} has shape {X.shape}: read as (n, h, w, c), c={X.shape[3]} channels is not "
                f"supported (1, 3 or 4). If channels come first (n, c, h, w), pass X.transpose(0, 2, 3, 1). {_ACCEPTED}"
            )
        if X.shape[1] == 0 or X.shape[2] == 0:
            raise DataError(
                f"{name} has shape {X.shape}: images of {X.shape[1]}x{X.shape[2]} pixels hold nothing. "
                f"{_ACCEPTED}"
            )
        if X.dtype in (np.uint8, np.uint16):
            return list(X), "image"
        fix = (
            "convert floats in 0..1 with (X * 255).round().astype(np.uint8)"
            if X.dtype.kind == "f" else "convert with X.astype(np.uint8) if the values are 0..255"
        )
        raise DataError(
            f"{name} has shape {X.shape} and dtype {X.dtype}; image arrays must be uint8 0..255: {fix}. "
            f"A 2-D float array of precomputed features needs backbone='precomputed'. {_ACCEPTED}"
        )
    raise DataError(f"{name} has shape {X.shape} ({X.ndim}-D), which headstart cannot use. {_ACCEPTED}")


def _sequence(items: list, name: str) -> tuple[list, str]:
    for i, item in enumerate(items):
        if item is None or (isinstance(item, float) and np.isnan(item)):
            raise DataError(f"{name}[{i}] is missing ({item!r}); every example needs an input.")
    first = items[0]
    kinds = [_kind(item) for item in items]
    odd = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
    if odd is not None:
        raise DataError(
            f"{name} mixes input types: {name}[0] is a {type(first).__name__} but {name}[{odd}] is a "
            f"{type(items[odd]).__name__}. Pass one kind of input."
        )
    kind = kinds[0]
    if kind == "str":
        return _strings([os.fspath(s) for s in items], name)
    if kind == "pil":
        return items, "image"
    if kind == "array":
        for i, a in enumerate(items):
            if (a.dtype not in (np.uint8, np.uint16) or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4)))
                    or 0 in a.shape[:2]):
                raise DataError(
                    f"{name}[{i}] is an array of shape {a.shape} and dtype {a.dtype}; an image must be "
                    f"uint8 (h, w) or (h, w, c) with c in 1, 3, 4. {_ACCEPTED}"
                )
        return items, "image"
    if kind == "number_row":  # a list of lists of numbers: a 2-D array
        try:
            return _numeric_array(np.asarray(items), name)
        except ValueError as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{name} is a ragged list of rows ({exc}); all rows need the same length.") from exc
    raise DataError(f"{name}[0] is a {type(first).__name__}, which headstart cannot use. {_ACCEPTED}")


def _kind(item) -> str:
    if isinstance(item, (str, os.PathLike)):
        return "str"
    if isinstance(item, Image.Image):
        return "pil"
    if isinstance(item, np.ndarray) and item.ndim >= 2:
        return "array"
    if isinstance(item, (list, tuple, np.ndarray, int, float, np.number)) and not isinstance(item, bool):
        return "number_row"  # rows of numbers, or bare numbers (reported as a 1-D array)
    return type(item).__name__


def _strings(items: list[str], name: str) -> tuple[list[str], str]:
    for i, s in enumerate(items):
        if not s.strip():
            raise DataError(f"{name}[{i}] is an empty or whitespace-only string ({s!r}). Remove it or fill it in.")
    looks = [is_image_path(s.strip()) for s in items]
    if not any(looks):
        return items, "text"
    exists = [look and os.path.isfile(s.strip()) for s, look in zip(items, looks)]
    if all(exists):
        return [str(Path(s.strip()).absolute()) for s in items], "image"
    if all(looks):  # every string is an image file name, but some are not there
        i = exists.index(False)
        raise DataError(
            f"{name} looks like image paths, but {name}[{i}] ({items[i]!r}) is not a file "
            f"(looked at {Path(items[i].strip()).absolute()}). Fix the path; relative paths are read from "
            f"the current folder, {Path.cwd()}."
        )
    if any(exists):
        i, j = exists.index(True), exists.index(False)
        raise DataError(
            f"{name} mixes image paths and text: {name}[{i}] ({items[i]!r}) is an existing image file but "
            f"{name}[{j}] ({items[j][:60]!r}) is not. Pass only image paths or only texts."
        )
    return items, "text"
