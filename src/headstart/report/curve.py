"""The report's learning curve: test accuracy against labeled examples per class, a linear probe on
the run's backbone against the no-transfer baseline, both refit for the report.

The labeled test data is split 50/50 (stratified): subsets of the first half train, the second half
scores. Each size is drawn :data:`CURVE_DRAWS` times with one fixed C (:data:`CURVE_C`). Both models
also get the whole training half, with C chosen by stratified cross-validation on it: trained on the
same rows and scored on the same rows, they give the report's like-for-like difference
(:func:`comparison`), beside the chosen model's own test accuracy.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..data import set_window
from ..errors import DataError, HeadstartError
from ..heads import fit_head, fit_logistic_head

CURVE_DRAWS = 3
CURVE_C = 1.0  # too few examples per class to choose C on validation: one fixed C, the same for both models


@dataclass(frozen=True)
class _Halves:
    """The two halves of the test data, labels encoded ``0..n_classes-1`` in sorted class order."""

    train_idx: np.ndarray
    test_idx: np.ndarray
    train_items: list
    test_items: list
    y_train: np.ndarray
    y_test: np.ndarray
    n_classes: int


def _split_halves(data, random_state: int) -> _Halves:
    from sklearn.model_selection import train_test_split

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
    items = list(data.inputs)
    return _Halves(train_idx, test_idx, [items[i] for i in train_idx], [items[i] for i in test_idx],
                   encoded[train_idx], encoded[test_idx], len(classes))


def learning_curve(clf, data, sizes: list[int], random_state: int = 0) -> dict:
    """Test accuracy against labeled examples per class, transfer (linear probe) vs the baseline (see the module)."""
    halves = _split_halves(data, random_state)
    smallest = int(np.bincount(halves.y_train, minlength=halves.n_classes).min())
    used = [s for s in sizes if s <= smallest]
    skipped = [{"per_class": s, "reason": f"larger than the smallest class of the training half ({smallest})"}
               for s in sizes if s > smallest]
    notes = ([f"at {smallest} per class every draw holds the whole training half of the smallest class, so the "
              f"draws differ only in the other classes (or not at all)"] if smallest in used else [])
    result = {
        "split": {"data": data.source, "n_train": int(len(halves.train_idx)), "n_test": int(len(halves.test_idx)),
                  "stratified": True, "test_size": 0.5, "random_state": random_state,
                  "smallest_class_in_train": smallest},
        "sizes_requested": list(sizes), "sizes_used": used, "sizes_skipped": skipped,
        "draws": CURVE_DRAWS, "C": CURVE_C, "curves": [], "full_half": {}, "notes": notes,
        "_test_idx": halves.test_idx,
    }
    draws = _draws(halves.y_train, used, random_state)
    _add_transfer_curve(result, clf, list(data.inputs), halves, draws, random_state)
    _add_baseline_curve(result, data.modality, halves, draws, random_state, getattr(clf, "window", None))
    return result


def _add_transfer_curve(result: dict, clf, items: list, halves: _Halves, draws: dict, random_state: int) -> None:
    """The linear probe's curve and full-half fit, or a note saying why there is none."""
    backbone, label, why = transfer_backbone(clf)
    if backbone is None:
        result["notes"].append(f"no transfer curve: {why}")
        return
    y_train, y_test = halves.y_train, halves.y_test
    try:
        started = time.perf_counter()
        features = _transfer_features(clf, backbone, items)
        f_train, f_test = features[halves.train_idx], features[halves.test_idx]
        curve = _curve(f"linear_probe@{backbone}" if backbone != "precomputed" else "linear_probe", "transfer",
                       label, why, draws, lambda sub: _probe_accuracy(f_train[sub], y_train[sub], f_test, y_test,
                                                                      halves.n_classes))
        curve["feature_seconds"] = time.perf_counter() - started
        result["curves"].append(curve)
        result["full_half"]["transfer"] = _full_probe(f_train, f_test, halves, curve["name"], random_state)
    except HeadstartError as error:  # e.g. weights no longer installed: report it, keep the rest of the page
        result["notes"].append(f"no transfer curve: {error}")


def _add_baseline_curve(result: dict, modality: str, halves: _Halves, draws: dict, random_state: int,
                        window=None) -> None:
    """The no-transfer baseline's curve and full-half fit, or a note when the modality has no baseline."""
    from ..baselines import baseline_for

    baseline_cls = baseline_for(modality)
    if baseline_cls is None:
        result["notes"].append(f"no baseline curve: headstart has no no-transfer baseline for {modality} inputs")
        return
    name = f"baseline:{baseline_cls.name}"
    curve = _curve(name, "baseline", f"no-transfer baseline ({baseline_cls.name})",
                   "a logistic regression on the raw inputs, no pretrained model", draws,
                   lambda sub: _baseline_accuracy(baseline_cls, [halves.train_items[i] for i in sub],
                                                  halves.y_train[sub], halves.test_items, halves.y_test,
                                                  halves.n_classes, window=window))
    result["curves"].append(curve)
    result["full_half"]["baseline"] = _full_baseline(baseline_cls, halves, name, random_state, window)


def transfer_backbone(clf) -> tuple[str | None, str, str]:
    """``(backbone, curve label, why)`` of the transfer side of the learning curve."""
    plan = getattr(clf, "plan_", None)
    summary = clf.fit_summary_
    if plan is not None:
        candidates = plan.get("candidates", [])
        winner = next((c for c in candidates if c["name"] == plan.get("winner")), None)
        if winner and winner["kind"] == "average":  # its transfer member's backbone
            members = winner["options"]["members"]
            winner = next((c for c in candidates if c["name"] in members and c["kind"] == "transfer"), None)
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
    from ..cache import open_cache

    backbone = create_backbone(backbone_name, image_size=clf.image_size, max_length=clf.max_length)
    set_window(backbone, clf.window)
    backbone.freeze(len(backbone.layer_groups()))  # as the linear probe does, so its cached features are reused
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return open_cache(clf.cache_dir).features(backbone, items,
                                                  batch_size=max(64, clf.batch_size or 0))[backbone.layer_names[-1]]


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
    weight, bias = fit_logistic_head(f_train, y_train, n_classes, C)
    return float(((f_test @ weight.T + bias).argmax(1) == y_test).mean())


def _baseline_accuracy(baseline_cls, train_items, y_train, test_items, y_test, n_classes, C=CURVE_C, window=None) -> float:
    model = baseline_cls()
    set_window(model, window)
    features = model.fit_transform(train_items)
    model.weight, model.bias = fit_logistic_head(features, y_train, n_classes, C)
    return float((model.predict_logits(test_items).argmax(1) == y_test).mean())


def _interval(y_true, predicted, name, n_train, how) -> dict:
    from ..intervals import accuracy_interval, format_accuracy

    accuracy, low, high = accuracy_interval(y_true, predicted)
    return {"name": name, "n_train": int(n_train), "accuracy": accuracy, "low": low, "high": high,
            "text": format_accuracy(accuracy, low, high), "C_chosen": how, "_predicted": predicted}


def _full_probe(f_train, f_test, halves: _Halves, name, random_state) -> dict:
    """The linear probe on the whole training half, C cross-validated on it, scored on the other half."""
    head = fit_head(f_train, halves.y_train, halves.n_classes, random_state=random_state)
    return _interval(halves.y_test, (f_test @ head.weight.T + head.bias).argmax(1), name, len(halves.y_train),
                     f"C={head.C:g} ({head.chosen_by})")


def _full_baseline(baseline_cls, halves: _Halves, name, random_state, window=None) -> dict:
    """The baseline on the whole training half, C cross-validated on it, scored on the other half."""
    model = baseline_cls()
    set_window(model, window)
    record = model.fit(halves.train_items, halves.y_train, [], halves.y_train[:0], halves.n_classes,
                       random_state=random_state)
    return _interval(halves.y_test, model.predict_logits(halves.test_items).argmax(1), name, len(halves.y_train),
                     f"C={record['C']:g} ({record['C_chosen_by']})")


def comparison(report: dict) -> dict:
    """Every test accuracy side by side, and one like-for-like difference: two models trained on the same
    rows (the training half) and scored on the same rows (the scoring half).

    The chosen model trained on the run's own data, often many more rows than the training half, so its
    score is shown but never subtracted from a model refit on the half: that difference mixed the
    value of transfer with the value of more data."""
    test, curve = report["test"], report["learning_curve"]
    half = curve["_test_idx"]
    y_half, chosen_half = test["_y_true"][half], test["_predicted"][half]
    chosen, trained_on = f"chosen: {_chosen_name(report)}", f"the run's {report.get('n_labeled')} labeled examples"
    rows = [_row(chosen, "chosen", trained_on, ("all of the test data", test["n_examples"]), test),
            _row(chosen, "chosen", trained_on, ("the scoring half", len(half)), _accuracy(y_half, chosen_half))]
    for kind in ("transfer", "baseline"):
        entry = curve["full_half"].get(kind)
        if entry is not None:
            rows.append(_row(entry["name"] + (" (refit for this report)" if kind == "baseline" else
                                              " (linear probe, refit for this report)"), kind,
                             f"the training half ({entry['n_train']}; {entry['C_chosen']})",
                             ("the scoring half", len(half)), entry))
    return {"rows": rows, "difference": _like_for_like(report, y_half)}


def _accuracy(y_true, predicted) -> dict:
    from ..intervals import accuracy_interval, format_accuracy

    accuracy, low, high = accuracy_interval(y_true, predicted)
    return {"accuracy": accuracy, "low": low, "high": high, "text": format_accuracy(accuracy, low, high)}


def _row(model: str, kind: str, trained_on: str, scored_on: tuple[str, int], score: dict) -> dict:
    where, n_scored = scored_on
    return {"model": model, "kind": kind, "trained_on": trained_on, "scored_on": f"{where} ({n_scored})",
            "n_scored": int(n_scored),
            **{key: score[key] for key in ("accuracy", "low", "high", "text")}}


def _like_for_like(report: dict, y_half: np.ndarray) -> dict | None:
    """The refit transfer model minus the refit baseline, both trained on the training half and scored
    on the scoring half (paired bootstrap); None without both."""
    from ..intervals import paired_bootstrap_difference

    curve = report["learning_curve"]
    transfer, baseline = curve["full_half"].get("transfer"), curve["full_half"].get("baseline")
    if transfer is None or baseline is None:
        return None
    classes = np.unique(report["test"]["_y_true"])  # the curve encodes DATA's own classes in this (sorted) order
    diff, low, high = paired_bootstrap_difference(y_half, classes[transfer["_predicted"]],
                                                  classes[baseline["_predicted"]])
    return {"transfer": transfer["name"], "baseline": baseline["name"], "transfer_is": _transfer_is(report),
            "transfer_minus_baseline": diff, "low": low, "high": high, "n": int(len(y_half)),
            "n_train": transfer["n_train"],
            "text": f"{100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]",
            "meaning": ("the data cannot tell them apart" if low <= 0 <= high else
                        "transfer is better" if low > 0 else "the baseline is better")}


def _transfer_is(report: dict) -> str:
    """What the refit linear probe stands for: the chosen recipe itself, or the chosen model's backbone."""
    plan = report.get("plan")
    kind = plan["winner_kind"] if plan else "transfer"
    strategy = next((c["strategy"] for c in plan["candidates"] if c["chosen"]), None) if plan else report["strategy"]
    if kind == "baseline":
        return "a linear probe on the best-ranked backbone (the chosen model is the baseline itself)"
    if kind == "transfer" and strategy == "linear_probe":
        return "the chosen recipe (a linear probe on the chosen backbone)"
    return (f"a linear probe on the chosen model's backbone (the chosen {strategy if kind == 'transfer' else 'average'} "
            f"is not refit for this report)")


def _chosen_name(report: dict) -> str:
    if report.get("plan"):
        return report["plan"]["winner"]
    return f"{report['strategy']}@{report['backbone']}"
