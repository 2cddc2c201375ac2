"""Input checks shared by every transferability score.

Every score takes ``features`` ``(n, d)`` and ``labels`` ``(n,)`` and fails the same way on the
same mistakes: a :class:`~headstart.errors.DataError` that names the score, the value received and
the fix.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def check_features_labels(features, labels, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Return ``(features (n, d) float64, labels (n,) int64 in 0..k-1, k)`` or raise DataError.

    Labels of any type are encoded with ``np.unique`` (sorted classes → 0..k-1), so integer labels
    that already are 0..k-1 keep their values.
    """
    try:
        matrix = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{where}: features must be a numeric array of shape (n_samples, n_features); "
                        f"converting them to float failed ({error}). Pass the backbone's feature matrix") from None
    if matrix.ndim != 2:
        raise DataError(f"{where}: features must be a 2-D array (n_samples, n_features), got shape "
                        f"{matrix.shape}; reshape to (n, d), e.g. features.reshape(len(features), -1)")
    target = np.asarray(labels)
    if target.ndim != 1:
        raise DataError(f"{where}: labels must be a 1-D array (n_samples,), got shape {target.shape}; "
                        f"pass one class label per row of features (not one-hot columns)")
    if len(target) != len(matrix):
        raise DataError(f"{where}: features and labels have different lengths: {len(matrix)} feature rows "
                        f"and {len(target)} labels; pass exactly one label per feature row")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{where}: features hold {int(bad.sum())} non-finite value(s) (NaN or inf), the first "
                        f"at row {row}, column {col} ({matrix[row, col]}); remove or impute those rows before scoring")
    try:
        classes, encoded = np.unique(target, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in target.tolist()})
        raise DataError(f"{where}: labels mix types that cannot be sorted ({', '.join(kinds)}); use one type, "
                        f"e.g. all strings") from None
    if len(classes) < 2:
        shown = repr(classes[0].item() if hasattr(classes[0], "item") else classes[0]) if len(classes) else "none"
        raise DataError(f"{where}: labels hold {len(classes)} class ({shown}) in {len(target)} rows; a "
                        f"transferability score compares classes, so pass labels with at least 2 classes")
    return matrix, encoded.astype(np.int64).reshape(-1), len(classes)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """``(n,)`` ints in 0..k-1 → ``(n, k)`` float64 one-hot rows."""
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out
