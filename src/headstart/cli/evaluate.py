"""``headstart evaluate``: score a saved run folder on labeled data; also written to
``RUN_DIR/evaluation.json``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from .._version import __version__
from ..atomic import write_text_atomic
from .arguments import DATA_HELP, add_column_options, load_data
from .format import table


def add_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="Score a saved run folder on labeled data; writes RUN_DIR/evaluation.json.",
        description="Score the model in RUN_DIR on labeled DATA: accuracy, macro-F1, per-class precision and "
                    "recall, and the confusion matrix. Also written to RUN_DIR/evaluation.json.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    evaluate.add_argument("data", metavar="DATA", help=DATA_HELP + "; for a segmentation run, a folder of images "
                          "with --masks MASKS_DIR, or a root holding images/ and masks/")
    evaluate.add_argument("--masks", metavar="MASKS_DIR",
                          help="Segmentation runs: the folder of label-mask PNGs, one per image with the same name.")
    evaluate.add_argument("--json", action="store_true",
                          help="Print the evaluation record (what evaluation.json holds) as JSON instead of tables.")
    add_column_options(evaluate, labels=True)
    evaluate.set_defaults(handler=cmd_evaluate)


def _evaluation(scores: dict, source: str, skipped: list[dict], seconds: float) -> dict:
    """The record written to evaluation.json."""
    per_class = {row["label"]: {key: value for key, value in row.items() if key != "label"}
                 for row in scores["per_class"]}
    return {
        "data": source, "n_examples": scores["n_examples"], "accuracy": scores["accuracy"],
        "accuracy_interval": {"low": scores["low"], "high": scores["high"], "confidence": 0.95, "method": "wilson"},
        "macro_f1": scores["macro_f1"],
        "macro_f1_note": "averaged over the classes present in the labels or the predictions",
        "per_class": per_class, "confusion_matrix": scores["confusion_matrix"],
        "skipped": skipped, "predict_seconds": seconds, "headstart_version": __version__,
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _print_scores(scores: dict, skipped: list[dict]) -> None:
    from ..intervals import needs_interval

    accuracy = scores["accuracy"]
    shown = scores["text"] + " (95% interval)" if needs_interval(scores["n_examples"]) else f"{accuracy:.4f}"
    print(f"accuracy:  {shown}")
    print(f"macro-F1:  {scores['macro_f1']:.4f}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable input(s):")
        print("\n".join(f"  - {item['where']}: {item['reason']}" for item in skipped))
    print()
    print(table(["class", "precision", "recall", "f1", "support"],
                [[row["label"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", row["support"]]
                 for row in scores["per_class"]]))
    print()
    matrix = scores["confusion_matrix"]
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(table(["true \\ predicted", *matrix["labels"]],
                [[label, *row] for label, row in zip(matrix["labels"], matrix["matrix"])]))


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..data import check_labels_known
    from ..estimator import TransferClassifier
    from ..metrics import classification_scores

    from ..errors import ConfigError
    from ..segmentation import is_segmentation_run

    run_dir = Path(args.run_dir).expanduser()
    if is_segmentation_run(run_dir):
        return cmd_evaluate_segmentation(args, run_dir)
    if args.masks:
        raise ConfigError(f"--masks {args.masks} is for segmentation runs; {run_dir} is a classification run: drop --masks")
    clf = TransferClassifier.load(run_dir)
    data = load_data(args.data, args, require_labels=True)
    y_true = check_labels_known(data.labels, clf.classes_, data.source, run_dir)
    skipped = [{"where": s.where, "reason": s.reason} for s in data.skipped]
    data = dataclasses.replace(data, skipped=[])  # unreadable images are left out and reported below
    started = time.perf_counter()
    predicted = np.array([str(label) for label in clf.predict(data)], dtype=object)
    seconds = time.perf_counter() - started
    scores = classification_scores(y_true, predicted, [str(c) for c in clf.classes_])
    record = _evaluation(scores, data.source, skipped, seconds)
    target = run_dir / "evaluation.json"
    write_text_atomic(target, json.dumps(record, indent=2) + "\n")
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"evaluated {run_dir} on {scores['n_examples']} examples of {data.source}")
    _print_scores(scores, skipped)
    print(f"\nwrote {target}")
    return 0


def cmd_evaluate_segmentation(args: argparse.Namespace, run_dir: Path) -> int:
    """Mean IoU and per-class IoU of a segmentation run on images with masks; also RUN_DIR/evaluation.json."""
    from ..segmentation import TransferSegmenter

    seg = TransferSegmenter.load(run_dir)
    started = time.perf_counter()
    scores = seg.iou(args.data, args.masks)
    record = {"task": "segmentation", "data": str(args.data), "masks": args.masks, "n_images": scores["n_images"],
              "mean_iou": scores["mean_iou"],
              "mean_iou_note": "averaged over the classes present in the masks or the predictions",
              "per_class_iou": {str(c): v for c, v in scores["per_class_iou"].items()},
              "predict_seconds": time.perf_counter() - started, "headstart_version": __version__,
              "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    target = run_dir / "evaluation.json"
    write_text_atomic(target, json.dumps(record, indent=2) + "\n")
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"evaluated {run_dir} on {scores['n_images']} images of {args.data}")
    print(f"mean IoU:  {scores['mean_iou']:.4f}")
    print()
    print(table(["class", "IoU"], [[c, "absent" if v is None else f"{v:.3f}"] for c, v in scores["per_class_iou"].items()]))
    print(f"\nwrote {target}")
    return 0
