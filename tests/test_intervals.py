import numpy as np
import pytest

from headstart.errors import ConfigError, DataError
from headstart.intervals import (
    accuracy_interval,
    format_accuracy,
    needs_interval,
    paired_bootstrap_difference,
    paired_difference_interval,
    repeated_splits_score,
)


def test_wilson_interval_matches_hand_computed_value():
    # 8 of 10 correct, z = 1.959964: center = (0.8 + z^2/20) / (1 + z^2/10),
    # half = z / (1 + z^2/10) * sqrt(0.8*0.2/10 + z^2/400)  ->  [0.4902, 0.9433]
    y_true = [1] * 10
    y_pred = [1] * 8 + [0] * 2
    acc, low, high = accuracy_interval(y_true, y_pred)
    assert acc == pytest.approx(0.8)
    assert low == pytest.approx(0.490162, abs=1e-5)
    assert high == pytest.approx(0.943318, abs=1e-5)


def test_wilson_interval_stays_in_unit_range_for_perfect_accuracy():
    acc, low, high = accuracy_interval(["a", "b", "a"], ["a", "b", "a"])
    assert acc == 1.0 and high == 1.0 and 0 < low < 1


def test_bootstrap_interval_contains_estimate_and_narrows_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 2000):
        y_true = rng.integers(0, 3, size=n)
        y_pred = np.where(rng.random(n) < 0.75, y_true, (y_true + 1) % 3)
        acc, low, high = accuracy_interval(y_true, y_pred, method="bootstrap", n_boot=1000)
        assert low <= acc <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3


def test_bootstrap_interval_is_deterministic_for_a_seed():
    y_true, y_pred = [0, 1, 1, 0, 1, 0, 1], [0, 1, 0, 0, 1, 1, 1]
    first = accuracy_interval(y_true, y_pred, method="bootstrap", random_state=3)
    assert first == accuracy_interval(y_true, y_pred, method="bootstrap", random_state=3)


def test_paired_bootstrap_of_identical_predictions_is_zero():
    y_true = [0, 1, 2, 1, 0, 2, 1]
    pred = [0, 1, 1, 1, 0, 2, 0]
    assert paired_bootstrap_difference(y_true, pred, pred) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_difference_sign_and_interval():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=400)
    better = np.where(rng.random(400) < 0.9, y_true, 1 - y_true)
    worse = np.where(rng.random(400) < 0.6, y_true, 1 - y_true)
    diff, low, high = paired_bootstrap_difference(y_true, better, worse)
    assert 0 < low <= diff <= high


def test_format_accuracy_writes_three_decimals():
    assert format_accuracy(0.8123, 0.7741, 0.8459) == "0.812 [0.774, 0.846]"


def test_needs_interval_below_one_thousand():
    assert needs_interval(999) and not needs_interval(1000)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([], []), {}, "empty"),
        (([1, 2], [1]), {}, "same examples"),
        (([1], [1]), {"confidence": 1.0}, "between 0 and 1"),
        (([1], [1]), {"confidence": 0}, "between 0 and 1"),
    ],
)
def test_accuracy_interval_rejects_bad_input(args, kwargs, message):
    with pytest.raises(DataError, match=message):
        accuracy_interval(*args, **kwargs)


def test_accuracy_interval_rejects_unknown_method():
    with pytest.raises(ConfigError, match="wilson"):
        accuracy_interval([1], [1], method="exact")


def test_paired_bootstrap_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="pred_b"):
        paired_bootstrap_difference([1, 0], [1, 0], [1])


def test_repeated_splits_score_is_deterministic_for_a_seed():
    labels = np.array(["a"] * 10 + ["b"] * 10)
    seen = []

    def fit_and_score(train_idx, val_idx):
        assert not set(train_idx) & set(val_idx)
        seen.append(tuple(sorted(val_idx)))
        return float(np.mean(labels[val_idx] == "a"))  # stratified: always 0.5

    mean, std, scores = repeated_splits_score(fit_and_score, labels, n_splits=4, val_size=0.2, random_state=7)
    first = list(seen)
    assert (mean, std) == (0.5, 0.0) and scores == [0.5] * 4
    seen.clear()
    assert repeated_splits_score(fit_and_score, labels, n_splits=4, val_size=0.2, random_state=7)[2] == scores
    assert seen == first
    assert len(set(first)) > 1  # the splits differ from one another


def test_repeated_splits_score_rejects_a_class_of_one():
    with pytest.raises(DataError, match="at least 2"):
        repeated_splits_score(lambda t, v: 0.0, ["a", "a", "a", "b"])


def test_accuracy_text_carries_an_interval_below_1000_examples():
    from headstart.intervals import accuracy_text

    assert accuracy_text(0.833, 60) == "0.833 [0.720, 0.907]"
    assert accuracy_text(0.9, 2000) == "0.900"
    assert accuracy_text(float("nan"), 10) == "n/a"


def test_paired_difference_interval_matches_hand_computed_value():
    # 4 wins, 0 losses of 13: p_w = 5/15, p_l = 1/15, center 4/15, half = z * sqrt((6/15 - (4/15)^2) / 15)
    a = [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
    b = [1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1]
    diff, low, high = paired_difference_interval(a, b)
    half = 1.959964 * np.sqrt((6 / 15 - (4 / 15) ** 2) / 15)
    assert diff == pytest.approx(4 / 13)
    assert (low, high) == pytest.approx((4 / 15 - half, 4 / 15 + half), abs=1e-6)
    assert low < 0  # the plain Wald interval, mean +- 1.96 se of the differences, puts this one above zero
    swapped = paired_difference_interval(b, a)
    assert swapped == pytest.approx((-diff, -high, -low))


@pytest.mark.parametrize("n, p", [(13, 0.15), (13, 0.3), (16, 0.1), (40, 0.1)])
def test_paired_difference_interval_rarely_shows_a_difference_that_is_not_there(n, p):
    # two models equally good, each alone right on a share p of the examples: the lower bound should pass
    # zero in at most 2.5% of draws (one side of a 95% interval); the plain Wald interval does in 3% at n=13
    rng = np.random.default_rng(0)
    shown = 0
    for _ in range(2000):
        u = rng.random(n)
        a, b = (u < p).astype(int), ((u >= p) & (u < 2 * p)).astype(int)
        shown += paired_difference_interval(a, b)[1] > 0
    assert shown / 2000 <= 0.025


def test_paired_difference_interval_shows_a_clear_lead():
    a, b = [1] * 30 + [0] * 10, [1] * 18 + [0] * 22  # a alone right on 12 of 40
    diff, low, high = paired_difference_interval(a, b)
    assert diff == pytest.approx(0.3) and low > 0.1 and high < 0.5


def test_paired_difference_interval_rejects_different_examples():
    with pytest.raises(DataError, match="same examples, got 3 and 2"):
        paired_difference_interval([1, 0, 1], [1, 0])
