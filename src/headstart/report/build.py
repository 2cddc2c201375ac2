"""Build the comparative report of a run folder: the chosen model against the no-transfer baseline.

Numbers first (one dict, also written to ``metrics.json`` under ``report``), then the page: a jinja2
template rendered with every figure inlined as a base64 PNG, so the HTML file is self-contained.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from .._version import __version__
from ..atomic import write_text_atomic
from ..errors import ConfigError, DataError, DataPathError, HeadstartError, RunFolderError
from .adaptation import score_source_only, summarize_adaptation

DEFAULT_CURVE_SIZES = (1, 2, 5, 10, 20)
CURVE_DRAWS = 3
CURVE_C = 1.0  # too few examples per class to choose C on validation: one fixed C, the same for both models
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
    stored_metrics = _read_json(metrics_path)
    report = summarize_run(clf, folder)
    report["adaptation"] = summarize_adaptation(clf)
    if data is not None:
        labeled = _as_labeled(data)
        report["test"] = score_chosen_model(clf, labeled, folder)
        if report["adaptation"]:
            report["adaptation"]["test"] = score_source_only(folder, labeled, report["test"])
        report["learning_curve"] = learning_curve(clf, labeled, sizes, random_state)
        report["comparison"] = _comparison(report)
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
        "val_accuracy": _number(summary.get("val_accuracy")),
        "n_train": summary.get("n_train"), "n_val": summary.get("n_val"), "n_labeled": summary.get("n_labeled"),
        "fit_seconds": _number(summary.get("fit_seconds")),
        # adapt="auto": fit_seconds covers every candidate; this is the kept one's own fit
        "chosen_fit_seconds": _number(summary.get("chosen_fit_seconds")),
        "auto": plan is not None,
        "plan": None, "ranking": [], "test": None, "learning_curve": None, "comparison": None,
    }
    if plan is not None:
        candidates = [{
            "name": c["name"], "kind": c["kind"], "strategy": c["strategy"], "backbone": c.get("backbone"),
            "scores": list(c.get("scores") or []), "mean": _number(c.get("mean")), "std": _number(c.get("std")),
            "seconds": _number(c.get("seconds")), "status": c.get("status"), "reason": c.get("reason", ""),
            "chosen": c["name"] == plan.get("winner"), "default": bool(c.get("default")),
        } for c in plan.get("candidates", [])]
        winner = next((c for c in candidates if c["chosen"]), None)
        defaults = [c["name"] for c in candidates if c["default"]]
        # the default that counted: plans saved before there could be two name none, and had one
        default = plan.get("default") or next(iter(defaults), None)
        report["plan"] = {
            "winner": plan.get("winner"), "winner_kind": winner["kind"] if winner else None,
            "default": default,  # the ladder's default rung, kept unless held-out data clearly disagree (auto.py)
            "defaults": defaults,
            "baseline": plan.get("baseline"), "negative_transfer": bool(plan.get("negative_transfer")),
            "verdict": plan.get("verdict", ""), "plain_verdict": plain_verdict(plan, candidates),
            "headline": verdict_headline(plan),
            "candidates": candidates, "splits": plan.get("splits"), "split_kind": plan.get("split_kind"),
            "split_sizes": plan.get("split_sizes"), "budget_seconds": _number(plan.get("budget_seconds")),
            "held_out_predictions": plan.get("held_out_predictions"),  # absent from plans saved before the 3 folds
            "spent_seconds": _number(plan.get("spent_seconds")), "kept_backbones": plan.get("kept_backbones", []),
            "freeze_suggestions": plan.get("freeze_suggestions", {}),
            "winner_refit": plan.get("winner_refit", True),  # plans saved before it existed always refit
        }
        report["ranking"] = [{"backbone": r["backbone"], "layer": r["layer"], "layer_index": r["layer_index"],
                              "score_name": r.get("score_name", "logme"), "score": _number(r["score"])}
                             for r in plan.get("ranking", [])]
    return report


def verdict_headline(plan: dict) -> tuple[str, str]:
    """``(css class, bold words)`` that open the verdict: negative, a tie, positive, or no baseline."""
    if plan.get("negative_transfer"):
        return "negative", "Negative transfer."
    if not plan.get("baseline"):
        return "neutral", "No baseline."
    if str(plan.get("verdict", "")).startswith("no difference shown"):
        return "neutral", "No difference shown."
    return "positive", "Transfer helped."


def plain_verdict(plan: dict, candidates: list[dict]) -> str:
    """The negative-transfer verdict in plain sentences, after the bold words of :func:`verdict_headline`."""
    baseline = next((c for c in candidates if c["kind"] == "baseline" and c["status"] == "scored"), None)
    transfer = [c for c in candidates if c["kind"] == "transfer" and c["status"] == "scored"]
    best = max(transfer, key=lambda c: c["mean"]) if transfer else None
    if baseline is None:
        return ("There is no no-transfer baseline for this kind of data, so the run could not check whether "
                "transfer helped.")
    if plan.get("negative_transfer"):
        if best is None:
            return (f"No transfer candidate could be scored, so the simple model trained from scratch "
                    f"({baseline['strategy']}) was kept.")
        return (f"A simple model trained from scratch on the raw inputs "
                f"({baseline['strategy']}, {baseline['mean']:.3f}) did as well as or better than the best pretrained "
                f"model ({best['name']}, {best['mean']:.3f}), so the simple model was kept.")
    winner = next((c for c in transfer if c["name"] == plan.get("winner")), best)
    option = ("the better on the held-out examples of the two options that did best in our benchmarks at this data "
              "size" if len(plan.get("defaults") or []) > 1 else "the option that did best in our benchmarks at this "
              "data size")
    kept = ("" if winner is best else
            f" The planner kept {winner['name']} ({winner['mean']:.3f}): {option}, which the held-out examples did not "
            f"show to be worse.")
    if best["mean"] == baseline["mean"]:
        return (f"The best pretrained model ({best['name']}) and a simple model trained from "
                f"scratch ({baseline['strategy']}) scored the same held-out accuracy ({best['mean']:.3f}); with this "
                f"few examples that says nothing either way.{kept}")
    gain = 100 * (best["mean"] - baseline["mean"])
    return (f"The best pretrained model ({best['name']}, {best['mean']:.3f}) beat a simple model "
            f"trained from scratch ({baseline['strategy']}, {baseline['mean']:.3f}) by {gain:.1f} percentage points "
            f"of held-out accuracy.{kept}")


# --------------------------------------------------------------------------- test data


def score_chosen_model(clf, data, folder: Path) -> dict:
    """Accuracy (95% Wilson interval), per-class scores and the confusion matrix on all of ``data``."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    from ..intervals import accuracy_interval, format_accuracy

    from ..data import check_labels_known

    y_true = check_labels_known(data.labels, clf.classes_, data.source, folder)
    known = [str(c) for c in clf.classes_]
    started = time.perf_counter()
    predicted = np.array([str(label) for label in clf.predict(data)], dtype=object)
    seconds = time.perf_counter() - started
    accuracy, low, high = accuracy_interval(y_true, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, predicted, labels=known, zero_division=0)
    return {
        "data": data.source, "n_examples": int(len(y_true)),
        "accuracy": accuracy, "low": low, "high": high, "text": format_accuracy(accuracy, low, high),
        "macro_f1": float(f1_score(y_true, predicted, average="macro", zero_division=0)),
        "per_class": [{"label": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(known, precision, recall, f1, support)],
        "confusion_matrix": {"labels": known, "rows": "true class", "columns": "predicted class",
                             "matrix": confusion_matrix(y_true, predicted, labels=known).tolist()},
        "predict_seconds": seconds,
        "_predicted": predicted, "_y_true": y_true,  # for the comparison on the scoring half; not saved
    }


def learning_curve(clf, data, sizes: list[int], random_state: int = 0) -> dict:
    """Test accuracy against labeled examples per class, transfer (linear probe) vs the baseline.

    ``data`` is split 50/50 (stratified): subsets of the first half train, the second half scores.
    Each size is drawn :data:`CURVE_DRAWS` times. Both models also get the whole training half, with
    C chosen on an inner validation split, for the test-accuracy comparison.
    """
    from sklearn.model_selection import train_test_split

    from ..baselines import baseline_for

    labels = np.array([str(label) for label in data.labels], dtype=object)
    classes, encoded = np.unique(labels, return_inverse=True)
    counts = np.bincount(encoded)
    if len(classes) < 2 or counts.min() < 2:
        raise DataError(f"the learning curve splits {data.source} in two halves (stratified), so it needs at least 2 "
                        f"classes with at least 2 examples each; got "
                        f"{dict(zip(classes.tolist(), counts.tolist()))}")
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=0.5, stratify=encoded, random_state=random_state)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    smallest = int(np.bincount(encoded[train_idx], minlength=len(classes)).min())
    used = [s for s in sizes if s <= smallest]
    skipped = [{"per_class": s, "reason": f"larger than the smallest class of the training half ({smallest})"}
               for s in sizes if s > smallest]
    notes = ([f"at {smallest} per class every draw holds the whole training half of the smallest class, so the "
              f"draws differ only in the other classes (or not at all)"] if smallest in used else [])
    result = {
        "split": {"data": data.source, "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
                  "stratified": True, "test_size": 0.5, "random_state": random_state,
                  "smallest_class_in_train": smallest},
        "sizes_requested": list(sizes), "sizes_used": used, "sizes_skipped": skipped,
        "draws": CURVE_DRAWS, "C": CURVE_C, "curves": [], "full_half": {}, "notes": notes,
        "_test_idx": test_idx,
    }
    draws = _draws(encoded[train_idx], used, random_state)
    items = list(data.inputs)
    train_items, y_train = [items[i] for i in train_idx], encoded[train_idx]
    test_items, y_test = [items[i] for i in test_idx], encoded[test_idx]
    n_classes = len(classes)

    backbone, label, why = transfer_backbone(clf)
    if backbone is not None:
        try:
            started = time.perf_counter()
            features = _transfer_features(clf, backbone, items)
            f_train, f_test = features[train_idx], features[test_idx]
            curve = _curve(f"linear_probe@{backbone}" if backbone != "precomputed" else "linear_probe", "transfer",
                           label, why, draws, lambda sub: _probe_accuracy(f_train[sub], y_train[sub], f_test, y_test,
                                                                          n_classes))
            curve["feature_seconds"] = time.perf_counter() - started
            result["curves"].append(curve)
            result["full_half"]["transfer"] = _full_probe(f_train, y_train, f_test, y_test, n_classes, curve["name"],
                                                          random_state)
        except HeadstartError as error:  # e.g. weights no longer installed: report it, keep the rest of the page
            result["notes"].append(f"no transfer curve: {error}")
    else:
        result["notes"].append(f"no transfer curve: {why}")

    baseline_cls = baseline_for(data.modality)
    if baseline_cls is not None:
        name = f"baseline:{baseline_cls.name}"
        curve = _curve(name, "baseline", f"no-transfer baseline ({baseline_cls.name})",
                       "a logistic regression on the raw inputs, no pretrained model", draws,
                       lambda sub: _baseline_accuracy(baseline_cls, [train_items[i] for i in sub], y_train[sub],
                                                      test_items, y_test, n_classes))
        result["curves"].append(curve)
        result["full_half"]["baseline"] = _full_baseline(baseline_cls, train_items, y_train, test_items, y_test,
                                                         n_classes, name, random_state)
    else:
        result["notes"].append(f"no baseline curve: headstart has no no-transfer baseline for {data.modality} inputs")
    return result


def transfer_backbone(clf) -> tuple[str | None, str, str]:
    """``(backbone, curve label, why)`` of the transfer side of the learning curve."""
    plan = getattr(clf, "plan_", None)
    summary = clf.fit_summary_
    if plan is not None:
        winner = next((c for c in plan.get("candidates", []) if c["name"] == plan.get("winner")), None)
        if winner and winner["kind"] == "transfer":
            what = "the winning strategy" if winner["strategy"] == "linear_probe" else (
                f"the winner's backbone (the winner, {winner['strategy']}, is too slow to refit 3 times per size)")
            return winner["backbone"], f"linear probe on {winner['backbone']}", what
        kept = plan.get("kept_backbones") or [r["backbone"] for r in plan.get("ranking", [])][:1]
        if kept:
            return kept[0], f"linear probe on {kept[0]}", "the best-ranked backbone (the baseline won the run)"
        return None, "", "the run scored no pretrained backbone"
    backbone = summary.get("backbone")
    if getattr(clf, "modality_", None) == "features" or backbone == "precomputed":
        return "precomputed", "linear probe on the precomputed features", "the run's features"
    if not backbone:
        return None, "", "the run records no backbone"
    what = "the run's strategy" if summary.get("strategy") == "linear_probe" else (
        f"the run's backbone ({summary.get('strategy')} is too slow to refit 3 times per size)")
    return backbone, f"linear probe on {backbone}", what


def _transfer_features(clf, backbone_name: str, items: list) -> np.ndarray:
    if backbone_name == "precomputed":
        return np.stack([np.asarray(item, dtype=np.float32) for item in items])
    from ..backbones import create_backbone
    from ..cache import FeatureCache

    backbone = create_backbone(backbone_name, image_size=clf.image_size, max_length=clf.max_length)
    backbone.freeze(len(backbone.layer_groups()))  # as the linear probe does, so its cached features are reused
    # cache_dir=None is documented as "$HEADSTART_CACHE or ~/.cache/headstart", so it means the disk cache here
    cache = FeatureCache("default") if clf.cache_dir is None else clf._cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cache.features(backbone, items, batch_size=max(64, clf.batch_size or 0))[backbone.layer_names[-1]]


def _draws(y_train: np.ndarray, sizes: list[int], random_state: int) -> dict[int, list[np.ndarray]]:
    """For each size, CURVE_DRAWS random index sets holding ``size`` examples of every class."""
    by_class = [np.flatnonzero(y_train == k) for k in np.unique(y_train)]
    draws = {}
    for size in sizes:
        draws[size] = []
        for draw in range(CURVE_DRAWS):
            rng = np.random.default_rng([random_state, size, draw])
            draws[size].append(np.sort(np.concatenate([rng.choice(members, size, replace=False)
                                                       for members in by_class])))
    return draws


def _curve(name, kind, label, why, draws, score) -> dict:
    points = []
    for size, subsets in draws.items():
        started = time.perf_counter()
        scores = [float(score(subset)) for subset in subsets]
        points.append({"per_class": size, "n_train": int(len(subsets[0])), "scores": scores,
                       "mean": statistics.fmean(scores), "std": statistics.pstdev(scores),
                       "seconds": time.perf_counter() - started})
    return {"name": name, "kind": kind, "label": label, "why": why, "points": points}


def _probe_accuracy(f_train, y_train, f_test, y_test, n_classes, C=CURVE_C) -> float:
    from ..strategies.linear_probe import fit_logistic_head

    weight, bias = fit_logistic_head(f_train, y_train, n_classes, C)
    return float(((f_test @ weight.T + bias).argmax(1) == y_test).mean())


def _baseline_accuracy(baseline_cls, train_items, y_train, test_items, y_test, n_classes, C=CURVE_C) -> float:
    from ..strategies.linear_probe import fit_logistic_head

    model = baseline_cls()
    features = model.fit_transform(train_items)
    model.weight, model.bias = fit_logistic_head(features, y_train, n_classes, C)
    return float((model.predict_logits(test_items).argmax(1) == y_test).mean())


def _inner_split(y, random_state):
    from ..data import stratified_split

    try:
        return stratified_split(y, 0.2, random_state)
    except HeadstartError:
        return None  # too few examples for an inner split: the fixed C is used


def _interval(y_true, predicted, name, n_train, how) -> dict:
    from ..intervals import accuracy_interval, format_accuracy

    accuracy, low, high = accuracy_interval(y_true, predicted)
    return {"name": name, "n_train": int(n_train), "accuracy": accuracy, "low": low, "high": high,
            "text": format_accuracy(accuracy, low, high), "C_chosen": how, "_predicted": predicted}


def _full_probe(f_train, y_train, f_test, y_test, n_classes, name, random_state) -> dict:
    from ..strategies.linear_probe import choose_C, fit_logistic_head

    split = _inner_split(y_train, random_state)
    if split is None:
        C, start, how = CURVE_C, None, f"fixed C={CURVE_C:g}"
    else:
        inner_train, inner_val = split
        C, _, start = choose_C(f_train[inner_train], y_train[inner_train], f_train[inner_val], y_train[inner_val])
        how = f"C={C:g} chosen on an inner 80/20 split"
    weight, bias = fit_logistic_head(f_train, y_train, n_classes, C, start=start)
    return _interval(y_test, (f_test @ weight.T + bias).argmax(1), name, len(y_train), how)


def _full_baseline(baseline_cls, train_items, y_train, test_items, y_test, n_classes, name, random_state) -> dict:
    split = _inner_split(y_train, random_state)
    if split is None:
        model = baseline_cls()
        from ..strategies.linear_probe import fit_logistic_head

        model.weight, model.bias = fit_logistic_head(model.fit_transform(train_items), y_train, n_classes, CURVE_C)
        how = f"fixed C={CURVE_C:g}"
    else:
        inner_train, inner_val = split
        model = baseline_cls()
        record = model.fit([train_items[i] for i in inner_train], y_train[inner_train],
                           [train_items[i] for i in inner_val], y_train[inner_val], n_classes)
        how = f"C={record['C']:g} chosen on an inner 80/20 split"
    return _interval(y_test, model.predict_logits(test_items).argmax(1), name, len(y_train), how)


def _comparison(report: dict) -> dict:
    """Every test accuracy side by side, and the chosen model vs the baseline on the same examples."""
    from ..intervals import accuracy_interval, format_accuracy, paired_bootstrap_difference

    test, curve = report["test"], report["learning_curve"]
    rows = [{"model": f"chosen: {_chosen_name(report)}", "kind": "chosen",
             "trained_on": f"the run's training data ({report.get('n_labeled')} examples)",
             "scored_on": f"all of the test data ({test['n_examples']})", "n_scored": test["n_examples"],
             "accuracy": test["accuracy"], "low": test["low"], "high": test["high"], "text": test["text"]}]
    difference = None
    half = curve["_test_idx"]
    y_half, chosen_half = test["_y_true"][half], test["_predicted"][half]
    data_classes = np.unique(test["_y_true"])  # the curve encodes DATA's own classes in this (sorted) order
    accuracy, low, high = accuracy_interval(y_half, chosen_half)
    rows.append({"model": f"chosen: {_chosen_name(report)}", "kind": "chosen",
                 "trained_on": f"the run's training data ({report.get('n_labeled')} examples)",
                 "scored_on": f"the scoring half ({len(half)})", "n_scored": int(len(half)),
                 "accuracy": accuracy, "low": low, "high": high, "text": format_accuracy(accuracy, low, high)})
    for kind in ("transfer", "baseline"):
        entry = curve["full_half"].get(kind)
        if entry is None:
            continue
        rows.append({"model": entry["name"] + (" (refit for this report)" if kind == "baseline" else
                                               " (linear probe, refit for this report)"), "kind": kind,
                     "trained_on": f"the training half ({entry['n_train']}; {entry['C_chosen']})",
                     "scored_on": f"the scoring half ({len(half)})", "n_scored": int(len(half)),
                     "accuracy": entry["accuracy"], "low": entry["low"], "high": entry["high"],
                     "text": entry["text"]})
    baseline = curve["full_half"].get("baseline")
    if baseline is not None:
        baseline_labels = data_classes[baseline["_predicted"]]
        diff, low, high = paired_bootstrap_difference(y_half, chosen_half, baseline_labels)
        difference = {"chosen_minus_baseline": diff, "low": low, "high": high, "n": int(len(half)),
                      "text": f"{100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]",
                      "meaning": ("the data cannot tell them apart" if low <= 0 <= high else
                                  "the chosen model is better" if low > 0 else "the baseline is better")}
    return {"rows": rows, "difference": difference}


def _chosen_name(report: dict) -> str:
    if report.get("plan"):
        return report["plan"]["winner"]
    return f"{report['strategy']}@{report['backbone']}"


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
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("headstart.report", "templates"),
                                     autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    environment.filters["num"] = _format_number
    environment.filters["seconds"] = _format_seconds
    figures = {name: report["figures"].get(name) for name in FIGURES}  # absent figures render as nothing
    return environment.get_template(TEMPLATE).render(r=report, figures=figures)


def _format_number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _format_seconds(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# --------------------------------------------------------------------------- files


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is not valid JSON ({error}); re-save the run before reporting on it") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} must hold a JSON object, found {type(value).__name__}")
    return value


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


def _number(value):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
