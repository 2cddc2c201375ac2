"""``plan_and_fit``: rank, build the ladder, score each rung, choose, keep or refit the winner.

The planner never sees the estimator. It receives the resolved configuration, the data and a
``fit(config, data, encoded, *, log, refit_on_validation)`` callable that runs one strategy's fit;
each candidate is a variant of the configuration (``dataclasses.replace``), fitted through that
callable, and the outcome is a :class:`~.decision.Decision` that ``plan_`` only formats.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import open_cache
from ..config import ResolvedConfig
from ..data import stratified_split
from ..ensemble import AveragedModel
from ..intervals import accuracy_text
from ..selection.rank import default_max_examples
from ..strategies import STRATEGIES
from .average import averaged_candidate
from .candidates import Candidate, rank_key, settled_default
from .decision import Decision, choose_winner
from .explain import explain
from .ladder import TINY_FOLDS, build_ladder, check_enough_per_class, planner_splits, rank

FitFunction = Callable[..., Any]  # fit(config, data, encoded, *, log, refit_on_validation) -> StrategyResult


@dataclass
class PlanOutcome:
    model: Any  # the kept or refit winner: a TransferModel or a no-transfer baseline
    decision: Decision
    plan: dict  # what plan_ records


def plan_and_fit(config: ResolvedConfig, data, encoded: np.ndarray, classes, fit: FitFunction,
                 log: Callable[[str], None]) -> PlanOutcome:
    started = time.perf_counter()
    check_enough_per_class(encoded, classes)
    n_classes = len(classes)
    rank_limit = default_max_examples(n_classes)
    ranking, freeze_depths = rank(config, data, encoded, open_cache(config.cache_dir), rank_limit)
    backbones = list(config.backbone_choices)
    log(f"auto: ranked {len(ranking)} layer group{'s' if len(ranking) != 1 else ''} of {', '.join(backbones)} "
        f"with LogME on {min(len(encoded), rank_limit)} examples in {time.perf_counter() - started:.1f} s; "
        f"suggested freeze depth {', '.join(f'{b} {k}' for b, k in freeze_depths.items())}")
    candidates, kept = build_ladder(config, data.modality, backbones, ranking, freeze_depths, encoded)
    splits = planner_splits(config, encoded)
    run = _Run(config, data, encoded, n_classes, fit, log, splits)
    kept_models = run.score_ladder(candidates, started)
    scored = [c for c in candidates if c.status == "scored"]
    average = averaged_candidate(scored, np.concatenate([encoded[val] for _, val in splits]),
                                 [len(val) for _, val in splits])
    if average is not None:
        candidates.append(average)
        scored.append(average)
        log(f"auto: {average.name} scored {accuracy_text(average.mean, len(average.correct))} on the same held-out "
            f"predictions (no extra fit)")
    held_out = sum(len(val) for _, val in splits)  # every score pools the splits' held-out parts
    decision = choose_winner(scored, held_out)
    verdict, reasons = explain(decision, scored)
    for candidate in scored:
        candidate.reason = reasons[candidate.name]
    log(verdict)
    winner = decision.winner
    if winner.kind == "average":
        members = [next(c for c in candidates if c.name == name) for name in winner.options["members"]]
        finals = [run.final_model(member, kept_models) for member in members]
        final, refit = AveragedModel([model for model, _ in finals]), any(refit for _, refit in finals)
    else:
        final, refit = run.final_model(winner, kept_models)
    plan = {
        "budget_seconds": config.budget_seconds, "spent_seconds": time.perf_counter() - started,
        "splits": len(splits), "split_sizes": [len(splits[0][0]), len(splits[0][1])],  # the first split's
        "split_kind": "the fit's own validation split" if run.shared else f"stratified {TINY_FOLDS}-fold cross-validation",
        "held_out_predictions": held_out,
        "winner_refit": refit,
        "ranking": ranking, "ranked_examples": min(len(encoded), rank_limit),
        "freeze_suggestions": freeze_depths, "kept_backbones": kept,
        # ``correct``: 1/0 per held-out example, splits in order, so the paired standard errors can be redone;
        # ``log_loss``: -log of the probability given to the true class, for the same examples
        # (the class probabilities stay out: n_held_out x n_classes per candidate)
        "candidates": [{**{k: v for k, v in dataclasses.asdict(c).items() if k != "probabilities"},
                        "mean": c.mean, "std": c.std} for c in candidates],
        "winner": winner.name, "baseline": decision.baseline.name if decision.baseline else None,
        # the ladder's defaults at this data size, and the one that counted (the better on held-out data)
        "defaults": [c.name for c in candidates if c.default],
        "default": decision.default.name if decision.default else None,
        "rule": decision.rule, "negative_transfer": decision.negative_transfer, "verdict": verdict,
    }
    return PlanOutcome(final, decision, plan)


@dataclass
class _Run:
    """One planner run's fixed inputs, so that scoring and fitting a candidate take only the candidate."""

    config: ResolvedConfig
    data: Any
    encoded: np.ndarray
    n_classes: int
    fit: FitFunction
    log: Callable[[str], None]
    splits: list

    def __post_init__(self):
        self.shared = len(self.splits) == 1  # the fit's own validation split: see planner_splits

    def score_ladder(self, candidates: list[Candidate], started: float) -> dict:
        """Score every candidate the budget allows; return the scoring fits kept as final models."""
        kept_models, seconds_per_fit = {}, {}
        budget = self.config.budget_seconds
        for candidate in candidates:
            if candidate.status == "skipped":  # already decided by the data size, with its reason
                self.log(f"auto: {candidate.name} skipped ({candidate.reason})")
                continue
            spent = time.perf_counter() - started
            kept_as_scored = self.shared and getattr(_strategy_of(candidate), "kept_as_scored", False)
            expected = _expected_cost(candidate, seconds_per_fit) * len(self.splits) * (1 if kept_as_scored else 2)
            if expected and spent + expected > budget:
                candidate.status = "skipped"
                candidate.reason = (f"skipped: about {expected:.0f} s needed, {max(0, budget - spent):.0f} s of the "
                                    f"{budget:.0f} s budget left")
                self.log(f"auto: {candidate.name} {candidate.reason}")
                continue
            t0 = time.perf_counter()
            model = self.score(candidate)
            candidate.seconds = time.perf_counter() - t0
            seconds_per_fit[candidate.strategy] = candidate.seconds / len(self.splits)
            candidate.status = "scored"
            if kept_as_scored:
                kept_models[candidate.name] = model
                drop_losers(kept_models, candidates)
            held = len(candidate.correct)
            self.log(f"auto: {candidate.name} scored {accuracy_text(candidate.mean, held)} on {held} held-out "
                     f"predictions over {len(self.splits)} {'folds' if len(self.splits) > 1 else 'split'} "
                     f"({candidate.seconds:.1f} s)")
        return kept_models

    def final_model(self, candidate: Candidate, kept_models: dict):
        """``(model, refit)``: the candidate's scoring fit when it is kept as scored, else a refit on every row."""
        model = kept_models.pop(candidate.name, None)
        if model is not None:
            split = self.splits[0]
            self.log(f"auto: keeping {candidate.name} as scored: trained on {len(split[0])} of the {len(self.encoded)} "
                     f"labeled examples, its epoch chosen on the other {len(split[1])}, as a fit of "
                     f"{candidate.strategy} alone would be")
            return model, False
        self.log(f"auto: refitting {candidate.name} on all {len(self.encoded)} labeled examples")
        return self.fit_candidate(candidate, np.arange(len(self.encoded)), part="all"), True

    def score(self, candidate: Candidate):
        """Fit ``candidate`` on each split's training part and record its hits and log-loss on the held-out
        part; return the last split's model (with one split, the fit a fixed strategy would make)."""
        for number, (train_idx, val_idx) in enumerate(self.splits, 1):
            if self.shared:  # fit as a fixed fit would (it splits off val_idx itself) but without refitting on it
                model = self.fit_candidate(candidate, np.arange(len(self.encoded)), part="all", quiet=True,
                                           train_on_validation=False)
            else:
                model = self.fit_candidate(candidate, train_idx, part=f"split-{number}", quiet=True)
            logits = np.asarray(model.predict_logits([self.data.inputs[i] for i in val_idx]), dtype=np.float64)
            truth = self.encoded[val_idx]
            hits = logits.argmax(1) == truth
            candidate.scores.append(float(hits.mean()))
            candidate.correct.extend(int(h) for h in hits)
            log_p = logits - logits.max(1, keepdims=True)
            log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
            candidate.log_loss.extend(float(-v) for v in log_p[np.arange(len(val_idx)), truth])
            candidate.probabilities.extend(np.exp(log_p).tolist())
        return model

    def fit_candidate(self, candidate: Candidate, rows, *, part: str = "all", quiet: bool = False,
                      train_on_validation: bool = True):
        """Fit ``candidate`` on ``rows``, which it splits into training and validation rows as any fit
        does. With a checkpoint folder, each (candidate, part) checkpoints in its own subfolder,
        ``planner/<candidate>/<part>``: two fits sharing one would refuse each other's checkpoint (other
        data), or worse, resume it (same data, another freeze depth). ``quiet``: the fit logs nothing
        (a scoring fit; the planner logs its outcome in one line). ``train_on_validation=False``: a head
        chosen on the validation rows is not refit with them, so that it can be scored on them."""
        labels = self.encoded[rows]
        items = [self.data.inputs[i] for i in rows]
        if candidate.kind == "baseline":
            from ..baselines import BASELINES

            inner_train, inner_val = stratified_split(labels, self.config.val_size, self.config.random_state)
            model = BASELINES.get(candidate.strategy)()
            model.fit([items[i] for i in inner_train], labels[inner_train], [items[i] for i in inner_val],
                      labels[inner_val], self.n_classes, refit_on_validation=train_on_validation,
                      random_state=self.config.random_state)
            return model
        return self.fit(self.variant(candidate, part), dataclasses.replace(self.data, inputs=items, labels=labels),
                        labels, log=(lambda message: None) if quiet else self.log,
                        refit_on_validation=train_on_validation).model

    def variant(self, candidate: Candidate, part: str) -> ResolvedConfig:
        """The configuration of one candidate's fit."""
        changes = {"strategy": candidate.strategy, "backbone": candidate.backbone, **candidate.options,
                   "freeze": candidate.freeze if "freeze" in STRATEGIES.get(candidate.strategy).accepts else None}
        if self.config.checkpoint_dir:
            folder = re.sub(r"[^A-Za-z0-9._=+@()-]", "_", candidate.name)  # e.g. timm:NAME's colon
            changes["checkpoint_dir"] = str(Path(self.config.checkpoint_dir) / "planner" / folder / part)
        return dataclasses.replace(self.config, **changes)


def fit_candidate(config: ResolvedConfig, data, encoded: np.ndarray, n_classes: int, fit: FitFunction,
                  candidate: Candidate, rows, *, log: Callable[[str], None] = lambda message: None,
                  train_on_validation: bool = True):
    """One candidate's fit on ``rows``, as the planner runs it (see :meth:`_Run.fit_candidate`)."""
    run = _Run(config, data, encoded, n_classes, fit, log, splits=[])
    return run.fit_candidate(candidate, rows, train_on_validation=train_on_validation)


def _strategy_of(candidate: Candidate):
    return STRATEGIES.get(candidate.strategy) if candidate.kind == "transfer" else None


def drop_losers(kept_models: dict, candidates: list[Candidate]) -> None:
    """Free the kept scoring fits that can no longer win. Once the default rung is scored, the
    winner is the default, the best transfer candidate or the baseline (:func:`choose_winner`), so
    at most two fine-tuned models are held at a time, not one per rung. Without a scored default
    (skipped for the budget) the cheapest candidate close to the best may win: all are kept."""
    scored = [c for c in candidates if c.status == "scored" and c.kind == "transfer"]
    default = settled_default(scored)
    if default is None:
        return
    best = max(scored, key=rank_key)
    for name in [n for n in kept_models if n not in (default.name, best.name)]:
        del kept_models[name]


def _expected_cost(candidate: Candidate, seconds_per_fit: dict[str, float]) -> float:
    """Seconds per fit, from a fit of the same strategy, or of one that trains the same thing (LP-FT and
    the full fine-tune both train the whole network); 0 when unknown yet: the first of its kind runs."""
    if candidate.strategy in seconds_per_fit:
        return seconds_per_fit[candidate.strategy]
    strategy = _strategy_of(candidate)
    if strategy is None:
        return 0.0
    kin = [s for s in seconds_per_fit if s in STRATEGIES and STRATEGIES.get(s).trains == strategy.trains]
    return seconds_per_fit[kin[0]] if kin else 0.0
