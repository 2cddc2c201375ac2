"""Strategies: how a pretrained backbone becomes a classifier. One module each, one registry."""

from __future__ import annotations

from ..registry import Registry
from .base import FitContext, Strategy, StrategyResult
from .contrastive import Contrastive
from .finetune import Finetune
from .linear_probe import LinearProbe
from .lora import Lora
from .lp_ft import LPFT
from .scratch import Scratch

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _strategy in (LinearProbe, Finetune, LPFT, Lora, Scratch, Contrastive):
    STRATEGIES.register(_strategy.name, _strategy)

__all__ = ["STRATEGIES", "FitContext", "Strategy", "StrategyResult"]
