"""The resolved options of a :class:`~headstart.segmentation.TransferSegmenter` fit.

``fit`` checks the constructor's values once and turns them into this frozen dataclass; variants
(a candidate of strategy="auto") are made with :func:`dataclasses.replace`. Defaults: backbone
efficientnet_lite0, lr 3e-3 for the decoder (encoder lr/10 when fine-tuned), batch 4 under 64 training
images else 8, image_size the training images' largest side rounded up to a multiple of 32 (at most
256), and a fixed schedule of :func:`epochs_for` epochs — at least 40, and at least 300 optimizer steps
— with the best validation epoch kept and no early stop (``patience`` None): validation IoU stays flat
for many epochs before small classes separate, and 10 images give only 2 steps an epoch (evidence:
docs/benchmarks.md, "Segmentation", why these defaults).
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from ..errors import ConfigError, did_you_mean
from .strategies import STRATEGIES

DEFAULT_BACKBONE = "efficientnet_lite0"
STRATEGY_NAMES = (*STRATEGIES, "auto")
FREEZE_STRATEGIES = ("finetune", "lp_ft", "auto")


@dataclass(frozen=True)
class SegmentationConfig:
    backbone: str
    strategy: str
    freeze: int | None
    epochs: int | None  # None: epochs_for(training images, batch size), resolved in fit
    lr: float
    batch_size: int | None
    image_size: int | None
    window: object
    seed: int
    patience: int | None = None  # epochs without a better validation IoU before stopping; None: never stop early

    def identity(self) -> dict:
        """What decides the trained weights (checkpoints of another identity are not resumed)."""
        return {k: (str(v) if k == "window" else v) for k, v in asdict(self).items()}


def _int(name, value, minimum, default):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"TransferSegmenter: {name}={value!r} must be a whole number >= {minimum}")
    return int(value)


def resolve_config(est) -> SegmentationConfig:
    """Check every constructor parameter of ``est``; raise ConfigError naming the one that is wrong."""
    backbone = DEFAULT_BACKBONE if est.backbone in (None, "auto") else est.backbone
    if not isinstance(backbone, str):
        raise ConfigError(f"TransferSegmenter: backbone={backbone!r} must be a name, e.g. {DEFAULT_BACKBONE!r}")
    if est.strategy not in STRATEGY_NAMES:
        raise ConfigError(f"TransferSegmenter: strategy={est.strategy!r} is not one of {', '.join(STRATEGY_NAMES)}."
                          f"{did_you_mean(str(est.strategy), STRATEGY_NAMES)}")
    if est.freeze is not None and est.strategy not in FREEZE_STRATEGIES:
        raise ConfigError(f"TransferSegmenter: freeze={est.freeze!r} applies to strategy finetune, lp_ft or auto, "
                          f"not {est.strategy!r}; drop freeze or change the strategy")
    lr = 3e-3 if est.lr is None else est.lr  # measured on pasted digits: 1e-3 left the decoder undertrained
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ConfigError(f"TransferSegmenter: lr={est.lr!r} must be a positive number, e.g. 3e-3")
    image_size = _int("image_size", est.image_size, 32, None)
    if image_size is not None and image_size % 32:
        below, above = max(32, image_size // 32 * 32), (image_size // 32 + 1) * 32
        raise ConfigError(f"TransferSegmenter: image_size={image_size} is not a multiple of 32 (the U-Net encoder "
                          f"halves the resolution five times); use {below} or {above}")
    if est.window is not None:
        from ..data.medical import parse_window

        parse_window(est.window)  # a bad window raises ConfigError here, before any image is read
    if est.resume and not est.run_dir:
        raise ConfigError("TransferSegmenter: resume=True needs run_dir, the folder the interrupted fit checkpointed in")
    return SegmentationConfig(backbone=backbone, strategy=est.strategy, freeze=_int("freeze", est.freeze, 0, None),
                              epochs=_int("epochs", est.epochs, 1, None), lr=float(lr),
                              batch_size=_int("batch_size", est.batch_size, 1, None), image_size=image_size,
                              window=est.window, seed=_int("seed", est.seed, 0, 0))


def image_size_for(images) -> int:
    """The training images' largest side rounded up to a multiple of 32, between 32 and 256."""
    largest = max(max(image.shape[:2]) for image in images)
    return int(min(256, max(32, -(-largest // 32) * 32)))


MIN_EPOCHS, MIN_STEPS = 40, 300


def epochs_for(n_train: int, batch_size: int) -> int:
    """At least :data:`MIN_EPOCHS` epochs and :data:`MIN_STEPS` optimizer steps (8 images in batches of 4: 150 epochs)."""
    steps_per_epoch = max(1, -(-n_train // batch_size))
    return max(MIN_EPOCHS, -(-MIN_STEPS // steps_per_epoch))


def batch_size_for(n_images: int) -> int:
    return 4 if n_images < 64 else 8
