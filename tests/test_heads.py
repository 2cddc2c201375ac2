"""The logistic head's C: chosen by stratified cross-validation over every row the head is fit on."""

import numpy as np
import pytest

from headstart.heads import C_GRID, CV_FOLDS, PAST_BEST, TOLERANCE, UNVALIDATED_C, choose_C_by_cv, cv_folds, fit_head


def _blobs(per_class, n_classes=3, d=20, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, d)) * 2
    y = np.repeat(np.arange(n_classes), per_class)
    return centers[y] + spread * rng.normal(size=(len(y), d)), y


@pytest.mark.parametrize("per_class, folds", [(2, 2), (4, 4), (8, CV_FOLDS), (40, CV_FOLDS)])
def test_cv_folds_hold_every_row_out_once_and_every_class_in_each_fold(per_class, folds):
    _, y = _blobs(per_class)
    splits = cv_folds(y, random_state=0)
    assert len(splits) == folds
    held_out = np.sort(np.concatenate([val for _, val in splits]))
    np.testing.assert_array_equal(held_out, np.arange(len(y)))
    assert all(set(y[train]) == set(y) for train, _ in splits)


def test_head_C_is_chosen_on_every_row_pooled_over_the_folds():
    X, y = _blobs(8)
    C, history, chosen_by = choose_C_by_cv(X, y, random_state=0)
    assert chosen_by == f"{CV_FOLDS}-fold cross-validation on 24 rows"
    best = max(history, key=lambda h: (h["cv_accuracy"], -h["cv_log_loss"]))
    assert C == best["C"] and C in C_GRID
    # pooled over the 24 held-out predictions, not a mean of fold means
    assert all(abs(h["cv_accuracy"] * 24 - round(h["cv_accuracy"] * 24)) < 1e-9 for h in history)
    assert len(history) == len(C_GRID) or len(history) == history.index(best) + 1 + PAST_BEST


def test_head_fit_uses_all_rows_and_reports_how_C_was_chosen():
    X, y = _blobs(8, seed=1)
    head = fit_head(X, y, 3, random_state=0)
    assert head.chosen_by.startswith(f"{CV_FOLDS}-fold") and 0 <= head.cv_accuracy <= 1
    given = fit_head(X, y, 3, C=head.C)
    np.testing.assert_allclose(given.weight, head.weight, rtol=1e-5, atol=1e-6)  # the same fit: all rows, that C
    assert given.chosen_by == "given" and given.history == [] and np.isnan(given.cv_accuracy)


def test_head_fit_is_reproducible_for_a_seed():
    X, y = _blobs(6, seed=2, spread=3.0)
    a, b = fit_head(X, y, 3, random_state=5), fit_head(X, y, 3, random_state=5)
    assert a.C == b.C and a.history == b.history
    np.testing.assert_array_equal(a.weight, b.weight)


def test_head_with_a_single_row_class_uses_the_fixed_C_and_says_why():
    X, y = _blobs(4)
    X, y = X[3:], y[3:]  # class 0 keeps one row
    head = fit_head(X, y, 3)
    assert head.C == UNVALIDATED_C and head.history == [] and "a class has one row" in head.chosen_by
    assert head.weight.shape == (3, 20)


def test_linear_probe_summary_says_C_was_cross_validated_on_all_labeled_rows():
    from headstart import TransferClassifier

    X, y = _blobs(8, seed=3)
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", verbose=0).fit(X, y.astype(str))
    summary = clf.fit_summary_
    assert summary["C_chosen_by"] == f"{CV_FOLDS}-fold cross-validation on 24 rows"
    assert summary["refit_on"] == "train+validation"


def test_head_fit_without_standardizing_is_the_logistic_regression_on_the_features_as_they_are():
    from sklearn.linear_model import LogisticRegression

    X, y = _blobs(8, seed=3)
    X = X * np.linspace(0.01, 10, X.shape[1])  # features on very different scales, so standardising would matter
    head = fit_head(X, y, 3, C=0.1, standardize=False)
    reference = LogisticRegression(C=0.1, max_iter=2000, tol=TOLERANCE).fit(X, y)  # the head's own solver settings
    np.testing.assert_allclose(X @ head.weight.T + head.bias, reference.decision_function(X), rtol=1e-4, atol=1e-4)
    standardised = fit_head(X, y, 3, C=0.1)
    assert not np.allclose(X @ standardised.weight.T + standardised.bias, reference.decision_function(X), atol=1e-1)
    searched = fit_head(X, y, 3, random_state=0, standardize=False)
    assert searched.chosen_by.startswith(f"{CV_FOLDS}-fold") and searched.C in C_GRID
