"""``headstart predict``: the class of every input with a saved run folder, as CSV rows
``input,prediction,probability`` (the probability of the predicted class)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import warnings
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import DataError, DataPathError
from .arguments import PROG, load_data


def add_parser(commands) -> None:
    predict = commands.add_parser(
        "predict", help="Predict with a saved run folder; writes CSV rows input,prediction,probability.",
        description="Predict the class of every input with the model in RUN_DIR. Writes CSV rows "
                    "input,prediction,probability (the probability of the predicted class).",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    predict.add_argument("inputs", metavar="INPUTS",
                         help="A folder of images (searched recursively, any layout), a table (.csv .tsv .jsonl "
                              ".json .parquet; a label column is optional and ignored), a single image, or a "
                              ".txt file with one text per line.")
    predict.add_argument("--output", "-o", metavar="FILE.csv", help="Write the CSV here instead of to stdout.")
    group = predict.add_argument_group("table columns (found automatically unless named)")
    group.add_argument("--text-column", metavar="NAME", help="Column holding the texts.")
    group.add_argument("--image-column", metavar="NAME", help="Column holding image paths.")
    predict.set_defaults(handler=cmd_predict)


def _images_in(folder: Path) -> tuple[list[str], list[str]]:
    """Every image below ``folder``, in a stable order, hidden files and folders left out."""
    from ..data import IMAGE_EXTENSIONS
    from ..data.images import is_image_path

    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [os.path.join(dirpath, name) for name in sorted(filenames)
                  if not name.startswith(".") and is_image_path(name)]
    if not found:
        raise DataPathError(f"no images found in {folder.absolute()} (searched every subfolder for "
                            f"{', '.join(IMAGE_EXTENSIONS)}); to predict on a table, pass the table's path")
    return found, [str(Path(p).absolute()) for p in found]


def _table_inputs(given: Path, args: argparse.Namespace) -> tuple[list[str], object]:
    data = load_data(str(given), args, require_labels=False)
    if data.skipped:
        first = data.skipped[0]
        raise DataError(f"cannot predict: {len(data.skipped)} image(s) of {given} are unreadable, first "
                        f"{first.where}: {first.reason}; fix or remove them")
    return [str(item) for item in data.inputs], data


def _collect_inputs(path: str, args: argparse.Namespace) -> tuple[list[str], object]:
    """Return ``(names shown in the CSV, what to pass to predict_proba)`` for INPUTS."""
    from ..data import IMAGE_EXTENSIONS, TABLE_EXTENSIONS
    from ..data.images import is_image_path

    given = Path(path).expanduser()
    if not given.exists():
        from ..data.inputs import not_found_message

        raise DataPathError(not_found_message(given.absolute()))
    if given.is_dir():
        return _images_in(given)
    suffix = given.suffix.lower()
    if suffix in TABLE_EXTENSIONS:
        return _table_inputs(given, args)
    if is_image_path(given.name):
        return [str(given)], [str(given.absolute())]
    if suffix == ".txt":
        texts = [line.strip() for line in given.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise DataPathError(f"{given.absolute()} holds no text (one text per line is expected)")
        return texts, texts
    raise DataPathError(f"cannot predict on {given.absolute()}: pass a folder of images, a table "
                        f"({', '.join(TABLE_EXTENSIONS)}), a single image ({', '.join(IMAGE_EXTENSIONS)}) "
                        f"or a .txt file with one text per line")


def cmd_predict(args: argparse.Namespace) -> int:
    from ..estimator import TransferClassifier

    clf = TransferClassifier.load(args.run_dir)
    names, inputs = _collect_inputs(args.inputs, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        probabilities = clf.predict_proba(inputs)
    for warning in caught:  # unreadable images: the estimator raises right after, naming them
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    best = probabilities.argmax(axis=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "prediction", "probability"])
    for name, index, row in zip(names, best, probabilities):
        writer.writerow([name, clf.classes_[index], f"{row[index]:.4f}"])
    if args.output:
        target = Path(args.output).expanduser()
        if not target.parent.is_dir():
            raise DataPathError(f"cannot write {target.absolute()}: the folder {target.parent.absolute()} "
                                f"does not exist")
        write_text_atomic(target, buffer.getvalue())
        print(f"wrote {len(names)} predictions to {target}")
    else:
        sys.stdout.write(buffer.getvalue())
    return 0
