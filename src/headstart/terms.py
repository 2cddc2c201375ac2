"""Extra terms of the training loss: the one place regularizers and domain adaptation plug in.

The training loop computes, each step, the source batch's pooled features and logits (and, when
unlabeled target data is given, the target batch's), packs them in :class:`StepOutputs`, and adds
``term.weight * term(outputs, model)`` for every term to the cross-entropy. A term is an
``nn.Module``: learnable parts (DANN's domain discriminator) are trained by the same optimizer, and
its ``state_dict`` is saved in the training checkpoint so a resumed run continues it. Schedules
read ``outputs.step`` / ``outputs.total_steps``, which the loop restores on resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StepOutputs:
    batch: dict[str, torch.Tensor]              # the preprocessed source batch (input to the backbone)
    features: torch.Tensor                      # (b, d) pooled source features, last layer group
    logits: torch.Tensor                        # (b, k)
    labels: torch.Tensor                        # (b,) int64
    step: int                                   # 0-based optimisation step
    total_steps: int
    target_batch: dict[str, torch.Tensor] | None = None
    target_features: torch.Tensor | None = None  # (b_t, d)
    target_logits: torch.Tensor | None = None    # (b_t, k)


class LossTerm(nn.Module):
    """Base class: ``forward(outputs, model) -> scalar tensor``; the loop multiplies by ``weight``."""

    name: str = ""
    needs_target: bool = False  # True: the loop must draw unlabeled target batches
    # False: reads only features, logits and labels, so the frozen prefix's cached outputs may replace the raw batch
    reads_batch: bool = True
    # True: a sum over weights or single examples, whose value does not depend on which examples share a
    # batch, so the loop may group text of similar length into batches (train.epoch_batches)
    batch_free: bool = False

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def setup(self, model: nn.Module) -> None:
        """Called once before the first step (snapshot pretrained weights, register hooks…)."""

    def teardown(self, model: nn.Module) -> None:
        """Called once after training (remove hooks)."""

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
