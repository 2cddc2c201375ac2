"""strategy="auto" for segmentation: hold out validation images, fit every candidate on the rest, and
choose with the classifier planner's rule (:mod:`headstart.planner.decision`), per image.

The candidates are ``finetune`` / ``frozen`` (transfer) against ``scratch`` / ``pixels`` (no
transfer). The first, ``finetune``, is the default (it led the frozen encoder by a margin small
validation splits cannot confirm; docs/benchmarks.md, "Segmentation"). Another candidate replaces
the default only when it beats it on the same validation images with the 95% interval of their
*paired* per-image mean-IoU difference above zero (mean − 1.96·SE > 0) — with a handful of
validation images a lead of a point or two is noise. Among the candidates that clear the bar, the
best by validation mean IoU wins. Negative transfer shows: when scratch or pixels clearly beats the
fine-tuned encoder, it is kept and ``plan_`` says so. The winner is kept as scored — trained on the
training part, early-stopped on the same validation images — not refitted on all images, so the model
kept is the model that was measured.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import DataError
from .metrics import iou_scores
from .strategies import USES_PRETRAINED

MIN_AUTO_IMAGES = 5
DEPARTURE_Z = 1.96  # the 95% of every interval headstart prints


def validation_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` indices: 20% (at least 2) of the images held out when there are 5 or more, else none."""
    order = np.random.default_rng(seed).permutation(n)
    if n < MIN_AUTO_IMAGES:
        return np.sort(order), np.array([], dtype=int)
    n_val = max(2, int(round(0.2 * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _per_image(truth, predicted, n_classes: int) -> np.ndarray:
    return np.array([iou_scores([t], [p], n_classes)["mean_iou"] for t, p in zip(truth, predicted)])


def beats(challenger: np.ndarray, default: np.ndarray) -> bool:
    """The paired per-image difference's 95% interval lies above zero."""
    difference = challenger - default
    se = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else np.inf
    return bool(difference.mean() - DEPARTURE_Z * se > 0)


def choose(candidates, fit_one, val_set, n_classes: int, verbose: int = 0):
    """Fit ``fit_one(name)`` for each name (the first is the default); ``(fitted, name, plan rows)``."""
    if val_set is None:
        raise DataError(f"strategy='auto' compares strategies on held-out images and needs at least {MIN_AUTO_IMAGES} "
                        "training images; pass more images or a fixed strategy (e.g. strategy='frozen')")
    plan, fitted_by_name, per_image = [], {}, {}
    for name in candidates:
        started = time.perf_counter()
        fitted = fit_one(name)
        predicted = [p.argmax(0) for p in fitted.predict_proba(val_set[0])]
        score = iou_scores(val_set[1], predicted, n_classes)["mean_iou"]
        fitted_by_name[name], per_image[name] = fitted, _per_image(val_set[1], predicted, n_classes)
        plan.append({"strategy": name, "val_mean_iou": score, "seconds": time.perf_counter() - started,
                     "transfer": USES_PRETRAINED[name]})
        if verbose:
            print(f"[headstart] auto: {name} val mIoU {score:.4f}", flush=True)
    default = candidates[0]
    for row in plan:
        row["beats_default"] = row["strategy"] != default and beats(per_image[row["strategy"]], per_image[default])
    clear = [row for row in plan if row["beats_default"]]
    chosen = max(clear, key=lambda row: row["val_mean_iou"])["strategy"] if clear else default
    for row in plan:
        row["chosen"] = row["strategy"] == chosen
        row["rule"] = ("default kept: no candidate beat it by a paired 95% interval" if not clear
                       else f"beat the default {default} by a paired 95% interval, best of those")
    return fitted_by_name[chosen], chosen, plan
