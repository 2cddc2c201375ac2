"""The training loop's data-side regularization and checkpoint averaging, end to end, and the intervals
the CLI prints next to accuracies measured on few examples."""

import contextlib
import dataclasses
import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

import headstart.augment as augment_module
import headstart.train as train_module
from headstart import TransferClassifier
from headstart.backbones.precomputed import PrecomputedBackbone
from headstart.backbones.timm_backbone import TimmBackbone
from headstart.checkpoint import average_states, trainable_state
from headstart.cli import main
from headstart.model import TransferModel
from headstart.config import ResolvedConfig
from headstart.train import default_batch_size, train_classifier

from helpers import tiny_images, tiny_inputs

FAST = dict(strategy="finetune", epochs=2, batch_size=4, val_size=4, verbose=0)
INTERVAL = r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]"


# --------------------------------------------------------------------------- each option, end to end


def _spy(monkeypatch, owner, name, calls: list):
    real = getattr(owner, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((args, kwargs, out))
        return out

    monkeypatch.setattr(owner, name, spy)


def _check_fit(clf, X, y):
    assert [h["epoch"] for h in clf.history_] == [1, 2]
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in clf.history_)
    assert set(clf.predict(X)) <= set(y)


@pytest.mark.parametrize("options", [{"cutmix": 1.0}, {"mixup": 0.2, "cutmix": 1.0, "label_smoothing": 0.1}])
def test_mixing_trains_on_mixed_batches_with_soft_targets(options, monkeypatch):
    X, y = tiny_inputs("image", per_class=4)
    calls = []
    _spy(monkeypatch, augment_module.BatchMixer, "__call__", calls)
    clf = TransferClassifier(image_size=32, **options, **FAST).fit(X, y)
    _check_fit(clf, X, y)
    assert len(calls) == 2  # 4 training images, batch 4, 2 epochs
    for (_, inputs, labels), _, (mixed, targets) in calls:
        assert mixed.shape == (4, 3, 32, 32) and targets.shape == (4, 2)
        torch.testing.assert_close(targets.sum(1), torch.ones(4))


def test_randaugment_trains_with_it_in_the_training_transform_only(monkeypatch):
    X, y = tiny_inputs("image", per_class=4)
    used = []
    real = TimmBackbone._transform
    monkeypatch.setattr(TimmBackbone, "_transform",
                        lambda self, train: used.append((train, repr(t := real(self, train)))) or t)
    clf = TransferClassifier(image_size=32, randaugment=True, **FAST).fit(X, y)
    _check_fit(clf, X, y)
    assert {train for train, _ in used} == {True, False}
    assert all(("RandAugment" in text) == train for train, text in used)
    assert "RandAugment" not in repr(clf.backbone_._transform(True))  # reset once trained


def test_label_smoothing_reaches_the_loss(monkeypatch):
    X, y = tiny_inputs("image", per_class=4)
    made = []
    real = torch.nn.CrossEntropyLoss
    monkeypatch.setattr(torch.nn, "CrossEntropyLoss", lambda **kw: made.append(kw) or real(**kw))
    _check_fit(TransferClassifier(image_size=32, label_smoothing=0.1, **FAST).fit(X, y), X, y)
    assert made == [{"label_smoothing": 0.1}]


def test_token_dropout_trains_and_drops_only_in_training(monkeypatch):
    X, y = tiny_inputs("text", per_class=4)
    calls = []
    _spy(monkeypatch, augment_module, "drop_tokens", calls)
    clf = TransferClassifier(token_dropout=0.2, **FAST).fit(X, y)
    _check_fit(clf, X, y)
    assert len(calls) == 2 and all(args[2] == 0.2 for args, _, _ in calls)  # one per training batch, none in eval


# --------------------------------------------------------------------------- checkpoint averaging


def _separable(n=48, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, d)).astype(np.float32) + 1.5 * y[:, None]
    return list(X), y


def _train(settings, monkeypatch=None):
    X, y = _separable()
    torch.manual_seed(0)
    model = TransferModel(PrecomputedBackbone(8), 2)
    result = train_classifier(model, X[:32], y[:32], X[32:], y[32:], settings)
    return model, result


@pytest.mark.parametrize("n_train, expected", [(1, 8), (80, 8), (128, 8), (200, 13), (496, 31), (512, 32), (9000, 32)])
def test_default_batch_size_gives_small_data_16_steps_per_epoch_between_8_and_32(n_train, expected):
    assert default_batch_size(n_train) == expected


def test_average_states_means_floats_and_keeps_counters():
    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}]
    averaged = average_states(states)
    torch.testing.assert_close(averaged["w"], torch.tensor([2.0, 4.0]))
    assert averaged["n"].item() == 3


def test_checkpoint_average_is_kept_when_at_least_as_good():
    settings = ResolvedConfig(epochs=4, patience=10, batch_size=8, lr=1e-2, head_lr=1e-2, device="cpu",
                             average_checkpoints=3)
    model, result = _train(settings)
    record = result.checkpoint_average
    assert record == result.history[-1]["checkpoint_average"]
    assert record["k"] == 3 and len(record["epochs"]) == 3 and len(set(record["epochs"])) == 3
    ranked = sorted(result.history, key=lambda h: (-h["val_accuracy"], h["val_loss"], h["epoch"]))
    assert record["epochs"] == [h["epoch"] for h in ranked[:3]]
    assert record["kept"] == (record["val_accuracy"] >= record["best_epoch_val_accuracy"])
    assert record["kept"]  # separable data: the average scores as well as the best epoch
    assert result.best_val_accuracy == record["val_accuracy"]
    X, y = _separable()
    val_accuracy, _ = train_module._evaluate(model, X[32:], y[32:], 8)
    assert val_accuracy == record["val_accuracy"]


def test_checkpoint_average_is_dropped_when_worse(monkeypatch):
    settings = ResolvedConfig(epochs=3, patience=10, batch_size=8, lr=1e-2, head_lr=1e-2, device="cpu",
                             average_checkpoints=2)
    reference, plain = _train(dataclasses.replace(settings, average_checkpoints=0))
    # an "average" that predicts one class only: worse than the best epoch, so it must be dropped
    monkeypatch.setattr(train_module, "average_states",
                        lambda states: {k: torch.zeros_like(v) for k, v in states[0].items()})
    model, result = _train(settings)
    record = result.checkpoint_average
    assert record["kept"] is False and record["val_accuracy"] < record["best_epoch_val_accuracy"]
    assert result.best_val_accuracy == plain.best_val_accuracy == record["best_epoch_val_accuracy"]
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)


def test_trainable_state_holds_trainable_parameters_and_buffers_only():
    from headstart.backbones import create_backbone

    model = TransferModel(create_backbone("efficientnet_lite0", pretrained=True, image_size=32), 2)
    model.backbone.freeze(len(model.backbone.layer_groups()) - 1)
    state = trainable_state(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in model.named_buffers()}
    assert set(state) == trainable | buffers and "head.weight" in state
    assert len(state) < len(model.state_dict()) and all(v.device.type == "cpu" for v in state.values())


# --------------------------------------------------------------------------- resume, bit-identical


class Crash(Exception):
    pass


def test_resume_with_averaging_and_mixup_ends_like_the_uninterrupted_run(tmp_path, monkeypatch):
    X, y = tiny_images(per_class=4)
    settings = dict(strategy="finetune", epochs=3, patience=10, batch_size=4, image_size=32, val_size=4, verbose=0,
                    average_checkpoints=2, mixup=0.2)
    reference = TransferClassifier(**settings).fit(X, y)
    real = train_module.save_checkpoint

    def save_then_crash(folder, **kwargs):
        real(folder, **kwargs)
        if kwargs["meta"]["epoch"] == 2:
            assert len(kwargs["average_states"]) == 2  # the averaging states travel in the checkpoint
            raise Crash("simulated crash after epoch 2")

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        TransferClassifier(checkpoint_dir=str(tmp_path), **settings).fit(X, y)
    monkeypatch.undo()
    resumed = TransferClassifier(checkpoint_dir=str(tmp_path), **settings).fit(X, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    for a, b in zip(reference.history_, resumed.history_):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert "checkpoint_average" in resumed.history_[-1]
    np.testing.assert_array_equal(reference.predict_proba(X), resumed.predict_proba(X))


# --------------------------------------------------------------------------- the CLI shows intervals


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_fit_with_the_new_options_and_evaluate_print_intervals(tmp_path):
    """Also mixup alone, end to end."""
    X, y = tiny_images(per_class=6)
    for i, (pixels, label) in enumerate(zip(X, y)):
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(tmp_path / "data" / label / f"{i}.png")
    code, out, err = _run(["fit", tmp_path / "data", "--out", tmp_path / "run", "--strategy", "finetune",
                           "--epochs", 2, "--batch-size", 4, "--image-size", 32, "--mixup", 0.2,
                           "--randaugment", "--average-checkpoints", 2, "--label-smoothing", 0.1, "--quiet"])
    assert code == 0, err
    assert re.search(rf"validation accuracy: {INTERVAL} \(95% interval\)", out), out
    params = json.loads((tmp_path / "run" / "config.json").read_text())["params"]
    assert (params["mixup"], params["randaugment"], params["average_checkpoints"], params["label_smoothing"]) == \
        (0.2, True, 2, 0.1)
    code, out, err = _run(["evaluate", tmp_path / "run", tmp_path / "data"])
    assert code == 0, err
    assert re.search(rf"accuracy:  {INTERVAL} \(95% interval\)", out), out
    report = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    interval = report["accuracy_interval"]
    assert interval["low"] <= report["accuracy"] <= interval["high"] and interval["confidence"] == 0.95


# --------------------------------------------------------------------------- progress a log file keeps


def test_finetune_logs_a_line_per_epoch_and_says_when_it_stops_early(capsys):
    X, y = tiny_inputs("text", per_class=6)
    TransferClassifier(**{**FAST, "epochs": 6, "patience": 1, "lr": 0.0, "verbose": 1}).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[headstart] epoch ")]
    # lr 0 leaves the validation score where epoch 1 put it, so patience 1 stops after epoch 2
    assert len(lines) == 2
    # 4 validation examples: the accuracy carries its 95% interval, as every accuracy on a small split does
    assert re.fullmatch(r"\[headstart\] epoch 1/6: train loss \d+\.\d{4}, validation accuracy " + INTERVAL +
                        r" \(loss \d+\.\d{4}\), \d+ s", lines[0])
    assert lines[1].endswith("; stopping early: no better validation score for 1 epochs, keeping epoch 1")


def test_planner_candidate_fits_do_not_log_their_epochs(capsys):
    import functools

    from headstart.fitting import fit_strategy, resolve
    from headstart.planner import Candidate, fit_candidate

    X, y = tiny_inputs("text", per_class=6)
    clf = TransferClassifier(**{**FAST, "verbose": 1})
    data = clf._read(X, y, require_labels=True)
    encoded = np.unique(y, return_inverse=True)[1]
    fit = functools.partial(fit_strategy, n_classes=2)
    fit_candidate(resolve(clf.get_params(), data), data, encoded, 2, fit,
                  Candidate("finetune@minilm_l6", "transfer", "finetune", "minilm_l6", 0), np.arange(len(y)), log=clf._log)
    out = capsys.readouterr().out
    assert "froze 0 layer group(s)" in out and "[headstart] epoch " not in out


def test_fit_without_validation_rows_keeps_its_last_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 5)).astype(np.float32), np.repeat([0, 1], 4)
    model = TransferModel(PrecomputedBackbone(5), 2)
    settings = dataclasses.replace(ResolvedConfig(modality="features", backbone="precomputed", feature_dim=5),
                                   epochs=4, patience=1, batch_size=4, lr=1e-2, head_lr=1e-1, verbose=0)
    result = train_classifier(model, list(X), y, [], np.array([], dtype=int), settings)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]  # NaN scores never stop it early
    assert result.best_epoch == 4


def test_epoch_batches_with_lengths_group_similar_lengths_and_still_reshuffle():
    from headstart.train import BATCHES_PER_BUCKET, epoch_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=200)
    plain = epoch_batches(200, 8, seed=3, epoch=1)
    grouped = epoch_batches(200, 8, seed=3, epoch=1, lengths=lengths)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(200))  # every example once
    assert [len(b) for b in grouped].count(8) == 25
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)
    assert padded(grouped) < 0.85 * padded(plain)
    again = epoch_batches(200, 8, seed=3, epoch=1, lengths=lengths)  # a function of (seed, epoch): resumable
    assert all(np.array_equal(a, b) for a, b in zip(grouped, again))
    next_epoch = epoch_batches(200, 8, seed=3, epoch=2, lengths=lengths)
    assert {frozenset(b.tolist()) for b in grouped} != {frozenset(b.tolist()) for b in next_epoch}
    assert BATCHES_PER_BUCKET * 8 < 200  # buckets are smaller than the data, so batches mix


def test_text_fit_batches_by_length_unless_a_term_compares_examples_in_a_batch(monkeypatch):
    import headstart.train as train

    X, y = tiny_inputs("text", per_class=8)
    seen = []
    original = train.epoch_batches
    monkeypatch.setattr(train, "epoch_batches", lambda *args, **kwargs: seen.append(args[4] if len(args) > 4 else None)
                        or original(*args, **kwargs))
    TransferClassifier(strategy="finetune", epochs=1, batch_size=4, val_size=4, cache_dir="none", verbose=0).fit(X, y)
    assert seen and all(lengths is not None for lengths in seen)  # text pads: grouped by length
    seen.clear()
    TransferClassifier(strategy="contrastive", epochs=1, batch_size=4, val_size=4, cache_dir="none", verbose=0).fit(X, y)
    assert seen and all(lengths is None for lengths in seen)  # in-batch contrastive pairs: random batches
