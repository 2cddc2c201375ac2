"""``headstart demo``: what headstart is for, on two bundled real data sets with few labels.

For each data set a stratified test split is held out (``train_test_split``, ``random_state=0``) and
``strategy="auto"`` fits on a few labeled examples per class: it ranks the backbone's layers, scores
the ladder's candidates (the no-transfer baseline, a linear probe, fine-tuning rungs) on held-out
data, keeps one and says why, and checks it against the no-transfer baseline (negative transfer).
The demo prints that plan (every candidate with its held-out accuracy and its time, the choice, the
reason), saves the run, scores the kept model on the test split and writes the run's HTML report
(:func:`headstart.report.build_report`) with that test split, then says where. Every number goes
to ``demo_results.json`` too.

* images: :func:`~headstart.datasets.load_digits_images` (8x8 handwritten digits, 10 classes),
  resized to 32 px so that it runs on a laptop CPU; backbone ``efficientnet_lite0``.
* text: :func:`~headstart.datasets.load_vader_movie_sample` (movie-review sentences, positive or
  negative); backbone ``minilm_l6``.

One backbone per data set keeps the run within a few minutes on two CPU cores (``backbone="auto"``
would rank every installed model of the modality and probe the best two).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ._version import __version__
from .atomic import write_json
from .intervals import accuracy_interval, format_accuracy

# What `headstart demo` and `headstart demo --quick` promise (their --help says it): measured cold (empty feature
# cache) on a 2-core machine shared with other work, 5 min 20 s and 2 min 36 s; the planner's budget bounds each fit.
FULL_PROMISE = "about 5 minutes on two CPU cores"
QUICK_PROMISE = "2 to 3 minutes on two CPU cores"


def _datasets(quick: bool) -> list[dict]:
    """The bundled data sets, their sizes (labeled examples per class, test examples) and fit options."""
    from .datasets import load_digits_images, load_vader_movie_sample
    from .report import DEFAULT_CURVE_SIZES

    images, digit_labels = load_digits_images()
    texts, sentiment_labels = load_vader_movie_sample()
    common = {"random_state": 0, "epochs": 2 if quick else 6, "budget": "30s" if quick else "90s"}
    curve_sizes = (1, 5) if quick else DEFAULT_CURVE_SIZES
    return [
        {"name": "digits", "description": "handwritten digits 8x8, 10 classes (UCI optdigits via scikit-learn)",
         "X": images, "y": digit_labels, "per_class": 5 if quick else 10, "n_test": 100 if quick else 200,
         "curve_sizes": curve_sizes, "params": {**common, "backbone": "efficientnet_lite0", "image_size": 32}},
        {"name": "vader_movie", "description": "movie-review sentences, positive / negative (VADER, Hutto & "
                                               "Gilbert 2014)",
         "X": np.array(texts, dtype=object), "y": sentiment_labels, "per_class": 8 if quick else 20,
         "n_test": 60 if quick else 200, "curve_sizes": curve_sizes, "params": {**common, "backbone": "minilm_l6"}},
    ]


def run_demo(out_dir="runs/demo", quick: bool = False, *, verbose: bool = True) -> dict:
    """Fit ``strategy="auto"`` on bundled digits and VADER movie sentences; return what it chose and why.

    ``quick``: fewer examples, 2 epochs and a 30 s planner budget per data set (a smoke test).
    Writes ``out_dir/<dataset>/`` (the run folder, with its ``report.html``) and
    ``out_dir/demo_results.json``; returns the same dict.
    """
    say = print if verbose else (lambda *args, **kwargs: None)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {"headstart_version": __version__, "quick": quick, "datasets": {}}
    for spec in _datasets(quick):
        results["datasets"][spec["name"]] = _run_dataset(spec, out, say)
    results["total_seconds"] = time.perf_counter() - started
    target = out / "demo_results.json"
    write_json(target, results)
    say(f"\n== done in {results['total_seconds']:.0f} s. Open the reports in a browser:")
    for name, record in results["datasets"].items():
        say(f"   {name}: {record['report']}")
    say(f"   all numbers: {target}")
    return results


def _split(spec: dict) -> tuple:
    """``(X_train, X_test, y_train, y_test)``: ``per_class`` labeled examples of each class to fit on and a
    stratified test split, both drawn with ``random_state=0``; texts as lists of str."""
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(spec["y"]))
    X_train, X_test, y_train, y_test = train_test_split(
        spec["X"], spec["y"], train_size=spec["per_class"] * n_classes, test_size=spec["n_test"],
        stratify=spec["y"], random_state=0)
    if X_train.dtype == object:  # texts: plain lists of str
        X_train, X_test = X_train.tolist(), X_test.tolist()
    return X_train, X_test, y_train, y_test


def _run_dataset(spec: dict, out: Path, say) -> dict:
    """strategy="auto" on one data set: fit, show the plan, save, score on the test split, write the report."""
    from .estimator import TransferClassifier

    X_train, X_test, y_train, y_test = _split(spec)
    say(f"\n== {spec['name']}: {spec['description']}")
    say(f"   strategy='auto' on {len(y_train)} labeled examples ({spec['per_class']} per class), backbone "
        f"{spec['params']['backbone']}, budget {spec['params']['budget']}; {len(y_test)} test examples held out",
        flush=True)
    started = time.perf_counter()
    clf = TransferClassifier(strategy="auto", verbose=1, **spec["params"]).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    test_accuracy, low, high = accuracy_interval(y_test, clf.predict(X_test))
    folder = clf.save(out / spec["name"], metrics={"test_accuracy": test_accuracy, "test_examples": len(y_test)})
    say("")
    say(plan_lines(clf.plan_))
    say(f"   test accuracy of {clf.plan_['winner']} on the {len(y_test)} held-out test examples: "
        f"{format_accuracy(test_accuracy, low, high)} (95% interval)")
    report = _write_report(folder, (X_test, y_test), spec["name"], spec["curve_sizes"])
    say(f"   report: {report}", flush=True)
    return {"description": spec["description"], "n_train": len(y_train), "n_test": len(y_test),
            "params": spec["params"], "chosen": clf.plan_["winner"], "rule": clf.plan_["rule"],
            "negative_transfer": clf.plan_["negative_transfer"], "verdict": clf.plan_["verdict"],
            "candidates": [_candidate_row(c) for c in clf.plan_["candidates"]],
            "test_accuracy": test_accuracy, "test_accuracy_interval": [low, high],
            "fit_seconds": fit_seconds, "saved_to": str(folder), "report": str(report)}


def _write_report(folder: Path, test: tuple, name: str, curve_sizes) -> Path:
    """The run's HTML report, with the test split ``(X, y)`` as its labeled data (comparison and learning curve)."""
    from .data import from_arrays
    from .report import build_report

    labeled = dataclasses.replace(from_arrays(*test), source=f"the demo's {name} test split")
    return build_report(folder, labeled, curve_sizes=curve_sizes)


def _candidate_row(candidate: dict) -> dict:
    return {key: candidate.get(key) for key in ("name", "kind", "status", "default", "mean", "seconds", "reason")}


def plan_lines(plan: dict) -> str:
    """The plan as the demo prints it: a table of the candidates (held-out accuracy and time), the
    choice with its reason, and the check against the no-transfer baseline (the planner's verdict)."""
    from .report.plan import summarize_plan, verdict_headline

    summary, _ = summarize_plan(plan)
    rows = [[c["name"] + (" (chosen)" if c["chosen"] else "") + (" (default rung)" if c["default"] else ""),
             c["score_text"], _seconds(c), c["status"]] for c in summary["candidates"]]
    winner = next(c for c in summary["candidates"] if c["chosen"])
    headline = verdict_headline(plan)[1]
    return "\n".join([
        _table(["candidate", "held-out accuracy [95% interval]", "time", "status"], rows),
        f"   held out: {plan['held_out_predictions']} predictions ({plan['split_kind']})",
        f"   chosen: {winner['name']} — {winner['reason']}",
        f"   baseline check: {headline} {summary['plain_verdict']}",
    ])


def _seconds(candidate: dict) -> str:
    from .planner.explain import seconds_text

    return seconds_text(candidate["seconds"]) if candidate["status"] == "scored" else "—"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c[i]) for c in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "   | " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                    for i, (c, w) in enumerate(zip(row, widths))) + " |"

    rule = "   |" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])
