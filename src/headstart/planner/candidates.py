"""A rung of the planner's ladder and the statistics its choice rests on."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from ..intervals import paired_difference_interval


@dataclass
class Candidate:
    name: str
    kind: str  # "transfer" | "baseline" | "average" (of two scored candidates' probabilities; options["members"])
    strategy: str
    backbone: str | None = None
    freeze: int | None = None
    options: dict = field(default_factory=dict)  # fit options this candidate changes, e.g. a label smoothing
    scores: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list, repr=False)  # per held-out example, all splits in order
    log_loss: list[float] = field(default_factory=list, repr=False)  # -log p(true class), same order as ``correct``
    # class probabilities per held-out example, same order as ``correct``: what an average of candidates needs
    probabilities: list[list[float]] = field(default_factory=list, repr=False)
    seconds: float = 0.0
    cut_short: int = 0  # scoring fits the budget's deadline stopped before their last epoch (best epoch kept)
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


def paired_standard_error(a: Candidate, b: Candidate) -> float:
    """Standard error of the mean per-example difference of two candidates scored on the same examples."""
    difference = np.asarray(a.correct, float) - np.asarray(b.correct, float)
    return float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else 0.0


def paired_difference(a: Candidate, b: Candidate) -> tuple[float, float, float]:
    """``(a.mean - b.mean, low, high)``: the held-out accuracy difference of two candidates scored on the
    same examples, with its 95% paired interval (:func:`headstart.intervals.paired_difference_interval`)."""
    return paired_difference_interval(a.correct, b.correct, 0.95)


def rank_key(candidate: Candidate) -> tuple[float, float]:
    """Best held-out accuracy first; between equals, the faster."""
    return round(candidate.mean, 6), -candidate.seconds


def settled_default(candidates: list[Candidate]) -> Candidate | None:
    """The default rung that counts: the scored one with the best held-out accuracy (the faster on a tie)."""
    defaults = [c for c in candidates if c.default and c.kind == "transfer" and c.status == "scored"]
    return max(defaults, key=rank_key) if defaults else None
