"""MCC: Minimum Class Confusion on the target predictions.

Paper: Y. Jin, X. Wang, M. Long and J. Wang, "Minimum Class Confusion for Versatile Domain
Adaptation", ECCV 2020, arXiv:1912.03699.

Math. For target logits ``Z (n, k)`` and temperature ``T``:

    Y = softmax(Z / T)                                   # (n, k) temperature-scaled probabilities
    H_i = -sum_j Y_ij log Y_ij                           # (n,)   prediction entropy
    W_ii = n (1 + exp(-H_i)) / sum_i' (1 + exp(-H_i'))   # (n,)   example weights, detached, mean 1
    C = Y^T W Y                                          # (k, k) class confusion matrix
    C~_jj' = C_jj' / sum_j'' C_jj''                      # (k, k) rows normalised to sum 1
    L_MCC = (sum_{j != j'} C~_jj') / k                   # scalar in [0, 1)

Confident, one-class-per-example predictions make ``C`` diagonal and the loss 0; predictions that
spread mass over several classes for the same examples are penalised. Only the target logits are
used (source logits and all features are not), so the gradient reaches the features through the
classifier head.

Shapes: ``outputs.target_logits (n_t, k)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..terms import StepOutputs
from ._base import AdaptationTerm, check_number, entropy


def mcc_loss(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """Minimum class confusion loss of target logits ``(n, k)`` (module docstring)."""
    n, k = logits.shape
    probs = F.softmax(logits.float() / temperature, dim=1)
    w = 1.0 + torch.exp(-entropy(probs.detach()))
    w = n * w / w.sum()
    confusion = (probs * w.unsqueeze(1)).T @ probs                       # (k, k)
    # A class no target example gives any probability (it underflows once predictions sharpen) has an all-zero
    # row; 0/0 made the loss NaN (MNIST→digits, 10 classes, bench.adaptation). Such a row confuses nothing.
    confusion = confusion / confusion.sum(dim=1, keepdim=True).clamp_min(torch.finfo(confusion.dtype).tiny)
    return (confusion.sum() - confusion.diagonal().sum()) / k


class MCC(AdaptationTerm):
    """MCC term. ``MCC(feature_dim, n_classes, weight=1.0, temperature=2.5)`` (the paper's T = 2.5)."""

    name = "mcc"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0, temperature: float = 2.5):
        super().__init__(feature_dim, n_classes, weight)
        self.temperature = check_number(temperature, "temperature", "adaptation method 'mcc'", low=0.0,
                                        low_open=True, fix="the paper uses 2.5; 1.0 is the plain softmax")

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        return mcc_loss(self.target_logits(outputs), self.temperature)
