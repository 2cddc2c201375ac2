"""strategy="auto" for segmentation: hold out validation images, fit every candidate on the rest, keep
the one with the best validation mean IoU (the classifier's planner, for dense labels).

The candidates are ``frozen`` / ``finetune`` (transfer) against ``scratch`` / ``pixels`` (no
transfer), so negative transfer shows: when a no-transfer candidate wins, it is kept and ``plan_``
says so. The winner is kept as scored — trained on the training part, early-stopped on the same
validation images — not refitted on all images, so the model kept is the model that was measured.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import DataError
from .metrics import iou_scores

MIN_AUTO_IMAGES = 5


def validation_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` indices: 20% (at least 2) of the images held out when there are 5 or more, else none."""
    order = np.random.default_rng(seed).permutation(n)
    if n < MIN_AUTO_IMAGES:
        return np.sort(order), np.array([], dtype=int)
    n_val = max(2, int(round(0.2 * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def choose(candidates, fit_one, val_set, n_classes: int, verbose: int = 0):
    """Fit ``fit_one(name)`` for each name; ``(best fitted, best name, plan rows)``; ties keep the earlier."""
    if val_set is None:
        raise DataError(f"strategy='auto' compares strategies on held-out images and needs at least {MIN_AUTO_IMAGES} "
                        "training images; pass more images or a fixed strategy (e.g. strategy='frozen')")
    plan, best = [], None
    for name in candidates:
        started = time.perf_counter()
        fitted = fit_one(name)
        predicted = [p.argmax(0) for p in fitted.predict_proba(val_set[0])]
        score = iou_scores(val_set[1], predicted, n_classes)["mean_iou"]
        plan.append({"strategy": name, "val_mean_iou": score, "seconds": time.perf_counter() - started,
                     "transfer": name in ("frozen", "finetune", "lp_ft")})
        if verbose:
            print(f"[headstart] auto: {name} val mIoU {score:.4f}", flush=True)
        if best is None or score > best[2]:
            best = (fitted, name, score)
    for row in plan:
        row["chosen"] = row["strategy"] == best[1]
    return best[0], best[1], plan
