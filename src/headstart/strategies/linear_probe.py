"""Linear probe: a frozen pretrained backbone, and a regularized logistic regression on its features.

Features come from :class:`~headstart.cache.FeatureCache`, so a second fit on the same inputs
does not run the backbone. The inverse regularization strength ``C`` is chosen on the validation
split over a log grid (warm-started along the path), then the head is refit on train + validation
with that ``C``, warm-started from the search's solution. Standardisation and the logistic regression are folded into one ``nn.Linear``:
``W' = W / sigma``, ``b' = b - W' mu``, so the saved model is backbone + linear head like every
other strategy.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from ..intervals import accuracy_text
from ..model import TransferModel
from .base import FitContext, Strategy, StrategyResult

C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))
# 1e-3 rather than sklearn's 1e-4: on 600 Fashion-MNIST feature vectors it halved the C search
# (1.85 s -> 1.09 s) with the same chosen C and the same test accuracy (0.820).
TOLERANCE = 1e-3
PAST_BEST = 2  # stop the C walk after this many C values in a row score below the best


def fitted_scaler(features: np.ndarray) -> StandardScaler:
    """StandardScaler with every feature's scale at least 1e-3 of the median one.

    A feature that is constant up to float rounding (seen on 128 VADER sentences through
    ``minilm_l6``: a scale near 1e-30) would otherwise be blown up by standardisation and, once
    folded into the head (``W / sigma``), give weights near 1e30: harmless on the frozen features the
    probe saw, but any change of the features (LP-FT's fine-tuning) then sends the logits to
    infinity, and LP-FT ended at chance accuracy.
    """
    scaler = StandardScaler().fit(features)
    positive = scaler.scale_[scaler.scale_ > 0]
    floor = max(1e-6, 1e-3 * float(np.median(positive))) if positive.size else 1.0
    scaler.scale_ = np.maximum(scaler.scale_, floor)
    return scaler


def fit_logistic_head(features: np.ndarray, y: np.ndarray, n_classes: int, C: float, start=None):
    """Fit scaler + logistic regression; return the folded ``(weight (k, d), bias (k,))``.

    ``start``: ``(classes, coef, intercept)`` of a nearby solution (the C search's), to warm-start from.
    """
    scaler = fitted_scaler(features)
    classifier = LogisticRegression(C=C, max_iter=2000, tol=TOLERANCE)
    if start is not None and np.array_equal(start[0], np.unique(y)):
        classifier.set_params(warm_start=True)
        classifier.coef_, classifier.intercept_ = start[1].copy(), start[2].copy()
    classifier.fit(scaler.transform(features), y)
    return fold_head(scaler, classifier, n_classes)


def class_rows(classifier: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted logistic regression as ``(coef (n_classes, d), intercept (n_classes,))``, one row per
    encoded class: a binary fit's single row becomes two (softmax over ``[0, z]`` equals sigmoid(z)),
    and classes absent from training get a zero row and bias -1e4, so they can never be predicted."""
    coef, intercept = classifier.coef_, classifier.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    full_coef = np.zeros((n_classes, coef.shape[1]))
    full_intercept = np.full(n_classes, -1e4)
    full_coef[classifier.classes_] = coef
    full_intercept[classifier.classes_] = intercept
    return full_coef, full_intercept


def fold_head(scaler: StandardScaler, classifier: LogisticRegression, n_classes: int):
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    coef, intercept = class_rows(classifier, n_classes)
    weight = coef / scale
    bias = intercept - weight @ scaler.mean_
    return weight.astype(np.float32), bias.astype(np.float32)


def choose_C(train_f, train_y, val_f, val_y) -> tuple[float, list[dict], tuple]:
    """Walk the C grid (warm-started); return the best C, every C's scores, and its solution."""
    scaler = fitted_scaler(train_f)
    train_s, val_s = scaler.transform(train_f), scaler.transform(val_f)
    classifier = LogisticRegression(max_iter=2000, warm_start=True, tol=TOLERANCE)
    history, best, solution = [], None, None
    labels = np.unique(np.concatenate([train_y, val_y]))
    for C in C_GRID:
        classifier.set_params(C=C).fit(train_s, train_y)
        probabilities = classifier.predict_proba(val_s)
        accuracy = float((classifier.classes_[probabilities.argmax(1)] == val_y).mean())
        full = np.zeros((len(val_y), len(labels)))
        full[:, np.searchsorted(labels, classifier.classes_)] = probabilities
        full = np.clip(full, 1e-12, 1)
        loss = float(log_loss(val_y, full / full.sum(axis=1, keepdims=True), labels=labels))
        history.append({"C": C, "val_accuracy": accuracy, "val_log_loss": loss})
        if best is None or (accuracy, -loss) > (best["val_accuracy"], -best["val_log_loss"]):
            best, worse_in_a_row = history[-1], 0
            solution = (classifier.classes_.copy(), classifier.coef_.copy(), classifier.intercept_.copy())
        else:
            worse_in_a_row += 1
            if worse_in_a_row == PAST_BEST:
                break  # validation scores along C are close to unimodal; large C are the slow fits
    return best["C"], history, solution


class LinearProbe(Strategy):
    name = "linear_probe"

    def fit(self, context: FitContext) -> StrategyResult:
        started = time.perf_counter()
        backbone = context.make_backbone()
        report = backbone.freeze(len(backbone.layer_groups()))
        items = list(context.train_items) + list(context.val_items)
        features = context.cache.features(backbone, items, batch_size=max(64, context.settings.batch_size),
                                          progress=context.settings.progress)[backbone.layer_names[-1]]
        computed = context.cache.last_computed
        if context.target_items:  # adapt=...: align with the target's cached features instead of a plain head
            from ..adapt.frozen import fit_on_frozen_features

            target = context.cache.features(backbone, list(context.target_items),
                                            batch_size=max(64, context.settings.batch_size))[backbone.layer_names[-1]]
            model, history, summary = fit_on_frozen_features(context, backbone, features, target)
            summary.update(freeze=str(report), inputs_run_through_backbone=computed + context.cache.last_computed)
            context.log(f"linear_probe: adapted on cached frozen features ({summary['adapted_on']}); "
                        f"validation accuracy {accuracy_text(summary['val_accuracy'], len(context.val_y))}")
            return StrategyResult(model, history, summary)
        n_train = len(context.train_items)
        train_f, val_f = features[:n_train], features[n_train:]
        if context.C is not None:
            C, history, start = float(context.C), [], None
        else:
            C, history, start = choose_C(train_f, context.train_y, val_f, context.val_y)
        val_accuracy = next((h["val_accuracy"] for h in history if h["C"] == C), float("nan"))
        if context.refit_on_validation:
            weight, bias = fit_logistic_head(features, np.concatenate([context.train_y, context.val_y]),
                                             context.n_classes, C, start=start)
        else:
            weight, bias = fit_logistic_head(train_f, context.train_y, context.n_classes, C, start=start)
        model = TransferModel(backbone, context.n_classes)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(weight))
            model.head.bias.copy_(torch.from_numpy(bias))
        model.eval()
        summary = {"C": C, "val_accuracy": val_accuracy, "seconds": time.perf_counter() - started,
                   "inputs_run_through_backbone": computed, "inputs_from_cache": len(items) - computed,
                   "freeze": str(report), "refit_on": "train+validation" if context.refit_on_validation else "train"}
        context.log(f"linear_probe: C={C:g} chosen on validation (accuracy {accuracy_text(val_accuracy, len(context.val_y))}); "
                    f"{computed} of {len(items)} inputs run through the backbone, the rest from the cache")
        return StrategyResult(model, history, summary)
