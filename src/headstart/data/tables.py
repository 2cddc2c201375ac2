"""Tables (.csv, .tsv, .jsonl/.json, .parquet): reading them and choosing the input and label columns.

Rows are named the way a spreadsheet user counts them: "row 1" is the first data row (the header
is not counted); for .csv/.tsv the message also gives the spreadsheet row, which counts the header.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headstart.errors import ConfigError, DataError, DataPathError, did_you_mean

from .images import is_image_path
from .screen import is_missing, short

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
LABEL_COLUMNS = ("label", "labels", "class", "target", "y", "category")
TEXT_COLUMNS = ("text", "sentence", "review", "content")
IMAGE_COLUMNS = ("image", "path", "file", "filepath", "image_path")


@dataclass
class Table:
    """What :func:`read_table` found: one input per row, in file order."""

    inputs: list  # str text, or absolute image path
    labels: np.ndarray | None
    modality: str  # "text" | "image"
    wheres: list[str]  # "row 3 of data.csv", one per input


def read_table(
    path: Path,
    *,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    require_labels: bool = True,
) -> Table:
    """Read a table and return its inputs and labels; every message names the file and row."""
    if text_column is not None and image_column is not None:
        raise ConfigError(
            f"pass either text_column ({text_column!r}) or image_column ({image_column!r}), not both."
        )
    df = _read_frame(path)
    if len(df) == 0:
        raise DataPathError(
            f"{path} has no data rows (only a header or an empty list). Add one row per example, "
            "with its input and its label."
        )
    columns = [str(c) for c in df.columns]
    df.columns = columns

    label_col = _pick_label_column(path, columns, label_column, require_labels)
    input_col, modality = _pick_input_column(path, df, label_col, text_column, image_column)
    inputs = _read_inputs(path, df[input_col].tolist(), input_col, modality)
    labels = _read_labels(path, df, label_col, require_labels)
    return Table(inputs, labels, modality, [f"row {i + 1} of {path.name}" for i in range(len(inputs))])


def _where(i: int, path: Path) -> str:
    """The words that name data row ``i`` (from 0) of the table at ``path``, for an error message."""
    spreadsheet = f"; spreadsheet row {i + 2}" if path.suffix.lower() in (".csv", ".tsv") else ""
    return f"row {i + 1} of {path} (data rows counted from 1, header not counted{spreadsheet})"


def _read_inputs(path: Path, values: list, column: str, modality: str) -> list[str]:
    """One input per value of ``column``: the text, or the absolute image path (relative ones are read
    from the table's folder); raises DataError naming the row of an empty or nested value."""
    what = "text" if modality == "text" else "image path"
    inputs: list[str] = []
    for i, value in enumerate(values):
        if is_missing(value) or not str(value).strip():
            raise DataError(
                f"{_where(i, path)} has an empty {what} in column {column!r} (value: {value!r}). "
                "Fill it in or delete the row."
            )
        if isinstance(value, (list, dict)):  # nested JSON
            raise DataError(
                f"{_where(i, path)} holds a {type(value).__name__} in column {column!r} "
                f"({short(value)}), not a single {what}. Flatten it to one {what} per row."
            )
        if modality == "text":
            inputs.append(value if isinstance(value, str) else str(value))
        else:
            p = Path(str(value).strip()).expanduser()
            inputs.append(str(p if p.is_absolute() else (path.parent / p).absolute()))
    return inputs


def _read_labels(path: Path, df: pd.DataFrame, label_col: str | None, require_labels: bool) -> np.ndarray | None:
    """The label column's values, or None when there is none, or (``require_labels=False``) when a
    label is blank or nested; with labels required, a blank or nested one raises DataError naming its row."""
    if label_col is None:
        return None
    labels = df[label_col].to_numpy()
    blank = [is_missing(v) or (isinstance(v, str) and not v.strip()) for v in labels]
    bad = blank.index(True) if any(blank) else None
    nested = next((i for i, v in enumerate(labels) if isinstance(v, (list, dict))), None)
    if nested is not None and require_labels:
        raise DataError(
            f"{_where(nested, path)} holds a {type(labels[nested]).__name__} in the label column "
            f"{label_col!r} ({short(labels[nested])}); a label must be a single string or number. "
            "Put one class per row."
        )
    if bad is not None or nested is not None:
        if require_labels:
            raise DataError(
                f"{_where(bad, path)} has no label in column {label_col!r} "
                f"(value: {labels[bad]!r}). Fill it in or delete the row."
            )
        return None  # predict time: a partial label column is not used
    return labels


# --------------------------------------------------------------------------- reading


def _read_frame(path: Path) -> pd.DataFrame:
    ext = path.suffix.lower()
    try:
        if ext == ".parquet":
            return pd.read_parquet(path)
        text = _utf8_text(path)
        if not text.strip():
            raise DataPathError(
                f"{path} is empty (only whitespace). A table needs a header row and one row per example; "
                "re-export the file."
            )
        if ext in (".csv", ".tsv"):
            return pd.read_csv(
                io.StringIO(text), sep="," if ext == ".csv" else "\t",
                keep_default_na=False, na_values=[""],  # "NA" or "null" stay text; empty cells are missing
            )
        if ext == ".jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False, convert_dates=False)
        try:  # .json: a list of records, or JSON lines saved as .json
            return pd.read_json(io.StringIO(text), orient="records", dtype=False, convert_dates=False)
        except ValueError:
            return pd.read_json(io.StringIO(text), lines=True, dtype=False, convert_dates=False)
    except (DataError, DataPathError):
        raise
    except ImportError as exc:
        raise DataError(f"reading {path} needs pyarrow: pip install pyarrow ({exc}).") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataPathError(
            f"{path} is empty: no header and no rows. A table needs a header row and one row per example."
        ) from exc
    except Exception as exc:  # parser errors: pass pandas' message (it names the line) along
        raise DataError(
            f"cannot parse {path} as a {ext} table: {exc}. Check that the file is a valid {ext} "
            "file (for .json: a list of records, or one JSON object per line)."
        ) from exc


def _utf8_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} (line {line}) "
            "is not valid UTF-8. headstart does not guess encodings. Re-save the file as UTF-8, e.g. "
            "in Excel 'Save As > CSV UTF-8', or in Python: "
            f"pandas.read_csv(path, encoding='latin-1').to_csv(path, index=False)."
        ) from exc


# --------------------------------------------------------------------------- columns


def _find(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    by_key = {c.strip().lower(): c for c in reversed(columns)}
    return next((by_key[c] for c in candidates if c in by_key), None)


def _missing_column(path: Path, role: str, asked: str, columns: list[str], argument: str) -> DataError:
    return DataError(
        f"{path} has no {role} column {asked!r}; columns present: {', '.join(map(repr, columns))}."
        f"{did_you_mean(asked, columns)} Pass {argument}= (on the command line "
        f"--{argument.replace('_', '-')}) with one of those names."
    )


def _pick_label_column(path: Path, columns: list[str], asked: str | None, required: bool) -> str | None:
    if asked is not None:
        if asked in columns:
            return asked
        if required:
            raise _missing_column(path, "label", asked, columns, "label_column")
        return None
    found = _find(columns, LABEL_COLUMNS)
    if found is None and required:
        close = _close_to_label_name(columns)
        hint = (
            f" Column {close[0]!r} looks like a misspelling of {close[1]!r}: rename it, or pass "
            f"label_column={close[0]!r} (on the command line --label-column {close[0]!r})."
            if close else " Pass label_column= (on the command line --label-column) naming the column that "
            "holds the labels."
        )
        raise DataError(
            f"{path} has no label column: looked for {', '.join(LABEL_COLUMNS)}; columns present: "
            f"{', '.join(map(repr, columns))}.{hint}"
        )
    return found


def _close_to_label_name(columns: list[str]) -> tuple[str, str] | None:
    """``(column, label name)`` for the column that best looks like a misspelt label column name."""
    best = None
    for column in columns:
        key = column.strip().lower()
        for name in LABEL_COLUMNS:
            if len(name) < 4:  # 'y' is close to every short name
                continue
            score = difflib.SequenceMatcher(None, key, name).ratio()
            if score >= 0.6 and (best is None or score > best[0]):
                best = (score, column, name)
    return None if best is None else (best[1], best[2])


def _pick_input_column(path, df, label_col, text_column, image_column) -> tuple[str, str]:
    columns = list(df.columns)
    if text_column is not None or image_column is not None:
        asked, modality = (text_column, "text") if text_column is not None else (image_column, "image")
        if asked not in columns:
            raise _missing_column(path, modality, asked, columns, f"{modality}_column")
        return asked, modality
    text = _find(columns, TEXT_COLUMNS)
    image = _find(columns, IMAGE_COLUMNS)
    if text is not None and image is not None:
        raise DataError(
            f"{path} has both a text column ({text!r}) and an image column ({image!r}); "
            f"pass text_column={text!r} or image_column={image!r} to say which one to learn from."
        )
    if text is not None:
        return text, "text"
    if image is not None:
        return image, "image"
    rest = [c for c in columns if c != label_col]
    if len(rest) == 1:  # a single other column is the input; it is images if every value is an image path
        values = df[rest[0]].dropna().astype(str).str.strip()
        modality = "image" if len(values) and all(is_image_path(v) for v in values) else "text"
        return rest[0], modality
    raise DataError(
        f"{path}: cannot tell which column holds the inputs; looked for {', '.join(TEXT_COLUMNS)} (text) "
        f"and {', '.join(IMAGE_COLUMNS)} (image paths); columns present: {', '.join(map(repr, columns))}. "
        "Pass text_column= or image_column=."
    )
