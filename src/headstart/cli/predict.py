"""``headstart predict``: the class of every input with a saved run folder, as CSV rows
``input,prediction,probability,proba_<class>…,error``, one per input read.

Inputs are read by :func:`headstart.data.inputs.load_unlabeled`, the readers ``fit`` and
``evaluate`` use: images, audio, tables and text. An unreadable file does not stop the batch: its
row has no prediction and says why in the ``error`` column (and a warning on stderr lists it), so
the output still has one row per input, in input order, for a script to join or filter.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
import warnings
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..errors import ConfigError, DataPathError
from .arguments import PROG, add_column_options, load_inputs

LISTED = "Their rows in the output have no prediction and the reason in the error column; pass --strict to fail instead."


def add_parser(commands) -> None:
    predict = commands.add_parser(
        "predict", help="Predict with a saved run folder; writes CSV rows input,prediction,probability,proba_<class>….",
        description="Predict the class of every input with the model in RUN_DIR. Writes one CSV row per input: "
                    "input,prediction,probability (of the predicted class), one proba_<class> column per class "
                    "(or, with --top-k K, the K most probable classes), and error (why an unreadable input has "
                    "no prediction; empty otherwise).",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    predict.add_argument("inputs", metavar="INPUTS",
                         help="A folder of images or audio files (searched recursively, any layout), a table (.csv "
                              ".tsv .jsonl .json .parquet; a label column is optional and ignored), a single image or "
                              "audio file, or a .txt file with one text per line.")
    predict.add_argument("--output", "-o", metavar="FILE.csv", help="Write the CSV here instead of to stdout.")
    predict.add_argument("--out", metavar="DIR", dest="mask_dir",
                         help="Segmentation runs: the folder to write one mask PNG per image into (same name as the "
                              "image, .png; mode L for up to 256 classes, 16-bit otherwise).")
    predict.add_argument("--top-k", metavar="K", type=_positive, default=None,
                         help="Instead of one proba_<class> column per class, write the K most probable classes, "
                              "best first: top_1,top_1_probability,…,top_K,top_K_probability.")
    add_column_options(predict, labels=False)
    predict.set_defaults(handler=cmd_predict)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below its minimum 1")
    return value


def _probabilities(clf, data) -> np.ndarray:
    """predict_proba on the readable inputs, its warnings (truncated texts) shown as headstart lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        probabilities = clf.predict_proba(dataclasses.replace(data, skipped=[]))
    for warning in caught:
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    return probabilities


def _header(classes, top_k: int | None) -> list[str]:
    if top_k is None:
        columns = [f"proba_{c}" for c in classes]
    else:
        columns = [name for k in range(1, top_k + 1) for name in (f"top_{k}", f"top_{k}_probability")]
    return ["input", "prediction", "probability", *columns, "error"]


def _row(name: str, row: np.ndarray, classes, top_k: int | None) -> list[str]:
    best = int(row.argmax())
    if top_k is None:
        extra = [f"{p:.4f}" for p in row]
    else:
        ranked = np.argsort(-row, kind="stable")[:top_k]
        extra = [cell for i in ranked for cell in (classes[i], f"{row[i]:.4f}")]
    return [name, classes[best], f"{row[best]:.4f}", *extra, ""]


def _rows(data, probabilities: np.ndarray, classes, top_k: int | None) -> list[list[str]]:
    """One row per input read, in input order: a prediction, or (unreadable) the reason in the error column."""
    width = len(_header(classes, top_k))
    predicted = {position: _row(str(item), row, classes, top_k)
                 for position, item, row in zip(data.kept or range(len(data)), data.inputs, probabilities)}
    unread = (i for i in range(len(data) + len(data.skipped)) if i not in predicted)
    for position, skipped in zip(unread, data.skipped):
        predicted[position] = [skipped.where, *[""] * (width - 2), skipped.reason]
    return [predicted[i] for i in sorted(predicted)]


def _write(text: str, output: str | None, n_predicted: int, n_skipped: int) -> None:
    if not output:
        sys.stdout.write(text)
        return
    target = Path(output).expanduser()
    if not target.parent.is_dir():
        raise DataPathError(f"cannot write {target.absolute()}: the folder {target.parent.absolute()} "
                            f"does not exist; create it or pass another --output path")
    write_text_atomic(target, text)
    skipped = f" ({n_skipped} unreadable input(s) listed with an error instead)" if n_skipped else ""
    print(f"wrote {n_predicted} predictions to {target}{skipped}")


def cmd_predict(args: argparse.Namespace) -> int:
    from ..estimator import TransferClassifier
    from ..segmentation import is_segmentation_run

    if is_segmentation_run(args.run_dir):
        return cmd_predict_masks(args)
    if args.mask_dir:
        raise ConfigError(f"--out {args.mask_dir} is for segmentation runs (a folder of mask PNGs); {args.run_dir} is a "
                          "classification run: pass --output FILE.csv")

    clf = TransferClassifier.load(args.run_dir)
    classes = [str(c) for c in clf.classes_]
    if args.top_k is not None and args.top_k > len(classes):
        raise ConfigError(f"--top-k {args.top_k} is more than the {len(classes)} classes of {args.run_dir}; "
                          f"pass --top-k {len(classes)} or less")
    data = load_inputs(args.inputs, args, modality=clf.modality_, listed=LISTED)
    probabilities = _probabilities(clf, data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_header(classes, args.top_k))
    writer.writerows(_rows(data, probabilities, classes, args.top_k))
    _write(buffer.getvalue(), args.output, len(data), len(data.skipped))
    return 0


def _mask_image(mask: np.ndarray):
    from PIL import Image

    if mask.min() >= 0 and mask.max() <= 255:
        return Image.fromarray(mask.astype(np.uint8))  # mode L
    if mask.min() >= 0 and mask.max() <= 65535:
        return Image.fromarray(mask.astype(np.uint16))  # 16-bit greyscale PNG
    return Image.fromarray(mask.astype(np.int32))  # mode I


def cmd_predict_masks(args: argparse.Namespace) -> int:
    """A segmentation run: one mask PNG per image of INPUTS, named after the image, in --out DIR."""
    from ..segmentation import TransferSegmenter
    from ..segmentation.data import load_segmentation

    target = args.mask_dir or args.output
    if not target:
        raise ConfigError(f"{args.run_dir} is a segmentation run: pass --out DIR, the folder to write the mask PNGs to")
    seg = TransferSegmenter.load(args.run_dir)
    data = load_segmentation(args.inputs, require_masks=False, window=seg.config_.window)
    folder = Path(target).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataPathError(f"--out {folder} exists and is not a folder; pass a folder for the mask PNGs")
    folder.mkdir(parents=True, exist_ok=True)
    for name, mask in zip(data.names, seg.predict(data.images)):
        _mask_image(mask).save(folder / f"{Path(name).stem}.png")
    print(f"wrote {len(data.names)} mask PNGs to {folder}")
    return 0
