"""Domain adaptation on cached frozen features: ``strategy="linear_probe", adapt=...``.

The backbone stays frozen and its features come from the feature cache, for source and target
inputs alike, so adapting costs one forward pass per input (none on a second fit) and then only
small dense layers. Frozen features cannot move, so a method needs something trainable to align:
a linear projection ``z = P x̂ + c`` of the standardised features ``x̂ = (x - μ) / σ``, and a linear
head ``logits = W z + b`` on top, as in TLlib's bottleneck (Long et al. 2018, CDAN) without its
nonlinearity. Shapes: ``x`` ``(n, d)``, ``P`` ``(p, d)`` with ``p = min(256, d, n_train + n_target)``,
``z`` ``(n, p)``, ``W`` ``(k, p)``.

μ and σ are the statistics of the source training rows and the target rows *together*, so the
head sees both domains on one scale. With the source's statistics alone, a target whose features
sit elsewhere (MNIST → scikit-learn's 8×8 digits) lands in the tails of every feature, and MCC
scored 0.12 on digits; with the pooled statistics, 0.30 (3 seeds, docs/benchmarks.md).

Training starts at the source-only solution: ``P`` holds the top ``p`` principal directions of the
source and target features together, ``W, b`` the linear probe's logistic regression on the
projected source features, with its inverse regularization ``C`` chosen on the labeled validation
split by the same C-grid walk the probe's cross-validation runs per fold (:func:`~headstart.heads.choose_C`).
The adaptation term then moves both. From random weights, the few hundred steps a small data set
gives did not even fit the source (0.67 source accuracy on a separable two-class test); from a
logistic regression at ``C = 1`` instead of the chosen ``C``, every method started from a worse
source-only model than the linear probe's (VADER movie → NYT, MCC at weight 0.3: 0.640 against 0.677).

Every adaptation term (:mod:`headstart.adapt`) sees ``z`` as its features and the head's logits, so
CORAL aligns the covariances of the projected source and target features, DANN trains its
discriminator on ``z`` through gradient reversal, MCC and self-training act on the target logits.
Training is the shared loop (:func:`~headstart.train.train_classifier`, early stopping on the
labeled validation split, the term's own schedule) over the cached feature rows.

Because ``P`` and the head are both linear, the trained pair folds into one linear head on the raw
features: ``W' = W P / σ``, ``b' = W (c - P (μ / σ)) + b``. The model that is saved is then the
ordinary frozen backbone + ``nn.Linear`` of every linear probe: same run folder, same predictions.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from .. import heads
from ..backbones.base import LayerGroup
from ..backbones.precomputed import PrecomputedBackbone
from ..model import TransferModel
from ..train import train_classifier

PROJECTION_DIM = 256
PROJECTION_LR = 1e-3


class ProjectedFeatures(PrecomputedBackbone):
    """Standardised cached feature rows ``(n, d)`` through a trainable linear projection to ``(n, p)``."""

    def __init__(self, feature_dim: int, projection_dim: int, mean: np.ndarray, scale: np.ndarray):
        super().__init__(feature_dim)
        self.info = dataclasses.replace(self.info, feature_dim=projection_dim, name="projected features",
                                        finetune_lr=PROJECTION_LR)
        self.projection = nn.Linear(feature_dim, projection_dim)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self._groups = [*self._groups, LayerGroup("projection", [self.projection], self.projection)]

    def _forward_final(self, batch):
        return self.projection((batch["features"] - self.mean) / self.scale)

    def folded(self, head: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight (k, d), bias (k,))`` of the single linear map ``head(projection(standardise(x)))``."""
        with torch.no_grad():
            combined = head.weight @ self.projection.weight  # (k, d), on standardised inputs
            weight = combined / self.scale
            bias = head.weight @ self.projection.bias + head.bias - weight @ self.mean
        return weight, bias


def _start_at_the_linear_probe(adapter, head, standardised, train_s, val_s, context) -> float:
    """Projection := the top principal directions of source and target features together; head := a
    logistic regression on the projected training features, at the ``C`` the linear probe would
    choose on the validation rows. Training then starts at the source-only optimum (as LP-FT does)
    instead of from random weights that a few hundred steps cannot fit. Returns that ``C``."""
    p = adapter.projection.out_features
    _, _, right = np.linalg.svd(standardised - standardised.mean(0), full_matrices=False)
    directions = right[:p]  # (p, d), orthonormal rows
    train_z = train_s @ directions.T
    if context.config.C is not None:
        C = float(context.config.C)
    elif len(val_s):
        C, _, _ = heads.choose_C(train_z, context.train_y, val_s @ directions.T, context.val_y)
    else:  # no validation rows to choose on: scikit-learn's default
        C = 1.0
    probe = LogisticRegression(C=C, max_iter=2000).fit(train_z, context.train_y)
    weight, bias = heads.class_rows(probe, head.out_features)
    with torch.no_grad():
        adapter.projection.weight.copy_(torch.as_tensor(directions, dtype=torch.float32))
        adapter.projection.bias.zero_()
        head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return C


def fit_on_frozen_features(context, backbone, features: np.ndarray, target_features: np.ndarray):
    """Train projection + head with the context's adaptation terms on cached rows; return the
    frozen ``backbone`` with the folded head as a :class:`TransferModel`, the history and a summary."""
    started = time.perf_counter()
    n_train = len(context.train_items)
    train_f, val_f = features[:n_train], features[n_train:]
    both_domains = np.concatenate([train_f, target_features])
    mean, scale = both_domains.mean(0), both_domains.std(0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    standardised = (both_domains - mean) / scale
    projection_dim = min(PROJECTION_DIM, features.shape[1], len(standardised))
    adapter = ProjectedFeatures(features.shape[1], projection_dim, mean, scale)
    model = TransferModel(adapter, context.n_classes)
    C = _start_at_the_linear_probe(adapter, model.head, standardised, (train_f - mean) / scale,
                                   (val_f - mean) / scale, context)
    settings = dataclasses.replace(context.config, lr=context.config.lr or PROJECTION_LR, head_lr=context.config.lr or PROJECTION_LR,
                                   layer_decay=1.0, augment=False, randaugment=False, token_dropout=0.0)
    terms = context.make_terms(adapter)
    rows = lambda matrix: [row for row in matrix]
    result = train_classifier(model, rows(train_f), context.train_y, rows(val_f), context.val_y, settings, terms=terms,
                              target_items=rows(target_features), checkpoint_dir=context.config.checkpoint_dir,
                              run_key=context.run_key)
    view = _adaptation_view(adapter, train_f, target_features, context)
    weight, bias = adapter.folded(model.head)
    final = TransferModel(backbone, context.n_classes)
    with torch.no_grad():
        final.head.weight.copy_(weight)
        final.head.bias.copy_(bias)
    final.eval()
    summary = {"val_accuracy": result.best_val_accuracy, "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "seconds": time.perf_counter() - started,
               "adapted_on": f"cached frozen features: projection {features.shape[1]} -> {projection_dim}, folded "
                             f"into the linear head", "loss_terms": [f"{t.name} (weight {t.weight:g})" for t in terms],
               "target_inputs": len(target_features), "starting_C": C, "adaptation_view": view}
    return final, result.history, summary


def _adaptation_view(adapter: ProjectedFeatures, train_f: np.ndarray, target_f: np.ndarray, context) -> dict:
    """Source and target as the backbone gives them and as the trained projection maps them (before folding)."""
    from .view import before_after, sample_rows

    source_rows, target_rows = sample_rows(len(train_f), len(target_f), random_state=context.config.seed)
    device = adapter.projection.weight.device
    with torch.no_grad():
        project = lambda rows: adapter({"features": torch.as_tensor(rows, dtype=torch.float32, device=device)}).cpu().numpy()
        after = (project(train_f[source_rows]), project(target_f[target_rows]))
    return before_after((train_f[source_rows], target_f[target_rows]), after, context.train_y[source_rows],
                        random_state=context.config.seed)
