"""Linear probe: a frozen pretrained backbone, and a regularized logistic regression on its features.

Features come from :class:`~headstart.cache.FeatureCache`, so a second fit on the same inputs
does not run the backbone. The inverse regularization strength ``C`` is chosen by stratified
cross-validation over every labeled row (train + validation; the training rows alone when the
planner scores the fit on the validation rows), then the head is fit on those rows at that ``C``
(:func:`~headstart.heads.fit_head`).
Standardisation and the logistic regression fold into one ``nn.Linear``, so the saved model is
backbone + linear head like every other strategy.
"""

from __future__ import annotations

import time

import torch

from ..adapt.frozen import fit_on_frozen_features
from ..heads import fit_head, search_key
from ..intervals import accuracy_text
from ..model import TransferModel
from .base import FitContext, Strategy, StrategyResult

class LinearProbe(Strategy):
    name = "linear_probe"
    accepts = frozenset({"C", "adapt"})
    trains = "head"
    kept_as_scored = False  # its head is fit on the validation rows too, unless the planner holds them out

    def fit(self, context: FitContext) -> StrategyResult:
        started = time.perf_counter()
        backbone = context.make_backbone()
        report = backbone.freeze(len(backbone.layer_groups()))
        items = list(context.train_items) + list(context.val_items)
        features = context.cache.features(backbone, items, batch_size=max(64, context.config.batch_size),
                                          progress=context.config.progress)[backbone.layer_names[-1]]
        computed = context.cache.last_computed
        if context.target_items:  # adapt=...: align with the target's cached features instead of a plain head
            target = context.cache.features(backbone, list(context.target_items),
                                            batch_size=max(64, context.config.batch_size))[backbone.layer_names[-1]]
            model, history, summary = fit_on_frozen_features(context, backbone, features, target)
            summary.update(freeze=str(report), inputs_run_through_backbone=computed + context.cache.last_computed)
            context.log(f"linear_probe: adapted on cached frozen features ({summary['adapted_on']}); "
                        f"validation accuracy {accuracy_text(summary['val_accuracy'], len(context.val_y))}")
            return StrategyResult(model, history, summary)
        rows, labels = context.head_rows(features)
        head = self._fit_head(context, rows, labels)
        C, history, val_accuracy = head.C, head.history, head.cv_accuracy
        model = TransferModel(backbone, context.n_classes)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(head.weight))
            model.head.bias.copy_(torch.from_numpy(head.bias))
        model.eval()
        summary = {"C": C, "C_chosen_by": head.chosen_by, "val_accuracy": val_accuracy,
                   "seconds": time.perf_counter() - started,
                   "inputs_run_through_backbone": computed, "inputs_from_cache": len(items) - computed,
                   "freeze": str(report), "refit_on": "train+validation" if context.refit_on_validation else "train"}
        context.log(f"linear_probe: C={C:g} ({head.chosen_by}; accuracy {accuracy_text(val_accuracy, len(labels))}); "
                    f"{computed} of {len(items)} inputs run through the backbone, the rest from the cache")
        return StrategyResult(model, history, summary)

    @staticmethod
    def _fit_head(context: FitContext, rows, labels):
        """The head, its C search read from the cache when these rows and labels were searched before."""
        config = context.config
        if config.C is not None:
            return fit_head(rows, labels, context.n_classes, C=config.C, random_state=config.random_state)
        key = search_key(rows, labels, config.random_state)
        found = context.cache.recall("C-search", key)
        if found is not None:
            search = (found["C"], found["history"], f"{found['chosen_by']}, read from the cache")
            return fit_head(rows, labels, context.n_classes, search=search)
        head = fit_head(rows, labels, context.n_classes, random_state=config.random_state)
        context.cache.remember("C-search", key, {"C": head.C, "history": head.history, "chosen_by": head.chosen_by})
        return head
