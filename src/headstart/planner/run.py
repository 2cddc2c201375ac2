"""``plan_and_fit``: rank, build the ladder, score each rung, choose, keep or refit the winner.

The planner never sees the estimator. It receives the resolved configuration, the data and a
``fit(config, data, encoded, *, log, refit_on_validation)`` callable that runs one strategy's fit;
each candidate is a variant of the configuration (``dataclasses.replace``), fitted through that
callable, and the outcome is a :class:`~.decision.Decision` that ``plan_`` only formats.

The budget is a deadline, counted from the planner's start (the ranking included): every fit after
the first candidate's runs inside :func:`headstart.train.run_until`, so training stops by it and
keeps its best epoch, and a rung that cannot finish a first epoch in time is skipped with its reason.
The time left is shared among a candidate's scoring fits, less what refitting the winner is expected
to cost; the refit itself runs by the same deadline. What can pass it: the ranking, the first
candidate (the no-transfer baseline or a linear probe: the fit must end with a model), an
uninterruptible step of a fit (loading a backbone, extracting features, the first epoch of the
refit), and the time before and after the planner (reading the data, saving the run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import train
from ..cache import open_cache
from ..config import ResolvedConfig
from ..data import set_window, stratified_split
from ..errors import OutOfTimeError
from ..ensemble import AveragedModel
from ..intervals import accuracy_text
from ..selection.rank import default_max_examples
from ..strategies import STRATEGIES
from .average import averaged_candidate
from .candidates import Candidate, rank_key, settled_default
from .decision import Decision, choose_winner
from .explain import explain
from .ladder import TINY_FOLDS, build_ladder, check_enough_per_class, logme_order, planner_splits, rank

FitFunction = Callable[..., Any]  # fit(config, data, encoded, *, log, refit_on_validation) -> StrategyResult


@dataclass
class PlanOutcome:
    model: Any  # the kept or refit winner: a TransferModel or a no-transfer baseline
    decision: Decision
    plan: dict  # what plan_ records
    history: list = field(default_factory=list)  # the kept model's own fit, per epoch ([] for a baseline or an average)


def plan_and_fit(config: ResolvedConfig, data, encoded: np.ndarray, classes, fit: FitFunction,
                 log: Callable[[str], None]) -> PlanOutcome:
    started = train.clock()
    check_enough_per_class(encoded, classes)
    n_classes = len(classes)
    rank_limit = default_max_examples(n_classes)
    budget = config.budget_seconds
    ends = math.inf if budget is None else started + budget
    ranking, freeze_depths = rank(config, data, encoded, open_cache(config.cache_dir), rank_limit, ends=ends, log=log)
    backbones = list(freeze_depths)  # the backbones ranked, in the order they were given
    log(f"auto: ranked {len(ranking)} layer group{'s' if len(ranking) != 1 else ''} of {', '.join(backbones)} "
        f"with LogME on {min(len(encoded), rank_limit)} examples in {train.clock() - started:.1f} s; "
        f"suggested freeze depth {', '.join(f'{b} {k}' for b, k in freeze_depths.items())}")
    candidates, kept = build_ladder(config, data.modality, backbones, ranking, freeze_depths, encoded)
    by_logme = logme_order(backbones, ranking)
    if kept != by_logme[:len(kept)]:
        log(f"auto: kept {', '.join(kept)} (LogME's order: {', '.join(by_logme)}): on tiny data, zoo models "
            f"scored on the same source benchmark go in the order of their published scores")
    splits = planner_splits(config, encoded)
    run = _Run(config, data, encoded, n_classes, fit, log, splits, ends=ends)
    kept_models = run.score_ladder(candidates)
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
    spent = train.clock() - started
    log(budget_line(spent, budget))
    plan = {
        "budget_seconds": budget, "spent_seconds": spent,
        # how far the fit ran past its budget (0 within it); what may pass it: this module's docstring
        "over_budget_seconds": None if budget is None else max(0.0, spent - budget),
        "splits": len(splits), "split_sizes": [len(splits[0][0]), len(splits[0][1])],  # the first split's
        "split_kind": "the fit's own validation split" if run.shared else f"stratified {TINY_FOLDS}-fold cross-validation",
        "held_out_predictions": held_out,
        "winner_refit": refit,
        "ranking": ranking, "ranked_examples": min(len(encoded), rank_limit),
        "freeze_suggestions": freeze_depths, "kept_backbones": kept, "logme_order": by_logme,
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
    return PlanOutcome(final, decision, plan, getattr(final, "training_history", []))


def budget_line(spent: float, budget: float | None) -> str:
    """The planner's last log line: the time spent against the budget, and by how much it ran over."""
    if budget is None:
        return f"auto: {spent:.0f} s spent (no budget)"
    over = spent - budget
    return (f"auto: {spent:.0f} s spent of the {budget:.0f} s budget"
            + (f"; over budget by {over:.0f} s ({100 * over / budget:.0f}%)" if over > 0 else ""))


@dataclass
class _Run:
    """One planner run's fixed inputs, so that scoring and fitting a candidate take only the candidate,
    and what it learns of the time fits take as it goes."""

    config: ResolvedConfig
    data: Any
    encoded: np.ndarray
    n_classes: int
    fit: FitFunction
    log: Callable[[str], None]
    splits: list
    ends: float = math.inf  # the deadline, on train.clock()'s time line
    seconds_per_epoch: dict = field(default_factory=dict)  # strategy -> a scoring fit's seconds per epoch run
    refit_reserve: float = 0.0  # seconds kept back for refitting the winner (the costliest scored refit)

    def __post_init__(self):
        self.shared = len(self.splits) == 1  # the fit's own validation split: see planner_splits
        # a refit trains on every row; a scoring fit on a split's training part
        self.refit_scale = len(self.encoded) / len(self.splits[0][0]) if self.splits else 1.0

    def score_ladder(self, candidates: list[Candidate]) -> dict:
        """Score every candidate the budget allows, in the ladder's order; return the scoring fits kept
        as final models. The first candidate scored runs whatever the time, so that the fit ends with a
        model; the others run by the deadline. With ``ray_address`` the fits run as Ray tasks, all at
        once, and are recorded in the same order (:mod:`.parallel`)."""
        if self.config.ray_address is not None:
            from .parallel import score_on_ray

            return score_on_ray(self, candidates)
        kept_models = {}
        for candidate in candidates:
            if candidate.status == "skipped":  # already decided by the data size, with its reason
                self.log(f"auto: {candidate.name} skipped ({candidate.reason})")
                continue
            bounded = any(c.status == "scored" for c in candidates)
            if bounded and (reason := self.no_time_for(candidate)):
                self.skip(candidate, reason)
                continue
            model = self.timed_score(candidate, bounded)
            self.keep(kept_models, candidate, model, candidates)
        return kept_models

    def keep(self, kept_models: dict, candidate: Candidate, model, candidates: list[Candidate]) -> None:
        """Hold a scored candidate's fit when it is its final model, and free those that can no longer win."""
        if model is not None and self.kept_as_scored(candidate):
            kept_models[candidate.name] = model
            drop_losers(kept_models, candidates)

    def timed_score(self, candidate: Candidate, bounded: bool):
        """Score ``candidate``, logging a line as it starts and one as it ends; None when a fit ran out
        of time before its first epoch ended (the candidate is then recorded as skipped)."""
        self.log_trying(candidate)
        t0 = train.clock()
        try:
            model, summaries = self.score(candidate, bounded)
        except OutOfTimeError as why:
            self.out_of_time(candidate, str(why), why.fit_seconds)
            return None
        self.scored(candidate, train.clock() - t0, summaries)
        return model

    def log_trying(self, candidate: Candidate) -> None:
        fits = f"{len(self.splits)} folds" if len(self.splits) > 1 else "1 split"
        self.log(f"auto: trying {candidate.name} on {fits}" + (f" ({left})" if (left := self.time_left()) else ""))

    def out_of_time(self, candidate: Candidate, why: str, fit_seconds: float) -> None:
        """Record a candidate whose fit could not end a first epoch in time as skipped, with the reason."""
        candidate.scores, candidate.correct, candidate.log_loss, candidate.probabilities = [], [], [], []
        self.seconds_per_epoch.setdefault(candidate.strategy, fit_seconds)  # its kin need as long
        self.skip(candidate, f"skipped: {why}; {self.time_left()}")

    def scored(self, candidate: Candidate, seconds: float, summaries: list[dict]) -> None:
        """Record a candidate whose evidence is in: its time, what its fits cost, and its log line."""
        candidate.seconds = seconds
        candidate.status = "scored"
        self.learn_costs(candidate, summaries)
        held = len(candidate.correct)
        candidate.cut_short = sum(bool(s.get("deadline_stop")) for s in summaries)
        self.log(f"auto: {candidate.name} scored {accuracy_text(candidate.mean, held)} on {held} held-out "
                 f"predictions over {len(self.splits)} {'folds' if len(self.splits) > 1 else 'split'} "
                 f"({candidate.seconds:.1f} s" + (f"; the budget cut {candidate.cut_short} of its {len(summaries)} "
                                                  f"fits short)" if candidate.cut_short else ")"))

    def learn_costs(self, candidate: Candidate, summaries: list[dict]) -> None:
        """Record what a scored candidate's fits cost: per epoch (the least a later fit of its kind
        needs), and, when it would be refit, what its refit is expected to take."""
        per_fit = candidate.seconds / len(self.splits)
        epochs = max(1, max((s.get("epochs_run") or 1) for s in summaries))
        self.seconds_per_epoch[candidate.strategy] = per_fit / epochs
        if not self.kept_as_scored(candidate):
            self.refit_reserve = max(self.refit_reserve, per_fit * self.refit_scale)

    def kept_as_scored(self, candidate: Candidate) -> bool:
        """Whether the candidate's scoring fit is its final model (else the winner is refit on every row)."""
        return self.shared and getattr(_strategy_of(candidate), "kept_as_scored", False)

    def seconds_per_fit(self, candidate: Candidate, fits_left: int) -> float:
        """Seconds each of the candidate's ``fits_left`` scoring fits may take from now: the time left,
        less the refit a scored candidate may still need; a candidate that would be refit keeps back
        its own refit's share too (a refit trains on ``refit_scale`` times a scoring fit's rows)."""
        left = self.ends - train.clock()
        per_fit = (left - self.refit_reserve) / fits_left
        if not self.kept_as_scored(candidate):
            per_fit = min(per_fit, left / (fits_left + self.refit_scale))
        return per_fit

    def no_time_for(self, candidate: Candidate) -> str:
        """Why the candidate cannot be scored in the time left ("" when it can): no time at all, or less
        per fit than a first epoch took a fit of its kind."""
        per_fit = self.seconds_per_fit(candidate, len(self.splits))
        needed = _expected_cost(candidate, self.seconds_per_epoch)
        if per_fit > 0 and per_fit >= needed:
            return ""
        what = f"about {needed * len(self.splits):.0f} s needed" if needed else "no time left"
        return f"skipped: {what}, {self.time_left()}"

    def time_left(self, reserve: bool = True) -> str:
        """'12 s of the 120 s budget left, 5 s of them kept for refitting the winner' ('' without a budget)."""
        if math.isinf(self.ends):
            return ""
        left, budget = max(0.0, self.ends - train.clock()), self.config.budget_seconds
        text = f"{left:.0f} s of the {budget:.0f} s budget left"
        if not (reserve and self.refit_reserve and left > 0):
            return text
        if self.refit_reserve >= left:
            return f"{text}, all kept for refitting the winner"
        return f"{text}, {self.refit_reserve:.0f} s of them kept for refitting the winner"

    def skip(self, candidate: Candidate, reason: str) -> None:
        candidate.status, candidate.reason = "skipped", reason
        self.log(f"auto: {candidate.name} {reason}")

    def final_model(self, candidate: Candidate, kept_models: dict):
        """``(model, refit)``: the candidate's scoring fit when it is kept as scored, else a refit on every
        row, by the deadline but through its first epoch at least (the fit must end with a model)."""
        model = kept_models.pop(candidate.name, None)
        if model is not None:
            split = self.splits[0]
            self.log(f"auto: keeping {candidate.name} as scored: trained on {len(split[0])} of the {len(self.encoded)} "
                     f"labeled examples, its epoch chosen on the other {len(split[1])}, as a fit of "
                     f"{candidate.strategy} alone would be")
            return model, False
        self.log(f"auto: refitting {candidate.name} on all {len(self.encoded)} labeled examples"
                 + (f" ({left})" if (left := self.time_left(reserve=False)) else ""))
        with self.deadline(self.ends, finish_first_epoch=True):
            return self.fit_candidate(candidate, np.arange(len(self.encoded)), part="all"), True

    def deadline(self, at: float, *, finish_first_epoch: bool = False):
        """The fits inside end by ``at``; no deadline without a budget."""
        if math.isinf(at):
            return contextlib.nullcontext()
        return train.run_until(at, finish_first_epoch=finish_first_epoch)

    def score(self, candidate: Candidate, bounded: bool = False):
        """Fit ``candidate`` on each split's training part and record its hits and log-loss on the held-out
        part; return the last split's model (with one split, the fit a fixed strategy would make) and
        each fit's summary. ``bounded``: each fit runs by its share of the time left."""
        summaries = []
        for number, (train_idx, val_idx) in enumerate(self.splits, 1):
            fit_started = train.clock()
            at = fit_started + self.seconds_per_fit(candidate, len(self.splits) - number + 1) if bounded else math.inf
            try:
                with self.deadline(at):
                    model, summary = self.scoring_fit(candidate, train_idx, number)
            except OutOfTimeError as why:
                why.fit_seconds = train.clock() - fit_started + why.needed  # what this fit would have taken
                raise
            summaries.append(summary)
            logits = np.asarray(model.predict_logits([self.data.inputs[i] for i in val_idx]), dtype=np.float64)
            self.record(candidate, logits, self.encoded[val_idx])
        return model, summaries

    def scoring_fit(self, candidate: Candidate, train_idx: np.ndarray, number: int) -> tuple[Any, dict]:
        if self.shared:  # fit as a fixed fit would (it splits off the held-out rows itself) but without refitting on them
            # its own checkpoint folder: a refit on every row ("all") must not resume this fit, which held rows out
            return self.fit_result(candidate, np.arange(len(self.encoded)), part="scoring", quiet=True,
                                   train_on_validation=False)
        return self.fit_result(candidate, train_idx, part=f"split-{number}", quiet=True)

    @staticmethod
    def record(candidate: Candidate, logits: np.ndarray, truth: np.ndarray) -> None:
        """Add one split's held-out hits, log-loss and probabilities to the candidate's evidence."""
        hits = logits.argmax(1) == truth
        candidate.scores.append(float(hits.mean()))
        candidate.correct.extend(int(h) for h in hits)
        log_p = logits - logits.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        candidate.log_loss.extend(float(-v) for v in log_p[np.arange(len(truth)), truth])
        candidate.probabilities.extend(np.exp(log_p).tolist())

    def fit_candidate(self, candidate: Candidate, rows, *, part: str = "all", quiet: bool = False,
                      train_on_validation: bool = True):
        """Fit ``candidate`` on ``rows``, which it splits into training and validation rows as any fit
        does. With a checkpoint folder, each (candidate, part) checkpoints in its own subfolder,
        ``planner/<candidate>/<part>`` (``split-N``, ``scoring`` or ``all``): two fits sharing one would refuse each other's checkpoint (other
        data), or worse, resume it (same data, another freeze depth). ``quiet``: the fit logs nothing
        (a scoring fit; the planner logs its outcome in one line). ``train_on_validation=False``: a head
        chosen on the validation rows is not refit with them, so that it can be scored on them."""
        return self.fit_result(candidate, rows, part=part, quiet=quiet, train_on_validation=train_on_validation)[0]

    def fit_result(self, candidate: Candidate, rows, *, part: str = "all", quiet: bool = False,
                   train_on_validation: bool = True) -> tuple[Any, dict]:
        """:meth:`fit_candidate`'s model and the fit's summary (empty for a baseline)."""
        labels = self.encoded[rows]
        items = [self.data.inputs[i] for i in rows]
        if candidate.kind == "baseline":
            from ..baselines import BASELINES

            inner_train, inner_val = stratified_split(labels, self.config.val_size, self.config.random_state)
            model = BASELINES.get(candidate.strategy)()
            set_window(model, self.config.window)  # the pixel baseline reads DICOM/16-bit images as the transfer fits do
            model.fit([items[i] for i in inner_train], labels[inner_train], [items[i] for i in inner_val],
                      labels[inner_val], self.n_classes, refit_on_validation=train_on_validation,
                      random_state=self.config.random_state)
            return model, {}
        result = self.fit(self.variant(candidate, part), dataclasses.replace(self.data, inputs=items, labels=labels),
                          labels, log=(lambda message: None) if quiet else self.log,
                          refit_on_validation=train_on_validation)
        # travels with the model (a Ray task returns it whole), so the kept or refit winner's history.json is its own
        result.model.training_history = result.history
        return result.model, result.summary

    def variant(self, candidate: Candidate, part: str) -> ResolvedConfig:
        """The configuration of one candidate's fit."""
        changes = {"strategy": candidate.strategy, "backbone": candidate.backbone, **candidate.options,
                   "ray_address": None,  # the planner's own option: each fit is one fit, wherever it runs
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


def _expected_cost(candidate: Candidate, seconds_per_epoch: dict[str, float]) -> float:
    """The least seconds one of the candidate's fits needs (to end a first epoch), from a fit of the same
    strategy, or of one that trains the same thing (LP-FT and the full fine-tune both train the whole
    network); 0 when unknown yet: then the loop's timed first steps decide (:mod:`headstart.train`)."""
    if candidate.strategy in seconds_per_epoch:
        return seconds_per_epoch[candidate.strategy]
    strategy = _strategy_of(candidate)
    if strategy is None:
        return 0.0
    kin = [s for s in seconds_per_epoch if s in STRATEGIES and STRATEGIES.get(s).trains == strategy.trains]
    return seconds_per_epoch[kin[0]] if kin else 0.0
