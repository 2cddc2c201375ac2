"""``adapt="auto"``: choose the adaptation method without target labels, and never lose to source-only.

Every candidate (source-only, then each method) is trained on the same labeled source data and the
same unlabeled target inputs; its softmax outputs on the target inputs are scored by the
information-maximization validator (:func:`~headstart.adapt.validators.information_maximization`:
confident and diverse target predictions score high). When the user supplies labels for some
target inputs (``y_target``, ``None`` where unknown), accuracy on those decides instead. The best
candidate is kept; source-only is always among them, so adapting is never chosen blindly. A method
whose training diverges is recorded as failed, with the reason, and left out. Each
candidate's SND (:func:`~headstart.adapt.validators.snd`) and source validation accuracy are
recorded too, not used to choose.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..errors import TrainingDivergedError
from ..intervals import accuracy_text
from .validators import information_maximization, snd

CANDIDATES = ("source_only", "coral", "mmd", "dann", "mcc", "self_training")


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


def select_adaptation(fit_candidate: Callable[[str | None], object], target_items, y_target=None,
                      candidates=CANDIDATES, log=lambda message: None):
    """Fit every candidate with ``fit_candidate(method or None)``; return ``(best estimator, record)``."""
    known = labeled_target(y_target, len(target_items))
    rows, best, best_key = [], None, None
    for name in candidates:
        started = time.perf_counter()
        try:
            estimator = fit_candidate(None if name == "source_only" else name)
        except TrainingDivergedError as error:
            if name == "source_only":
                raise
            rows.append({"method": name, "status": "failed", "reason": str(error),
                         "seconds": time.perf_counter() - started})
            log(f"adapt=auto: {name} failed and is left out: {error}")
            continue
        probabilities = estimator.predict_proba(target_items)
        # SND and the source validation accuracy are recorded beside IM, to judge the validators on benchmarks
        row = {"method": name, "status": "scored", "im": information_maximization(probabilities), "snd": snd(probabilities),
               "source_val_accuracy": (getattr(estimator, "fit_summary_", {}) or {}).get("val_accuracy"),
               "seconds": 0.0}
        if known is not None:
            predictions = estimator.classes_[probabilities[known].argmax(1)]
            row["target_accuracy"] = float((predictions == np.asarray(y_target, dtype=object)[known]).mean())
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        key = row.get("target_accuracy", row["im"]), row["im"]
        log(f"adapt=auto: {name} " + (f"target accuracy {accuracy_text(row['target_accuracy'], len(known))}, "
                                      if known is not None else "")
            + f"information maximization {row['im']:.3f}")
        if best_key is None or key > best_key:
            best, best_key, chosen = estimator, key, name
    record = {"validator": "target accuracy on the labeled target inputs" if known is not None
              else "information maximization on the unlabeled target inputs",
              "n_target_labeled": 0 if known is None else int(len(known)),
              "candidates": rows, "chosen": chosen}
    return best, record
