"""Fine-tuning with the first ``freeze`` layer groups frozen (``freeze=0``: everything trains).

Frozen groups keep their weights and their BatchNorm statistics (they stay in eval mode). The
trainable groups get layer-wise learning-rate decay (Howard & Ruder 2018, "ULMFiT"; Clark et al.
2020, "ELECTRA"): the last group trains at ``lr``, each earlier one at ``layer_decay`` times the
next, the new head at ``10 * lr``. AdamW, warm-up then cosine, early stopping on validation
accuracy restoring the best epoch; image batches are augmented with timm's transforms.
"""

from __future__ import annotations

import time

import torch

from ..model import TransferModel
from ..train import train_classifier
from .base import LOOP, FitContext, Strategy, StrategyResult


def run_finetune(context: FitContext, model: TransferModel, *, default_freeze: int, head_lr=None, prepared=False,
                 extra_terms=(), **overrides):
    """Train ``model`` with the shared loop. ``prepared=True``: the caller already chose what trains
    (e.g. LoRA adapters), so the backbone's own freezing is left alone. ``extra_terms``: the strategy's
    own loss terms, after the options' regularizers and adaptation method."""
    backbone = model.backbone
    freeze = default_freeze if context.config.freeze is None else context.config.freeze
    if prepared:
        trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
        report = f"trainable inside the backbone: {trainable:,} numbers chosen by the strategy"
    else:
        report = backbone.freeze(freeze)
    settings = context.finetune_settings(backbone, **overrides, **({} if head_lr is None else {"head_lr": head_lr}))
    context.log(f"{report}; {settings.batch_size} examples per step")
    started = time.perf_counter()
    terms = context.make_terms(backbone) + list(extra_terms)
    view_rows = _view_rows(context, terms)
    before = _view_features(model, context, view_rows) if view_rows else None
    result = train_classifier(model, context.train_items, context.train_y, context.val_items, context.val_y, settings,
                              terms=terms, target_items=context.target_items,
                              checkpoint_dir=settings.checkpoint_dir, run_key=context.run_key,
                              epoch_log=context.epoch_log, log=context.log)
    summary = {
        "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds": time.perf_counter() - started,
        "train_examples_per_second": result.examples_per_second,
        "batch_examples_per_second": result.batch_examples_per_second,
        "freeze": str(report),
        "frozen_groups": freeze,
        "lr": settings.lr,
        "head_lr": settings.head_lr,
        "layer_decay": settings.layer_decay,
        "batch_size": settings.batch_size,
        "loss_terms": [f"{t.name} (weight {t.weight:g})" for t in terms],
        "checkpoint_average": getattr(result, "checkpoint_average", None),
        "frozen_prefix": result.frozen_prefix,
        "resumed_after_epoch": result.resumed_after_epoch,
        "deadline_stop": result.deadline_stop,  # the planner's budget ended training early, and how
    }
    if result.frozen_prefix.startswith("reused"):
        context.log(f"frozen prefix {result.frozen_prefix}")
    if view_rows:
        from ..adapt.view import before_after

        summary["adaptation_view"] = before_after(before, _view_features(model, context, view_rows),
                                                  context.train_y[view_rows[0]], random_state=context.config.seed)
    return StrategyResult(model, result.history, summary)


def _view_rows(context: FitContext, terms):
    """Sampled (source, target) rows for the before/after picture, when an adaptation term trains."""
    if not (context.target_items and any(t.needs_target for t in terms)):
        return None
    from ..adapt.view import sample_rows

    return sample_rows(len(context.train_items), len(context.target_items), random_state=context.config.seed)


def _view_features(model: TransferModel, context: FitContext, rows):
    from ..model import predict_features

    source_rows, target_rows = rows
    pick = lambda items, idx: [items[i] for i in idx]
    batch = max(64, context.config.batch_size)
    return (predict_features(model, pick(context.train_items, source_rows), batch_size=batch),
            predict_features(model, pick(context.target_items, target_rows), batch_size=batch))


def new_head(model: TransferModel) -> None:
    with torch.no_grad():
        torch.nn.init.normal_(model.head.weight, std=0.01)
        torch.nn.init.zeros_(model.head.bias)


class Finetune(Strategy):
    name = "finetune"
    accepts = LOOP | {"freeze", "regularizer", "adapt"}
    trains = "network"
    kept_as_scored = True

    def fit(self, context: FitContext) -> StrategyResult:
        model = TransferModel(context.make_backbone(pretrained=True), context.n_classes)
        new_head(model)
        return run_finetune(context, model, default_freeze=0)
