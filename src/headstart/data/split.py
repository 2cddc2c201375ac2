"""Label checks and the stratified train/validation split."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from headstart.errors import ConfigError, DataError

from .screen import is_missing, plain, short


def _is_scalar_label(value) -> bool:
    if isinstance(value, (list, tuple, dict, set, frozenset, np.ndarray)):
        return False
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _as_1d(labels, where: str) -> np.ndarray:
    if labels is None:
        raise DataError(f"no labels given for {where}; a classifier needs one label per example.")
    arr = labels if isinstance(labels, np.ndarray) else np.asarray(list(labels), dtype=object)
    if arr.ndim != 1:
        raise DataError(
            f"labels for {where} must be 1-D, one label per example; got shape {arr.shape}. "
            "If they are one-hot encoded, pass y.argmax(axis=1)."
        )
    if len(arr) == 0:
        raise DataError(f"no labels in {where} (0 examples).")
    return arr


def check_classification_labels(labels, where: str) -> None:
    """Raise :class:`DataError` unless ``labels`` are usable classification targets.

    Checks: 1-D and non-empty, no missing label (None/NaN), not a mix of text and numbers, and at
    least two distinct classes. ``where`` names the data in messages ("data/train.csv").
    """
    arr = _as_1d(labels, where)
    for i, value in enumerate(arr):
        if is_missing(value):
            raise DataError(
                f"the label at index {i} of {where} is missing ({plain(value)!r}); every example needs "
                "a label. Fill it in or drop that example."
            )
    for i, value in enumerate(arr):
        if not _is_scalar_label(value):
            raise DataError(
                f"the label at index {i} of {where} is a {type(value).__name__} ({short(value)}); a label must "
                "be a single string or number per example. If the labels are one-hot or multi-label, this "
                "classifier takes one class per example: pass the class name or index."
            )
    is_text = [isinstance(v, str) for v in arr]
    if any(is_text) and not all(is_text):
        t, n = is_text.index(True), is_text.index(False)
        raise DataError(
            f"the labels of {where} mix text and numbers: {plain(arr[t])!r} at index {t}, {plain(arr[n])!r} "
            f"at index {n}. Make them all one type, e.g. [str(v) for v in labels]."
        )
    classes = pd.unique(arr)
    if len(classes) < 2:
        raise DataError(
            f"only one class ({plain(classes[0])!r}) found in {where}; a classifier needs at least two. "
            f"All {len(arr)} examples have that label: add examples of at least one other class."
        )


def stratified_split(labels, val_size=0.2, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into ``(train_idx, val_idx)``, keeping class proportions.

    ``val_size`` is a fraction in (0, 1) or a number of examples. Every class must have at least two
    examples (one for each side), otherwise :class:`DataError` names the class. If ``val_size`` is
    too small to hold one example per class it is grown to the number of classes, silently (this is
    not an error). The split is drawn by scikit-learn's ``StratifiedShuffleSplit``; if its rounding
    leaves a class out of one side, one example of that class is moved over, so both sides always
    hold every class (and the validation set may end up a few examples larger than asked).
    Both index arrays are sorted; the result depends only on ``labels``, ``val_size`` and
    ``random_state``.
    """
    arr = _as_1d(labels, "the labels to split")
    n = len(arr)
    codes, classes = pd.factorize(arr, use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(classes))
    single = [(plain(classes[k])) for k in np.flatnonzero(counts < 2)]
    if single:
        names = ", ".join(repr(c) for c in single)
        subject = f"class {names} has" if len(single) == 1 else f"classes {names} have"
        raise DataError(
            f"{subject} only 1 example; a train/validation split needs at least 2 per class. "
            f"Add at least one more example of {names}, or remove the class."
        )
    n_val = _val_count(val_size, n)
    n_val = min(max(n_val, len(classes)), n - len(classes))

    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=random_state)
    train_idx, val_idx = next(splitter.split(np.zeros((n, 1)), codes))
    train, val = set(train_idx.tolist()), set(val_idx.tolist())
    rng = np.random.RandomState(random_state)
    for k in range(len(classes)):
        members = np.flatnonzero(codes == k)
        for have, other in ((val, train), (train, val)):
            if not any(i in have for i in members):
                moved = int(rng.choice([i for i in members if i in other]))
                other.discard(moved)
                have.add(moved)
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)


def _val_count(val_size, n: int) -> int:
    if isinstance(val_size, bool) or not isinstance(val_size, Real):
        raise ConfigError(f"val_size must be a fraction in (0, 1) or a count of examples; got {val_size!r}.")
    if isinstance(val_size, float) and val_size >= 1 and val_size.is_integer():
        val_size = int(val_size)  # "--val-size 4" arrives as 4.0: a whole number of examples
    if isinstance(val_size, Integral):
        if not 1 <= val_size < n:
            raise ConfigError(f"val_size={val_size} examples is not possible with {n} examples; use 1..{n - 1}.")
        return int(val_size)
    if not 0.0 < val_size < 1.0:
        raise ConfigError(f"val_size={val_size!r} must be a fraction strictly between 0 and 1, or a count.")
    return math.ceil(val_size * n)


def check_labels_known(labels, classes, where: str, model_where: str) -> np.ndarray:
    """Labels as strings, after refusing any the model never saw (naming them, their row counts,
    and the classes it knows); for scoring a fitted model on labeled data."""
    known = [str(c) for c in classes]
    y_true = np.array([str(label) for label in labels], dtype=object)
    unseen = sorted(set(y_true) - set(known))
    if unseen:
        counts = {label: int((y_true == label).sum()) for label in unseen}
        raise DataError(
            f"{where} has label(s) the model in {model_where} never saw in training: "
            + ", ".join(f"{label!r} ({n} row{'s' if n != 1 else ''})" for label, n in counts.items())
            + f". The model knows {len(known)} classes: {', '.join(map(repr, known))}. Remove those rows, or fit "
              f"a new model that includes them"
        )
    return y_true
