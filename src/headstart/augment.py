"""Data-side regularization: what a backbone does to its training inputs, and batch mixing.

* :class:`Augmentation` is what the training loop tells a backbone through
  :func:`configure_augmentation`; each backbone applies the options it declares in its
  ``augmentations`` attribute in ``preprocess(train=True)`` and refuses the others, so neither the
  loop nor the strategies ever ask which modality they hold.
  ``augment`` (mild crops and colour jitter) and ``randaugment`` (timm's ``rand-m9-mstd0.5``) are
  image transforms; ``token_dropout`` drops a fraction of a text's non-special tokens
  (:func:`drop_tokens`, Bowman et al. 2016's word dropout).
* :class:`BatchMixer` mixes whole training batches with timm's :class:`timm.data.Mixup` (Zhang et
  al. 2018, "mixup"; Yun et al. 2019, "CutMix") and returns soft targets, for the input tensor the
  backbone names in ``mixable_input_key`` (None: nothing to mix).

All randomness comes from Python's ``random``, NumPy's and torch's global generators, which the
loop reseeds every epoch, so an augmented run resumes bit-identically.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .errors import ConfigError

RANDAUGMENT = "rand-m9-mstd0.5"  # timm's RandAugment: 2 ops, magnitude 9, magnitude noise std 0.5


@dataclass(frozen=True)
class Augmentation:
    """Training-time preprocessing options of a backbone (the defaults: mild augmentation only)."""

    augment: bool = True
    randaugment: bool = False
    token_dropout: float = 0.0

    def requested(self) -> list[str]:
        """The non-default options beyond ``augment`` (the ones a backbone must support)."""
        return [f.name for f in dataclasses.fields(self)
                if f.name != "augment" and getattr(self, f.name) != f.default]


DEFAULT_AUGMENTATION = Augmentation()


def augmentation_of(backbone) -> Augmentation:
    return getattr(backbone, "augmentation", DEFAULT_AUGMENTATION)


def configure_augmentation(backbone, *, augment: bool = True, randaugment: bool = False,
                           token_dropout: float = 0.0) -> Augmentation:
    """Tell ``backbone`` how to preprocess training inputs; refuse options it cannot apply."""
    settings = Augmentation(augment=bool(augment), randaugment=bool(randaugment), token_dropout=float(token_dropout))
    supported = tuple(getattr(backbone, "augmentations", ()))
    unsupported = [name for name in settings.requested() if name not in supported]
    if unsupported:
        shown = ", ".join(f"{name}={getattr(settings, name)!r}" for name in unsupported)
        applies = f"; it applies: {', '.join(supported)}" if supported else ""
        raise ConfigError(f"{shown} cannot be applied to backbone {backbone.name} ({backbone.modality} "
                          f"inputs){applies}; drop the option or use a backbone it applies to")
    backbone.augmentation = settings
    return settings


def uses_training_preprocessing(settings) -> bool:
    """Whether the loop must call ``preprocess(train=True)``: any training-time option is on."""
    return bool(settings.augment or settings.randaugment or settings.token_dropout > 0)


class BatchMixer:
    """mixup / CutMix of one batch tensor with timm's ``Mixup`` (batch mode: one ``lam`` per batch,
    each example mixed with its mirror in the batch), returning soft targets ``(n, n_classes)``
    that sum to 1, label smoothing included."""

    def __init__(self, *, mixup: float = 0.0, cutmix: float = 0.0, label_smoothing: float = 0.0, n_classes: int):
        from ._torchvision_fix import ensure_torchvision_importable

        ensure_torchvision_importable()  # timm imports torchvision, whose CUDA build dies on CPU torch
        from timm.data import Mixup

        if mixup <= 0 and cutmix <= 0:
            raise ValueError("BatchMixer needs mixup > 0 or cutmix > 0")
        self.n_classes = int(n_classes)
        self.label_smoothing = float(label_smoothing)
        self.mixup = Mixup(mixup_alpha=float(mixup), cutmix_alpha=float(cutmix), mode="batch",
                           label_smoothing=self.label_smoothing, num_classes=self.n_classes)

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixed inputs, soft targets)``; ``inputs`` is mixed in place."""
        from timm.data.mixup import mixup_target

        if len(inputs) % 2 == 0:
            return self.mixup(inputs, labels)
        # timm asserts an even batch for all modes, but batch mode (x with x.flip(0)) is defined
        # for any size: the middle example mixes with itself. The last batch of an epoch is often odd.
        lam = self.mixup._mix_batch(inputs)
        return inputs, mixup_target(labels, self.n_classes, lam, self.label_smoothing)


def make_batch_mixer(settings, backbone, n_classes: int) -> tuple[BatchMixer, str] | None:
    """``(mixer, name of the input tensor to mix)``, or None when mixup and cutmix are off."""
    if settings.mixup <= 0 and settings.cutmix <= 0:
        return None
    key = getattr(backbone, "mixable_input_key", None)
    if key is None:
        raise ConfigError(f"mixup/cutmix mix input tensors, and backbone {backbone.name} ({backbone.modality} "
                          f"inputs) has none that can be mixed; drop mixup and cutmix")
    return BatchMixer(mixup=settings.mixup, cutmix=settings.cutmix, label_smoothing=settings.label_smoothing,
                      n_classes=n_classes), key


def drop_tokens(batch: dict[str, torch.Tensor], special_tokens_mask: torch.Tensor, fraction: float, *,
                mask_token_id: int | None, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Drop about ``fraction`` of the real (attended, non-special) tokens of a tokenized batch.

    Each such token is dropped independently with probability ``fraction`` (torch's global
    generator). With a ``mask_token_id`` dropped tokens become that token (lengths unchanged);
    without one they are deleted and every row is packed left and re-padded with ``pad_token_id``.
    Special tokens ([CLS], [SEP], padding) are never touched."""
    if fraction <= 0:
        return batch
    ids, attention = batch["input_ids"], batch["attention_mask"]
    candidates = attention.bool() & ~special_tokens_mask.bool()
    dropped = candidates & (torch.rand(ids.shape) < fraction)
    if mask_token_id is not None:
        return {**batch, "input_ids": ids.masked_fill(dropped, int(mask_token_id))}
    keep = attention.bool() & ~dropped
    lengths = keep.sum(dim=1)
    width = int(lengths.max()) if len(lengths) else 0
    result = {}
    for name, tensor in batch.items():
        fill = pad_token_id if name == "input_ids" else 0
        packed = torch.full((tensor.shape[0], width), fill, dtype=tensor.dtype)
        for row in range(tensor.shape[0]):
            kept = tensor[row][keep[row]]
            packed[row, : len(kept)] = kept
        result[name] = packed
    return result
