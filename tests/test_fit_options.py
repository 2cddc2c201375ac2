"""Regularizers and domain adaptation through the estimator, end to end on tiny real inputs."""

import numpy as np
import pytest

from headstart import TransferClassifier
from headstart.adapt import ADAPTERS
from headstart.errors import ConfigError, UnknownNameError
from headstart.regularizers import REGULARIZERS

from helpers import tiny_inputs

FAST = dict(strategy="finetune", freeze=5, epochs=2, batch_size=4, image_size=32, val_size=4, verbose=0)


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizer_trains_through_the_estimator(name):
    X, y = tiny_inputs("image", per_class=6)
    options = {"regularizer": name}
    clf = TransferClassifier(**FAST, **options).fit(X, y)
    assert any(name in term for term in clf.fit_summary_["loss_terms"])
    assert np.isfinite([h["train_loss"] for h in clf.history_]).all()


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_adaptation_method_trains_with_unlabeled_target_data(name):
    X, y = tiny_inputs("text", per_class=6)
    target, _ = tiny_inputs("text", per_class=10)
    clf = TransferClassifier(**{**FAST, "freeze": 5}, adapt=name).fit(X, y, X_target=target[12:])
    assert any(name in term for term in clf.fit_summary_["loss_terms"])
    assert np.isfinite([h["train_loss"] for h in clf.history_]).all()


def test_adapt_without_target_data_says_how_to_pass_it():
    X, y = tiny_inputs("text", per_class=4)
    with pytest.raises(ConfigError, match=r"adapt='coral' aligns .* X_target=.*--target"):
        TransferClassifier(**FAST, adapt="coral").fit(X, y)


def test_regularizer_with_linear_probe_is_refused_with_the_fix():
    X, y = tiny_inputs("text", per_class=4)
    with pytest.raises(ConfigError, match=r"regularizer='l2_sp' acts while fine-tuning; use strategy 'finetune'"):
        TransferClassifier(regularizer="l2_sp").fit(X, y)


def test_unknown_regularizer_suggests_close_matches():
    X, y = tiny_inputs("text", per_class=4)
    with pytest.raises(UnknownNameError, match=r"unknown regularizer 'l2sp'\. Did you mean 'l2_sp'"):
        TransferClassifier(**FAST, regularizer="l2sp").fit(X, y)
