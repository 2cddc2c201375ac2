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


@pytest.fixture(scope="module")
def auto_fit(source_and_target):
    """One adapt='auto' fit (seven fine-tunes) shared by the tests that only read what it recorded."""
    X, y, target = source_and_target
    return TransferClassifier(**FAST, adapt="auto", adapt_weight=0.5).fit(X, y, X_target=target)


def test_adapt_auto_tries_source_only_and_every_method_and_records_them(auto_fit, source_and_target):
    clf, target = auto_fit, source_and_target[2]
    record = clf.adaptation_
    assert [row["method"] for row in record["candidates"]] == list(CANDIDATES)
    assert [row["candidate"] for row in record["candidates"]][1:] == [f"{m}@0.5" for m in CANDIDATES[1:]]
    assert record["validator"].startswith("information maximization")
    best = max(record["candidates"], key=lambda row: row["im"])
    assert (record["chosen"], record["chosen_method"]) == (best["candidate"], best["method"])
    for row in record["candidates"]:  # recorded beside IM, to judge the validators on benchmarks
        assert np.isfinite(row["snd"]) and 0.0 <= row["source_val_accuracy"] <= 1.0 and np.isfinite(row["dev"])
    assert clf.predict(target).shape == (len(target),)


def test_adapt_auto_fit_time_covers_every_candidate_not_only_the_kept_one(auto_fit):
    clf = auto_fit
    summary = clf.fit_summary_
    every_candidate = sum(row["seconds"] for row in clf.adaptation_["candidates"])
    assert summary["fit_seconds"] >= every_candidate > summary["chosen_fit_seconds"] > 0


def test_adapt_auto_tries_each_method_at_each_trade_off_weight():
    from headstart.adapt.select import WEIGHTS

    rng = np.random.default_rng(0)
    source = rng.normal(size=(60, 6))
    y = np.where(source[:, 0] > 0, "a", "b")
    target = rng.normal(size=(40, 6)) + 0.5
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="auto", epochs=2,
                             verbose=0).fit(source, y, X_target=target)
    names = [row["candidate"] for row in clf.adaptation_["candidates"]]
    assert names == ["source_only"] + [f"{m}@{w:g}" for w in WEIGHTS for m in CANDIDATES[1:]]  # each method once first
    chosen = next(row for row in clf.adaptation_["candidates"] if row["candidate"] == clf.adaptation_["chosen"])
    assert clf.adaptation_["chosen_weight"] == chosen["weight"]
    if chosen["method"] != "source_only":  # the kept model trained with the chosen weight
        assert clf.fit_summary_["loss_terms"] == [f"{chosen['method']} (weight {chosen['weight']:g})"]


def test_dev_of_a_candidate_is_its_mean_validation_loss_when_source_and_target_look_alike():
    from headstart.adapt.select import SourceValidation, _dev, _dev_weights

    class Fitted:
        classes_ = np.array(["a", "b"])

        def predict_proba(self, items):
            return np.tile([0.8, 0.2], (len(items), 1))

    same = np.zeros((6, 3))
    split = SourceValidation(train_items=[0] * 6, val_items=[0] * 4, val_labels=np.array(["a", "a", "b", "b"]),
                             features=lambda estimator, items: same[: len(items)])
    weights = _dev_weights(Fitted(), [0] * 6, split)  # identical features: the domain classifier cannot tell them apart
    np.testing.assert_allclose(weights, 1.0)
    assert _dev(Fitted(), split, weights) == pytest.approx(-(np.log(0.8) + np.log(0.2)) / 2)


def test_adapt_auto_uses_target_labels_when_some_are_given(source_and_target):
    X, y, target = source_and_target
    y_target = [None] * len(target)
    y_target[0] = "positive"
    clf = TransferClassifier(**FAST, adapt="auto", adapt_weight=1.0).fit(X, y, X_target=target, y_target=y_target)
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

    def fit_candidate(method, weight):
        if method == "dann":
            raise TrainingDivergedError("training diverged at epoch 1, batch 2: the loss is nan; lower ...")
        return Fitted(confident=method == "mcc")

    best, record = select_adaptation(fit_candidate, ["x"] * 4, candidates=("source_only", "dann", "mcc"), weights=(None,))
    rows = {row["method"]: row for row in record["candidates"]}
    assert rows["dann"]["status"] == "failed" and rows["dann"]["reason"].startswith("training diverged")
    assert record["chosen"] == "mcc" and best.confident


def test_adapt_auto_budget_tries_each_method_once_before_a_second_weight_and_records_the_rest_as_skipped(monkeypatch):
    import headstart.adapt.select as select
    from headstart.cli.format import adaptation_count as _adaptation_count

    clock = [0.0]
    monkeypatch.setattr(select.time, "perf_counter", lambda: clock[0])

    class Fitted:
        classes_ = np.array(["a", "b"])

        def __init__(self, p):
            self.p = p

        def predict_proba(self, items):
            return np.array([[self.p, 1 - self.p], [1 - self.p, self.p]] * (len(items) // 2))

    def fit_candidate(method, weight):
        clock[0] += 10.0 if method is None else 20.0  # source-only 10 s, an adapted fit 20 s
        return Fitted(0.6 if method is None else 0.9)

    messages = []
    best, record = select.select_adaptation(fit_candidate, ["x"] * 4, weights=(0.3, 1.0), budget_seconds=75,
                                            log=messages.append)
    status = {row["candidate"]: row["status"] for row in record["candidates"]}
    # 10 + 3 x 20 = 70 s; a fourth adapted fit (about 20 s) does not fit in the 5 s left
    assert [n for n, s in status.items() if s == "scored"] == ["source_only", "coral@0.3", "mmd@0.3", "dann@0.3"]
    skipped = [row for row in record["candidates"] if row["status"] == "skipped"]
    assert [row["candidate"] for row in skipped] == ["mcc@0.3", "self_training@0.3"] + [
        f"{m}@1" for m in CANDIDATES[1:]]
    assert skipped[0]["reason"] == "skipped: about 20 s needed, 5 s of the 75 s budget left"
    assert record["chosen"] in ("coral@0.3", "mmd@0.3", "dann@0.3")
    assert messages[-1] == ("adapt=auto: the 75 s budget left 7 of 11 candidates untried (mcc@0.3, self_training@0.3, "
                            "coral@1, mmd@1, dann@1, mcc@1, self_training@1); a larger budget tries them")
    assert _adaptation_count(record) == "4 adaptation candidates, 7 more skipped by the budget"


def test_adapt_auto_budget_always_fits_source_only_and_is_refused_for_a_fixed_method(source_and_target):
    X, y, target = source_and_target
    clf = TransferClassifier(**FAST, adapt="auto", adapt_weight=0.5, budget="0.001s").fit(X, y, X_target=target)
    rows = clf.adaptation_["candidates"]
    assert rows[0]["candidate"] == "source_only" and rows[0]["status"] == "scored"
    assert all(row["status"] == "skipped" and "budget left" in row["reason"] for row in rows[1:])
    assert clf.adaptation_["chosen"] == "source_only" and clf.predict(target).shape == (len(target),)
    with pytest.raises(ConfigError, match=r"budget='1m' only applies to strategy='auto' or adapt='auto'; drop it"):
        TransferClassifier(**FAST, adapt="coral", budget="1m").fit(X, y, X_target=target)


def test_adapt_auto_does_not_hide_a_diverged_source_only_fit():
    from headstart.adapt.select import select_adaptation
    from headstart.errors import TrainingDivergedError

    def fit_candidate(method, weight):
        raise TrainingDivergedError("training diverged at epoch 1, batch 1: the loss is nan; lower the learning rate")

    with pytest.raises(TrainingDivergedError):
        select_adaptation(fit_candidate, ["x"] * 4, candidates=("source_only", "coral"))


class _ConfidentOnTargetWrongOnSource:
    """A fitted candidate: on the target ("t…" items) mcc is confident (high IM); on the source validation rows
    ("v…" items) mcc is mostly wrong, so a trusted DEV would veto it."""

    classes_ = np.array(["a", "b"])

    def __init__(self, method):
        self.method = method

    def predict_proba(self, items):
        p = 0.95 if self.method == "mcc" else 0.6
        if items[0].startswith("v"):
            p = 0.2 if self.method == "mcc" else 0.7
        return np.array([[p, 1 - p], [1 - p, p]] * (len(items) // 2))

def test_adapt_auto_keeps_source_only_when_the_im_choice_has_a_higher_dev_risk():
    from headstart.adapt.select import SourceValidation, select_adaptation

    split = SourceValidation(train_items=["s"] * 6, val_items=["v"] * 4, val_labels=np.array(["a", "b", "a", "b"]),
                             features=lambda estimator, items: np.zeros((len(items), 2)))
    logged = []
    best, record = select_adaptation(lambda method, weight: _ConfidentOnTargetWrongOnSource(method), ["t"] * 4, candidates=("source_only", "mcc"),
                                     weights=(None,), source_validation=split, log=logged.append)
    assert best.method is None and record["chosen"] == "source_only"
    assert record["dev_gate"] == {"im_choice": "mcc", "dev": pytest.approx(-np.log(0.2), rel=1e-3),
                                  "source_only_dev": pytest.approx(-np.log(0.7), rel=1e-3), "kept": False,
                                  "effective_rows": 4.0, "rows": 4, "trusted": True}
    assert record["validator"].endswith("if its DEV risk is no higher than source-only's")
    assert any("keeping source-only" in line for line in logged)


def test_adapt_auto_does_not_let_dev_guard_when_its_weights_rest_on_a_few_rows():
    """Two source validation rows of 40 look like the target, the rest lie far from it: the importance weights
    rest on those two, and IM's choice stands, with the reason logged and recorded."""
    from headstart.adapt.select import SourceValidation, select_adaptation

    rng = np.random.default_rng(0)
    where = {"s": 0.0, "v": 0.0, "vt": 6.0, "t": 6.0}  # source rows around 0, target rows (and two others) around 6
    features = lambda estimator, items: np.stack([rng.normal(where[i], 1.0, size=3) for i in items])
    split = SourceValidation(train_items=["s"] * 200, val_items=["v"] * 38 + ["vt"] * 2,
                             val_labels=np.array(["a", "b"] * 20),
                             features=features)
    logged = []
    best, record = select_adaptation(lambda method, weight: _ConfidentOnTargetWrongOnSource(method), ["t"] * 200,
                                     candidates=("source_only", "mcc"), weights=(None,), source_validation=split,
                                     log=logged.append)
    assert record["chosen"] == "mcc" and best.method == "mcc"
    gate = record["dev_gate"]
    assert gate["trusted"] is False and gate["kept"] is True and gate["rows"] == 40 and gate["effective_rows"] < 2.5
    assert record["dev_effective_rows"] == gate["effective_rows"] and record["dev_rows"] == 40
    assert record["validator"] == "information maximization on the unlabeled target inputs"
    assert any("DEV is not used to guard mcc" in line and "of 40 source validation rows" in line for line in logged)
