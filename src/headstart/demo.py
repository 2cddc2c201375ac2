"""``headstart demo``: does transfer pay off? Three strategies on two bundled real data sets.

For each data set a stratified test split is held out (``train_test_split``, ``random_state=0``),
then ``linear_probe`` and ``finetune`` (transfer from a pretrained backbone) and ``scratch`` (the
same architecture from random weights: the no-transfer baseline) are fitted on the rest and scored
on the test split. The best transfer model of each data set (chosen on its validation accuracy,
not on the test split) is saved with its test accuracy, and every row goes to
``demo_results.json``. Accuracies measured on fewer than 1,000 examples are shown with their 95%
(Wilson) interval, as the test and validation splits here are small.

* images: :func:`~headstart.datasets.load_digits_images` (8x8 handwritten digits, 10 classes),
  resized to 64 px so that it runs on a laptop CPU; backbone ``efficientnet_lite0``.
* text: :func:`~headstart.datasets.load_vader_movie_sample` (movie-review sentences, positive or
  negative); backbone ``minilm_l6``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._version import __version__
from .atomic import write_json
from .intervals import accuracy_interval, format_accuracy, needs_interval, paired_bootstrap_difference, wilson_interval
from .metrics import number_or_none

STRATEGIES = ("linear_probe", "finetune", "scratch")
BASELINE = "scratch"


def _datasets(quick: bool) -> list[dict]:
    from .datasets import load_digits_images, load_vader_movie_sample

    images, digit_labels = load_digits_images()
    texts, sentiment_labels = load_vader_movie_sample()
    return [
        {"name": "digits", "description": "handwritten digits 8x8, 10 classes (UCI optdigits via scikit-learn)",
         "X": images, "y": digit_labels, "n_train": 100 if quick else 400, "n_test": 100 if quick else 400,
         "params": {"backbone": "efficientnet_lite0", "image_size": 32 if quick else 64}},
        {"name": "vader_movie", "description": "movie-review sentences, positive / negative (VADER, Hutto & "
                                               "Gilbert 2014)",
         "X": np.array(texts, dtype=object), "y": sentiment_labels, "n_train": 40 if quick else 400,
         "n_test": 40 if quick else 200, "params": {"backbone": "minilm_l6"}},
    ]


def run_demo(out_dir="runs/demo", quick: bool = False, *, verbose: bool = True) -> dict:
    """Fit linear_probe, finetune and scratch on digits and VADER movie sentences; return the results.

    ``quick``: few examples, small images and 2 epochs (a smoke test, seconds not minutes).
    Writes ``out_dir/<dataset>/`` (the best transfer model of each data set, with its test
    accuracy in ``metrics.json``) and ``out_dir/demo_results.json``; returns the same dict.
    """
    say = print if verbose else (lambda *args, **kwargs: None)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    epochs = 2 if quick else 8
    started = time.perf_counter()
    results = {"headstart_version": __version__, "quick": quick, "epochs": epochs, "baseline": BASELINE,
               "datasets": {}, "rows": []}
    for spec in _datasets(quick):
        results["datasets"][spec["name"]], rows = _run_dataset(spec, out, epochs, say)
        results["rows"] += rows
    results["total_seconds"] = time.perf_counter() - started
    target = out / "demo_results.json"
    write_json(target, results)
    say(f"\nall results: {target} ({results['total_seconds']:.0f} s in all)")
    return results


def _split(spec: dict) -> tuple:
    """``(X_train, X_test, y_train, y_test)``: the data set's stratified test split, texts as lists of str."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        spec["X"], spec["y"], train_size=spec["n_train"], test_size=spec["n_test"],
        stratify=spec["y"], random_state=0)
    if X_train.dtype == object:  # texts: plain lists of str
        X_train, X_test = X_train.tolist(), X_test.tolist()
    return X_train, X_test, y_train, y_test


def _fit_strategy(strategy: str, spec: dict, split: tuple, epochs: int, say):
    """Fit one strategy on the training split; return ``(its row, the model, its test predictions)``."""
    from .estimator import TransferClassifier

    X_train, X_test, y_train, y_test = split
    say(f"   fitting {strategy} ...", flush=True)  # a full line: progress bars on stderr may use \r
    params = {**spec["params"], "strategy": strategy, "random_state": 0, "verbose": 0,
              "cache_dir": "none"}  # no feature cache: every fit time is a cold one
    if strategy != "linear_probe":
        params["epochs"] = epochs
    clf = TransferClassifier(**params).fit(X_train, y_train)
    predictions = clf.predict(X_test)
    test_accuracy, test_low, test_high = accuracy_interval(y_test, predictions)
    row = {"dataset": spec["name"], "strategy": strategy, "transfer": strategy != BASELINE,
           "backbone": clf.fit_summary_["backbone"], "test_accuracy": test_accuracy,
           "test_accuracy_interval": [test_low, test_high],
           "fit_seconds": float(clf.fit_summary_["fit_seconds"]),
           "val_accuracy": number_or_none(clf.fit_summary_.get("val_accuracy")),
           "epochs_run": clf.fit_summary_.get("epochs_run"),
           "n_train": int(clf.fit_summary_["n_train"]), "n_val": int(clf.fit_summary_["n_val"]),
           "n_test": len(y_test)}
    row["val_accuracy_interval"] = _interval(row["val_accuracy"], row["n_val"])
    say(f"   {strategy}: fitted in {row['fit_seconds']:.1f} s, test accuracy {_test_text(row)}", flush=True)
    return row, clf, predictions


def _run_dataset(spec: dict, out: Path, epochs: int, say) -> tuple[dict, list[dict]]:
    """Every strategy on one data set; save its best transfer model; return ``(its record, its rows)``."""
    name = spec["name"]
    split = _split(spec)
    y_train, y_test = split[2], split[3]
    say(f"\n== {name}: {spec['description']}")
    say(f"   {len(y_train)} train (of which 20% validation) / {len(y_test)} test examples, "
        f"backbone {spec['params']['backbone']}"
        + (f", images resized to {spec['params']['image_size']} px" if "image_size" in spec["params"] else ""))
    rows, models, predictions = [], {}, {}
    for strategy in STRATEGIES:
        row, models[strategy], predictions[strategy] = _fit_strategy(strategy, spec, split, epochs, say)
        rows.append(row)
    transfer = [r for r in rows if r["transfer"]]
    best = max(transfer, key=lambda r: (_or_minus(r["val_accuracy"]), r["strategy"] == "linear_probe"))
    baseline = next(r for r in rows if r["strategy"] == BASELINE)
    folder = out / name
    models[best["strategy"]].save(folder, metrics={"test_accuracy": best["test_accuracy"],
                                                   "test_examples": len(y_test)})
    difference = paired_bootstrap_difference(y_test, predictions[best["strategy"]], predictions[BASELINE])
    verdict = _verdict(best, baseline, difference)
    say()
    say(_table(rows))
    say(f"   no-transfer baseline: {BASELINE} (same architecture, random initial weights)")
    say(f"   best transfer model (chosen on validation accuracy): {best['strategy']}; {verdict}")
    say(f"   saved to {folder}")
    return {
        "description": spec["description"], "n_train": len(y_train), "n_test": len(y_test),
        "params": spec["params"], "best_transfer": best["strategy"], "saved_to": str(folder),
        "baseline_test_accuracy": baseline["test_accuracy"], "best_transfer_test_accuracy": best["test_accuracy"],
        "transfer_beat_baseline": bool(difference[1] > 0), "difference_interval": list(difference), "verdict": verdict,
    }, rows


def _verdict(best: dict, baseline: dict, difference: tuple[float, float, float]) -> str:
    """Win or loss only when the paired 95% interval of the difference (same test examples) excludes 0."""
    gain, low, high = (100 * v for v in difference)
    scores = f"test accuracy {_test_text(best)} vs {_test_text(baseline)}"
    spread = f"{gain:+.1f} points, paired 95% interval [{low:+.1f}, {high:+.1f}]"
    if low > 0:
        return f"transfer beat the no-transfer baseline: {scores} ({spread})"
    if high < 0:
        return f"transfer did NOT beat the no-transfer baseline: {scores} ({spread})"
    return (f"transfer and the no-transfer baseline are within noise of each other on this test set: {scores} "
            f"({spread}, which includes 0)")


def _interval(accuracy, n: int) -> list[float] | None:
    """The 95% Wilson interval of an accuracy measured on ``n`` examples (None if there is none)."""
    if accuracy is None or not n:
        return None
    return list(wilson_interval(round(accuracy * n), n))


def _accuracy_text(accuracy, interval, n: int) -> str:
    """``0.812 [0.774, 0.846]`` under 1,000 examples (95% interval), else ``0.812``; ``n/a`` if unknown."""
    if accuracy is None:
        return "n/a"
    if interval is not None and needs_interval(n):
        return format_accuracy(accuracy, *interval)
    return f"{accuracy:.3f}"


def _test_text(row: dict) -> str:
    return _accuracy_text(row["test_accuracy"], row.get("test_accuracy_interval"), row["n_test"])


def _val_text(row: dict) -> str:
    return _accuracy_text(row["val_accuracy"], row.get("val_accuracy_interval"), row["n_val"])


def _table(rows: list[dict]) -> str:
    header = ["strategy", "test accuracy [95% interval]", "fit seconds", "val accuracy [95% interval]"]
    cells = [[r["strategy"] + ("" if r["transfer"] else " (baseline)"), _test_text(r),
              f"{r['fit_seconds']:.1f}", _val_text(r)]
             for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(row):
        return "   | " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                    for i, (c, w) in enumerate(zip(row, widths))) + " |"

    rule = "   |" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, cells)])


def _or_minus(value) -> float:
    return -1.0 if value is None else value

