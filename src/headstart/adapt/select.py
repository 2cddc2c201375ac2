"""``adapt="auto"``: choose the adaptation method and its weight without target labels, and never
lose to source-only.

Every candidate (source-only, then each method at each trade-off weight of :data:`WEIGHTS`, or at
the user's ``adapt_weight``) is trained on the same labeled source data and the same unlabeled
target inputs. Its softmax outputs on the target inputs are scored by the information-maximization
validator (:func:`~headstart.adapt.validators.information_maximization`: confident and diverse
target predictions score high), and the best candidate is kept. When the user supplies labels for
some target inputs (``y_target``, ``None`` where unknown), accuracy on those decides instead.
Source-only is always among the candidates, so adapting is never chosen blindly. A candidate whose
training diverges is recorded as failed, with the reason, and left out.

Candidates run source-only first, then every method at one weight before any method at the next
(:data:`WEIGHTS`, in that order), so that a time budget (``budget``) that stops the search early has
tried each method once. A candidate the remaining budget cannot pay for, estimated from the fits
already run, is recorded as skipped with that reason; source-only always runs.

When the caller passes the source split (:class:`SourceValidation`), every candidate also gets
DEV (:func:`~headstart.adapt.validators.dev_risk`), the importance-weighted risk on the source
validation rows, and DEV guards the choice: the candidate IM prefers is kept only if its DEV risk
is no higher than source-only's. IM rewards confident target predictions, and every adaptation
method makes them more confident, so IM alone never chooses source-only. DEV's density ratios come
from one domain classifier on the source-only model's features, so every candidate is weighted the
same way. DEV is an importance-sampling estimate, and it is only as good as the number of source
rows its weights rest on: when that effective sample size (``(sum w)^2 / sum w^2``) is under
:data:`DEV_MIN_EFFECTIVE_SHARE` of the rows, source and target are nearly separable, DEV says
nothing about the target, and the record and the log say that IM decided alone. SND
(:func:`~headstart.adapt.validators.snd`) and the source validation accuracy are recorded too, to
judge the validators on benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import TrainingDivergedError
from ..intervals import accuracy_text
from .validators import dev_risk, effective_sample_size, importance_weights, information_maximization, snd

CANDIDATES = ("source_only", "coral", "mmd", "dann", "mcc", "self_training")
# Trade-off weights tried per method (each method's own default is 1.0), in the order tried: every
# method at 0.3 first, the weight of the fine-tuning benchmark rows (movie→tweets 0.778 chosen against
# source-only's 0.670), then at 1.0 and 0.1. Lower weights sit between source-only and the full
# alignment, where VADER movie→amazon/nyt pointed: every method at 1.0 was below source-only there on
# frozen features (docs/benchmarks.md).
WEIGHTS = (0.3, 1.0, 0.1)
# DEV's guard acts only when its importance weights rest on at least this share of the source validation
# rows (Kish's effective sample size). On the adaptation benchmark's four pairs the domain classifier
# separated source from target so well that 1 to 16 rows of 400 carried the estimate, and the guard then
# kept source-only on MNIST→digits where every adapted candidate was better (docs/benchmarks.md).
DEV_MIN_EFFECTIVE_SHARE = 0.1


@dataclass
class SourceValidation:
    """The labeled source rows a candidate did not train on, for DEV.

    ``features(estimator, items)`` returns what the estimator's head reads, ``(n, d)``.
    """

    train_items: Sequence
    val_items: Sequence
    val_labels: np.ndarray
    features: Callable[[object, Sequence], np.ndarray]


def candidate_name(method: str | None, weight: float | None) -> str:
    """``source_only``, ``mcc`` (the method's default weight) or ``mcc@0.3``."""
    if method is None:
        return "source_only"
    return method if weight is None else f"{method}@{weight:g}"


def labeled_target(y_target, n_target: int) -> np.ndarray | None:
    """Indices of the target inputs that carry a label (``None``, NaN or "" mean unknown)."""
    if y_target is None:
        return None
    from ..errors import DataError

    labels = list(y_target)
    if len(labels) != n_target:
        raise DataError(f"y_target has {len(labels)} entries but X_target has {n_target}; give one label per target "
                        f"input, None where it is unknown")
    known = [i for i, label in enumerate(labels) if not (label is None or label == "" or label != label)]
    return np.asarray(known, dtype=int) if known else None


def select_adaptation(fit_candidate: Callable[[str | None, float | None], object], target_items, y_target=None,
                      candidates=CANDIDATES, weights: Sequence[float | None] = WEIGHTS,
                      source_validation: SourceValidation | None = None, log=lambda message: None,
                      budget_seconds: float | None = None, fit_all: Callable | None = None):
    """Fit every candidate with ``fit_candidate(method or None, weight)``; return ``(best estimator, record)``.

    ``weights``: the trade-off weights tried for each method (``(None,)``: each method's default), in
    order. ``budget_seconds``: stop trying candidates whose expected cost no longer fits (None: try all).
    ``fit_all(plan, budget_seconds)``: fits every ``(method, weight)`` of the plan at once (on Ray:
    :func:`headstart.planner.parallel.map_in_order`) and yields, in plan order, ``(outcome, fit seconds)``:
    the fitted estimator, the :class:`TrainingDivergedError` its fit raised, or why it was not fitted
    (the budget ran out first); candidates are then scored and chosen exactly as when fitted one by one.
    """
    known = labeled_target(y_target, len(target_items))
    plan = [(None, None)] + [(m, w) for w in weights for m in candidates if m != "source_only"]
    rows, best, best_key, dev_weights = [], None, None, None
    fits = (zip(plan, fit_all(plan, budget_seconds)) if fit_all is not None
            else _fits_one_by_one(plan, fit_candidate, rows, budget_seconds))
    for (method, weight), (estimator, fit_seconds) in fits:
        name = candidate_name(method, weight)
        row = {"candidate": name, "method": method or "source_only", "weight": weight}
        if isinstance(estimator, str):  # why it was not fitted
            rows.append({**row, "status": "skipped", "seconds": fit_seconds, "reason": estimator})
            continue
        if isinstance(estimator, TrainingDivergedError):
            if method is None:
                raise estimator
            rows.append({**row, "status": "failed", "reason": str(estimator), "seconds": fit_seconds})
            log(f"adapt=auto: {name} failed and is left out: {estimator}")
            continue
        scoring_started = time.perf_counter()
        if method is None and source_validation is not None:
            dev_weights = _dev_weights(estimator, target_items, source_validation)
        _score(row, estimator, target_items, y_target, known, source_validation, dev_weights)
        row["seconds"] = fit_seconds + time.perf_counter() - scoring_started
        rows.append(row)
        log(f"adapt=auto: {name} " + (f"target accuracy {accuracy_text(row['target_accuracy'], len(known))}, "
                                      if known is not None else "")
            + f"information maximization {row['im']:.3f}" + (f", DEV {row['dev']:.3f}" if "dev" in row else ""))
        if method is None:
            source_only, source_row = estimator, row
        key = row.get("target_accuracy", row["im"]), row["im"]
        if best_key is None or key > best_key:
            best, best_key, chosen = estimator, key, row
    skipped = [row["candidate"] for row in rows if row["status"] == "skipped"]
    if skipped:
        log(f"adapt=auto: the {budget_seconds:.0f} s budget left {len(skipped)} of {len(plan)} candidates untried "
            f"({', '.join(skipped)}); a larger budget tries them")
    gate = _dev_gate(chosen, source_row, dev_weights, log) if known is None else None
    if gate and not gate["kept"]:
        best, chosen = source_only, source_row
    dev_effective = None if dev_weights is None else round(effective_sample_size(dev_weights), 1)
    record = {"validator": "target accuracy on the labeled target inputs" if known is not None
              else "information maximization on the unlabeled target inputs"
              + (", if its DEV risk is no higher than source-only's" if gate and gate["trusted"] else ""),
              "n_target_labeled": 0 if known is None else int(len(known)),
              "candidates": rows, "chosen": chosen["candidate"], "chosen_method": chosen["method"],
              "chosen_weight": chosen["weight"], "dev_gate": gate, "dev_effective_rows": dev_effective,
              "dev_rows": None if dev_weights is None else len(dev_weights)}
    return best, record


def _fits_one_by_one(plan, fit_candidate, rows: list[dict], budget_seconds: float | None):
    """``((method, weight), (outcome, seconds))`` per candidate, fitted when asked for: the fitted estimator,
    the :class:`TrainingDivergedError` its fit raised, or the reason it was skipped (the budget left, read
    off ``rows`` as the caller fills them, cannot pay for it)."""
    search_started = time.perf_counter()
    for method, weight in plan:
        started = time.perf_counter()
        expected = _expected_seconds(method, rows)
        left = None if budget_seconds is None else budget_seconds - (started - search_started)
        if method is not None and left is not None and expected > left:
            yield (method, weight), (f"skipped: about {expected:.0f} s needed, {max(0.0, left):.0f} s of the "
                                     f"{budget_seconds:.0f} s budget left", 0.0)
            continue
        try:
            outcome = fit_candidate(method, weight)
        except TrainingDivergedError as error:
            outcome = error
        yield (method, weight), (outcome, time.perf_counter() - started)


def _score(row: dict, estimator, target_items, y_target, known, source_validation, dev_weights) -> None:
    """Fill ``row`` with the candidate's validator scores on the target inputs (and DEV, labeled accuracy)."""
    probabilities = estimator.predict_proba(target_items)
    row.update(status="scored", im=information_maximization(probabilities), snd=snd(probabilities),
               source_val_accuracy=(getattr(estimator, "fit_summary_", {}) or {}).get("val_accuracy"))
    if dev_weights is not None:
        row["dev"] = _dev(estimator, source_validation, dev_weights)
    if known is not None:
        predictions = estimator.classes_[probabilities[known].argmax(1)]
        row["target_accuracy"] = float((predictions == np.asarray(y_target, dtype=object)[known]).mean())


def _dev_gate(chosen: dict, source_row: dict, dev_weights, log) -> dict | None:
    """Whether IM's choice stands against source-only under DEV (None when DEV was not computed or
    source-only won anyway); ``kept`` is False when source-only must be kept instead."""
    if "dev" not in chosen or chosen is source_row:
        return None
    effective = effective_sample_size(dev_weights)
    trusted = effective >= DEV_MIN_EFFECTIVE_SHARE * len(dev_weights)
    gate = {"im_choice": chosen["candidate"], "dev": chosen["dev"], "source_only_dev": source_row["dev"],
            "effective_rows": round(effective, 1), "rows": len(dev_weights), "trusted": trusted,
            "kept": not trusted or chosen["dev"] <= source_row["dev"]}
    if not trusted:
        log(f"adapt=auto: DEV is not used to guard {chosen['candidate']}: its importance weights rest on "
            f"{effective:.1f} of {len(dev_weights)} source validation rows (effective sample size; at least "
            f"{DEV_MIN_EFFECTIVE_SHARE:.0%} needed), because source and target are nearly separable; "
            f"information maximization alone decided")
    elif not gate["kept"]:
        log(f"adapt=auto: {chosen['candidate']} has the best information maximization, but its DEV risk "
            f"{chosen['dev']:.3f} is above source-only's {source_row['dev']:.3f}; keeping source-only")
    return gate


def _expected_seconds(method: str | None, rows: list[dict]) -> float:
    """A candidate's expected fit time: the slowest earlier fit of the same method, else the mean of the
    adapted fits so far, else source-only's (adapting adds a loss term, so that is a lower bound)."""
    ran = [row for row in rows if row["status"] != "skipped"]
    same = [row["seconds"] for row in ran if row["method"] == method]
    adapted = [row["seconds"] for row in ran if row["method"] != "source_only"]
    if same:
        return max(same)
    if adapted:
        return float(np.mean(adapted))
    return ran[0]["seconds"] if ran else 0.0


def _dev_weights(source_only, target_items, split: SourceValidation) -> np.ndarray:
    """Density ratios of the source validation rows, in the source-only model's feature space."""
    features = lambda items: split.features(source_only, list(items))
    return importance_weights(features(split.val_items), features(target_items),
                              source_train_features=features(split.train_items))


def _dev(estimator, split: SourceValidation, weights: np.ndarray) -> float:
    probabilities = estimator.predict_proba(list(split.val_items))
    column = {label: i for i, label in enumerate(estimator.classes_)}
    picked = probabilities[np.arange(len(split.val_labels)), [column[label] for label in split.val_labels]]
    return dev_risk(weights, -np.log(np.clip(picked, 1e-12, 1.0)))
