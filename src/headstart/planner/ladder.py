"""The planner's ladder: which backbones are worth trying, which candidates, how they are scored.

Every rule here is justified by a table of docs/benchmarks.md (planner section); the figures live
there, not here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ..baselines import baseline_for
from ..config import ResolvedConfig
from ..data import stratified_split
from ..errors import DataError
from .candidates import Candidate

# Below this many examples in some class the data is "tiny": candidates are scored by cross-validation,
# and the rungs that never won there (fine-tuning at depth, LP-FT, LoRA) are recorded as skipped.
TINY_PER_CLASS = 30
TINY_FOLDS = 3  # stratified folds on tiny data: every labeled example is held out exactly once
# Below this many examples per class contrastive body tuning is the default rung; from it full
# fine-tuning is a rung too, and it and LP-FT are both defaults.
PLENTIFUL_PER_CLASS = 50
MIN_PER_CLASS = 3  # one held-out example per fold, and two to train (one of them for the inner validation split)
TINY_DEPTH_RUNG_SKIPPED = (
    "not tried below {tiny} examples per class: on tiny data fine-tuning at LogME's freeze depth never won "
    "in bench.strategies (0 of 18 draws) and took a third to a half of the planner's time; contrastive body tuning and "
    "LP-FT are the rungs for this data size (docs/benchmarks.md)")
TINY_LORA_RUNG_SKIPPED = (
    "not tried below {tiny} examples per class: on tiny data LoRA scored at chance in bench.strategies (VADER 8 "
    "per class: 0.508 against LP-FT's 0.587, 6 seeds), won none of 12 planner draws and took a third of the "
    "planner's time (docs/benchmarks.md)")
TINY_LP_FT_RUNG_SKIPPED = (
    "not tried below {tiny} examples per class: there the default rung, contrastive body tuning, is replaced "
    "only on a clear held-out lead, and LP-FT never took its place in 28 planner runs of the dev suite (7 text "
    "and image tasks) while taking 26-46% of the planner's time (docs/benchmarks.md)")
# Of a budget, what ranking the backbones after the first may use: the rest is the ladder's.
RANK_SHARE = 0.25


def planner_splits(config: ResolvedConfig, encoded: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tiny data: stratified :data:`TINY_FOLDS`-fold cross-validation, every example held out once.
    Otherwise one split: the fit's own validation split, the one every fixed strategy holds out to
    choose its epoch or C, so that a fine-tuned candidate's scoring fit is that strategy's fit."""
    counts = np.bincount(encoded)
    if counts.min() >= TINY_PER_CLASS:
        return [stratified_split(encoded, config.val_size, config.random_state)]
    folds = StratifiedKFold(n_splits=TINY_FOLDS, shuffle=True, random_state=config.random_state)
    return list(folds.split(np.zeros(len(encoded)), encoded))


def rank(config: ResolvedConfig, data, encoded, cache, max_examples: int, *, ends: float = math.inf,
         log=lambda message: None) -> tuple[list[dict], dict[str, int]]:
    """LogME per (backbone, layer group) of ``config.backbone_choices``, on a stratified subsample of
    at most ``max_examples``; returns rows best first and a freeze depth per backbone ranked.

    Ranking is a forward pass per backbone, before any candidate, so under a budget ending at
    ``ends`` it may use :data:`RANK_SHARE` of it: the first backbone is always ranked, each later one
    only when its pass, expected from the last one's time scaled by their parameter counts, ends
    within that share (mpnet_base has about five times minilm_l6's parameters)."""
    from ..selection.rank import rank_backbones, suggest_freeze
    from .. import train

    started = train.clock()
    rank_ends = started + RANK_SHARE * (ends - started)
    rows, last = [], None  # last: (seconds, parameters) of the previous backbone's pass
    for name in config.backbone_choices:
        expected = last[0] * _params(name, last[1]) / last[1] if last else 0.0
        if last and train.clock() + expected > rank_ends:
            log(f"auto: not ranking {name}: its pass would take about {expected:.0f} s, and ranking may use "
                f"{RANK_SHARE:.0%} of the budget ({rank_ends - started:.0f} s); a larger budget ranks it")
            continue
        t0 = train.clock()
        rows += rank_backbones(data.inputs, encoded, [name], layers="all", cache=cache, image_size=config.image_size,
                               max_length=config.max_length, score="logme", max_examples=max_examples,
                               feature_dim=config.feature_dim, progress=config.progress, window=config.window)
        last = (train.clock() - t0, _params(name, last[1] if last else 1.0))
    rows.sort(key=lambda row: -row.score)  # stable: ties keep backbone order, then input to output
    ranked = {r.backbone for r in rows}
    freeze = {name: suggest_freeze([r for r in rows if r.backbone == name])
              for name in config.backbone_choices if name in ranked}
    return [dataclasses.asdict(r) for r in rows], freeze


def _zoo_info(name: str):
    """A zoo model's :class:`~headstart.backbones.info.ModelInfo`; None for a backbone outside the zoo."""
    from ..backbones import ZOO

    return ZOO.get(name).info if name in ZOO else None


def _params(name: str, otherwise: float) -> float:
    """A zoo model's parameters in millions; ``otherwise`` for a backbone outside the zoo."""
    info = _zoo_info(name)
    return info.params_millions if info else otherwise


def build_ladder(config: ResolvedConfig, modality: str, backbones: list[str], ranking: list[dict],
                 freeze_depths: dict[str, int], encoded: np.ndarray) -> tuple[list[Candidate], list[str]]:
    """The candidates in the order they are tried, the default rungs marked; and the backbones kept.

    The no-transfer baseline, a linear probe per kept backbone (the best two of
    :func:`backbone_order`), then on the best backbone: fine-tuning at LogME's freeze depth, LP-FT, contrastive body
    tuning, LoRA when the backbone has attention projections, and full fine-tuning from
    :data:`PLENTIFUL_PER_CLASS`."""
    smallest_class = int(np.bincount(encoded).min())
    tiny = smallest_class < TINY_PER_CLASS
    kept = backbone_order(backbones, ranking, tiny)[:2]
    candidates = []
    baseline = baseline_for(modality)
    if baseline is not None:
        candidates.append(Candidate(f"baseline:{baseline.name}", "baseline", baseline.name,
                                    reason="no-transfer baseline"))
    for name in kept:
        candidates.append(Candidate(f"linear_probe@{name}", "transfer", "linear_probe", name))
    best = kept[0]
    depth = freeze_depths.get(best, 0)

    def rung(name: str, strategy: str, freeze: int | None, skipped_on_tiny: str | None = None) -> Candidate:
        """A rung on the best backbone; on tiny data one that never won there is recorded as skipped, with why."""
        candidate = Candidate(f"{name}@{best}", "transfer", strategy, best, freeze)
        if tiny and skipped_on_tiny:
            candidate.status, candidate.reason = "skipped", skipped_on_tiny.format(tiny=TINY_PER_CLASS)
        return candidate

    candidates.append(rung(f"finetune(freeze={depth})", "finetune", depth, TINY_DEPTH_RUNG_SKIPPED))
    candidates.append(rung("lp_ft", "lp_ft", 0, TINY_LP_FT_RUNG_SKIPPED))
    candidates.append(rung("contrastive", "contrastive", 0))
    if supports_lora(best):
        candidates.append(rung("lora", "lora", None, TINY_LORA_RUNG_SKIPPED))
    if smallest_class >= PLENTIFUL_PER_CLASS and depth != 0:
        candidates.append(rung("finetune(freeze=0)", "finetune", 0))
    first = 1 + len(kept) if baseline is not None else len(kept)
    for position, rung in enumerate(default_rungs(candidates, smallest_class), first):
        rung.default = True
        # right after the linear probes, so a tight budget skips the optional rungs rather than a default
        candidates.remove(rung)
        candidates.insert(position, rung)
    return candidates, kept


def logme_order(backbones: list[str], ranking: list[dict]) -> list[str]:
    """``backbones`` best first by their last layer group's LogME (ties keep the given order)."""
    last_index = {r["backbone"]: max(q["layer_index"] for q in ranking if q["backbone"] == r["backbone"]) for r in ranking}
    last_layer_score = {r["backbone"]: r["score"] for r in ranking if r["layer_index"] == last_index[r["backbone"]]}
    return sorted(backbones, key=lambda b: -last_layer_score.get(b, -np.inf))


def backbone_order(backbones: list[str], ranking: list[dict], tiny: bool) -> list[str]:
    """The backbones best first: by LogME, except that on tiny data the zoo models that share a
    source benchmark take the places LogME gave them in the order of their published scores.

    On tiny data LogME sees a few examples per class: transferability rankings from small target
    sets are unstable (Agostinelli et al. 2022), while the better model on the source benchmark
    transfers better in the large (Kornblith et al. 2019, ImageNet). The published score decides
    only between models measured on the same benchmark; LogME still places a model without one,
    and models of different benchmarks, against the rest (evidence: docs/benchmarks.md, planner).
    """
    order = logme_order(backbones, ranking)
    if not tiny:
        return order
    scores = {name: info.source_score if (info := _zoo_info(name)) else None for name in order}
    places: dict[str, list[int]] = {}
    for place, name in enumerate(order):
        if scores[name] is not None:
            places.setdefault(scores[name].benchmark, []).append(place)
    reordered = list(order)
    for shared in places.values():
        by_score = sorted((order[place] for place in shared), key=lambda name: -scores[name].value)
        for place, name in zip(shared, by_score):
            reordered[place] = name
    return reordered


def default_rungs(candidates: list[Candidate], min_per_class: int) -> list[Candidate]:
    """The rungs kept when the held-out scores cannot tell them from the rest.

    Below :data:`PLENTIFUL_PER_CLASS` examples per class, contrastive body tuning; from there on,
    the two rungs that train the whole network, full fine-tuning (nothing frozen) and LP-FT, the
    better of them on the held-out examples counting (:func:`~.candidates.settled_default`). Empty
    when the ladder has none.
    """
    if min_per_class >= PLENTIFUL_PER_CLASS:
        wanted = [lambda c: c.strategy == "finetune" and c.freeze == 0 and not c.options,
                  lambda c: c.strategy == "lp_ft" and not c.options]
    else:
        wanted = [lambda c: c.strategy == "contrastive"]
    found = [next((c for c in candidates if c.kind == "transfer" and test(c)), None) for test in wanted]
    return [c for c in found if c is not None]


def supports_lora(backbone_name: str) -> bool:
    """Whether the backbone has attention projections for LoRA (built without weights: only the shape matters)."""
    from ..backbones import create_backbone
    from ..strategies.lora import lora_targets

    if backbone_name == "precomputed":  # feature vectors: no network, so no attention projections
        return False
    return bool(lora_targets(create_backbone(backbone_name, pretrained=False)))


def check_enough_per_class(encoded: np.ndarray, classes) -> None:
    from ..data.screen import plain as _py

    counts = np.bincount(encoded, minlength=len(classes))
    short = [f"{_py(classes[i])!r} ({counts[i]})" for i in np.flatnonzero(counts < MIN_PER_CLASS)]
    if short:
        raise DataError(f"strategy='auto' scores every candidate on held-out examples, so it needs at least "
                        f"{MIN_PER_CLASS} labeled examples per class; too few for: {', '.join(short[:10])}"
                        f"{' …' if len(short) > 10 else ''}. Add examples of those classes, or pick a strategy "
                        f"yourself (e.g. strategy='linear_probe').")
