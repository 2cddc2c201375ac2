r"""Faster frozen inference: BatchNorm folded into the convolution that feeds it.

In eval mode a BatchNorm is a fixed per-channel affine map of its input, so after a convolution
``y = W * x + b`` (``W`` ``(c_out, c_in/groups, *kernel)``, ``b`` ``(c_out,)``) it can be merged
into the convolution's own weights (Ioffe & Szegedy 2015, section 3.2; the standard inference
"conv-BN fusion" of deployment toolkits):

    z = gamma (y - mu) / sqrt(var + eps) + beta
      = (W s) * x + (b - mu) s + beta,           s = gamma / sqrt(var + eps)   (c_out,)

so ``W' = W s`` (scaled per output channel) and ``b' = (b - mu) s + beta``. The BatchNorm then
does nothing but whatever follows the normalisation inside it (timm's ``BatchNormAct2d`` keeps its
dropout and activation): the frozen forward pass gets faster, with features equal up to round-off
(docs/benchmarks.md, "Why these defaults" of the speed section).

:func:`folded_for_inference` works on a copy (the caller's backbone keeps training as before), or,
with ``in_place=True`` for a backbone nobody else holds (ranking builds its own), on the backbone
itself, where the copy would be a noticeable part of the pass. It folds only pairs seen in a real
forward pass: a BatchNorm whose input *is* a convolution's output. The folded network is then
checked against its own unfolded outputs on the same inputs (those of the pass that found the
pairs), every layer group's pooled output, and is used only if they agree (an in-place fold that
disagrees is undone); the returned note says what was folded, or why nothing.
"""

from __future__ import annotations

import copy
import types

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

FOLD_MIN_INPUTS = 128  # fewer inputs than this: the copy and its check cost more than folding saves
MAX_RELATIVE_CHANGE = 1e-3  # largest |folded - original| / max(1, max |original|) accepted, per layer

_CONV_FOR_NORM = {nn.BatchNorm1d: nn.Conv1d, nn.BatchNorm2d: nn.Conv2d, nn.BatchNorm3d: nn.Conv3d}


def _after_normalisation(norm: nn.Module):
    """What ``norm`` does after normalising, as a forward function; None if it is not a known kind."""
    if type(norm) in _CONV_FOR_NORM:
        return lambda self, x: x
    if type(norm).__name__ == "BatchNormAct2d" and hasattr(norm, "act") and hasattr(norm, "drop"):
        return lambda self, x: self.act(self.drop(x))  # timm: normalise, then dropout, then activation
    return None


def _conv_norm_pairs(backbone, probe: dict[str, torch.Tensor]) -> tuple[list[tuple[nn.Module, nn.Module]], dict]:
    """``(convolution, BatchNorm)`` pairs where the BatchNorm's input is that convolution's output,
    and the pooled outputs of every layer group on ``probe`` (the pass that found them)."""
    outputs: list[tuple[torch.Tensor, nn.Module]] = []  # the tensors themselves: ids can be reused
    pairs = []

    def after_conv(module, inputs, output):
        outputs.append((output, module))

    def before_norm(module, inputs):
        for tensor, conv in outputs:
            if inputs[0] is tensor:
                pairs.append((conv, module))
                return

    handles = []
    for module in backbone.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            handles.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and _after_normalisation(module) is not None:
            handles.append(module.register_forward_pre_hook(before_norm))
    try:
        with torch.inference_mode():
            outputs_before = backbone.forward_features(probe, layers=backbone.layer_names)
    finally:
        for handle in handles:
            handle.remove()
    pairs = [(conv, norm) for conv, norm in pairs
             if isinstance(conv, _CONV_FOR_NORM.get(type(norm), nn.Conv2d)) and norm.track_running_stats
             and norm.running_mean is not None]
    return pairs, outputs_before


def _fold(conv: nn.Module, norm: nn.Module) -> None:
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps,
                                        norm.weight, norm.bias)
    conv.weight, conv.bias = weight, bias
    # The module object stays (layer-group hooks may sit on it); only its normalisation goes.
    norm.forward = types.MethodType(_after_normalisation(norm), norm)


def folded_for_inference(backbone, probe: dict[str, torch.Tensor], *, in_place: bool = False):
    """``(backbone to run in eval mode, note)``: a folded copy when that is exact, else ``backbone``.

    ``probe``: a preprocessed batch (a few real inputs) used to find the pairs and check the fold.
    ``in_place``: fold ``backbone`` itself (put in eval mode) instead of a copy, for a backbone the
    caller will not train or hand on; a fold that fails its check is undone.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules()):
        return backbone, "no BatchNorm to fold"
    # Without in_place the caller's backbone is neither changed nor run.
    twin = backbone.eval() if in_place else copy.deepcopy(backbone).eval()
    pairs, expected = _conv_norm_pairs(twin, probe)  # before folding, the twin computes what the original does
    if not pairs:
        return backbone, "no BatchNorm directly follows a convolution"
    undo = [(conv, conv.weight, conv.bias, norm) for conv, norm in pairs]
    with torch.no_grad():
        for conv, norm in pairs:
            _fold(conv, norm)
    with torch.inference_mode():
        got = twin.forward_features(probe, layers=twin.layer_names)
    for layer, reference in expected.items():
        change = float((got[layer] - reference).abs().max()) / max(1.0, float(reference.abs().max()))
        if not change <= MAX_RELATIVE_CHANGE:  # also catches NaN
            if in_place:
                for conv, weight, bias, norm in undo:
                    conv.weight, conv.bias = weight, bias
                    del norm.forward  # the class's own forward again
            return backbone, (f"folding changed layer group {layer!r} by {change:.2g} (relative); "
                              f"the unfolded network is used")
    return twin, f"folded {len(pairs)} BatchNorm(s) into their convolutions"
