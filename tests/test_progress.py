"""issue 26 item 7: progress is visible. A bar on stderr when it is a terminal (feature extraction, which
predict runs too, training epochs, ranking); whole lines where it is not (a line per epoch, per
planner candidate as it starts and as it ends, per ranked backbone); never on stdout, which carries
what commands print; and the resume notice as training resumes."""

import contextlib
import csv
import dataclasses
import io
import re

import numpy as np
import pytest
import torch

from headstart import TransferClassifier
from headstart.backbones.precomputed import PrecomputedBackbone
from headstart.cache import FeatureCache
from headstart.cli import main
from headstart.config import ResolvedConfig
from headstart.model import TransferModel
from headstart.train import train_classifier

from helpers import tiny_texts


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _rows(n=200, d=8):
    return list(np.random.default_rng(0).normal(size=(n, d)).astype(np.float32))


def _captured(run, stderr: io.StringIO):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(stderr):
        result = run()
    return result, out.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("stderr, progress, shown", [(Terminal(), True, True), (io.StringIO(), True, False),
                                                     (Terminal(), False, False)])
def test_feature_extraction_shows_a_bar_on_a_terminal_stderr_only_when_asked(stderr, progress, shown):
    run = lambda: FeatureCache(None).features(PrecomputedBackbone(8), _rows(), progress=progress)
    _, out, err = _captured(run, stderr)
    assert ("features (precomputed)" in err) == shown and out == ""


def test_predicting_shows_a_bar_on_a_terminal(monkeypatch):
    model = TransferModel(PrecomputedBackbone(8), 2)
    logits, out, err = _captured(lambda: model.predict_logits(_rows(), progress=True), Terminal())
    assert logits.shape == (200, 2) and "predicting (precomputed)" in err and out == ""
    _, _, quiet = _captured(lambda: model.predict_logits(_rows()), Terminal())
    assert quiet == ""  # off unless asked: the callers pass their verbosity


def _settings(verbose):
    base = ResolvedConfig(modality="features", backbone="precomputed", feature_dim=8, device="cpu", verbose=verbose)
    return dataclasses.replace(base, epochs=3, patience=10, batch_size=8, lr=1e-2, head_lr=1e-2)


def _fit(**kwargs):
    y = np.arange(48) % 2
    X = _rows(48)
    torch.manual_seed(0)
    return train_classifier(TransferModel(PrecomputedBackbone(8), 2), X[:32], y[:32], X[32:], y[32:],
                            kwargs.pop("settings", _settings(1)), **kwargs)


def test_training_shows_an_epoch_bar_on_a_terminal_and_keeps_stdout_clean():
    _, out, err = _captured(_fit, Terminal())
    assert "epoch 1/3" in err and out == ""


def test_resume_notice_is_logged_as_training_resumes_before_its_next_epoch(tmp_path):
    class Crash(Exception):
        pass

    def crash_at_epoch_2(line):
        if line.startswith("epoch 2/"):
            raise Crash  # before epoch 2 is checkpointed: the checkpoint holds epoch 1

    with pytest.raises(Crash):
        _fit(checkpoint_dir=tmp_path, run_key="k", epoch_log=crash_at_epoch_2)
    messages = []
    result = _fit(checkpoint_dir=tmp_path, run_key="k", epoch_log=messages.append, log=messages.append)
    assert result.resumed_after_epoch == 1
    assert messages[0] == (f"resumed from the checkpoint in {tmp_path} after epoch 1 of 3 (the fit time counts this "
                           f"session only)")
    assert [m.split(":")[0] for m in messages[1:]] == ["epoch 2/3", "epoch 3/3"]


def test_planner_says_as_each_candidate_starts_and_as_it_ends_with_its_score_and_time(capsys):
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 20)
    X = rng.standard_normal((len(y), 8)).astype(np.float32) + 3 * np.eye(8, dtype=np.float32)[np.unique(y, return_inverse=True)[1]]
    TransferClassifier(strategy="auto", backbone="precomputed", epochs=1, budget="10m", verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    for name in ("linear_probe@precomputed", "contrastive@precomputed"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"[headstart] auto: trying {name} on 3 folds"))
        assert re.search(r"\(\d+ s of the 600 s budget left", lines[start])
        end = next(i for i, line in enumerate(lines) if line.startswith(f"[headstart] auto: {name} scored "))
        assert start < end and re.search(r"over 3 folds \(\d+\.\d s\)$", lines[end])
    assert re.fullmatch(r"\[headstart\] auto: \d+ s spent of the 600 s budget", lines[-1])


def test_rank_shows_progress_on_stderr_and_prints_only_the_ranking_on_stdout(tmp_path):
    X, y = tiny_texts(6)
    table = tmp_path / "texts.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *zip(X, y)])
    argv = ["rank", str(table), "--backbones", "minilm_l6", "--layers", "last", "--cache-dir", "none"]
    code, out, err = _captured(lambda: main(argv), Terminal())
    assert code == 0 and "features (minilm_l6)" in err and "features (" not in out
    assert "[headstart] ranked minilm_l6 (1 of 1): 1 layer group(s) on 12 examples in " in err
    assert out.startswith("ranked 1 backbone(s)")
    code, out, err = _captured(lambda: main([*argv, "--quiet"]), Terminal())
    assert code == 0 and err == "" and out.startswith("ranked 1 backbone(s)")
