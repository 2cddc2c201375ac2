"""The logistic-regression head on fixed features, and the fold that makes it one linear layer.

Torch-free (numpy and scikit-learn): the linear probe, the no-transfer baselines, adaptation on
frozen features and the report all fit their heads here. Shapes: features ``(n, d)``, labels
``(n,)`` encoded ``0..k-1``, a head ``weight (k, d)`` and ``bias (k,)`` with ``logits = x W^T + b``.

A head is a :class:`~sklearn.preprocessing.StandardScaler` (mean ``mu``, scale ``sigma``, per
feature; the identity for a head fit with ``standardize=False``) followed by a logistic regression
``(W, b)`` on the standardised features
``(x - mu) / sigma``. Both are linear, so they fold into one head on the raw features::

    W' = W / sigma            (each column divided by its feature's scale)
    b' = b - W' mu

and ``x W'^T + b'`` equals ``((x - mu) / sigma) W^T + b``. The saved model is then backbone +
linear head, whatever fit its head.

``C``, the inverse regularization strength, is chosen by stratified k-fold cross-validation over
every row the head is fit on (:func:`choose_C_by_cv`: ``k = min(5, smallest class)``, the log grid
walked warm-started within each fold, stopping once the mean scores fall past the best); the head
is then fit on all those rows at that ``C`` (:func:`fit_head`). On few labels this matters: an 80/20
split of 16 rows scores each C on 3 or 4 examples, and picked C by ties and noise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))
# 1e-3 rather than sklearn's 1e-4: the C search takes about half the time with the same chosen C
# and test accuracy (docs/benchmarks.md).
TOLERANCE = 1e-3
PAST_BEST = 2  # stop the C walk after this many C values in a row score below the best
CV_FOLDS = 5  # at most; fewer when the smallest class has fewer rows (each fold holds one of each class out)
# With a class of one row no fold can hold it out, so nothing can be cross-validated: sklearn's
# default C is used, and the head's record says so.
UNVALIDATED_C = 1.0


@dataclass(frozen=True)
class HeadFit:
    """A fitted head: folded ``weight (k, d)`` and ``bias (k,)`` (float32), the ``C`` it used, the C
    search's record (one dict per C tried; empty when C was given or no fold was possible), the
    chosen C's cross-validated accuracy (nan when nothing was validated) and how C was chosen."""

    weight: np.ndarray
    bias: np.ndarray
    C: float
    history: list
    cv_accuracy: float
    chosen_by: str


def fit_head(features: np.ndarray, y: np.ndarray, n_classes: int, *, C: float | None = None,
             random_state: int = 0, search: tuple | None = None, standardize: bool = True) -> HeadFit:
    """Choose C by stratified cross-validation on ``(features, y)`` (unless ``C`` is given, or ``search``
    holds the ``(C, history, chosen_by)`` an earlier search on the same rows found), then fit the head on
    all of those rows at that C. ``standardize=False`` fits on the features as they are (no scaler), for
    features whose spread over the fitted rows says little about new inputs' (see :func:`fitted_scaler`)."""
    if C is not None:
        C, history, chosen_by = float(C), [], "given"
    elif search is not None:
        C, history, chosen_by = search
    else:
        C, history, chosen_by = choose_C_by_cv(features, y, random_state, standardize=standardize)
    cv_accuracy = next((h["cv_accuracy"] for h in history if h["C"] == C), float("nan"))
    weight, bias = fit_logistic_head(features, y, n_classes, C, standardize=standardize)
    return HeadFit(weight, bias, C, history, cv_accuracy, chosen_by)


def search_key(features: np.ndarray, y: np.ndarray, random_state: int) -> str:
    """What decides :func:`choose_C_by_cv`'s result: the rows, the labels, the folds' seed and the search's settings."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes())
    digest.update(np.asarray(y).astype(str).tobytes())
    digest.update(repr((random_state, C_GRID, TOLERANCE, PAST_BEST, CV_FOLDS, features.shape)).encode())
    return digest.hexdigest()[:32]


def fitted_scaler(features: np.ndarray, standardize: bool = True) -> StandardScaler:
    """StandardScaler with every feature's scale at least 1e-3 of the median one (``standardize=False``:
    the identity, mean 0 and scale 1, so the head folds the same way).

    A feature that is constant up to float rounding (a scale near 1e-30) would otherwise be blown
    up by standardisation and, once folded into the head (``W / sigma``), give weights near 1e30:
    harmless on the frozen features the probe saw, but any change of the features (LP-FT's
    fine-tuning) then sends the logits to infinity.

    Standardising assumes the fitted rows' spread of each feature is that of new inputs. A body tuned
    on those very rows (contrastive tuning) breaks it: it pulls each class of them together, so a
    feature can vary far less over them than over new inputs, and dividing by their spread magnifies
    it (docs/benchmarks.md, "Which head on contrastively tuned embeddings").
    """
    if not standardize:
        scaler = StandardScaler(with_mean=False, with_std=False).fit(features)
        scaler.mean_, scaler.scale_ = np.zeros(features.shape[1]), np.ones(features.shape[1])
        return scaler
    scaler = StandardScaler().fit(features)
    positive = scaler.scale_[scaler.scale_ > 0]
    floor = max(1e-6, 1e-3 * float(np.median(positive))) if positive.size else 1.0
    scaler.scale_ = np.maximum(scaler.scale_, floor)
    return scaler


def row_space(train_s: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis ``(r, d)`` of the span of the (standardised) training rows when there are fewer
    rows than features, else None.

    An L2-penalised linear model's weights lie in that span (a component orthogonal to every training row
    changes no training loss and only adds penalty), so fitting on the ``r <= n`` coordinates ``x B^T``
    and mapping the weights back (``w = u B``) gives the same solution at the same ``C``, at the cost of
    ``n`` features instead of ``d``: with 100 images and 1,280 features, the C search runs on 100.
    """
    n, d = train_s.shape
    if n >= d:
        return None
    _, singular, vt = np.linalg.svd(train_s, full_matrices=False)
    return vt[singular > singular[0] * 1e-10] if singular.size and singular[0] > 0 else None


def fit_logistic_head(features: np.ndarray, y: np.ndarray, n_classes: int, C: float, *, standardize: bool = True):
    """Fit scaler + logistic regression; return the folded ``(weight (k, d), bias (k,))``."""
    scaler = fitted_scaler(features, standardize)
    standardised = scaler.transform(features)
    basis = row_space(standardised)
    classifier = LogisticRegression(C=C, max_iter=2000, tol=TOLERANCE)
    classifier.fit(standardised if basis is None else standardised @ basis.T, y)
    if basis is not None:
        classifier.coef_ = classifier.coef_ @ basis
    return fold_head(scaler, classifier, n_classes)


def class_rows(classifier: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted logistic regression as ``(coef (n_classes, d), intercept (n_classes,))``, one row per
    encoded class: a binary fit's single row becomes two (softmax over ``[0, z]`` equals sigmoid(z)),
    and classes absent from training get a zero row and bias -1e4, so they can never be predicted."""
    coef, intercept = classifier.coef_, classifier.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    full_coef = np.zeros((n_classes, coef.shape[1]))
    full_intercept = np.full(n_classes, -1e4)
    full_coef[classifier.classes_] = coef
    full_intercept[classifier.classes_] = intercept
    return full_coef, full_intercept


def fold_head(scaler: StandardScaler, classifier: LogisticRegression, n_classes: int):
    """Scaler + logistic regression as one float32 head on the raw features: ``W' = W / sigma``,
    ``b' = b - W' mu``."""
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    coef, intercept = class_rows(classifier, n_classes)
    weight = coef / scale
    bias = intercept - weight @ scaler.mean_
    return weight.astype(np.float32), bias.astype(np.float32)


def choose_C(train_f, train_y, val_f, val_y) -> tuple[float, list[dict], tuple]:
    """C chosen on one validation split: the best C, every C's scores, and its solution
    ``(classes, coef, intercept)`` (frozen-feature adaptation chooses its starting C this way)."""
    scaler = fitted_scaler(train_f)
    labels = np.unique(np.concatenate([train_y, val_y]))
    scores, best, solution = _walk_C_grid([(scaler.transform(train_f), train_y, scaler.transform(val_f), val_y)],
                                          labels)
    history = [{"C": C, "val_accuracy": accuracy, "val_log_loss": loss} for C, accuracy, loss in scores]
    return scores[best][0], history, solution


def cv_folds(y: np.ndarray, random_state: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds, ``k = min(CV_FOLDS, smallest class)``; none when some class has a single row."""
    k = min(CV_FOLDS, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    if k < 2:
        return []
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y))


def choose_C_by_cv(features: np.ndarray, y: np.ndarray, random_state: int = 0, *,
                   standardize: bool = True) -> tuple[float, list[dict], str]:
    """The C with the best held-out accuracy (then log-loss) pooled over stratified folds, each fold's
    scaler fit on its training rows (the identity with ``standardize=False``). Returns the C, every C's
    scores, and how it was chosen."""
    folds = cv_folds(y, random_state)
    if not folds:
        return UNVALIDATED_C, [], f"fixed C={UNVALIDATED_C:g}: a class has one row, so no fold can hold it out"
    prepared = []
    for train, val in folds:
        scaler = fitted_scaler(features[train], standardize)
        train_s, val_s = scaler.transform(features[train]), scaler.transform(features[val])
        basis = row_space(train_s)
        if basis is not None:
            train_s, val_s = train_s @ basis.T, val_s @ basis.T
        prepared.append((train_s, y[train], val_s, y[val]))
    scores, best, _ = _walk_C_grid(prepared, np.unique(y))
    history = [{"C": C, "cv_accuracy": accuracy, "cv_log_loss": loss} for C, accuracy, loss in scores]
    return scores[best][0], history, f"{len(folds)}-fold cross-validation on {len(y)} rows"


def _walk_C_grid(folds: list[tuple], labels: np.ndarray) -> tuple[list[tuple[float, float, float]], int, tuple]:
    """Walk :data:`C_GRID` with one warm-started logistic regression per fold ``(train_s, train_y, val_s,
    val_y)`` (standardised); return ``(C, accuracy, log-loss)`` per C tried, pooled over every fold's held-out
    rows, the index of the best (accuracy, then log-loss), and the first fold's solution at that C."""
    classifiers = [LogisticRegression(max_iter=2000, warm_start=True, tol=TOLERANCE) for _ in folds]
    scores, best, solution, worse_in_a_row = [], None, None, 0
    for C in C_GRID:
        hits, losses = [], []
        for (train_s, train_y, val_s, val_y), classifier in zip(folds, classifiers):
            classifier.set_params(C=C).fit(train_s, train_y)
            probabilities = classifier.predict_proba(val_s)
            hits.append(classifier.classes_[probabilities.argmax(1)] == val_y)
            full = np.zeros((len(val_y), len(labels)))  # classes missing from a fold's training rows get ~0
            full[:, np.searchsorted(labels, classifier.classes_)] = probabilities
            full = np.clip(full, 1e-12, 1)
            full /= full.sum(1, keepdims=True)
            losses.append(-np.log(full[np.arange(len(val_y)), np.searchsorted(labels, val_y)]))
        scores.append((C, float(np.concatenate(hits).mean()), float(np.concatenate(losses).mean())))
        if best is None or (scores[-1][1], -scores[-1][2]) > (scores[best][1], -scores[best][2]):
            best, worse_in_a_row = len(scores) - 1, 0
            first = classifiers[0]
            solution = (first.classes_.copy(), first.coef_.copy(), first.intercept_.copy())
        else:
            worse_in_a_row += 1
            if worse_in_a_row == PAST_BEST:
                break  # held-out scores along C are close to unimodal; large C are the slow fits
    return scores, best, solution
