"""What every strategy receives and returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..backbones import Backbone, create_backbone
from ..cache import FeatureCache
from ..model import TransferModel
from ..train import TrainSettings


@dataclass
class FitContext:
    """The data and settings of one fit; labels are already encoded as 0..n_classes-1."""

    backbone: str
    train_items: list
    train_y: np.ndarray
    val_items: list
    val_y: np.ndarray
    n_classes: int
    settings: TrainSettings
    cache: FeatureCache
    freeze: int | None = None
    lr: float | None = None
    C: float | None = None
    lora_rank: int = 8
    image_size: int | None = None
    max_length: int | None = None
    feature_dim: int | None = None
    log: Callable[[str], None] = lambda message: None
    epoch_log: Callable[[str], None] | None = None  # a line per training epoch; None for the planner's candidate fits
    make_terms: Callable[[Backbone, int], list] = lambda backbone, n_classes: []  # fresh LossTerms per fit
    target_items: list | None = None  # unlabeled target inputs, for adaptation terms
    checkpoint_dir: str | None = None
    run_key: str = ""
    # Whether a head whose C was chosen on the validation rows is then refit with them. False for LP-FT's
    # probe stage (its fine-tuning stage early-stops on those rows, which must be unseen) and for the
    # planner's scoring fits (scored on them). Fine-tuning never trains on the validation rows.
    refit_on_validation: bool = True

    def make_backbone(self, pretrained: bool = True) -> Backbone:
        return create_backbone(self.backbone, pretrained=pretrained, image_size=self.image_size,
                               max_length=self.max_length, feature_dim=self.feature_dim)

    def finetune_settings(self, backbone: Backbone, **overrides) -> TrainSettings:
        """The shared settings with the learning rates resolved from the backbone's metadata."""
        lr = self.lr if self.lr is not None else backbone.info.finetune_lr
        values = {"lr": lr, "head_lr": 10 * lr, **overrides}
        return dataclasses.replace(self.settings, **values)


@dataclass
class StrategyResult:
    model: TransferModel
    history: list[dict]
    summary: dict = field(default_factory=dict)


class Strategy:
    """A way to turn a pretrained backbone and labeled data into a TransferModel."""

    name: str = ""

    def fit(self, context: FitContext) -> StrategyResult:
        raise NotImplementedError
