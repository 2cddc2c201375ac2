"""Intersection over union (Jaccard index) of label masks, per class and averaged.

IoU_c = |T_c ∩ P_c| / |T_c ∪ P_c| summed over every pixel of every image (the dataset-level IoU of
the Pascal VOC / Cityscapes benchmarks, not a mean of per-image IoUs). A class absent from both the
truth and the prediction of every image has no IoU (0/0): it is left out of the mean and reported as
None, so a class the test set does not contain neither helps nor hurts the score.
"""

from __future__ import annotations

import warnings

import numpy as np


def confusion(true_masks, pred_masks, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` pixel counts, rows true class, columns predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    for truth, pred in zip(true_masks, pred_masks):
        truth, pred = np.asarray(truth).ravel(), np.asarray(pred).ravel()
        matrix += np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    return matrix


def iou_scores(true_masks, pred_masks, n_classes: int) -> dict:
    """``{"mean_iou": float, "per_class_iou": {class_index: float | None}}`` for masks of class indices
    0..n_classes-1; classes absent from truth and prediction alike are None and left out of the mean."""
    matrix = confusion(true_masks, pred_masks, n_classes)
    intersection = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    per_class = {c: (float(intersection[c] / union[c]) if union[c] else None) for c in range(n_classes)}
    present = [v for v in per_class.values() if v is not None]
    return {"mean_iou": float(np.mean(present)) if present else 0.0, "per_class_iou": per_class}


def index_masks(classes: np.ndarray, true_masks, predicted_masks) -> tuple[np.ndarray, list, list]:
    """``(labels, truth, predicted)``: both mask lists as indices into ``labels``, the model's ``classes``
    plus any value only the truth holds. Such a class is never predicted, so it scores IoU 0 (with a
    warning) rather than being dropped."""
    labels = np.union1d(classes, np.unique(np.concatenate([np.unique(m) for m in true_masks])))
    unseen = np.setdiff1d(labels, classes)
    if unseen.size:
        warnings.warn(f"the masks hold class value(s) {unseen.tolist()[:10]} absent from the training masks "
                      f"(classes_ {np.asarray(classes).tolist()}); they count with IoU 0", UserWarning, stacklevel=3)
    return (labels, [np.searchsorted(labels, m) for m in true_masks],
            [np.searchsorted(labels, np.asarray(p)) for p in predicted_masks])
