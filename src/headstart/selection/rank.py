"""Rank backbones and their layer groups by a transferability score, without training.

:func:`rank_backbones` builds each backbone, takes the pooled features of every requested layer
group from **one** :meth:`FeatureCache.features <headstart.cache.FeatureCache.features>` call
(one forward pass per backbone, and none at all when the cache already holds them), scores every
``(backbone, layer)`` with a score of :data:`~headstart.selection.SCORES` and returns
:class:`RankRow` s, best first. :func:`suggest_freeze` turns one backbone's rows into a freeze depth.

torch is imported only when ranking runs, so importing this module stays light.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError, did_you_mean
from ..data import set_window
from .scores import SCORES

LAYER_CHOICES = ("all", "last")
# What the planner and `headstart rank` score on by default. Ranking is one forward pass per backbone,
# so its cost grows with the data like fine-tuning's does: at Fashion-MNIST 100 per class it was 8% of a
# full fine-tune. LogME on a stratified 512 of those 1,000 images ranked the zoo's 16 layer groups with
# Kendall's tau 0.95-0.98 against all 1,000, and gave the same best layer and freeze depths, on 3 draws of
# each of 3 seeds (256: tau 0.90-0.98, and one draw changed the best layer); see docs/benchmarks.md.
DEFAULT_MAX_EXAMPLES = 512


@dataclass(frozen=True)
class RankRow:
    """One ``(backbone, layer)`` scored.

    ``layer_index`` is the group's position in ``backbone.layer_names`` (0 = nearest the input).
    ``seconds`` is the time to score this layer's features; ``feature_seconds`` is the time of the
    backbone's one feature pass (cache look-up included), shared by all rows of that backbone.
    """

    backbone: str
    layer: str
    layer_index: int
    score_name: str
    score: float
    seconds: float
    feature_seconds: float = 0.0


def _resolve_layers(layers, names: list[str], backbone: str) -> list[str]:
    if isinstance(layers, str):
        if layers == "all":
            return list(names)
        if layers == "last":
            return [names[-1]]
        if layers in names:
            return [layers]
        raise ConfigError(f"layers={layers!r} is neither 'all', 'last' nor a layer group of {backbone}."
                          f"{did_you_mean(layers, [*LAYER_CHOICES, *names])} Its groups, input to output: "
                          f"{', '.join(names)}")
    chosen = list(dict.fromkeys(layers))
    if not chosen:
        raise ConfigError("layers is empty; pass 'all', 'last' or a list of layer group names")
    return chosen  # unknown names are reported by backbone.check_layers, with its groups listed


def _make_cache(cache):
    from ..cache import FeatureCache

    if cache is None:
        return FeatureCache("default")
    if isinstance(cache, FeatureCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(None if str(cache).lower() == "none" else cache)
    raise ConfigError(f"cache must be a FeatureCache, a folder path, 'none' or None (the default folder), "
                      f"got {type(cache).__name__}")


def rank_backbones(
    items: Sequence,
    labels,
    backbones: Sequence[str],
    *,
    layers: str | Sequence[str] = "all",
    cache=None,
    image_size: int | None = None,
    max_length: int | None = None,
    score: str = "logme",
    progress: bool = False,
    max_examples: int | None = None,
    feature_dim: int | None = None,
    log=None,
    window=None,
) -> list[RankRow]:
    """Score every ``(backbone, layer)`` on ``(items, labels)``; return the rows best first.

    ``items``: images (paths, PIL images, uint8 arrays) or texts, as the backbones take them.
    ``labels``: one per item, any type (encoded with ``np.unique``), at least 2 classes.
    ``backbones``: names for :func:`headstart.backbones.create_backbone`. ``layers``: ``"all"``
    (every layer group), ``"last"``, or group names. ``cache``: a :class:`FeatureCache`, a folder,
    ``"none"`` (memory only) or ``None`` (the default cache folder). ``score``: a name in
    :data:`~headstart.selection.SCORES`. ``max_examples``: score a stratified subsample of that many
    inputs when there are more (every class keeps its share, at least one example; the draw is fixed),
    ``None`` for all (the planner and ``headstart rank`` use :data:`DEFAULT_MAX_EXAMPLES`).
    ``feature_dim``: the width of the rows when ``backbones`` is ``["precomputed"]`` (feature vectors).
    ``progress``: a bar over each feature pass on a terminal; ``log``: called with one line per
    backbone scored, the progress a log file keeps. ``window``: how DICOM and 16-bit images are
    windowed (:func:`headstart.data.parse_window`), as the fit that follows will read them.
    """
    from ..backbones import create_backbone

    scorer = SCORES.get(score)  # an unknown name raises with "Did you mean ..."
    if isinstance(backbones, str):
        backbones = [backbones]
    names = list(dict.fromkeys(backbones))
    if not names:
        raise ConfigError("backbones is empty; pass at least one backbone name (see `headstart models list`)")
    items = list(items)
    n_classes, encoded = _encode_labels(labels, len(items))
    items, encoded = _subsample(items, encoded, max_examples, n_classes)
    store = _make_cache(cache)
    rows: list[RankRow] = []
    for number, name in enumerate(names, 1):
        started = time.perf_counter()
        backbone = create_backbone(name, image_size=image_size, max_length=max_length, feature_dim=feature_dim)
        set_window(backbone, window)
        rows += _score_backbone(backbone, name, layers, items, encoded, store, scorer, score, progress)
        if log:
            log(f"ranked {name} ({number} of {len(names)}): {sum(r.backbone == name for r in rows)} layer group(s) "
                f"on {len(items)} examples in {time.perf_counter() - started:.1f} s")
    rows.sort(key=lambda row: -row.score)  # stable: ties keep backbone order, then input-to-output
    return rows


def _encode_labels(labels, n_items: int) -> tuple[int, np.ndarray]:
    """``(number of classes, class codes 0..k-1 of shape (n_items,))`` for ``labels``; raises DataError
    unless they are one per input, of sortable types, with at least 2 classes."""
    target = np.asarray(labels)
    if target.ndim != 1 or len(target) != n_items:
        raise DataError(f"rank_backbones: {n_items} inputs but labels of shape {target.shape}; pass one "
                        f"label per input")
    try:
        classes, encoded = np.unique(target, return_inverse=True)
    except TypeError:
        raise DataError("rank_backbones: labels mix types that cannot be sorted; use one type, e.g. all "
                        "strings") from None
    if len(classes) < 2:
        raise DataError(f"rank_backbones: labels hold {len(classes)} class among {n_items} inputs; ranking "
                        f"needs at least 2 classes")
    return len(classes), encoded.reshape(-1)


def _subsample(items: list, encoded: np.ndarray, max_examples, n_classes: int) -> tuple[list, np.ndarray]:
    """``(items, encoded)`` cut to a stratified ``max_examples`` of them when there are more, else as
    given; raises ConfigError when ``max_examples`` is not an int of at least 2 per class."""
    if max_examples is None:
        return items, encoded
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) \
            or max_examples < 2 * n_classes:
        raise ConfigError(f"max_examples={max_examples!r}: pass at least 2 per class ({2 * n_classes} for "
                          f"these {n_classes} classes), or None to score all {len(items)} inputs")
    if max_examples < len(items):
        chosen = stratified_subsample(encoded, int(max_examples))
        return [items[i] for i in chosen], encoded[chosen]
    return items, encoded


def _score_backbone(backbone, name: str, layers, items: list, encoded: np.ndarray, store, scorer,
                    score: str, progress: bool) -> list[RankRow]:
    """A RankRow per layer group of ``backbone`` that ``layers`` asks for, in that order, from one feature pass."""
    all_layers = backbone.layer_names
    chosen = _resolve_layers(layers, all_layers, name)
    started = time.perf_counter()
    # one pass, every layer; the backbone is built here for this pass only, so it may be folded itself
    features = store.features(backbone, items, chosen, progress=progress, disposable=True)
    feature_seconds = time.perf_counter() - started
    rows = []
    for layer in chosen:
        started = time.perf_counter()
        value = float(scorer(features[layer], encoded))
        rows.append(RankRow(name, layer, all_layers.index(layer), score, value,
                            time.perf_counter() - started, feature_seconds))
    return rows


def default_max_examples(n_classes: int) -> int:
    """:data:`DEFAULT_MAX_EXAMPLES`, raised to 2 per class for data with very many classes."""
    return max(DEFAULT_MAX_EXAMPLES, 2 * n_classes)


def stratified_subsample(encoded: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``size`` of the rows, each class ``c`` in proportion to its count (at least one).

    ``encoded`` ``(n,)``: class codes 0..k-1, ``2k <= size < n``. Largest-remainder rounding, so the
    total is exactly ``size``; within a class the rows are drawn without replacement from ``seed``.
    """
    counts = np.bincount(encoded)
    share = counts * size / len(encoded)
    quota = np.minimum(np.maximum(np.floor(share).astype(int), 1), counts)
    order = np.argsort(-(share - quota), kind="stable")  # hand out what rounding left, largest shortfall first
    while quota.sum() < size:
        for c in order[quota[order] < counts[order]][: size - quota.sum()]:
            quota[c] += 1
    while quota.sum() > size:  # the at-least-one floors overshot: take back from the largest
        quota[int(np.argmax(quota))] -= 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(encoded == c), quota[c], replace=False) for c in range(len(counts))]
    return np.sort(np.concatenate(picked))


def suggest_freeze(rows: Sequence[RankRow]) -> int:
    """Freeze depth for one backbone: freeze the groups **strictly below** its best-scoring layer.

    Returns ``k = layer_index`` of the best row, the value for ``Backbone.freeze(k)`` /
    ``freeze=k``: groups ``0 .. k-1`` are frozen; the best layer's own group and every group above
    it train, so the last group always trains (``k <= number of groups - 1``, the cap is built in).
    A tie in score goes to the deeper layer (fewer parameters to train). With only the last layer
    ranked (``layers="last"``), this is ``number of groups - 1``.
    """
    rows = list(rows)
    if not rows:
        raise ConfigError("suggest_freeze needs the rows of one backbone, got none; rank it first with "
                          "rank_backbones(items, labels, [name])")
    backbones = sorted({row.backbone for row in rows})
    if len(backbones) > 1:
        raise ConfigError(f"suggest_freeze got rows of {len(backbones)} backbones ({', '.join(backbones)}); pass "
                          f"those of one, e.g. [r for r in rows if r.backbone == {backbones[0]!r}]")
    best = max(rows, key=lambda row: (row.score, row.layer_index))
    return int(best.layer_index)
