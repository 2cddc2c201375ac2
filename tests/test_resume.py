import numpy as np
import pytest

import headstart.train as train_module
from headstart import TransferClassifier
from headstart.errors import RunFolderError

from helpers import tiny_inputs

SETTINGS = dict(strategy="finetune", epochs=4, patience=10, batch_size=4, image_size=32, val_size=4, verbose=0)


class Crash(Exception):
    pass


def _crash_after(epochs: int, monkeypatch):
    real = train_module.save_checkpoint

    def save_then_maybe_crash(folder, **kwargs):
        real(folder, **kwargs)
        if kwargs["meta"]["epoch"] == epochs:
            raise Crash(f"simulated crash after epoch {epochs}")

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_maybe_crash)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_resume_after_a_crash_ends_like_the_uninterrupted_run(modality, tmp_path, monkeypatch):
    X, y = tiny_inputs(modality, per_class=6)
    reference = TransferClassifier(**SETTINGS).fit(X, y)
    _crash_after(2, monkeypatch)
    with pytest.raises(Crash):
        TransferClassifier(checkpoint_dir=str(tmp_path), **SETTINGS).fit(X, y)
    monkeypatch.undo()
    resumed = TransferClassifier(checkpoint_dir=str(tmp_path), **SETTINGS).fit(X, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    assert (reference.fit_summary_["resumed_after_epoch"], resumed.fit_summary_["resumed_after_epoch"]) == (None, 2)
    for a, b in zip(reference.history_, resumed.history_):
        assert (a["val_accuracy"], a["val_loss"], a["train_loss"]) == (b["val_accuracy"], b["val_loss"], b["train_loss"])
    np.testing.assert_array_equal(reference.predict_proba(X), resumed.predict_proba(X))


def test_resume_says_where_it_took_up_the_interrupted_fit(tmp_path, monkeypatch, capsys):
    X, y = tiny_inputs("text", per_class=6)
    _crash_after(1, monkeypatch)
    with pytest.raises(Crash):
        TransferClassifier(checkpoint_dir=str(tmp_path), **SETTINGS).fit(X, y)
    monkeypatch.undo()
    capsys.readouterr()
    TransferClassifier(checkpoint_dir=str(tmp_path), **{**SETTINGS, "verbose": 1}).fit(X, y)
    assert (f"[headstart] resumed from the checkpoint in {tmp_path} after epoch 1 of 4 (the fit time counts this "
            f"session only)") in capsys.readouterr().out


def test_resume_refuses_a_checkpoint_of_another_fit(tmp_path, monkeypatch):
    X, y = tiny_inputs("image", per_class=6)
    _crash_after(1, monkeypatch)
    with pytest.raises(Crash):
        TransferClassifier(checkpoint_dir=str(tmp_path), **SETTINGS).fit(X, y)
    monkeypatch.undo()
    with pytest.raises(RunFolderError, match=r"belongs to another fit .*delete it"):
        TransferClassifier(checkpoint_dir=str(tmp_path), **{**SETTINGS, "lr": 1e-2}).fit(X, y)


def test_same_seed_gives_the_same_model():
    X, y = tiny_inputs("image", per_class=6)
    first = TransferClassifier(**SETTINGS).fit(X, y)
    second = TransferClassifier(**SETTINGS).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    timing_free = [[{k: v for k, v in h.items() if k != "seconds"} for h in clf.history_] for clf in (first, second)]
    assert timing_free[0] == timing_free[1]
