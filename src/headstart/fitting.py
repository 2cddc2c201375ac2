"""One fit, composed: the options checked and resolved once, then a strategy run from the result.

:func:`check_options` refuses what no data could make valid (a value out of range, an option the
strategy does not read, an unknown method); :func:`resolve` turns the checked options and the
data's modality into the frozen :class:`~headstart.config.ResolvedConfig`; :func:`fit_strategy`
splits the rows, builds the strategy's :class:`~headstart.strategies.FitContext` and runs it. The
estimator calls these for a fixed strategy and hands ``fit_strategy`` to the planner, which calls
it once per candidate with a variant of the configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

import numpy as np

from .backbones import ZOO, resolve_backbone
from .cache import content_hash, open_cache
from .config import DEFAULTS, LOOP_OPTIONS, ResolvedConfig, check_val_size, check_values, parse_budget, regularizer_names
from .data import LabeledData, parse_window, stratified_split, window_text
from .errors import ConfigError, UnknownNameError, did_you_mean
from .strategies import STRATEGIES, FitContext, StrategyResult
from .train import seed_everything
from ._version import __version__

DEFAULT_BUDGET = "10m"  # strategy="auto" without a budget
# Options that do not change what a fit learns: a checkpoint resumes under other values of these.
NOT_IN_RUN_KEY = ("verbose", "checkpoint_dir", "cache_dir", "device")


def accepted_options(strategy: str) -> frozenset[str]:
    """The strategy-specific options ``strategy`` reads (see :class:`~headstart.strategies.Strategy`)."""
    if strategy == "auto":
        from .planner import ACCEPTS

        return ACCEPTS
    return STRATEGIES.get(strategy).accepts


def check_options(values: dict, where: str = "TransferClassifier") -> None:
    """Raise ConfigError naming the option, the value and the fix for anything no data can make valid."""
    check_values(values, where)
    strategy = values["strategy"]
    _check_strategy_name(strategy)
    if values["budget"] is not None:
        parse_budget(values["budget"])
        if strategy != "auto" and values["adapt"] != "auto":
            raise ConfigError(f"{where}: budget={values['budget']!r} only applies to strategy='auto' or adapt='auto'; "
                              f"drop it")
    _check_accepted(values, where)
    if values["regularizer"] is not None:
        from .regularizers import REGULARIZERS

        for name in regularizer_names(values["regularizer"]):
            REGULARIZERS.get(name)  # raises with close matches
    if values["adapt"] not in (None, "auto"):
        from .adapt import ADAPTERS

        ADAPTERS.get(values["adapt"])
    check_val_size(values["val_size"], where)
    if values.get("window") is not None:
        try:
            parse_window(values["window"])
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None


def _check_strategy_name(strategy: str) -> None:
    """Unknown names raise with close matches among every strategy, ``auto`` included: the registry holds
    only the fixed strategies (the planner is not one), so its own suggestions would leave ``auto`` out."""
    if strategy == "auto" or strategy in STRATEGIES:
        return
    raise UnknownNameError(f"unknown strategy {strategy!r}.{did_you_mean(strategy, [*STRATEGIES, 'auto'])} Known: "
                           f"{', '.join(sorted(STRATEGIES))}; or auto (the planner tries them and keeps the best).")


def _check_accepted(values: dict, where: str) -> None:
    strategy, accepts = values["strategy"], accepted_options(values["strategy"])
    readers = lambda option: _either([name for name in STRATEGIES if option in STRATEGIES.get(name).accepts])
    for name in ("freeze", "C", "contrastive_loss"):
        if values[name] is not None and name not in accepts:
            raise ConfigError(f"{where}: {name}={values[name]} only applies to strategy {readers(name)}, not "
                              f"{strategy!r}; drop {name} or change the strategy")
    in_loop = [name for name in LOOP_OPTIONS if values[name] != getattr(DEFAULTS, name) and name not in accepts]
    if in_loop:
        shown = ", ".join(f"{name}={values[name]!r}" for name in in_loop)
        raise ConfigError(f"{where}: {shown} act(s) in the fine-tuning loop, which {strategy} does not run; use "
                          f"strategy {readers(in_loop[0])}, or drop the option")
    if values["regularizer"] is not None and "regularizer" not in accepts:
        raise ConfigError(f"{where}: regularizer={values['regularizer']!r} acts while fine-tuning; use strategy "
                          f"{readers('regularizer')} (with freeze set to train only the top layers), not {strategy!r}")
    if values["adapt"] is not None and "adapt" not in accepts:
        raise ConfigError(f"{where}: adapt={values['adapt']!r} aligns features while training; use strategy "
                          f"{readers('adapt')}, not {strategy!r}")


def _either(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def resolve(values: dict, data: LabeledData, feature_dim: int | None = None) -> ResolvedConfig:
    """Options that passed :func:`check_options`, resolved against the data: the backbone named (and, for
    backbone="auto" under strategy="auto", every installed zoo model of the modality to rank), the budget in
    seconds, the device."""
    backbone = resolve_backbone(values["backbone"], data.modality, data.source)
    choices = [backbone]
    if values["backbone"] == "auto":  # none installed: the default, whose build says how to install it
        choices = [n for n in ZOO if ZOO.get(n).info.modality == data.modality and ZOO.get(n).installed] or choices
    budget = values["budget"] if values["budget"] is not None else (DEFAULT_BUDGET if values["strategy"] == "auto" else None)
    return ResolvedConfig(**{**values, "backbone": backbone, "device": resolve_device(values["device"]),
                             "window": window_text(values.get("window"))},
                          modality=data.modality, backbone_choices=tuple(choices),
                          budget_seconds=None if budget is None else parse_budget(budget), feature_dim=feature_dim)


def resolve_device(option: str) -> str:
    """"auto" is cuda when torch sees a GPU, else cpu; "cpu" and "cuda" stay."""
    if option == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return option


def fit_strategy(config: ResolvedConfig, data: LabeledData, encoded: np.ndarray, n_classes: int, *,
                 target_items=None, log: Callable[[str], None] = lambda message: None,
                 epoch_log: Callable[[str], None] | None = None, refit_on_validation: bool = True) -> StrategyResult:
    """Fit ``config.strategy`` on ``data`` (labels ``encoded``), holding out its stratified validation split."""
    train_idx, val_idx = stratified_split(encoded, config.val_size, config.random_state)
    pick = lambda rows: [data.inputs[i] for i in rows]
    strategy = STRATEGIES.get(config.strategy)()
    defaults = strategy.loop_defaults(len(train_idx), len(val_idx), refit_on_validation)
    context = FitContext(
        config=dataclasses.replace(config, **{k: v for k, v in defaults.items() if getattr(config, k) is None}),
        train_items=pick(train_idx), train_y=encoded[train_idx], val_items=pick(val_idx), val_y=encoded[val_idx],
        n_classes=n_classes, cache=open_cache(config.cache_dir), log=log, epoch_log=epoch_log,
        target_items=target_items if config.adapt else None,
        run_key=run_key(config, data) if config.checkpoint_dir else "", refit_on_validation=refit_on_validation)
    # From the seed, not from whatever ran before: the new head's initial weights come from the global
    # generator, so a planner candidate's fit is the fit of that strategy alone.
    seed_everything(config.random_state)
    result = strategy.fit(context)
    result.summary.update(n_train=len(train_idx), n_val=len(val_idx))
    return result


def run_key(config: ResolvedConfig, data: LabeledData) -> str:
    """Identifies a fit (data content, labels, options) so that a checkpoint resumes only its own fit."""
    digest = hashlib.sha256()
    options = {k: v for k, v in config.options().items() if k not in NOT_IN_RUN_KEY}
    digest.update(json.dumps({**options, "version": __version__}, sort_keys=True, default=str).encode())
    for item, label in zip(data.inputs, data.labels):
        digest.update(content_hash(item, data.modality))
        digest.update(str(label).encode())
    return digest.hexdigest()
