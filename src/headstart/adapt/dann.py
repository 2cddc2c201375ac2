"""DANN: domain-adversarial training through a gradient reversal layer.

Paper: Y. Ganin, E. Ustinova, H. Ajakan, P. Germain, H. Larochelle, F. Laviolette, M. Marchand and
V. Lempitsky, "Domain-Adversarial Training of Neural Networks", JMLR 17(59), 2016,
arXiv:1505.07818.

Math. A domain discriminator ``D: R^d -> R`` (a logit) is trained to tell source (label 1) from
target (label 0) features; the features reach it through a gradient reversal layer ``R_lambda``
(identity forward, ``-lambda * grad`` backward), so the same loss trains ``D`` to separate the
domains and the feature extractor to confuse it:

    L_DANN = 1/2 [ BCE(D(R(f_s)), 1) + BCE(D(R(f_t)), 0) ]        # mean over each domain
    lambda(p) = 2 / (1 + exp(-gamma p)) - 1,   p = step / total_steps in [0, 1],  gamma = 10

``lambda`` goes from 0 at the first step to ~1 (0.99991) at the last. It is computed from
``outputs.step`` / ``outputs.total_steps`` — not from a counter in the term — so a resumed run
continues the schedule; the discriminator's weights are in the term's ``state_dict``.

Discriminator: ``d -> h -> h -> 1`` with ReLU, ``h = 1024`` as in the paper for ``d >= 256`` and
``h = max(32, 4 d)`` for smaller ``d`` (option ``hidden_dim``). No BatchNorm (so batches of one
work and train/eval mode does not matter) and no dropout (so the loss is deterministic).

Shapes: ``outputs.features (n_s, d)``, ``outputs.target_features (n_t, d)``; logits unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..terms import StepOutputs
from ._base import AdaptationTerm, check_number, check_positive_int


class GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``-coeff`` in the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.coeff * grad_output, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """``R_coeff(x)``: ``x`` forward, ``-coeff * grad`` backward."""
    return GradientReversal.apply(x, coeff)


def grl_coefficient(step: int, total_steps: int, gamma: float = 10.0, max_coeff: float = 1.0) -> float:
    """DANN's schedule ``max_coeff * (2 / (1 + exp(-gamma p)) - 1)``, ``p = clip(step / total_steps)``."""
    p = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return max_coeff * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def default_hidden(in_dim: int) -> int:
    return 1024 if in_dim >= 256 else max(32, 4 * in_dim)


class DomainDiscriminator(nn.Sequential):
    """``in_dim -> hidden -> hidden -> 1`` MLP with ReLU; outputs a logit (source = 1)."""

    def __init__(self, in_dim: int, hidden_dim: int):
        super().__init__(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, 1),
        )


def domain_bce(logit_s: torch.Tensor, logit_t: torch.Tensor,
               weight_s: torch.Tensor | None = None, weight_t: torch.Tensor | None = None) -> torch.Tensor:
    """``1/2 [BCE(source, 1) + BCE(target, 0)]``, each a (weighted) mean over its domain."""
    bce_s = F.binary_cross_entropy_with_logits(logit_s.squeeze(1), torch.ones_like(logit_s.squeeze(1)),
                                               reduction="none")
    bce_t = F.binary_cross_entropy_with_logits(logit_t.squeeze(1), torch.zeros_like(logit_t.squeeze(1)),
                                               reduction="none")
    if weight_s is None:
        return 0.5 * (bce_s.mean() + bce_t.mean())
    return 0.5 * ((weight_s * bce_s).sum() / weight_s.sum() + (weight_t * bce_t).sum() / weight_t.sum())


class AdversarialTerm(AdaptationTerm):
    """Shared by DANN and CDAN: the lambda schedule and its options."""

    def _schedule_options(self, gamma: float, max_coeff: float) -> None:
        where = f"adaptation method {self.name!r}"
        self.gamma = check_number(gamma, "gamma", where, low=0.0, low_open=True, fix="the paper uses 10")
        self.max_coeff = check_number(max_coeff, "max_coeff", where, low=0.0, fix="the paper uses 1.0")
        self.last_coeff = 0.0  # lambda used at the last call, for logging

    def coefficient(self, step: int, total_steps: int) -> float:
        return grl_coefficient(step, total_steps, self.gamma, self.max_coeff)


class DANN(AdversarialTerm):
    """DANN term. ``DANN(feature_dim, n_classes, weight=1.0, hidden_dim=None, gamma=10.0,
    max_coeff=1.0)``; ``hidden_dim=None`` picks 1024 for ``d >= 256``, else ``max(32, 4 d)``.
    """

    name = "dann"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0, hidden_dim: int | None = None,
                 gamma: float = 10.0, max_coeff: float = 1.0):
        super().__init__(feature_dim, n_classes, weight)
        hidden = default_hidden(feature_dim) if hidden_dim is None else check_positive_int(
            hidden_dim, "hidden_dim", "adaptation method 'dann'", "e.g. 1024, or None for the default")
        self._schedule_options(gamma, max_coeff)
        self.discriminator = DomainDiscriminator(feature_dim, hidden)

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        fs, ft = self.features_pair(outputs)
        coeff = self.coefficient(outputs.step, outputs.total_steps)
        self.last_coeff = coeff
        dtype = self.discriminator[0].weight.dtype
        logits = self.discriminator(grad_reverse(torch.cat([fs, ft], dim=0).to(dtype), coeff))
        return domain_bce(logits[: fs.shape[0]], logits[fs.shape[0]:])
