"""What every adaptation term shares: argument checks, the source/target pair, entropy.

An adaptation term is a :class:`~headstart.terms.LossTerm` that reads the unlabeled target batch
(``needs_target = True``). It sees only :class:`~headstart.terms.StepOutputs` — pooled features
``(b, d)`` and logits ``(b, k)`` of both domains — so the same term serves a head trained on cached
frozen features and a fine-tuned backbone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..terms import LossTerm, StepOutputs


def entropy(probs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise Shannon entropy (nats) of probabilities ``(n, k) -> (n,)``."""
    return -(probs * torch.log(probs + eps)).sum(dim=1)


def check_positive_int(value, what: str, where: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {what} must be a positive integer, got {value!r}; {fix}")
    return value


def check_number(value, what: str, where: str, *, low: float, high: float = math.inf,
                 low_open: bool = False, fix: str = "") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number) and (number > low if low_open else number >= low) and number <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        raise ConfigError(f"{where}: {what} must be a finite number {bound}, got {value!r}; {fix}".rstrip("; "))
    return number


class AdaptationTerm(LossTerm):
    """Base of the domain-adaptation terms: ``Cls(feature_dim, n_classes, weight, **options)``."""

    needs_target = True

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0):
        where = f"adaptation method {self.name!r}"
        super().__init__(check_number(weight, "weight", where, low=0.0,
                                      fix="pass the trade-off of this loss against the cross-entropy, e.g. 1.0"))
        self.feature_dim = check_positive_int(
            feature_dim, "feature_dim", where, "pass the dimension d of the pooled features (b, d)")
        self.n_classes = check_positive_int(
            n_classes, "n_classes", where, "pass the number of classes k of the logits (b, k)")
        if self.n_classes < 2:
            raise ConfigError(f"{where}: n_classes must be >= 2, got {n_classes!r}; "
                              "domain adaptation needs a classifier over at least two classes")

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, n_classes={self.n_classes}, weight={self.weight:g}"

    # -- inputs --------------------------------------------------------------------------------
    def _missing_target(self, field: str) -> DataError:
        return DataError(
            f"adaptation method {self.name!r} needs the unlabeled target batch, but "
            f"StepOutputs.{field} is None; give the training run unlabeled target data "
            f"(the loop draws target batches for terms with needs_target=True) or drop the method"
        )

    def _check_2d(self, x: torch.Tensor, field: str, width: int, what: str) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != width or x.shape[0] < 1:
            raise DataError(
                f"adaptation method {self.name!r}: StepOutputs.{field} must have shape (b, {width}) "
                f"with b >= 1 ({what}), got {tuple(x.shape)}; build the term with the model's "
                f"feature_dim/n_classes"
            )
        return x

    def features_pair(self, outputs: StepOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Source ``(b_s, d)`` and target ``(b_t, d)`` features, checked."""
        if outputs.target_features is None:
            raise self._missing_target("target_features")
        fs = self._check_2d(outputs.features, "features", self.feature_dim, "d = feature_dim")
        ft = self._check_2d(outputs.target_features, "target_features", self.feature_dim, "d = feature_dim")
        return fs, ft

    def logits_pair(self, outputs: StepOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Source ``(b_s, k)`` and target ``(b_t, k)`` logits, checked."""
        if outputs.target_logits is None:
            raise self._missing_target("target_logits")
        gs = self._check_2d(outputs.logits, "logits", self.n_classes, "k = n_classes")
        gt = self._check_2d(outputs.target_logits, "target_logits", self.n_classes, "k = n_classes")
        return gs, gt

    def target_logits(self, outputs: StepOutputs) -> torch.Tensor:
        if outputs.target_logits is None:
            raise self._missing_target("target_logits")
        return self._check_2d(outputs.target_logits, "target_logits", self.n_classes, "k = n_classes")

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
