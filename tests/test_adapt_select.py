"""adapt='auto': each method and source-only, judged on the target inputs."""

import numpy as np
import pytest

from headstart import TransferClassifier
from headstart.adapt.select import CANDIDATES, labeled_target
from headstart.errors import ConfigError, DataError

from helpers import tiny_inputs

FAST = dict(strategy="finetune", freeze=5, epochs=1, batch_size=4, val_size=4, verbose=0)


@pytest.fixture(scope="module")
def source_and_target():
    X, y = tiny_inputs("text", per_class=10)
    return X[:12], y[:12], X[12:]


def test_adapt_auto_tries_source_only_and_every_method_and_records_them(source_and_target):
    X, y, target = source_and_target
    clf = TransferClassifier(**FAST, adapt="auto").fit(X, y, X_target=target)
    record = clf.adaptation_
    assert [row["method"] for row in record["candidates"]] == list(CANDIDATES)
    assert record["chosen"] in CANDIDATES and record["validator"].startswith("information maximization")
    best = max(record["candidates"], key=lambda row: row["im"])
    assert record["chosen"] == best["method"]
    for row in record["candidates"]:  # recorded beside IM, to judge the validators on benchmarks
        assert np.isfinite(row["snd"]) and 0.0 <= row["source_val_accuracy"] <= 1.0
    assert clf.predict(target).shape == (len(target),)


def test_adapt_auto_uses_target_labels_when_some_are_given(source_and_target):
    X, y, target = source_and_target
    y_target = [None] * len(target)
    y_target[0] = "positive"
    clf = TransferClassifier(**FAST, adapt="auto").fit(X, y, X_target=target, y_target=y_target)
    assert clf.adaptation_["n_target_labeled"] == 1
    assert all("target_accuracy" in row for row in clf.adaptation_["candidates"])


def test_adapt_auto_without_target_data_says_how_to_pass_it(source_and_target):
    X, y, _ = source_and_target
    with pytest.raises(ConfigError, match=r"adapt='auto' chooses .* X_target=.*--target"):
        TransferClassifier(**FAST, adapt="auto").fit(X, y)


def test_target_labels_of_the_wrong_length_are_refused():
    with pytest.raises(DataError, match=r"y_target has 2 entries but X_target has 3"):
        labeled_target(["a", None], 3)


def test_adapt_auto_records_a_diverged_method_as_failed_and_compares_the_rest():
    from headstart.adapt.select import select_adaptation
    from headstart.errors import TrainingDivergedError

    class Fitted:
        classes_ = np.array(["a", "b"])

        def __init__(self, confident):
            self.confident = confident

        def predict_proba(self, items):
            p = 0.95 if self.confident else 0.6
            return np.array([[p, 1 - p], [1 - p, p]] * (len(items) // 2))

    def fit_candidate(method):
        if method == "dann":
            raise TrainingDivergedError("training diverged at epoch 1, batch 2: the loss is nan; lower ...")
        return Fitted(confident=method == "mcc")

    best, record = select_adaptation(fit_candidate, ["x"] * 4, candidates=("source_only", "dann", "mcc"))
    rows = {row["method"]: row for row in record["candidates"]}
    assert rows["dann"]["status"] == "failed" and rows["dann"]["reason"].startswith("training diverged")
    assert record["chosen"] == "mcc" and best.confident


def test_adapt_auto_does_not_hide_a_diverged_source_only_fit():
    from headstart.adapt.select import select_adaptation
    from headstart.errors import TrainingDivergedError

    def fit_candidate(method):
        raise TrainingDivergedError("training diverged at epoch 1, batch 1: the loss is nan; lower the learning rate")

    with pytest.raises(TrainingDivergedError):
        select_adaptation(fit_candidate, ["x"] * 4, candidates=("source_only", "coral"))
