"""issue 26 item 1: ``budget`` is a deadline. The loop stops by it keeping its best epoch, refuses a first
epoch that cannot end in time, and the planner runs every fit after its first candidate (the refit
included) by it and records what it spent against it. Time is a fake clock throughout: nothing here
depends on how fast the machine is."""

import dataclasses

import numpy as np
import pytest
import torch

import headstart.estimator as estimator_module
import headstart.train as train_module
from headstart import TransferClassifier
from headstart.backbones.precomputed import PrecomputedBackbone
from headstart.config import ResolvedConfig
from headstart.model import TransferModel
from headstart.terms import LossTerm
from headstart.errors import OutOfTimeError
from headstart.train import run_until, train_classifier

from helpers import separable_features


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tick(LossTerm):
    """Each training step takes ``seconds(step)`` on the fake clock; adds nothing to the loss."""

    name = "tick"
    reads_batch = False

    def __init__(self, clock: FakeClock, seconds=lambda step: 1.0):
        super().__init__(weight=1.0)
        self.clock, self.seconds, self.steps = clock, seconds, 0

    def forward(self, outputs, model):
        self.clock.now += self.seconds(outputs.step)
        self.steps += 1
        return outputs.logits.sum() * 0.0


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(train_module, "clock", fake)
    return fake


def _settings(**changes):
    base = ResolvedConfig(modality="features", backbone="precomputed", feature_dim=8, device="cpu", verbose=0)
    return dataclasses.replace(base, **{"epochs": 10, "patience": 10, "batch_size": 8, "lr": 1e-2, "head_lr": 1e-2,
                                        **changes})


def _data(n_train=32):
    rng = np.random.default_rng(0)
    y = np.arange(n_train + 16) % 2
    X = list(rng.normal(size=(len(y), 8)).astype(np.float32) + 1.5 * y[:, None])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _train(tick: Tick, n_train=32, **changes):
    torch.manual_seed(0)
    model = TransferModel(PrecomputedBackbone(8), 2)
    lines = []
    result = train_classifier(model, *_data(n_train), _settings(**changes), terms=[tick], epoch_log=lines.append)
    return model, result, lines


def test_training_stops_before_an_epoch_that_would_end_after_the_deadline(clock):
    tick = Tick(clock)  # 4 steps of 1 s per epoch
    with run_until(clock.now + 10):
        model, result, lines = _train(tick)
    # epoch 1 ends at +4 s, epoch 2 at +8 s; a third would end at +12 s, after the deadline
    assert [h["epoch"] for h in result.history] == [1, 2] and tick.steps == 8
    assert result.deadline_stop.startswith("stopped by the time budget after epoch 2 of 10: the next epoch would end "
                                           "after the deadline")
    assert lines[-1] == result.deadline_stop
    assert result.best_epoch in (1, 2)


def test_training_cut_mid_epoch_by_the_deadline_keeps_its_best_finished_epoch(clock):
    tick = Tick(clock, seconds=lambda step: 1.0 if step < 4 else 3.0)  # epoch 2 is slower than epoch 1 said
    with run_until(clock.now + 10):
        model, result, _ = _train(tick)
    assert [h["epoch"] for h in result.history] == [1]  # epoch 2 was cut after 2 of its 4 steps, and dropped
    assert tick.steps == 6 and result.best_epoch == 1
    assert "the deadline came during epoch 2, which is dropped; keeping epoch 1" in result.deadline_stop
    *_, val_items, val_y = _data()
    # the model holds epoch 1's weights, not the half-trained epoch 2's
    assert train_module._evaluate(model, val_items, val_y, 8)[1] == result.history[0]["val_loss"]


def test_training_without_a_deadline_runs_every_epoch(clock):
    _, result, _ = _train(Tick(clock))
    assert len(result.history) == 10 and result.deadline_stop == ""


def test_first_epoch_that_cannot_end_in_time_is_refused_after_a_few_timed_steps(clock):
    tick = Tick(clock)  # 16 steps of 1 s: the first epoch needs 16 s
    with run_until(clock.now + 8), pytest.raises(OutOfTimeError, match=r"its first epoch needed about 14 s more"):
        _train(tick, n_train=64, batch_size=4)
    assert tick.steps == train_module.TIMED_STEPS  # refused before spending the time, not at the deadline


def test_a_fit_that_must_end_with_a_model_finishes_its_first_epoch_then_stops(clock):
    tick = Tick(clock)
    with run_until(clock.now + 8, finish_first_epoch=True):
        _, result, _ = _train(tick, n_train=64, batch_size=4)
    assert [h["epoch"] for h in result.history] == [1] and tick.steps == 16


def test_run_until_keeps_an_earlier_enclosing_deadline(clock):
    with run_until(clock.now + 5), run_until(clock.now + 50):
        assert train_module.current_deadline().at == clock.now + 5
    assert train_module.current_deadline() is None


# --------------------------------------------------------------------------- the planner


def _timed_fits(monkeypatch, clock: FakeClock, seconds_per_fit: float) -> list:
    """Every planner fit takes ``seconds_per_fit`` on the fake clock; returns the (strategy, deadline) each saw."""
    seen = []
    real = estimator_module.fit_strategy

    def fit_strategy(config, *args, **kwargs):
        seen.append((config.strategy, train_module.current_deadline(), clock.now))
        result = real(config, *args, **kwargs)
        clock.now += seconds_per_fit
        return result

    monkeypatch.setattr(estimator_module, "fit_strategy", fit_strategy)
    return seen


def _auto(budget: str, per_class: int = 20, **options):
    X, y = separable_features(per_class)
    return TransferClassifier(strategy="auto", backbone="precomputed", epochs=2, budget=budget, **options).fit(X, y)


def test_planner_skips_every_rung_once_the_budget_is_spent_and_flags_the_overrun(clock, monkeypatch, capsys):
    _timed_fits(monkeypatch, clock, 100.0)
    clf = _auto("250s", verbose=1)
    plan = clf.plan_
    status = {c["name"]: (c["status"], c["reason"]) for c in plan["candidates"]}
    # the first candidate always runs (the fit must end with a model): 3 folds, 300 s, past the 250 s budget
    assert status["linear_probe@precomputed"][0] == "scored"
    assert status["contrastive@precomputed"] == ("skipped", "skipped: no time left, 0 s of the 250 s budget left")
    # the refit is counted: 3 scoring fits and the refit at 100 s each
    assert plan["budget_seconds"] == 250 and plan["spent_seconds"] == 400 and plan["over_budget_seconds"] == 150
    assert plan["winner_refit"] is True
    assert "[headstart] auto: 400 s spent of the 250 s budget; over budget by 150 s (60%)" in capsys.readouterr().out


def test_planner_runs_each_fit_after_the_first_candidate_and_the_refit_by_the_deadline(clock, monkeypatch):
    start = clock.now
    seen = _timed_fits(monkeypatch, clock, 100.0)
    clf = _auto("1000s", verbose=0)
    ends = start + 1000
    scored = [c for c in clf.plan_["candidates"] if c["status"] == "scored" and c["kind"] == "transfer"]
    assert len(scored) == 2  # the probe and contrastive body tuning, 3 folds each (tiny data: LP-FT not tried)
    first, rest, refits = seen[:3], seen[3:6], seen[6:]
    assert all(deadline is None for _, deadline, _ in first)  # the first candidate (the probe) runs whatever the time
    assert all(d is not None and not d.finish_first_epoch and began < d.at <= ends for _, d, began in rest)
    # a candidate that may win and need a refit leaves it time: its 3 fits share what is left less the refit's share
    contrastive = [d.at - began for strategy, d, began in rest if strategy == "contrastive"]
    assert contrastive[0] == pytest.approx((ends - start - 300) / 4.5)
    assert refits and all(d.at == ends and d.finish_first_epoch for _, d, _ in refits)  # through one epoch at least
    plan = clf.plan_
    assert plan["over_budget_seconds"] == max(0.0, plan["spent_seconds"] - 1000)


def test_planner_records_a_rung_whose_first_epoch_cannot_end_in_time_as_skipped(clock, monkeypatch):
    real = train_module.train_classifier

    def slow(*args, **kwargs):  # every training fit after the first candidate runs out of time at once
        if train_module.current_deadline() is not None:
            raise OutOfTimeError("its first epoch needed about 500 s more", 500.0)
        return real(*args, **kwargs)

    import headstart.strategies.finetune as finetune_module

    monkeypatch.setattr(finetune_module, "train_classifier", slow)
    clf = _auto("1000s", verbose=0)
    status = {c["name"]: (c["status"], c["reason"]) for c in clf.plan_["candidates"]}
    assert status["contrastive@precomputed"][0] == "skipped"
    assert status["contrastive@precomputed"][1].startswith("skipped: its first epoch needed about 500 s more; ")
    # from 30 per class LP-FT is a rung after the default; it trains what contrastive body tuning does, and
    # the failed fit said how long that takes, more than the 400 s budget: not tried
    status = {c["name"]: c["reason"] for c in _auto("400s", per_class=30, verbose=0).plan_["candidates"]}
    assert status["contrastive@precomputed"].startswith("skipped: its first epoch needed about 500 s more; ")
    assert status["lp_ft@precomputed"].startswith("skipped: about 500 s needed, ")
    assert clf.plan_["winner"] == "linear_probe@precomputed"


def test_ranking_leaves_a_backbone_out_when_its_pass_would_take_more_than_its_share_of_the_budget(clock, monkeypatch):
    import headstart.selection.rank as rank_module
    from headstart.planner.ladder import RANK_SHARE, rank
    from headstart.selection.rank import RankRow

    def fake_rank(items, labels, names, **options):  # 10 s per million parameters
        from headstart.backbones import ZOO

        clock.now += 10 * ZOO.get(names[0]).info.params_millions / 22.7
        return [RankRow(names[0], "last", 0, "logme", 1.0, 0.0)]

    monkeypatch.setattr(rank_module, "rank_backbones", fake_rank)
    config = ResolvedConfig(modality="text", backbone_choices=("minilm_l6", "mpnet_base"))
    data = type("Data", (), {"inputs": ["a", "b"]})
    lines = []
    # minilm_l6 took 10 s, so mpnet_base is expected to take about 48 s more: past a quarter of 100 s
    _, freeze = rank(config, data, np.array([0, 1]), None, 512, ends=clock.now + 100, log=lines.append)
    assert list(freeze) == ["minilm_l6"] and RANK_SHARE == 0.25
    assert lines == ["auto: not ranking mpnet_base: its pass would take about 48 s, and ranking may use 25% of the "
                     "budget (25 s); a larger budget ranks it"]
    _, freeze = rank(config, data, np.array([0, 1]), None, 512, ends=clock.now + 1000, log=lines.append)
    assert list(freeze) == ["minilm_l6", "mpnet_base"]


def test_a_fit_whose_set_up_took_its_time_is_refused_before_its_first_step(clock):
    tick = Tick(clock)
    with run_until(clock.now - 1), pytest.raises(OutOfTimeError, match="before its first epoch began"):
        _train(tick)
    assert tick.steps == 0
