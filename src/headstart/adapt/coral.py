"""Deep CORAL: align the second-order statistics of source and target features.

Paper: B. Sun and K. Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation",
ECCV 2016 Workshops (TASK-CV), arXiv:1607.01719.

Math. For source features ``X_s`` of shape ``(n_s, d)`` and target features ``X_t`` ``(n_t, d)``,
the (unbiased) feature covariances are

    C = 1/(n - 1) * (X - 1 mean(X))^T (X - 1 mean(X))          # (d, d)

and the CORAL loss is the squared Frobenius distance, scaled by ``1/(4 d^2)`` as in the paper:

    L_CORAL = || C_s - C_t ||_F^2 / (4 d^2)                     # scalar, >= 0

Gradients flow into both feature batches (the paper back-propagates through both streams).
Shapes: ``outputs.features (n_s, d)``, ``outputs.target_features (n_t, d)``; ``n_s, n_t >= 2``
(a covariance needs two examples). Logits are not used.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataError
from ..terms import StepOutputs
from ._base import AdaptationTerm


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance of the rows of ``x`` ``(n, d) -> (d, d)``; ``n >= 2``."""
    centered = x - x.mean(dim=0, keepdim=True)
    return centered.T @ centered / (x.shape[0] - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||cov(source) - cov(target)||_F^2 / (4 d^2)`` for ``(n_s, d)`` and ``(n_t, d)`` inputs."""
    d = source.shape[1]
    diff = covariance(source) - covariance(target)
    return (diff * diff).sum() / (4.0 * d * d)


class CORAL(AdaptationTerm):
    """Deep CORAL loss term. ``CORAL(feature_dim, n_classes, weight=1.0)``; no other options.

    The paper sets the weight so that the classification and CORAL losses are about equal at the
    end of training; 1.0 is the common default (TLlib, skada), tune it with the validators.
    """

    name = "coral"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0):
        super().__init__(feature_dim, n_classes, weight)

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        fs, ft = self.features_pair(outputs)
        if fs.shape[0] < 2 or ft.shape[0] < 2:
            raise DataError(
                f"adaptation method 'coral': a covariance needs at least 2 examples per domain, got a "
                f"source batch of {fs.shape[0]} and a target batch of {ft.shape[0]} at step "
                f"{outputs.step}; use batches of >= 2 examples (drop a last batch of 1)"
            )
        return coral_loss(fs.float(), ft.float())  # float32 even under mixed precision
