"""Self-training on the target batch with confident pseudo-labels.

Reference: D.-H. Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for
Deep Neural Networks", ICML 2013 Workshop on Challenges in Representation Learning; FixMatch-style
confidence threshold (K. Sohn et al., NeurIPS 2020, arXiv:2001.07685) without augmentation.

Math. For target logits ``Z (n, k)``, pseudo-labels and the mask come from the current model with
no gradient:

    p = softmax(Z).detach()                          # (n, k)
    y^_i = argmax_j p_ij,   m_i = [max_j p_ij > tau]  # (n,), tau = threshold (default 0.9)
    L_ST = (1/n) sum_i m_i CE(Z_i, y^_i)              # scalar

The sum is divided by the number of target examples ``n`` (all of them), not by the number that
pass the threshold — so the loss is 0 when none qualify and grows as more examples become
confident (the convention of FixMatch and TLlib). The gradient flows through ``Z`` only.

Shapes: ``outputs.target_logits (n_t, k)``; features and source logits are not used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..terms import StepOutputs
from ._base import AdaptationTerm, check_number


def self_training_loss(logits: torch.Tensor, threshold: float = 0.9) -> torch.Tensor:
    """Masked pseudo-label cross-entropy of ``(n, k)`` logits, averaged over all ``n``."""
    confidence, pseudo = F.softmax(logits.detach().float(), dim=1).max(dim=1)
    mask = (confidence > threshold).to(logits.dtype)
    return (F.cross_entropy(logits, pseudo, reduction="none") * mask).mean()


class SelfTraining(AdaptationTerm):
    """Self-training term. ``SelfTraining(feature_dim, n_classes, weight=1.0, threshold=0.9)``."""

    name = "self_training"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0, threshold: float = 0.9):
        super().__init__(feature_dim, n_classes, weight)
        self.threshold = check_number(threshold, "threshold", "adaptation method 'self_training'",
                                      low=0.0, high=1.0, fix="a confidence in [0, 1], e.g. 0.9")

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        return self_training_loss(self.target_logits(outputs), self.threshold)
