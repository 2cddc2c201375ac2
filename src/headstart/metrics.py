"""Scores of predicted labels against true ones, computed once for ``headstart evaluate`` and the report.

:func:`classification_scores` gives the accuracy with its 95% Wilson interval, the macro-F1, each
class's precision, recall, F1 and support, and the confusion matrix, all over the classes the model
knows, in its order. Plain Python numbers and lists, ready for JSON.
"""

from __future__ import annotations

import math

import numpy as np

from .intervals import accuracy_interval, format_accuracy


def classification_scores(y_true: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """Accuracy (95% Wilson interval), macro-F1, per-class scores and the confusion matrix over ``labels``.

    The macro-F1 averages over the classes present in ``y_true`` or ``predicted``; per-class rows
    and the matrix follow ``labels`` (rows: true class, columns: predicted class).
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    accuracy, low, high = accuracy_interval(y_true, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, predicted, labels=labels,
                                                                     zero_division=0)
    return {
        "n_examples": int(len(y_true)),
        "accuracy": accuracy, "low": low, "high": high, "text": format_accuracy(accuracy, low, high),
        "macro_f1": float(f1_score(y_true, predicted, average="macro", zero_division=0)),
        "per_class": [{"label": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, support)],
        "confusion_matrix": {"labels": list(labels), "rows": "true class", "columns": "predicted class",
                             "matrix": confusion_matrix(y_true, predicted, labels=labels).tolist()},
    }


def number_or_none(value) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or not a number (a summary's optional figure)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
