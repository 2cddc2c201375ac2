"""Helpers shared by the regularizers: frozen copies, trainable parameters, layer-group maps.

Nothing here knows which modality a backbone holds: a layer group's output is a tensor (or a tuple
whose first element is one) of shape ``(b, C, *spatial)`` when it has 4 dimensions (channels first,
the convention :func:`headstart.backbones.base.pool_output` uses), ``(b, T, C)`` when it has 3
(positions then channels) and ``(b, C)`` when it has 2.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError


def frozen_copy(backbone: nn.Module) -> nn.Module:
    """A deep copy of ``backbone`` in eval mode with no gradients: the pretrained reference.

    Hooks registered on the backbone (by other terms, by the loop) are not copied: the copy gets
    empty hook dictionaries instead of duplicates of closures that point back at their owners."""
    memo: dict[int, object] = {}
    for module in backbone.modules():
        for attribute, value in vars(module).items():
            if "hook" in attribute and isinstance(value, dict):
                memo[id(value)] = type(value)()
    reference = copy.deepcopy(backbone, memo)
    for param in reference.parameters():
        param.requires_grad_(False)
    reference.eval()
    return reference


def trainable_backbone_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of the backbone parameters that train (``requires_grad``)."""
    return [(n, p) for n, p in model.backbone.named_parameters() if p.requires_grad]


def group_map(output) -> torch.Tensor:
    """The tensor a layer group's output module returned (first element of a tuple/model output)."""
    if hasattr(output, "last_hidden_state"):
        output = output.last_hidden_state
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output


def channels_last(fmap: torch.Tensor) -> torch.Tensor:
    """``(b, n_positions, C)`` view of a group output: NCHW -> (b, HW, C), NTC as is, NC -> (b, 1, C)."""
    if fmap.dim() == 4:
        return fmap.flatten(2).transpose(1, 2)
    if fmap.dim() == 3:
        return fmap
    if fmap.dim() == 2:
        return fmap.unsqueeze(1)
    raise ConfigError(f"cannot read channels from a layer-group output of shape {tuple(fmap.shape)}")


def position_mask(batch: dict, fmap: torch.Tensor) -> torch.Tensor | None:
    """``(b, n_positions, 1)`` float mask of the positions that hold input (padding excluded), when
    the batch carries an ``attention_mask`` matching the map's positions; else None."""
    mask = batch.get("attention_mask") if isinstance(batch, dict) else None
    if mask is None or fmap.dim() != 3 or tuple(mask.shape) != tuple(fmap.shape[:2]):
        return None
    return mask.unsqueeze(-1).to(fmap.dtype)


def zero_channel(output, channel_index: torch.Tensor):
    """Return ``output`` with, for replica ``r`` of the batch, channel ``channel_index[r]`` zeroed.

    ``channel_index`` is ``(b,)`` long (one channel per example row, -1 for none)."""
    fmap = group_map(output)
    keep = torch.ones(fmap.shape[0], channels_last(fmap).shape[-1], device=fmap.device, dtype=fmap.dtype)
    rows = torch.nonzero(channel_index >= 0).flatten()
    keep[rows, channel_index[rows]] = 0.0
    if fmap.dim() == 4:
        masked = fmap * keep[:, :, None, None]
    elif fmap.dim() == 3:
        masked = fmap * keep[:, None, :]
    else:
        masked = fmap * keep
    if isinstance(output, torch.Tensor):
        return masked
    return replace_map(output, masked)


def replace_map(output, fmap: torch.Tensor):
    """``output`` (a tensor, tuple, list or model output) with its main tensor replaced by ``fmap``."""
    if torch.is_tensor(output):
        return fmap
    if isinstance(output, tuple):
        return (fmap, *output[1:])
    if isinstance(output, list):
        return [fmap, *output[1:]]
    output.last_hidden_state = fmap
    return output


def require_backbone(model: nn.Module, who: str) -> None:
    if not hasattr(model, "backbone") or not hasattr(model, "head"):
        raise ConfigError(f"{who} needs a headstart TransferModel (with .backbone and .head), got {type(model).__name__}")
