"""Build the comparative report of a run folder: the chosen model against the no-transfer baseline.

Numbers first (one dict, also written to ``metrics.json`` under ``report``), then the page: a jinja2
template rendered with every figure inlined as a base64 PNG, so the HTML file is self-contained. The
planner's record is read in :mod:`.plan`, the learning-curve experiment runs in :mod:`.curve`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .._version import __version__
from ..atomic import read_json_object, write_text_atomic
from ..errors import ConfigError, DataError, DataPathError, RunFolderError
from ..metrics import number_or_none
from .adaptation import score_source_only, summarize_adaptation
from .curve import comparison, learning_curve
from .plan import summarize_plan

DEFAULT_CURVE_SIZES = (1, 2, 5, 10, 20)
REPORT_FILE = "report.html"
TEMPLATE = "report.html"
FIGURES = ("candidates", "ranking", "confusion", "learning_curve", "adaptation")


def build_report(run_dir, data=None, out=None, curve_sizes=DEFAULT_CURVE_SIZES, random_state: int = 0) -> Path:
    """Write the run's comparative report (one self-contained HTML file) and return its path.

    ``run_dir``: a run folder written by ``headstart fit`` or ``TransferClassifier.save``.
    ``data``: labeled test data the model never saw (a path :func:`headstart.data.load_dataset`
    reads, a :class:`~headstart.data.LabeledData`, or an ``(X, y)`` pair); with it the page also
    shows test accuracy with 95% intervals, the confusion matrix, per-class scores and the learning
    curve. ``out``: the HTML file (default ``RUN_DIR/report.html``). ``curve_sizes``: labeled
    examples per class for the learning curve. The same numbers go into ``RUN_DIR/metrics.json``
    under the key ``report``.
    """
    from ..estimator import TransferClassifier

    folder = Path(run_dir).expanduser()
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist; pass the --out folder of `headstart fit` "
                             f"or a `clf.save()` path")
    sizes = check_curve_sizes(curve_sizes)
    target = Path(out).expanduser() if out is not None else folder / REPORT_FILE
    if not target.parent.is_dir():
        raise DataPathError(f"cannot write {target.absolute()}: the folder {target.parent.absolute()} does not exist")
    if target.is_dir():
        raise DataPathError(f"cannot write the report to {target.absolute()}: it is a folder; pass a file name "
                            f"such as {target / REPORT_FILE}")

    clf = TransferClassifier.load(folder)
    metrics_path = folder / "metrics.json"
    stored_metrics = read_json_object(metrics_path, fix="re-save the run before reporting on it", missing_ok=True)
    report = summarize_run(clf, folder)
    report["adaptation"] = summarize_adaptation(clf)
    if data is not None:
        labeled = _as_labeled(data)
        report["test"] = score_chosen_model(clf, labeled, folder)
        if report["adaptation"]:
            report["adaptation"]["test"] = score_source_only(folder, labeled, report["test"])
        report["learning_curve"] = learning_curve(clf, labeled, sizes, random_state)
        report["comparison"] = comparison(report)
    report["figures"] = _figures(report)

    html = render(report)
    write_text_atomic(target, html)
    numbers = {key: value for key, value in report.items() if key != "figures"}
    numbers["figures"] = sorted(report["figures"])
    numbers["html"] = str(target.absolute())
    write_text_atomic(metrics_path, json.dumps({**stored_metrics, "report": _jsonable(numbers)}, indent=2) + "\n")
    return target


# --------------------------------------------------------------------------- arguments


def check_curve_sizes(sizes) -> list[int]:
    """Sorted unique positive integers; raise ConfigError with an example otherwise."""
    if isinstance(sizes, str):
        parts = [part.strip() for part in sizes.split(",") if part.strip()]
    else:
        parts = list(sizes)
    values = []
    for part in parts:
        try:
            value = int(part)
            if isinstance(part, bool) or (isinstance(part, float) and value != part) or value < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"curve sizes must be positive whole numbers of examples per class, e.g. 1,2,5,10,20; "
                              f"got {part!r}") from None
        values.append(value)
    if not values:
        raise ConfigError("curve sizes name no size; pass examples per class, e.g. 1,2,5,10,20")
    return sorted(set(values))


def _as_labeled(data):
    from ..data import LabeledData, from_arrays, load_dataset

    if isinstance(data, LabeledData):
        labeled = data
    elif isinstance(data, (str, os.PathLike)):
        labeled = load_dataset(data, require_labels=True)
    elif isinstance(data, tuple) and len(data) == 2:
        labeled = from_arrays(*data)
    else:
        raise ConfigError(f"data must be a data path, a LabeledData or an (X, y) pair, got {type(data).__name__}")
    if labeled.labels is None:
        raise DataError(f"{labeled.source} holds no labels; the report needs labeled test data")
    if labeled.skipped:
        labeled = dataclasses.replace(labeled, skipped=[])  # unreadable inputs are left out (load_dataset warned)
    return labeled


# --------------------------------------------------------------------------- the run itself


def summarize_run(clf, folder: Path) -> dict:
    """What was chosen and why, the candidates, the ranking and the timings, from the run folder."""
    summary = dict(clf.fit_summary_)
    plan = getattr(clf, "plan_", None)
    report = {
        "run_dir": str(folder.absolute()),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "headstart_version": __version__,
        "run_headstart_version": getattr(clf, "headstart_version_", None),
        "modality": getattr(clf, "modality_", summary.get("modality")),
        "classes": [str(c) for c in clf.classes_],
        "strategy": summary.get("strategy", clf.strategy),
        "backbone": summary.get("backbone"),
        "val_accuracy": number_or_none(summary.get("val_accuracy")),
        "n_train": summary.get("n_train"), "n_val": summary.get("n_val"), "n_labeled": summary.get("n_labeled"),
        "fit_seconds": number_or_none(summary.get("fit_seconds")),
        # adapt="auto": fit_seconds covers every candidate; this is the kept one's own fit
        "chosen_fit_seconds": number_or_none(summary.get("chosen_fit_seconds")),
        "auto": plan is not None,
        "plan": None, "ranking": [], "test": None, "learning_curve": None, "comparison": None,
    }
    if plan is not None:
        report["plan"], report["ranking"] = summarize_plan(plan)
    return report


# --------------------------------------------------------------------------- test data


def score_chosen_model(clf, data, folder: Path) -> dict:
    """Accuracy (95% Wilson interval), per-class scores and the confusion matrix on all of ``data``."""
    from ..data import check_labels_known
    from ..metrics import classification_scores

    y_true = check_labels_known(data.labels, clf.classes_, data.source, folder)
    started = time.perf_counter()
    predicted = np.array([str(label) for label in clf.predict(data)], dtype=object)
    seconds = time.perf_counter() - started
    return {
        "data": data.source, **classification_scores(y_true, predicted, [str(c) for c in clf.classes_]),
        "predict_seconds": seconds,
        "_predicted": predicted, "_y_true": y_true,  # for the comparison on the scoring half; not saved
    }


# --------------------------------------------------------------------------- page


def _figures(report: dict) -> dict[str, str]:
    from . import plots

    figures = {}
    plan = report.get("plan")
    if plan and plan["candidates"]:
        figures["candidates"] = plots.candidates_plot(plan["candidates"], plan["winner"])
    if report["ranking"]:
        figures["ranking"] = plots.ranking_plot(report["ranking"])
    if report.get("test"):
        matrix = report["test"]["confusion_matrix"]
        figures["confusion"] = plots.confusion_plot(matrix["labels"], matrix["matrix"])
    adaptation = report.get("adaptation")
    if adaptation and adaptation.get("_view"):
        figures["adaptation"] = plots.adaptation_view_plot(adaptation["_view"])
    curve = report.get("learning_curve")
    if curve and any(c["points"] for c in curve["curves"]):
        figures["learning_curve"] = plots.learning_curve_plot(curve["curves"])
    return figures


def render(report: dict) -> str:
    figures = {name: report["figures"].get(name) for name in FIGURES}  # absent figures render as nothing
    return render_template(TEMPLATE, r=report, figures=figures)


def render_template(name: str, **context) -> str:
    """One of the package's report templates, with the number filters both reports use."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("headstart.report", "templates"),
                                     autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = _format_number
    environment.filters["seconds"] = _format_seconds
    return environment.get_template(name).render(**context)


def _format_number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _format_seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# --------------------------------------------------------------------------- files


def _jsonable(value):
    """Plain JSON types; keys starting with ``_`` (working arrays) are dropped, NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

