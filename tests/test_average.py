"""The planner's averaged candidate: the baseline's and the best transfer candidate's probabilities averaged."""

import numpy as np
import pytest

from headstart import TransferClassifier
from headstart.planner import Candidate, choose_winner, explain
from headstart.planner.average import averaged_candidate
from headstart.planner.decision import AVERAGED


def _scored(name, kind, probabilities, truth, seconds=1.0, default=False):
    probabilities = np.asarray(probabilities, dtype=float)
    correct = [int(h) for h in probabilities.argmax(1) == truth]
    return Candidate(name, kind, "x", scores=[float(np.mean(correct))], correct=correct, seconds=seconds,
                     status="scored", probabilities=probabilities.tolist(), default=default)


def _complementary(n=40):
    """A baseline right on the first 60% of examples, a transfer model right on the last 60%, each confidently
    wrong nowhere: the average is right wherever one of them is confident and right."""
    truth = np.zeros(n, dtype=int)
    base = np.tile([0.9, 0.1], (n, 1))
    base[int(0.6 * n):] = [0.45, 0.55]  # unsure and wrong
    transfer = np.tile([0.95, 0.05], (n, 1))
    transfer[: int(0.4 * n)] = [0.4, 0.6]  # unsure and wrong
    return truth, _scored("baseline:b", "baseline", base, truth, 0.1), _scored("probe@m", "transfer", transfer, truth, 2, True)


def test_average_candidate_scores_the_mean_of_its_members_probabilities_per_split():
    truth, base, probe = _complementary()
    average = averaged_candidate([base, probe], truth, [20, 20])
    assert average.kind == "average" and average.options["members"] == ["baseline:b", "probe@m"]
    expected = (np.asarray(base.probabilities) + np.asarray(probe.probabilities)) / 2
    np.testing.assert_allclose(average.probabilities, expected)
    assert average.mean == 1.0 and len(average.scores) == 2 and average.seconds == pytest.approx(2.1)


def test_average_candidate_needs_a_scored_baseline_and_transfer_candidate():
    truth, base, probe = _complementary()
    assert averaged_candidate([probe], truth, [40]) is None
    assert averaged_candidate([base], truth, [40]) is None


def test_choose_winner_keeps_the_average_when_it_beats_both_members_and_the_choice():
    truth, base, probe = _complementary()
    scored = [base, probe, averaged_candidate([base, probe], truth, [40])]
    decision = choose_winner(scored, 40)
    assert decision.winner is scored[2] and decision.rule == AVERAGED and not decision.negative_transfer
    verdict, reasons = explain(decision, scored)
    assert verdict.startswith("transfer helped alongside the baseline: averaging the probabilities of baseline:b")
    assert reasons[scored[2].name].startswith("won: held-out accuracy 1.000")


def test_choose_winner_keeps_the_single_model_when_the_average_does_not_beat_both():
    truth = np.zeros(40, dtype=int)
    base = _scored("baseline:b", "baseline", np.tile([0.4, 0.6], (40, 1)), truth, 0.1)  # always wrong
    probe = _scored("probe@m", "transfer", np.tile([0.9, 0.1], (40, 1)), truth, 2, default=True)  # always right
    average = averaged_candidate([base, probe], truth, [40])
    decision = choose_winner([base, probe, average], 40)
    assert decision.winner is probe and decision.rule != AVERAGED
    _, reasons = explain(decision, [base, probe, average])
    assert reasons[average.name].startswith("not chosen: ") and "beats both its members" in reasons[average.name]


def test_averaged_model_round_trips_through_a_run_folder_to_identical_predictions(tmp_path):
    from helpers import tiny_texts

    from headstart.baselines import BASELINES
    from headstart.ensemble import AveragedModel

    X, y = tiny_texts(8)
    clf = TransferClassifier(strategy="linear_probe", verbose=0).fit(X, y)
    encoded = np.searchsorted(clf.classes_, y)
    baseline = BASELINES.get("tfidf_logistic")()
    baseline.fit(X, encoded, [], encoded[:0], len(clf.classes_))
    averaged = AveragedModel([baseline, clf.model_])
    clf._set_model(averaged)  # as the planner's averaged winner is set
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(expected, (_softmax(baseline.predict_logits(X)) +
                                          _softmax(np.asarray(averaged.members[1].predict_logits(X)))) / 2, rtol=1e-5)
    clf.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("member-")) == ["member-0", "member-1"]
    loaded = TransferClassifier.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


@pytest.mark.parametrize("kind", ["ensemble", ["average"], 3])
def test_run_folder_with_an_unknown_model_kind_names_the_field_and_value(tmp_path, kind):
    import json

    from headstart.errors import RunFolderError
    from headstart.runs import read_config

    (tmp_path / "config.json").write_text(json.dumps({"model_kind": kind, "format_version": 1}))
    with pytest.raises(RunFolderError, match=r"field 'model_kind' = .* is not one of 'transfer', 'baseline', 'average'"):
        read_config(tmp_path)
