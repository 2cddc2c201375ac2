"""Scratch: the same architecture from random weights — the no-transfer baseline.

Every transfer result is only worth what it gains over this. It trains every layer with one
learning rate and updates BatchNorm statistics (no layer decay, nothing pretrained to protect) and the same loop, epochs,
augmentation and early stopping as fine-tuning, so the comparison isolates the pretrained weights.
"""

from __future__ import annotations

from ..model import TransferModel
from .base import LOOP, FitContext, Strategy, StrategyResult
from .finetune import new_head, run_finetune

SCRATCH_LR = 1e-3


class Scratch(Strategy):
    name = "scratch"
    accepts = LOOP
    trains = "network"
    kept_as_scored = True

    def fit(self, context: FitContext) -> StrategyResult:
        model = TransferModel(context.make_backbone(pretrained=False), context.n_classes)
        new_head(model)
        lr = context.config.lr if context.config.lr is not None else SCRATCH_LR
        return run_finetune(context, model, default_freeze=0, lr=lr, head_lr=lr, layer_decay=1.0,
                            train_bn=True)
