"""LP-FT: linear probe first, then fine-tune starting from that head.

Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution" (ICLR): a randomly initialised head sends large, noisy gradients into the
pretrained layers during the first steps of fine-tuning and distorts the features; starting from a
fitted linear probe avoids that. The probe's features come from the feature cache, so the first
stage costs one cached forward pass; the head then trains at the backbone's rate, not 10x.
"""

from __future__ import annotations

import copy
import dataclasses
import time

from ..model import TransferModel
from .base import LOOP, FitContext, Strategy, StrategyResult
from .finetune import run_finetune
from .linear_probe import LinearProbe


class LPFT(Strategy):
    name = "lp_ft"
    accepts = LOOP | {"freeze", "C", "regularizer", "adapt"}
    trains = "network"
    kept_as_scored = True

    def fit(self, context: FitContext) -> StrategyResult:
        started = time.perf_counter()
        probe = LinearProbe().fit(dataclasses.replace(context, refit_on_validation=False))
        model = TransferModel(context.make_backbone(pretrained=True), context.n_classes)
        model.head.load_state_dict(copy.deepcopy(probe.model.head.state_dict()))
        lr = context.config.lr if context.config.lr is not None else model.backbone.info.finetune_lr
        result = run_finetune(context, model, default_freeze=0, head_lr=lr)
        result.summary["linear_probe"] = probe.summary
        result.summary["seconds"] = time.perf_counter() - started
        result.history = [{"stage": "linear_probe", **h} for h in probe.history] + \
                         [{"stage": "finetune", **h} for h in result.history]
        return result
