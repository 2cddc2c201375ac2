"""The planner behind ``strategy="auto"``: rank, try the strategy ladder, keep the best, and say why.

1. Rank the candidate backbones (all installed zoo models of the data's modality, or the one asked
   for) with LogME on every layer group, from one cached forward pass each over a stratified
   subsample of at most 512 examples (``selection.rank.DEFAULT_MAX_EXAMPLES``); keep the best two,
   and read a suggested freeze depth off the per-layer scores.
2. Score candidates on held-out data. With tiny data (fewer than 30 examples in some class): by
   stratified 3-fold cross-validation, each candidate fit on two folds (with its own inner split for C
   or early stopping) and scored on the third, which it never saw, so that every labeled example is
   held out exactly once and the paired comparisons rest on all of them (:data:`TINY_FOLDS`). From
   30 per class on: on the estimator's own validation split, the one every fixed strategy holds out
   to choose its epoch or C (:data:`KEPT_AS_SCORED`). Each candidate trains on the rest, chooses on
   that part and is scored there, so every score is the best choice's and a little optimistic, alike
   for all candidates, as when runs are compared by their best validation score; a fine-tuned winner
   needs no refit.
   The ladder: the no-transfer baseline of the modality, a linear probe per kept backbone, then,
   on the best backbone, fine-tuning at the suggested freeze depth (recorded as skipped on tiny
   data, see :data:`TINY_DEPTH_RUNG_SKIPPED`), LP-FT (with label smoothing on tiny data,
   :data:`TINY_LP_FT_OPTIONS`), LoRA when the backbone has attention projections (skipped on tiny
   data too, :data:`TINY_LORA_RUNG_SKIPPED`), and full fine-tuning when there are at least 50
   examples per class. A rung that the remaining budget cannot pay for (estimated from the rungs
   already run) is skipped and recorded as such.
3. Among transfer candidates, the ladder's *default rung* (:func:`default_rungs`: the rung the
   benchmarks found best at this data size; from 50 per class the better on held-out data of the
   two that train the whole network, :func:`settled_default`) wins unless another candidate beats
   it on the same held-out examples with the 95% interval of their *paired* per-example difference
   above zero.
   With a dozen held-out examples a lead of a few examples is noise, and choosing by it cost the
   planner 2 to 6 points against the best fixed strategy (docs/benchmarks.md). Without a default
   rung, the cheapest candidate within one paired standard error of the best wins (the
   one-standard-error rule of Breiman et al. 1984, "Classification and Regression Trees", §3.4.3;
   Hastie et al., "Elements of Statistical Learning", §7.10). If the baseline beats the best
   transfer candidate, that is negative transfer: it is said plainly and the baseline is kept. An
   exact tie is said plainly too; the default rung is kept (and the baseline when there is none).
4. The winner is refit on all labeled data, unless its scoring fit already is that fit (one split and
   a fine-tuning strategy: :data:`KEPT_AS_SCORED`). ``plan_`` records every candidate's scores, time
   and why it won or lost.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .baselines import baseline_for
from .intervals import accuracy_text
from .selection.rank import default_max_examples
from .backbones import ZOO

TINY_PER_CLASS = 30
# On tiny data the fine-tune at LogME's freeze depth (and its label-smoothed twin, a rung until then)
# never won in bench.strategies: 0 of 18 draws (Fashion-MNIST 10, digits 10 and VADER 8 per class, seeds
# 0-5), where LogME's depth was among the weakest (Kendall's tau -0.2 against fine-tuned accuracy), while
# the two rungs took 28-53% of the planner's time: it ran at 4.1x LP-FT's time on Fashion-MNIST 10 per
# class, against the 3x. Replayed without them, the same 18 draws keep every choice but one
# (docs/benchmarks.md). The rung stays in plan_, skipped, with this reason.
TINY_DEPTH_RUNG_SKIPPED = (
    "not tried below {tiny} examples per class: on tiny data fine-tuning at LogME's freeze depth never won "
    "in bench.strategies (0 of 18 draws) and took a third to a half of the planner's time; LP-FT is the rung for "
    "this data size (docs/benchmarks.md)")
# LoRA on tiny data: the fixed LoRA scored 0.508 on VADER 8 per class (6 seeds, chance is 0.5) against
# LP-FT's 0.587, and it won none of the 12 planner draws there (seeds 0-5, twice); replayed without it,
# all 6 draws of the fit-only run keep their choice. It cost a third of the planner's time on that task
# (5.5 of 15.9 s). Recorded as skipped, with this reason.
TINY_LORA_RUNG_SKIPPED = (
    "not tried below {tiny} examples per class: on tiny data LoRA scored at chance in bench.strategies (VADER 8 "
    "per class: 0.508 against LP-FT's 0.587, 6 seeds), won none of 12 planner draws and took a third of the "
    "planner's time (docs/benchmarks.md)")
# On tiny data the LP-FT rung trains with label smoothing 0.1 (Szegedy et al. 2016, "Rethinking the
# Inception Architecture", §7), unless the user set label_smoothing: on Fashion-MNIST 10 per class it
# beat plain LP-FT by +3.7 points (seeds 0-5, 2 threads, ahead on all six), +4.3 on fresh seeds 6-11 and
# +1.3 at 1 thread, and plain fine-tuning by +3.4; on VADER 8 per class it was level (-0.3, 6 seeds).
# Why it helps is not established (the backbone's weight drift is the same with and without it).
# See docs/benchmarks.md, regularizers section.
TINY_LP_FT_OPTIONS = {"label_smoothing": 0.1}
MIN_PER_CLASS = 3  # one held-out example per fold, and two to train (one of them for the inner validation split)
# Tiny data is scored by stratified 3-fold cross-validation rather than 3 random splits holding out a
# fifth each: the same three fits of each candidate then judge it on every labeled example once (100
# held-out predictions instead of 60 on Fashion-MNIST 10 per class, 16 instead of 12 on VADER 8 per
# class, with no example counted twice), and each fit trains on a third fewer examples, so it costs
# less. On the same 12 draws of each tiny task in bench.strategies (seeds 0-11) it called negative transfer
# on digits 12 times of 12 (random splits: 11), brought the planner on VADER 8 per class to 1.0 point
# behind the fixed LP-FT (random splits: 3.3), kept Fashion-MNIST 10 per class level (0.699 against
# 0.701), and took less time on all three (docs/benchmarks.md).
TINY_FOLDS = 3
# From here on, full fine-tuning is a rung, and it and LP-FT are both the ladder's default: the better of
# the two on the held-out examples counts (no significant lead asked, as neither is the better one in
# general). In bench.strategies (6 seeds, 2 threads, commit c603e75) LP-FT was the best fixed strategy on
# Fashion-MNIST 100 per class (0.836 against the full fine-tune's 0.825) and the full fine-tune on VADER 64
# per class (0.718 against 0.699); the planner measured -0.3 and -0.9 against them (keeping LP-FT 3 and 2
# times of 6). With the full fine-tune as the only default it had missed the first by 1.8 points (commit
# d5c3fde, docs/benchmarks.md). Below, LP-FT alone is the default.
PLENTIFUL_PER_CLASS = 50
# With one split (30 or more examples per class) the planner's held-out part is the validation split that
# every fixed strategy holds out for its own choices (the kept epoch, C). A candidate trains on the rest,
# makes its choices on that part and is scored there, as its fixed fit would be. For these strategies that
# scoring fit *is* the fit on all labeled data (their fit never trains on the validation part), so the
# winner is kept as scored, not refit: the refit repeated the same fit, same seed and rows, to the last
# digit (docs/benchmarks.md), and cost as much as the rest of the ladder's default rung.
KEPT_AS_SCORED = ("finetune", "lp_ft", "lora")
# Leaving the default rung takes a lead whose 95% interval (paired, per held-out example) excludes zero:
# the same 95% as every interval the library prints.
DEPARTURE_Z = 1.96


@dataclass
class Candidate:
    name: str
    kind: str  # "transfer" | "baseline"
    strategy: str
    backbone: str | None = None
    freeze: int | None = None
    options: dict = field(default_factory=dict)  # estimator parameters this candidate changes, e.g. a regularizer
    scores: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list, repr=False)  # per held-out example, all splits in order
    log_loss: list[float] = field(default_factory=list, repr=False)  # -log p(true class), same order as ``correct``
    seconds: float = 0.0
    status: str = "pending"  # "scored" | "skipped" | "failed"
    reason: str = ""
    default: bool = False  # the ladder's default rung: kept unless another leads it with its 95% paired interval above zero

    @property
    def mean(self) -> float:
        """Accuracy over every held-out prediction pooled (folds may differ in size by one), the
        figure the paired comparisons and the printed intervals are about."""
        if self.correct:
            return statistics.fmean(self.correct)
        return statistics.fmean(self.scores) if self.scores else float("nan")

    @property
    def std(self) -> float:
        return statistics.pstdev(self.scores) if len(self.scores) > 1 else 0.0


def parse_budget(budget) -> float:
    """'10m', '90s', '1h', or a number of seconds."""
    from .errors import ConfigError

    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return float(budget)
    text = str(budget).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise ConfigError(f"budget={budget!r} is not a duration; write e.g. '90s', '10m' or '1h'") from None


def planner_splits(estimator, encoded: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tiny data: stratified :data:`TINY_FOLDS`-fold cross-validation, every example held out once.
    Otherwise one split: the estimator's own validation split, the one every fixed strategy trains
    beside (see :data:`KEPT_AS_SCORED`)."""
    counts = np.bincount(encoded)
    if counts.min() >= TINY_PER_CLASS:
        return [estimator._validation_split(encoded)]
    folds = StratifiedKFold(n_splits=TINY_FOLDS, shuffle=True, random_state=estimator.random_state)
    return list(folds.split(np.zeros(len(encoded)), encoded))


def rank(estimator, data, encoded, backbones: list[str], max_examples: int) -> tuple[list[dict], dict[str, int]]:
    """LogME per (backbone, layer group), on a stratified subsample of at most ``max_examples``;
    returns rows best first and a freeze depth per backbone."""
    from .selection.rank import rank_backbones, suggest_freeze

    rows = rank_backbones(data.inputs, encoded, backbones, layers="all", cache=estimator._cache(),
                          image_size=estimator.image_size, max_length=estimator.max_length, score="logme",
                          max_examples=max_examples,
                          feature_dim=estimator.n_features_in_ if data.modality == "features" else None)
    freeze = {name: suggest_freeze([r for r in rows if r.backbone == name]) for name in backbones}
    return [dataclasses.asdict(r) for r in rows], freeze


def plan_and_fit(estimator, data, encoded: np.ndarray, n_classes: int, budget_seconds: float):
    """Run the ladder; return ``(fitted model, plan dict)``."""
    started = time.perf_counter()
    _check_enough_per_class(encoded, estimator.classes_)
    modality = data.modality
    if estimator.backbone == "auto":
        backbones = [n for n in ZOO if ZOO.get(n).info.modality == modality and ZOO.get(n).installed]
        # none installed (or feature vectors, which have no zoo): the estimator's own default for the
        # modality, whose build says how to install its weights when they are missing
        backbones = backbones or [estimator._resolve_backbone(data)]
    else:
        backbones = [estimator._resolve_backbone(data)]
    rank_limit = default_max_examples(n_classes)
    ranking, freeze_depths = rank(estimator, data, encoded, backbones, rank_limit)
    estimator._log(f"auto: ranked {len(ranking)} layer group{'s' if len(ranking) != 1 else ''} of {', '.join(backbones)} "
                   f"with LogME on {min(len(encoded), rank_limit)} examples in {time.perf_counter() - started:.1f} s; "
                   f"suggested freeze depth {', '.join(f'{b} {k}' for b, k in freeze_depths.items())}")
    candidates, kept = build_ladder(estimator, modality, backbones, ranking, freeze_depths, encoded)
    splits = planner_splits(estimator, encoded)
    shared = len(splits) == 1  # the estimator's own validation split: see KEPT_AS_SCORED
    everything = np.arange(len(encoded))
    kept_models = {}  # candidate name -> its scoring fit, when that is already the final model
    seconds_per_fit: dict[str, float] = {}
    for candidate in candidates:
        if candidate.status == "skipped":  # already decided by the data size, with its reason
            estimator._log(f"auto: {candidate.name} skipped ({candidate.reason})")
            continue
        spent = time.perf_counter() - started
        kept_as_scored = shared and candidate.strategy in KEPT_AS_SCORED
        expected = _expected_cost(candidate, seconds_per_fit) * len(splits) * (1 if kept_as_scored else 2)  # (+ refit)
        if expected and spent + expected > budget_seconds:
            candidate.status = "skipped"
            candidate.reason = (f"skipped: about {expected:.0f} s needed, {max(0, budget_seconds - spent):.0f} s of "
                                f"the {budget_seconds:.0f} s budget left")
            estimator._log(f"auto: {candidate.name} {candidate.reason}")
            continue
        t0 = time.perf_counter()
        model = _score(estimator, candidate, data, encoded, splits, n_classes)
        candidate.seconds = time.perf_counter() - t0
        seconds_per_fit[candidate.strategy] = candidate.seconds / len(splits)
        candidate.status = "scored"
        if kept_as_scored:
            kept_models[candidate.name] = model
            _drop_losers(kept_models, candidates)
        held = len(candidate.correct)
        estimator._log(f"auto: {candidate.name} scored {accuracy_text(candidate.mean, held)} on {held} held-out "
                       f"predictions over {len(splits)} {'folds' if len(splits) > 1 else 'split'} ({candidate.seconds:.1f} s)")
    scored = [c for c in candidates if c.status == "scored"]
    winner, best_transfer, base, negative = choose_winner(scored)
    # Every held-out score pools len(splits) validation parts: its 95% interval is over that many examples.
    held_out = sum(len(val) for _, val in splits)
    verdict = explain(scored, winner, best_transfer, base, negative, held_out)
    estimator._log(verdict)
    final = kept_models.pop(winner.name, None)
    refit_winner = final is None
    if not refit_winner:
        estimator._log(f"auto: keeping {winner.name} as scored: trained on {len(splits[0][0])} of the "
                       f"{len(encoded)} labeled examples, its epoch chosen on the other {len(splits[0][1])}, "
                       f"as a fit of {winner.strategy} alone would be")
    else:
        estimator._log(f"auto: refitting {winner.name} on all {len(encoded)} labeled examples")
        final = _fit_candidate(estimator, winner, data, encoded, everything, n_classes, part="all")
    plan = {
        "budget_seconds": budget_seconds, "spent_seconds": time.perf_counter() - started,
        "splits": len(splits), "split_sizes": [len(splits[0][0]), len(splits[0][1])],  # the first split's
        "split_kind": "the fit's own validation split" if shared else f"stratified {TINY_FOLDS}-fold cross-validation",
        "held_out_predictions": held_out,
        "winner_refit": refit_winner,
        "ranking": ranking, "ranked_examples": min(len(encoded), rank_limit),
        "freeze_suggestions": freeze_depths, "kept_backbones": kept,
        # ``correct``: 1/0 per held-out example, splits in order, so the paired standard errors can be redone;
        # ``log_loss``: -log of the probability given to the true class, for the same examples
        "candidates": [{**dataclasses.asdict(c), "mean": c.mean, "std": c.std} for c in candidates],
        "winner": winner.name, "baseline": base.name if base else None,
        # the ladder's defaults at this data size, and the one that counted (the better on held-out data)
        "defaults": [c.name for c in candidates if c.default],
        "default": settled.name if (settled := settled_default(scored)) else None,
        "negative_transfer": negative, "verdict": verdict,
    }
    return final, winner, plan


def build_ladder(estimator, modality: str, backbones: list[str], ranking: list[dict], freeze_depths: dict[str, int],
                 encoded: np.ndarray) -> tuple[list[Candidate], list[str]]:
    """The candidates in the order they are tried, the default rung marked; and the backbones kept."""
    # A linear probe reads the last layer, so its LogME decides which backbones are worth trying.
    last_index = {r["backbone"]: max(q["layer_index"] for q in ranking if q["backbone"] == r["backbone"]) for r in ranking}
    last_layer_score = {r["backbone"]: r["score"] for r in ranking if r["layer_index"] == last_index[r["backbone"]]}
    kept = sorted(backbones, key=lambda b: -last_layer_score.get(b, -np.inf))[:2]
    candidates = []
    baseline = baseline_for(modality)
    if baseline is not None:
        candidates.append(Candidate(f"baseline:{baseline.name}", "baseline", baseline.name,
                                    reason="no-transfer baseline"))
    for name in kept:
        candidates.append(Candidate(f"linear_probe@{name}", "transfer", "linear_probe", name))
    best = kept[0]
    depth = freeze_depths.get(best, 0)
    smallest_class = int(np.bincount(encoded).min())
    tiny = smallest_class < TINY_PER_CLASS
    at_depth = Candidate(f"finetune(freeze={depth})@{best}", "transfer", "finetune", best, depth)
    if tiny:
        at_depth.status, at_depth.reason = "skipped", TINY_DEPTH_RUNG_SKIPPED.format(tiny=TINY_PER_CLASS)
    candidates.append(at_depth)
    smoothed = tiny and not estimator.label_smoothing  # a user's own label_smoothing applies to every rung
    candidates.append(Candidate(f"lp_ft{'+label_smoothing' if smoothed else ''}@{best}", "transfer", "lp_ft", best, 0,
                                options=dict(TINY_LP_FT_OPTIONS) if smoothed else {}))
    if _supports_lora(best):
        lora = Candidate(f"lora@{best}", "transfer", "lora", best)
        if tiny:
            lora.status, lora.reason = "skipped", TINY_LORA_RUNG_SKIPPED.format(tiny=TINY_PER_CLASS)
        candidates.append(lora)
    if smallest_class >= PLENTIFUL_PER_CLASS and depth != 0:
        candidates.append(Candidate(f"finetune(freeze=0)@{best}", "transfer", "finetune", best, 0))
    preferred = default_rungs(candidates, smallest_class)
    first = 1 + len(kept) if baseline is not None else len(kept)
    for position, rung in enumerate(preferred, first):
        rung.default = True
        # right after the linear probes, so a tight budget skips the optional rungs rather than a default
        candidates.remove(rung)
        candidates.insert(position, rung)
    return candidates, kept


def _score(estimator, candidate: Candidate, data, encoded, splits, n_classes: int):
    """Fit ``candidate`` on each split's training part and record its hits and log-loss on the held-out
    part; return the last split's model (with one split, the fit a fixed strategy would make)."""
    shared = len(splits) == 1
    for number, (train_idx, val_idx) in enumerate(splits, 1):
        if shared:  # fit as a fixed fit would (it splits off val_idx itself) but without refitting on it
            model = _fit_candidate(estimator, candidate, data, encoded, np.arange(len(encoded)), n_classes,
                                   part="all", quiet=True, train_on_validation=False)
        else:
            model = _fit_candidate(estimator, candidate, data, encoded, train_idx, n_classes,
                                   part=f"split-{number}", quiet=True)
        logits = np.asarray(model.predict_logits([data.inputs[i] for i in val_idx]), dtype=np.float64)
        hits = logits.argmax(1) == encoded[val_idx]
        candidate.scores.append(float(hits.mean()))
        candidate.correct.extend(int(h) for h in hits)
        log_p = logits - logits.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        candidate.log_loss.extend(float(-v) for v in log_p[np.arange(len(val_idx)), encoded[val_idx]])
    return model


def paired_standard_error(a: Candidate, b: Candidate) -> float:
    """Standard error of the mean per-example difference of two candidates scored on the same examples."""
    difference = np.asarray(a.correct, float) - np.asarray(b.correct, float)
    return float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0


def default_rungs(candidates: list[Candidate], min_per_class: int) -> list[Candidate]:
    """The rungs kept when the held-out scores cannot tell them from the rest (see PLENTIFUL_PER_CLASS).

    Below ``PLENTIFUL_PER_CLASS`` examples per class, LP-FT. From there on, the two rungs that train
    the whole network, full fine-tuning (nothing frozen) and LP-FT, the better of them on the
    held-out examples counting (:func:`settled_default`). Empty when the ladder has none.
    """
    if min_per_class >= PLENTIFUL_PER_CLASS:
        wanted = [lambda c: c.strategy == "finetune" and c.freeze == 0 and not c.options,
                  lambda c: c.strategy == "lp_ft" and not c.options]
    else:
        wanted = [lambda c: c.strategy == "lp_ft"]
    found = [next((c for c in candidates if c.kind == "transfer" and test(c)), None) for test in wanted]
    return [c for c in found if c is not None]


def settled_default(candidates: list[Candidate]) -> Candidate | None:
    """The default rung that counts: the scored one with the best held-out accuracy (the faster on a tie)."""
    defaults = [c for c in candidates if c.default and c.kind == "transfer" and c.status == "scored"]
    return max(defaults, key=_rank_key) if defaults else None


def choose_winner(scored: list[Candidate]):
    """``(winner, best transfer candidate, baseline, negative transfer?)`` of the scored candidates.

    With a default rung (:func:`settled_default`: the better of two from 50 per class): it wins
    unless the best transfer candidate beats it by more than ``DEPARTURE_Z`` paired standard errors
    (the 95% interval of their per-example difference lies above zero), in which case the best wins.
    Without one: the cheapest candidate within one paired standard error of the best (a lead of
    exactly one example out of n is one standard error, 1/n, so it does not count); if the baseline
    beats that one but not the best, the best. Negative transfer: the baseline beats the best transfer candidate, or matches it when
    there is no default rung to fall back on (an exact tie on a dozen examples says nothing either
    way; see :func:`explain`).
    """
    transfer = [c for c in scored if c.kind == "transfer"]
    base = next((c for c in scored if c.kind == "baseline"), None)
    best_transfer = max(transfer, key=_rank_key) if transfer else None
    default = settled_default(transfer)
    negative = bool(base and (best_transfer is None or base.mean > best_transfer.mean
                              or (default is None and base.mean >= best_transfer.mean)))
    if negative or best_transfer is None:
        return (base if base else best_transfer), best_transfer, base, negative
    if default is not None:
        departs = best_transfer.mean - default.mean > DEPARTURE_Z * paired_standard_error(best_transfer, default) + 1e-9
        return (best_transfer if departs else default), best_transfer, base, negative
    close = [c for c in transfer
             if best_transfer.mean - c.mean <= paired_standard_error(best_transfer, c) + 1e-9 or c is best_transfer]
    chosen = min(close, key=lambda c: (c.seconds, -c.mean))
    if base and base.mean >= chosen.mean:
        chosen = best_transfer
    return chosen, best_transfer, base, negative


def _rank_key(candidate: Candidate) -> tuple[float, float]:
    """Best held-out accuracy first; between equals, the faster."""
    return round(candidate.mean, 6), -candidate.seconds


def _drop_losers(kept_models: dict, candidates: list[Candidate]) -> None:
    """Free the kept scoring fits that can no longer win. Once the default rung is scored, the
    winner is the default, the best transfer candidate or the baseline (:func:`choose_winner`), so
    at most two fine-tuned models are held at a time, not one per rung. Without a scored default
    (skipped for the budget) the cheapest candidate close to the best may win: all are kept."""
    scored = [c for c in candidates if c.status == "scored" and c.kind == "transfer"]
    default = settled_default(scored)
    if default is None:
        return
    best = max(scored, key=_rank_key)
    for name in [n for n in kept_models if n not in (default.name, best.name)]:
        del kept_models[name]


def explain(scored: list[Candidate], winner, best_transfer, base, negative: bool, held_out: int) -> str:
    """Write each scored candidate's ``reason``; return the verdict on transfer against the baseline."""
    shown = lambda c: accuracy_text(c.mean, held_out) if c is not None else "n/a"

    def lead(a: Candidate, b: Candidate) -> str:  # a's lead over b, with the 95% interval of the paired difference
        diff, spread = a.mean - b.mean, DEPARTURE_Z * paired_standard_error(a, b)
        return f"{100 * diff:+.1f} points, 95% interval [{100 * (diff - spread):+.1f}, {100 * (diff + spread):+.1f}]"

    default = settled_default(scored)
    for c in scored:
        if c is winner and c.default and c is not best_transfer:
            c.reason = (f"won: the ladder's default at this data size, held-out accuracy {shown(c)}; " + (
                f"{best_transfer.name} ties it" if best_transfer.mean == c.mean else
                f"the best, {best_transfer.name} {shown(best_transfer)}, leads it by {lead(best_transfer, c)}: "
                f"not shown to be better"))
        elif c is winner and c.kind == "transfer" and default is not None and c is not default:
            c.reason = (f"won: best held-out accuracy {shown(c)}, ahead of the ladder's default {default.name} "
                        f"{shown(default)} by {lead(c, default)}")
        elif c is winner and c is not best_transfer and c.kind == "transfer":
            c.reason = (f"won: held-out accuracy {shown(c)}, within one standard error of the best "
                        f"({best_transfer.name}, {shown(best_transfer)}) and cheaper ({c.seconds:.0f} s against "
                        f"{best_transfer.seconds:.0f} s)")
        elif c is winner:
            c.reason = f"won: best held-out accuracy {shown(c)}" + (f" (± {c.std:.3f} across splits)" if c.std else "")
        elif c is best_transfer and not negative and winner.default and c.mean == winner.mean:
            c.reason = f"lost: ties the ladder's default {winner.name} at {shown(c)}; a tie keeps the default"
        elif c is best_transfer and not negative and winner.default:
            c.reason = (f"lost: best held-out accuracy {shown(c)}, but its lead over the ladder's default "
                        f"{winner.name} ({lead(c, winner)}) includes zero")
        elif c is best_transfer and not negative:
            c.reason = (f"lost: best held-out accuracy {shown(c)}, but not by more than one standard error "
                        f"({paired_standard_error(c, winner):.3f}) over the cheaper {winner.name} {shown(winner)}")
        elif c.default and default is not None and c is not default:
            c.reason = (f"lost: one of the ladder's defaults at this data size, behind the other, {default.name}, "
                        f"on the held-out examples ({shown(c)} against {shown(default)})")
        else:
            c.reason = f"lost: {shown(c)} vs the winner's {shown(winner)}" + (" (no-transfer baseline)" if c.kind == "baseline" else "")
    if negative:
        relation = "beats" if best_transfer is None or base.mean > best_transfer.mean else "matches"
        return (f"negative transfer: the no-transfer baseline ({base.name}, {shown(base)}) {relation} the "
                f"best transfer candidate ({best_transfer.name if best_transfer else 'none'}, "
                f"{shown(best_transfer)}); keeping the baseline")
    if base and base.mean == best_transfer.mean:
        return (f"no difference shown: the no-transfer baseline {base.name} ties the best transfer candidate "
                f"{best_transfer.name} at {shown(base)}; keeping {winner.name}, the ladder's default at this data "
                f"size")
    if base:
        return (f"transfer helped: {best_transfer.name} {shown(best_transfer)} vs the no-transfer baseline "
                f"{base.name} {shown(base)} ({100 * (best_transfer.mean - base.mean):+.1f} points)")
    return "no baseline exists for this modality; transfer was not compared"


def _check_enough_per_class(encoded: np.ndarray, classes) -> None:
    from .data.split import _py
    from .errors import DataError

    counts = np.bincount(encoded, minlength=len(classes))
    short = [f"{_py(classes[i])!r} ({counts[i]})" for i in np.flatnonzero(counts < MIN_PER_CLASS)]
    if short:
        raise DataError(f"strategy='auto' scores every candidate on held-out examples, so it needs at least "
                        f"{MIN_PER_CLASS} labeled examples per class; too few for: {', '.join(short[:10])}"
                        f"{' …' if len(short) > 10 else ''}. Add examples of those classes, or pick a strategy "
                        f"yourself (e.g. strategy='linear_probe').")


def _expected_cost(candidate: Candidate, seconds_per_fit: dict[str, float]) -> float:
    if candidate.strategy in seconds_per_fit:
        return seconds_per_fit[candidate.strategy]
    if candidate.strategy in ("lp_ft", "finetune"):  # both train the whole network: one estimates the other
        known = [seconds_per_fit[s] for s in ("finetune", "lp_ft") if s in seconds_per_fit]
        if known:
            return known[0]
    return 0.0  # unknown yet: the first of its kind always runs


def _fit_candidate(estimator, candidate: Candidate, data, encoded, train_idx, n_classes, *, part: str = "all",
                   quiet: bool = False, train_on_validation: bool = True):
    """Fit ``candidate`` on the rows ``train_idx``, which it splits into training and validation rows
    as any fit does. With a checkpoint folder, each (candidate, part)
    checkpoints in its own subfolder, ``planner/<candidate>/<part>``: two fits sharing one would refuse
    each other's checkpoint (other data), or worse, resume it (same data, another freeze depth).
    ``quiet``: the fit logs nothing (a scoring fit; the planner logs its outcome in one line).
    ``train_on_validation=False``: the baseline and the linear probe keep the model of the chosen C
    trained on the training rows, instead of refitting it with the validation rows, so that it can be
    scored on them."""
    from .baselines import BASELINES
    from .strategies import STRATEGIES

    items = [data.inputs[i] for i in train_idx]
    if candidate.kind == "baseline":
        inner_train, inner_val = _inner_split(encoded[train_idx], estimator)
        model = BASELINES.get(candidate.strategy)()
        model.fit([items[i] for i in inner_train], encoded[train_idx][inner_train],
                  [items[i] for i in inner_val], encoded[train_idx][inner_val], n_classes,
                  refit_on_validation=train_on_validation)
        return model
    from .train import seed_everything

    sub = dataclasses.replace(data, inputs=items, labels=encoded[train_idx])
    options = dict(candidate.options)
    if estimator.checkpoint_dir:
        folder = re.sub(r"[^A-Za-z0-9._=+@()-]", "_", candidate.name)  # e.g. timm:NAME's colon
        options["checkpoint_dir"] = str(Path(estimator.checkpoint_dir) / "planner" / folder / part)
    saved = {key: getattr(estimator, key) for key in options}
    try:
        estimator.__dict__.update(options)  # read by _context and _make_terms for this fit only
        context = estimator._context(sub, encoded[train_idx], candidate.backbone, n_classes,
                                     freeze=candidate.freeze if candidate.strategy in ("finetune", "lp_ft") else None)
        context.epoch_log = None  # dozens of candidate fits: their outcomes are logged, not their epochs
        if quiet:  # "C=1 chosen" seven times over, with no word of which candidate or split, told a user nothing
            context.log = lambda message: None
        # From the seed, not from whatever the earlier candidates drew: the new head's initial weights
        # come from the global generator, so the winner's refit is the fit of that strategy alone
        # (Fashion-MNIST 100 per class, seed 0: the refit scored 0.760 where the same fine-tune alone scored 0.849).
        seed_everything(estimator.random_state)
        context.refit_on_validation = train_on_validation
        return STRATEGIES.get(candidate.strategy)().fit(context).model
    finally:
        estimator.__dict__.update(saved)


def _supports_lora(backbone_name: str) -> bool:
    """Whether the backbone has attention projections for LoRA (built without weights: only the shape matters)."""
    from .backbones import create_backbone
    from .strategies.lora import lora_targets

    if backbone_name == "precomputed":  # feature vectors: no network, so no attention projections
        return False
    return bool(lora_targets(create_backbone(backbone_name, pretrained=False)))


def _inner_split(labels, estimator):
    from .data import stratified_split

    return stratified_split(labels, estimator.val_size, estimator.random_state)
