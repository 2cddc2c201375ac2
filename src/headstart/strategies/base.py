"""What every strategy receives, declares and returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from ..backbones import Backbone, create_backbone
from ..cache import FeatureCache
from ..config import LOOP_OPTIONS, ResolvedConfig, regularizer_names
from ..data import set_window
from ..model import TransferModel
from ..train import default_batch_size


@dataclass
class FitContext:
    """The data of one fit and the resolved configuration it runs under; labels are already encoded
    as 0..n_classes-1, and the rows already split into training and validation."""

    config: ResolvedConfig
    train_items: list
    train_y: np.ndarray
    val_items: list
    val_y: np.ndarray
    n_classes: int
    cache: FeatureCache
    log: Callable[[str], None] = lambda message: None
    epoch_log: Callable[[str], None] | None = None  # a line per training epoch; None for the planner's candidate fits
    target_items: list | None = None  # unlabeled target inputs, for adaptation terms
    run_key: str = ""  # identifies the fit, so that a checkpoint resumes only its own fit
    # Whether a logistic head is fit on the validation rows too (see head_rows). False for LP-FT's
    # probe stage (its fine-tuning stage early-stops on those rows, which must be unseen) and for the
    # planner's scoring fits (scored on them). Fine-tuning never trains on the validation rows.
    refit_on_validation: bool = True

    def make_backbone(self, pretrained: bool = True) -> Backbone:
        config = self.config
        backbone = create_backbone(config.backbone, pretrained=pretrained, image_size=config.image_size,
                                   max_length=config.max_length, feature_dim=config.feature_dim)
        set_window(backbone, config.window)  # DICOM and 16-bit images decode with the fit's window
        return backbone

    def finetune_settings(self, backbone: Backbone, **overrides) -> ResolvedConfig:
        """The configuration of the training loop, the learning rates resolved from the backbone's metadata."""
        lr = self.config.lr if self.config.lr is not None else backbone.info.finetune_lr
        return dataclasses.replace(self.config, **{"lr": lr, "head_lr": 10 * lr, **overrides})

    def head_rows(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows a logistic head is fit (and its C cross-validated) on, from ``features`` of the training
        then the validation items: all of them, or the training rows alone when the validation rows must
        stay unseen (``refit_on_validation=False``)."""
        if self.refit_on_validation:
            return features, np.concatenate([self.train_y, self.val_y])
        return features[:len(self.train_y)], self.train_y

    def make_terms(self, backbone: Backbone) -> list:
        """Fresh loss terms for one training run: the regularizers, then the adaptation method."""
        from ..adapt import build
        from ..regularizers import REGULARIZERS

        config, terms = self.config, []
        for name in regularizer_names(config.regularizer or ""):
            cls = REGULARIZERS.get(name)
            terms.append(cls() if config.regularizer_weight is None else cls(weight=config.regularizer_weight))
        if config.adapt:
            terms.append(build(config.adapt, backbone.feature_dim, self.n_classes, weight=config.adapt_weight))
        return terms


@dataclass
class StrategyResult:
    model: TransferModel
    history: list[dict]
    summary: dict = field(default_factory=dict)


class Strategy:
    """A way to turn a pretrained backbone and labeled data into a TransferModel.

    A strategy declares what it accepts and how it trains, so that option checks and the planner
    read the declaration instead of lists of strategy names:

    - ``accepts``: which of the options that only some strategies read (``freeze``, ``C``,
      ``regularizer``, ``adapt`` and the fine-tuning loop's options) this one reads; any other set
      to a non-default value is refused.
    - ``trains``: what training changes: ``"head"`` (features stay frozen), ``"adapters"`` or
      ``"network"``. Fits that train the same thing cost about the same, which the planner's budget
      uses to estimate a rung from another.
    - ``kept_as_scored``: its fit never trains on the validation rows, so a fit scored on them is
      already the fit on all labeled data, and the planner keeps it rather than fitting it again.
    """

    name: ClassVar[str] = ""
    accepts: ClassVar[frozenset[str]] = frozenset()
    trains: ClassVar[str] = "head"
    kept_as_scored: ClassVar[bool] = False

    @classmethod
    def loop_defaults(cls, n_train: int, n_val: int, refit_on_validation: bool) -> dict:
        """The loop settings a fit of this strategy takes when the user sets none: ``batch_size``
        (:func:`headstart.train.default_batch_size` of the training rows) and ``epochs``."""
        return {"batch_size": default_batch_size(n_train), "epochs": DEFAULT_EPOCHS}

    def fit(self, context: FitContext) -> StrategyResult:
        raise NotImplementedError


DEFAULT_EPOCHS = 10
# What every strategy that runs the fine-tuning loop accepts.
LOOP = frozenset(LOOP_OPTIONS)
