"""No-transfer baselines, one per modality: what transfer must beat to be worth it."""

from __future__ import annotations

from ..registry import Registry
from .audio import LogMelLogistic
from .base import Baseline
from .pixels import PixelLogistic
from .tfidf import TfidfLogistic

BASELINES: Registry[type[Baseline]] = Registry("baseline")
for _baseline in (TfidfLogistic, PixelLogistic, LogMelLogistic):
    BASELINES.register(_baseline.name, _baseline)


def baseline_for(modality: str) -> type[Baseline] | None:
    """The registered baseline for a modality, or None (e.g. precomputed features)."""
    return next((BASELINES.get(n) for n in BASELINES if BASELINES.get(n).modality == modality), None)


__all__ = ["BASELINES", "Baseline", "baseline_for"]
