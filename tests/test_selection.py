"""Transferability scores (headstart.selection): reference values, known behaviour, bad input, ranking."""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.covariance import LedoitWolf

from headstart.errors import ConfigError, DataError, UnknownNameError
from headstart.selection import (
    SCORES, RankRow, h_score, leep_from_probabilities, leep_score, logme_score, nce_from_assignments, nce_score,
    rank_backbones, regularized_h_score, suggest_freeze,
)
from helpers import tiny_inputs, tiny_texts


def blobs(n_per_class=60, k=3, d=8, separation=6.0, seed=0):
    """Well-separated classes: class c is shifted by ``separation`` along axis c."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), n_per_class)
    features = rng.normal(size=(len(labels), d))
    features[np.arange(len(labels)), labels] += separation
    return features, labels


# --------------------------------------------------------------------------- LogME


def direct_log_evidence_score(features, y, log_alpha, log_beta):
    """log N(y; 0, I/beta + F F^T / alpha), straight from the marginal (n x n), no SVD, no fixed point."""
    n = len(y)
    cov = np.eye(n) / np.exp(log_beta) + features @ features.T / np.exp(log_alpha)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(cov, y))


def reference_logme(features, labels):
    """Maximise the direct evidence over (log alpha, log beta) with scipy, per class; mean / n."""
    values = []
    for c in np.unique(labels):
        y = (labels == c).astype(float)
        best = min((minimize(lambda p: -direct_log_evidence_score(features, y, *p), start, method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
                    for start in ([0.0, 0.0], [3.0, 1.0], [-3.0, 2.0])), key=lambda r: r.fun)
        values.append(-best.fun / len(y))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", ["n_gt_d", "rank_deficient", "n_lt_d"])
def test_logme_matches_direct_evidence_maximisation(shape):
    rng = np.random.default_rng(1)
    n, d = {"n_gt_d": (60, 5), "rank_deficient": (50, 6), "n_lt_d": (20, 30)}[shape]
    labels = rng.integers(0, 3, size=n)
    features = rng.normal(size=(n, d)) + 0.8 * np.eye(3, d)[labels]
    if shape == "rank_deficient":
        features[:, -1] = features[:, 0] + features[:, 1]  # rank d - 1: the zero eigenvalue must not count
    expected = reference_logme(features, labels)
    assert logme_score(features, labels) == pytest.approx(expected, abs=1e-3)


def test_logme_ignores_label_values_only_their_classes():
    features, labels = blobs()
    names = np.array(["cat", "dog", "emu"])[labels]
    assert logme_score(features, names) == pytest.approx(logme_score(features, labels), abs=1e-12)


# --------------------------------------------------------------------------- H-score


def test_hscore_two_classes_equals_closed_form():
    # Two classes: cov(E[f|y]) = p q delta delta^T, so H = p q delta^T cov(f)^-1 delta.
    rng = np.random.default_rng(2)
    labels = np.array([0] * 30 + [1] * 70)
    features = rng.normal(size=(100, 4)) + np.outer(labels, [1.0, -2.0, 0.5, 0.0])
    p, q = 0.3, 0.7
    delta = features[labels == 1].mean(0) - features[labels == 0].mean(0)
    expected = p * q * delta @ np.linalg.solve(np.cov(features, rowvar=False, bias=True), delta)
    assert h_score(features, labels) == pytest.approx(expected, rel=1e-10)


def test_hscore_equals_direct_trace_formula():
    # The reference code's formula: tr(pinv(cov f) cov(g)), g_i = mean of f over i's class (ddof 1).
    features, labels = blobs(n_per_class=40, k=4, d=6, separation=1.5, seed=3)
    g = np.stack([features[labels == labels[i]].mean(0) for i in range(len(labels))])
    expected = np.trace(np.linalg.pinv(np.cov(features, rowvar=False)) @ np.cov(g, rowvar=False))
    assert h_score(features, labels) == pytest.approx(expected, rel=1e-9)
    assert 0 < h_score(features, labels) <= 4 - 1


def test_regularized_hscore_equals_direct_shrinkage_formula():
    features, labels = blobs(n_per_class=10, k=3, d=40, separation=2.0, seed=4)  # n < d: shrinkage matters
    estimate = LedoitWolf().fit(features)
    g = np.stack([features[labels == labels[i]].mean(0) for i in range(len(labels))])
    cov_g = np.cov(g, rowvar=False, bias=True)
    expected = np.trace(np.linalg.inv(estimate.covariance_) @ ((1 - estimate.shrinkage_) * cov_g))
    assert 0 < estimate.shrinkage_ < 1
    assert regularized_h_score(features, labels) == pytest.approx(expected, rel=1e-8)


# --------------------------------------------------------------------------- NCE and LEEP


def test_nce_is_zero_when_clusters_determine_labels():
    features, labels = blobs(separation=12.0)
    assert nce_from_assignments(labels * 2 + np.arange(len(labels)) % 2, labels) == 0.0  # pure sub-clusters
    assert nce_score(features, labels) == pytest.approx(0.0, abs=1e-12)


def test_nce_is_minus_log_k_for_independent_uniform_labels():
    rng = np.random.default_rng(5)
    k, n = 4, 20000
    labels = rng.integers(0, k, size=n)
    assert nce_from_assignments(rng.integers(0, 7, size=n), labels) == pytest.approx(-np.log(k), abs=5e-3)
    assert nce_score(rng.normal(size=(n, 3)), labels) == pytest.approx(-np.log(k), abs=1e-2)


def test_leep_from_probabilities_closed_forms():
    labels = np.array([0, 0, 0, 1])
    assert leep_from_probabilities(np.eye(2)[labels], labels) == pytest.approx(0.0, abs=1e-12)
    uniform = np.full((4, 3), 1 / 3)  # uninformative source: LEEP = sum_y P(y) log P(y)
    assert leep_from_probabilities(uniform, labels) == pytest.approx(0.75 * np.log(0.75) + 0.25 * np.log(0.25))


def test_leep_of_separable_clusters_beats_shuffled_labels():
    features, labels = blobs(separation=10.0)
    shuffled = np.random.default_rng(6).permutation(labels)
    assert leep_score(features, labels) > -1e-3
    assert leep_score(features, labels) > leep_score(features, shuffled) + 0.5


# --------------------------------------------------------------------------- every score


@pytest.mark.parametrize("name", SCORES.names())
def test_score_ranks_separated_classes_above_shuffled_labels(name):
    features, labels = blobs(n_per_class=50, k=3, d=16, separation=4.0, seed=7)
    shuffled = np.random.default_rng(8).permutation(labels)
    score = SCORES.get(name)
    assert score(features, labels) > score(features, shuffled)


@pytest.mark.parametrize("name", SCORES.names())
def test_score_is_deterministic_and_a_float(name):
    features, labels = blobs(n_per_class=20, seed=9)
    first = SCORES.get(name)(features, labels)
    assert isinstance(first, float) and np.isfinite(first)
    assert SCORES.get(name)(features, labels) == first


@pytest.mark.parametrize("name", SCORES.names())
def test_score_rejects_a_single_class(name):
    with pytest.raises(DataError, match=rf"{name}: labels hold 1 class \('a'\) in 5 rows.*at least 2 classes"):
        SCORES.get(name)(np.ones((5, 3)), ["a"] * 5)


@pytest.mark.parametrize("name", SCORES.names())
def test_score_rejects_mismatched_lengths(name):
    with pytest.raises(DataError, match=rf"{name}: features and labels have different lengths: 6 feature "
                                        r"rows and 5 labels; pass exactly one label per feature row"):
        SCORES.get(name)(np.ones((6, 3)), [0, 1, 0, 1, 0])


@pytest.mark.parametrize("name", SCORES.names())
def test_score_rejects_nan_features(name):
    features, labels = blobs(n_per_class=5)
    features[3, 2] = np.nan
    with pytest.raises(DataError, match=rf"{name}: features hold 1 non-finite value\(s\) \(NaN or inf\), the "
                                        r"first at row 3, column 2 \(nan\); remove or impute"):
        SCORES.get(name)(features, labels)


def test_score_rejects_one_dimensional_features():
    with pytest.raises(DataError, match=r"logme: features must be a 2-D array \(n_samples, n_features\), "
                                        r"got shape \(4,\)"):
        logme_score(np.ones(4), [0, 1, 0, 1])


def test_scores_registry_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="unknown score 'logm'. Did you mean 'logme'"):
        SCORES.get("logm")


# --------------------------------------------------------------------------- ranking


def test_suggest_freeze_freezes_strictly_below_best_layer():
    rows = [RankRow("b", f"g{i}", i, "logme", s, 0.0) for i, s in enumerate([0.1, 0.5, 0.3, 0.5])]
    assert suggest_freeze(rows) == 3  # tie between g1 and g3 goes to the deeper one
    assert suggest_freeze(rows[:3]) == 1  # groups 0 frozen; g1 and above train
    assert suggest_freeze([RankRow("b", "g0", 0, "logme", 1.0, 0.0)]) == 0


def test_suggest_freeze_rejects_several_backbones_and_nothing():
    with pytest.raises(ConfigError, match=r"rows of 2 backbones \(a, b\)"):
        suggest_freeze([RankRow("a", "x", 0, "logme", 0.0, 0.0), RankRow("b", "x", 0, "logme", 0.0, 0.0)])
    with pytest.raises(ConfigError, match="got none"):
        suggest_freeze([])


def test_rank_backbones_scores_every_layer_from_one_pass_then_from_cache(tmp_path, monkeypatch):
    import headstart.cache
    from headstart.backbones import create_backbone
    from headstart.cache import FeatureCache

    calls = []
    original = headstart.cache._extract

    def counting(backbone, items, layers, **kwargs):
        calls.append(list(layers))
        return original(backbone, items, layers, **kwargs)

    monkeypatch.setattr(headstart.cache, "_extract", counting)
    X, y = tiny_inputs("image", per_class=4)  # string labels '0' / '1'
    cache = FeatureCache(tmp_path)
    rows = rank_backbones(list(X), y, ["efficientnet_lite0"], cache=cache, image_size=32)
    names = create_backbone("efficientnet_lite0", image_size=32, pretrained=False).layer_names
    assert calls == [names]  # one forward pass for all layer groups
    assert sorted(r.layer for r in rows) == sorted(names)
    assert all(r.layer_index == names.index(r.layer) and r.score_name == "logme" for r in rows)
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert 0 <= suggest_freeze(rows) < len(names)
    again = rank_backbones(list(X), y, ["efficientnet_lite0"], cache=FeatureCache(tmp_path), image_size=32,
                           layers="last", score="hscore")
    assert len(calls) == 1  # nothing recomputed: served from the disk cache
    assert [(r.layer, r.score_name) for r in again] == [("head", "hscore")]
    rank_backbones(list(X), y, ["efficientnet_lite0"], cache=cache, image_size=32, score="nce")
    assert cache.last_computed == 0 and len(calls) == 1


def test_rank_backbones_max_examples_scores_a_fixed_stratified_subsample(monkeypatch):
    import headstart.cache
    from headstart.selection.rank import stratified_subsample

    seen = []
    original = headstart.cache._extract
    monkeypatch.setattr(headstart.cache, "_extract",
                        lambda backbone, items, layers, **kw: seen.append(list(items)) or original(backbone, items, layers, **kw))
    X, y = tiny_texts(per_class=9)
    y = np.asarray(y)
    rows = rank_backbones(X, y, ["minilm_l6"], cache="none", layers="last", max_examples=6)
    chosen = stratified_subsample(np.unique(y, return_inverse=True)[1], 6)
    assert seen == [[X[i] for i in chosen]] and len(chosen) == 6
    assert sorted(np.unique(y[chosen], return_counts=True)[1]) == [3, 3]  # each class keeps its share
    manual = rank_backbones([X[i] for i in chosen], y[chosen], ["minilm_l6"], cache="none", layers="last")
    assert rows[0].score == pytest.approx(manual[0].score)
    rank_backbones(X, y, ["minilm_l6"], cache="none", layers="last", max_examples=100)  # more than there are: all
    assert seen[-1] == list(X)
    with pytest.raises(ConfigError, match=r"max_examples=3: pass at least 2 per class \(4 for these 2 classes\)"):
        rank_backbones(X, y, ["minilm_l6"], cache="none", max_examples=3)


def test_stratified_subsample_keeps_every_class_and_the_exact_size():
    from headstart.selection.rank import stratified_subsample

    labels = np.repeat([0, 1, 2], [40, 4, 1])
    chosen = stratified_subsample(labels, 10)
    assert len(chosen) == len(set(chosen)) == 10 and list(np.bincount(labels[chosen])) == [8, 1, 1]
    np.testing.assert_array_equal(chosen, stratified_subsample(labels, 10))  # a fixed draw


def test_rank_backbones_rejects_bad_arguments():
    with pytest.raises(UnknownNameError, match="unknown score 'leap'. Did you mean 'leep'"):
        rank_backbones(["a", "b"], [0, 1], ["minilm_l6"], score="leap")
    with pytest.raises(DataError, match="2 inputs but labels of shape \\(3,\\)"):
        rank_backbones(["a", "b"], [0, 1, 1], ["minilm_l6"], cache="none")
    with pytest.raises(DataError, match="1 class among 2 inputs"):
        rank_backbones(["a", "b"], [1, 1], ["minilm_l6"], cache="none")
    with pytest.raises(ConfigError, match="backbones is empty"):
        rank_backbones(["a", "b"], [0, 1], [], cache="none")
