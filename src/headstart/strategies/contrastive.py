"""Contrastive body tuning, then a logistic head on the tuned embeddings.

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") tunes a sentence
encoder on pairs of labeled examples, pulling same-label pairs together and pushing the others
apart, then fits a logistic regression on the tuned embeddings. FastFit (Yehudai & Bandel 2024,
"FastFit: Fast and Effective Few-Shot Text Classification with a Multitude of Classes") replaces the
sampled pairs by batch contrastive learning, as supervised contrastive learning (Khosla et al. 2020,
"Supervised Contrastive Learning") does for images: every example of the batch is an anchor, every
other one of its label a positive. Here both
objectives are one :class:`~headstart.terms.LossTerm` on the batch's pooled features, so the body
trains in the one loop (checkpoints, resume, early stopping, frozen prefix) on any modality.

Shapes: features ``f (b, d)``, labels ``y (b,)``; ``z = f / ||f||`` row-wise, ``S = z z^T (b, b)``.

- ``supcon`` (default), Khosla et al.'s L_out with temperature ``tau``; ``P(i) = {p != i : y_p = y_i}``::

      L = mean over anchors i with P(i) non-empty of
          -1/|P(i)| sum_{p in P(i)} log( exp(S_ip / tau) / sum_{a != i} exp(S_ia / tau) )

  The default: in ``bench.contrastive`` (6 seeds; docs/benchmarks.md) it led ``pairs`` by 0.5 points on
  vader@8 (5 of 6 seeds) and was level on fashion@10 (-0.2, 3 of 6), with the shorter median fit on both;
  on the 40-epoch schedule it led ``pairs`` by 1.2 points over 15 minilm_l6 draws of five text tasks
  (docs/benchmarks.md, "SupCon against SetFit's pairs again").

- ``pairs``, SetFit's CosineSimilarityLoss over every in-batch pair ``i < j``: ``(S_ij - [y_i = y_j])^2``,
  averaged over positive and over negative pairs separately and the two means averaged, since
  SetFit samples as many positive as negative pairs and a batch of k classes holds about k-1
  times more negatives.

The loop's cross-entropy on the head stays beside the term (``CE + SupCon``, as Gunel et al. 2021,
"Supervised Contrastive Learning for Pre-trained Language Model Fine-tuning", train it; ``tau=0.3``
is their few-shot choice). The schedule is fixed, as SetFit's is, rather than early-stopped: the
body tunes on every row the head will be fit on, in batches of 16, for :data:`TUNING_EPOCHS` epochs
(40: every row is seen as often as in the 40 pairs per row SetFit samples, and FastFit's 40 epochs),
and the last epoch is kept: at a few rows per class, early stopping on a split of 3 or 4 examples
left too few steps (the evidence for the schedule and its length: docs/benchmarks.md, "contrastive
schedule"). After training, that head is replaced by a logistic regression on the tuned embeddings
of the same rows (:func:`~headstart.heads.fit_head`: ``C`` chosen by stratified cross-validation
over them, so ``kept_as_scored`` is False), on the embeddings as they are rather than standardised
as the linear probe's features are: tuning pulled each class of these very rows together, so their
per-feature spread understates new inputs' (as SetFit's head, fit on unit-length embeddings,
never standardises; the measurement: docs/benchmarks.md, "Which head on contrastively tuned
embeddings"). The head folds into the same ``nn.Linear`` as the linear probe's: the run
folder, ``predict`` and reloading are those of every strategy. No held-out score comes out of a
direct fit (every row tuned the body); the planner scores the strategy on rows it held out. With
mixup/CutMix the term compares the mixed inputs' features under each input's own label, an
approximation the option's user takes on.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..heads import fit_head
from ..model import TransferModel, predict_features
from ..terms import LossTerm, StepOutputs
from .base import LOOP, FitContext, Strategy, StrategyResult
from .finetune import new_head, run_finetune

TEMPERATURE = 0.3


def _similarities(features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(b, b)`` of the rows, in float32 (a half-precision ``exp(S / tau)`` overflows)."""
    z = F.normalize(features.float(), dim=1, eps=1e-8)
    return z @ z.T


def _same_label(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(same (b, b) bool: y_i = y_j and i != j, off (b, b) bool: i != j)``."""
    off = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return (labels[:, None] == labels[None, :]) & off, off


class SupConTerm(LossTerm):
    """Khosla et al.'s supervised contrastive loss on the batch's pooled features."""

    name = "supcon"
    reads_batch = False  # features and labels only, so the frozen prefix can still be reused

    def __init__(self, weight: float = 1.0, *, temperature: float = TEMPERATURE):
        super().__init__(weight)
        self.temperature = float(temperature)

    def forward(self, outputs: StepOutputs, model) -> torch.Tensor:
        same, off = _same_label(outputs.labels)
        anchors = same.any(dim=1)
        if not anchors.any():  # no two examples share a label: nothing to pull together in this batch
            return outputs.features.sum() * 0.0
        logits = (_similarities(outputs.features) / self.temperature).masked_fill(~off, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive_mean = log_prob.masked_fill(~same, 0.0).sum(dim=1) / same.sum(dim=1).clamp(min=1)
        return -positive_mean[anchors].mean()


class CosinePairsTerm(LossTerm):
    """SetFit's cosine-similarity regression over every in-batch pair, positives and negatives weighed alike."""

    name = "pairs"
    reads_batch = False

    def forward(self, outputs: StepOutputs, model) -> torch.Tensor:
        same, off = _same_label(outputs.labels)
        upper = torch.triu(off, diagonal=1)
        errors = (_similarities(outputs.features) - same.float()) ** 2
        means = [errors[mask].mean() for mask in (upper & same, upper & ~same) if mask.any()]
        return torch.stack(means).mean() if means else outputs.features.sum() * 0.0


OBJECTIVES = {"supcon": SupConTerm, "pairs": CosinePairsTerm}
DEFAULT_OBJECTIVE = "supcon"


# Each row seen 40 times, as in SetFit's 40 sampled pairs per row and FastFit's 40 epochs.
TUNING_EPOCHS = 40
TUNING_BATCH = 16  # SupCon compares every pair in a batch: larger batches give each anchor more positives


def tuning_rows(context: FitContext) -> FitContext:
    """The context the body tunes in: every row the head will be fit on as training rows, and no
    validation rows to stop on (the schedule is fixed)."""
    n_rows = len(context.train_y) + (len(context.val_y) if context.refit_on_validation else 0)
    items = (list(context.train_items) + list(context.val_items))[:n_rows]
    labels = np.concatenate([context.train_y, context.val_y])[:n_rows]
    return dataclasses.replace(context, train_items=items, train_y=labels, val_items=[], val_y=labels[:0])


class Contrastive(Strategy):
    name = "contrastive"
    accepts = LOOP | {"freeze", "C", "contrastive_loss"}
    trains = "network"
    kept_as_scored = False  # its head is fit on the validation rows too, unless the planner holds them out

    @classmethod
    def loop_defaults(cls, n_train: int, n_val: int, refit_on_validation: bool) -> dict:
        """Batches of up to 16 over the tuning rows, for :data:`TUNING_EPOCHS` epochs (at least 40 steps)."""
        n_rows = n_train + (n_val if refit_on_validation else 0)
        return {"batch_size": min(TUNING_BATCH, n_rows), "epochs": TUNING_EPOCHS}

    def fit(self, context: FitContext) -> StrategyResult:
        started = time.perf_counter()
        objective = context.config.contrastive_loss or DEFAULT_OBJECTIVE
        model = TransferModel(context.make_backbone(pretrained=True), context.n_classes)
        new_head(model)
        result = run_finetune(tuning_rows(context), model, default_freeze=0, extra_terms=[OBJECTIVES[objective]()])
        tuned_at = time.perf_counter()
        items = list(context.train_items) + list(context.val_items)
        features = predict_features(model, items, batch_size=max(64, context.config.batch_size))
        rows, labels = context.head_rows(features)
        head = fit_head(rows, labels, context.n_classes, C=context.config.C, random_state=context.config.random_state,
                        standardize=False)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(head.weight))
            model.head.bias.copy_(torch.from_numpy(head.bias))
        model.eval()
        # No honest held-out score: the body tuned on every row the head saw, so the head's cross-validated
        # accuracy on those embeddings is optimistic (kept as head_cv_accuracy, not reported as validation).
        result.summary.update({
            "contrastive_loss": objective, "val_accuracy": float("nan"), "head_cv_accuracy": head.cv_accuracy,
            "C": head.C, "C_chosen_by": head.chosen_by, "head_search": head.history, "head_seconds": time.perf_counter() - tuned_at,
            "tuned_on": "train+validation" if context.refit_on_validation else "train",
            "refit_on": "train+validation" if context.refit_on_validation else "train",
            "seconds": time.perf_counter() - started})
        context.log(f"contrastive ({objective}): body tuned on {len(labels)} rows for {result.summary['epochs_run']} epochs "
                    f"({result.summary['epochs_run'] * math.ceil(len(labels) / result.summary['batch_size'])} steps of "
                    f"{result.summary['batch_size']}); logistic head C={head.C:g} ({head.chosen_by}). No held-out "
                    f"score: every labeled row tuned the body (strategy='auto' scores it on held-out folds)")
        return result
