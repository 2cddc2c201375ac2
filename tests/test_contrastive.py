"""strategy="contrastive": the two loss terms on hand-made batches, and fits on tiny real inputs."""

import numpy as np
import pytest
import torch

from headstart import TransferClassifier
from headstart.errors import ConfigError
from headstart.strategies.contrastive import CosinePairsTerm, SupConTerm
from headstart.terms import StepOutputs

from helpers import tiny_inputs
from test_resume import Crash, _crash_after as crash_after  # the same simulated crash as the loop's own resume tests

FAST = dict(strategy="contrastive", epochs=1, batch_size=4, image_size=32, val_size=4, verbose=0)


def _outputs(features: torch.Tensor, labels) -> StepOutputs:
    labels = torch.as_tensor(labels)
    return StepOutputs(batch={}, features=features, logits=torch.zeros(len(labels), 2), labels=labels, step=0,
                       total_steps=1)


def _clustered(per_class=4, dim=8, noise=0.05, seed=0):
    """Two classes around two orthogonal directions: ``(features (2 * per_class, dim), labels)``."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:2]
    labels = torch.arange(2).repeat_interleave(per_class)
    return centres[labels] + noise * torch.randn(len(labels), dim, generator=generator), labels


@pytest.mark.parametrize("term", [SupConTerm(), CosinePairsTerm()], ids=["supcon", "pairs"])
def test_contrastive_term_is_lower_for_clustered_features_than_for_shuffled_labels(term):
    features, labels = _clustered()
    shuffled = labels[torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])]
    assert float(term(_outputs(features, labels), None)) < float(term(_outputs(features, shuffled), None))


@pytest.mark.parametrize("term", [SupConTerm(), CosinePairsTerm()], ids=["supcon", "pairs"])
def test_contrastive_term_gradient_reaches_the_features(term):
    features, labels = _clustered(noise=0.5)
    features.requires_grad_(True)
    term(_outputs(features, labels), None).backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0


def test_pairs_term_is_zero_when_same_labels_coincide_and_others_are_orthogonal():
    features, labels = _clustered(noise=0.0)
    assert float(CosinePairsTerm()(_outputs(features, labels), None)) == pytest.approx(0.0, abs=1e-6)


def test_supcon_term_matches_the_formula_on_three_points():
    features = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = [0, 0, 1]
    tau = 0.5
    s = features @ features.T / tau  # rows are unit length already
    # Anchors 0 and 1 have one positive each (the other); anchor 2 has none and is left out.
    expected = -0.5 * ((s[0, 1] - torch.logsumexp(s[0, [1, 2]], 0)) + (s[1, 0] - torch.logsumexp(s[1, [0, 2]], 0)))
    value = SupConTerm(temperature=tau)(_outputs(features, labels), None)
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("term", [SupConTerm(), CosinePairsTerm()], ids=["supcon", "pairs"])
def test_contrastive_term_without_positive_pairs_is_zero_and_keeps_the_graph(term):
    features = torch.randn(3, 4, requires_grad=True)
    value = term(_outputs(features, [0, 1, 2]), None) if isinstance(term, SupConTerm) else \
        term(_outputs(features[:1], [0]), None)
    assert float(value.detach()) == 0.0
    value.backward()  # a batch of distinct labels must not stop training


# test_strategies fits every strategy with its defaults (supcon) on images and text; here the other objective too.
@pytest.mark.parametrize("modality,objective", [("image", "pairs"), ("text", "pairs"), ("audio", "supcon")])
def test_contrastive_fits_predicts_and_reloads_to_identical_predictions(modality, objective, tmp_path):
    X, y = tiny_inputs(modality, per_class=6)
    clf = TransferClassifier(contrastive_loss=objective, **FAST).fit(X, y)
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (len(y), 2)
    summary = clf.fit_summary_
    assert summary["strategy"] == "contrastive" and summary["contrastive_loss"] == objective
    assert summary["loss_terms"] == [f"{objective} (weight 1)"] and summary["refit_on"] == "train+validation"
    assert summary["C"] > 0 and summary["head_search"]
    clf.save(tmp_path / "run")
    loaded = TransferClassifier.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict_proba(X), probabilities)


def test_contrastive_head_is_the_logistic_head_on_the_tuned_features():
    from headstart.heads import fit_head
    from headstart.model import predict_features

    X, y = tiny_inputs("image", per_class=6)
    clf = TransferClassifier(C=1.0, val_size=0.25, **{k: v for k, v in FAST.items() if k != "val_size"}).fit(X, y)
    features = predict_features(clf.model_, list(X))
    encoded = np.searchsorted(clf.classes_, y)
    # on all rows, as the strategy fits it: the tuned embeddings as they are, not standardised
    head = fit_head(features, encoded, 2, C=1.0, standardize=False)
    np.testing.assert_allclose(clf.model_.head.weight.detach().numpy(), head.weight, rtol=1e-4, atol=1e-5)
    standardised = fit_head(features, encoded, 2, C=1.0)
    assert not np.allclose(clf.model_.head.weight.detach().numpy(), standardised.weight, rtol=1e-2, atol=1e-3)


def test_contrastive_with_a_frozen_body_prefix_reuses_its_outputs():
    X, y = tiny_inputs("text", per_class=6)
    clf = TransferClassifier(freeze=3, **FAST).fit(X, y)
    assert clf.fit_summary_["frozen_prefix"].startswith("reused"), clf.fit_summary_["frozen_prefix"]


def test_contrastive_resume_after_a_crash_ends_like_the_uninterrupted_run(tmp_path, monkeypatch):
    X, y = tiny_inputs("image", per_class=6)
    settings = {**FAST, "epochs": 2, "patience": 10}
    fit = lambda **checkpoint: TransferClassifier(**settings, **checkpoint).fit(X, y)
    reference = fit()
    crash_after(1, monkeypatch)
    with pytest.raises(Crash):
        fit(checkpoint_dir=str(tmp_path))
    monkeypatch.undo()
    resumed = fit(checkpoint_dir=str(tmp_path))
    assert resumed.fit_summary_["resumed_after_epoch"] == 1
    reference_state, resumed_state = reference.model_.state_dict(), resumed.model_.state_dict()
    assert reference_state.keys() == resumed_state.keys()
    for key in reference_state:
        torch.testing.assert_close(resumed_state[key], reference_state[key], rtol=0, atol=0, msg=key)


def test_contrastive_refuses_an_option_it_does_not_accept_with_the_fix():
    X, y = tiny_inputs("image", per_class=6)
    with pytest.raises(ConfigError, match=r"adapt='coral' aligns features while training; use strategy "
                                          r"'linear_probe', 'finetune' or 'lp_ft', not 'contrastive'"):
        TransferClassifier(adapt="coral", **FAST).fit(X, y)
    with pytest.raises(ConfigError, match=r"contrastive_loss=pairs only applies to strategy 'contrastive', not "
                                          r"'finetune'; drop contrastive_loss or change the strategy"):
        TransferClassifier(strategy="finetune", contrastive_loss="pairs").fit(X, y)
    with pytest.raises(ConfigError, match=r"contrastive_loss='triplet' is not one of supcon, pairs"):
        TransferClassifier(contrastive_loss="triplet", **FAST).fit(X, y)


def test_contrastive_schedule_defaults_to_40_epochs_over_every_tuning_row():
    from headstart.strategies.contrastive import TUNING_EPOCHS, Contrastive

    assert Contrastive.loop_defaults(12, 4, True) == {"batch_size": 16, "epochs": TUNING_EPOCHS}  # 16 rows: 1 step/epoch
    assert Contrastive.loop_defaults(12, 4, False) == {"batch_size": 12, "epochs": TUNING_EPOCHS}  # held-out rows stay out
    assert Contrastive.loop_defaults(400, 100, True) == {"batch_size": 16, "epochs": TUNING_EPOCHS}  # 32 steps/epoch
    assert TUNING_EPOCHS == 40


def test_contrastive_tunes_on_every_labeled_row_for_exactly_the_epochs_given(monkeypatch):
    import headstart.strategies.finetune as finetune_module

    seen = []
    real = finetune_module.train_classifier
    monkeypatch.setattr(finetune_module, "train_classifier",
                        lambda model, train_items, train_y, val_items, val_y, *a, **k:
                        seen.append((len(train_items), len(val_items))) or real(model, train_items, train_y, val_items,
                                                                                val_y, *a, **k))
    X, y = tiny_inputs("text", per_class=4)
    clf = TransferClassifier(**{**FAST, "epochs": 3, "patience": 1}).fit(X, y)
    assert seen == [(len(y), 0)]  # no validation rows: nothing to stop on, so patience cannot cut it short
    assert [h["epoch"] for h in clf.history_] == [1, 2, 3]
    summary = clf.fit_summary_
    assert np.isnan(summary["val_accuracy"]) and 0 <= summary["head_cv_accuracy"] <= 1  # no honest held-out score
