"""Image backbones built on timm model code: any ``timm:NAME``, and the offline zoo's images.

Layer groups come from timm's own ``group_matcher(coarse=True)`` (the grouping timm uses for
layer-wise learning-rate decay): stem, each block stage, then the head convolution, so freezing and
per-layer features work for every timm architecture without a per-family table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._torchvision_fix import ensure_torchvision_importable
from ..augment import RANDAUGMENT, augmentation_of
from .base import Backbone, LayerGroup
from .info import ModelInfo


def _common_prefix(names: list[str]) -> str:
    parts = [name.split(".") for name in names]
    prefix = []
    for pieces in zip(*parts):
        if len(set(pieces)) != 1:
            break
        prefix.append(pieces[0])
    return ".".join(prefix)


def _widen(prefix: str, modules: dict, group_params: set[str]) -> str:
    """Climb from ``prefix`` to the widest parent module holding only this group's parameters
    (a one-block stage is found as ``blocks.0.0``; its stage is ``blocks.0``)."""
    while prefix and "." in prefix:
        parent = prefix.rsplit(".", 1)[0]
        names = {f"{parent}.{n}" for n, _ in modules[parent].named_parameters()}
        if not names <= group_params:
            break
        prefix = parent
    return prefix


class TimmBackbone(Backbone):
    """A timm model with its classifier removed (``num_classes=0``): ``model(x)`` is pooled features."""

    augmentations = ("randaugment",)  # beyond the mild crops of ``augment``; see headstart.augment
    mixable_input_key = "pixel_values"  # mixup / CutMix mix this batch tensor

    def __init__(self, info: ModelInfo, model: torch.nn.Module, *, pretrained: bool, image_size=None):
        super().__init__(info, pretrained=pretrained)
        self.model = model
        size = int(image_size) if image_size else info.input_size[1]
        self.image_size = size
        self._groups = self._build_groups()
        self._transforms: dict[tuple, object] = {}

    def _build_groups(self) -> list[LayerGroup]:
        from timm.models._manipulate import group_modules, group_parameters

        matcher = self.model.group_matcher(coarse=True)
        grouped = group_modules(self.model, matcher)
        grouped_params = group_parameters(self.model, matcher)
        modules = dict(self.model.named_modules())
        parameters = dict(self.model.named_parameters())
        groups = []
        for index, (group_id, names) in enumerate(sorted(grouped.items())):
            names = [n.removeprefix("model.") for n in names]
            prefix = _widen(_common_prefix(names), modules, set(grouped_params.get(group_id, [])))
            if index == 0:
                label = "stem"
            elif prefix:
                label = prefix
            else:
                label = "head"
            members = [modules[prefix]] if prefix else [modules[n] for n in names]
            output = modules[prefix] if prefix else modules[names[-1]]
            params = [parameters[n] for n in grouped_params.get(group_id, [])]
            groups.append(LayerGroup(label, members, output, params))
        return groups

    def preprocess_signature(self) -> dict:
        return {
            "image_size": self.image_size,
            "mean": list(self.info.mean),
            "std": list(self.info.std),
            "interpolation": self.info.interpolation,
            "resize": "shorter-side-then-center-crop-1.0",
        }

    def _transform(self, train: bool):
        augmentation = augmentation_of(self)
        crops, randaugment = train and augmentation.augment, train and augmentation.randaugment
        key = (crops, randaugment)
        if key not in self._transforms:
            from timm.data import create_transform

            common = dict(
                input_size=(3, self.image_size, self.image_size),
                interpolation=self.info.interpolation,
                mean=self.info.mean,
                std=self.info.std,
            )
            if crops or randaugment:
                # Mild crops and no flips: with few examples, and for digits, text or X-rays,
                # aggressive crops or mirroring can change what the label means. RandAugment
                # (training only) replaces the colour jitter, as in timm's own recipes; without
                # ``augment`` its crop is the whole image (scale and ratio 1).
                crop = dict(scale=(0.6, 1.0)) if crops else dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))
                self._transforms[key] = create_transform(
                    is_training=True, hflip=0.0, color_jitter=0.1 if crops else None,
                    auto_augment=RANDAUGMENT if randaugment else None, **crop, **common
                )
            else:
                self._transforms[key] = create_transform(is_training=False, crop_pct=1.0, **common)
        return self._transforms[key]

    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        from ..data import load_image, window_of

        transform = self._transform(train)
        window = window_of(self)  # DICOM / 16-bit grey levels (headstart.data.medical); set by the fit
        pixels = torch.stack([transform(load_image(item, window=window)) for item in items])
        return {"pixel_values": pixels}

    def training_inputs_vary(self) -> bool:
        augmentation = augmentation_of(self)
        return augmentation.augment or augmentation.randaugment

    def supports_prefix_reuse(self) -> bool:
        return True

    def prefix_rows(self, batch, activation):
        return list(activation.unbind(0))

    def collate_prefix(self, rows):
        activation = as_channels_last(torch.stack(rows))
        return activation, {"pixel_values": activation}  # the stem is swapped out; the key keeps the batch size

    def _forward_final(self, batch):
        return self.model(as_channels_last(batch["pixel_values"]))


def as_channels_last(pixels: torch.Tensor) -> torch.Tensor:
    """``pixels`` in channels-last memory order (same shape and values, NHWC strides).

    oneDNN's convolution kernels work in channels-last: given an NCHW-contiguous batch, every
    convolution converts to and from it, and the backward pass takes about twice as long
    (docs/benchmarks.md, "Why these defaults" of the speed section). The layout propagates through
    the network, so converting the input is enough.
    """
    return pixels.contiguous(memory_format=torch.channels_last) if pixels.dim() == 4 else pixels


def import_timm():
    """timm, imported only after the torchvision fix: timm imports torchvision at its top, and a
    CUDA-built torchvision on CPU torch dies there (``operator torchvision::nms does not exist``)."""
    ensure_torchvision_importable()
    import timm

    return timm


def create_timm_model(architecture: str, *, pretrained: bool):
    return import_timm().create_model(architecture, pretrained=pretrained, num_classes=0)
