"""DELTA: feature-map regularization with channel attention.

Li, Xiong, Wang, Yu, Huan, Liu & Jiang, "DELTA: DEep Learning Transfer using Feature Map with
Attention for Convolutional Networks", ICLR 2019.

Instead of keeping the *weights* near the pretrained ones (L2-SP), DELTA keeps the *behaviour*:
the outputs of chosen layers on the target inputs stay close to the pretrained network's, channel
by channel, with more weight on the channels that matter for the target task:

.. math::

    \\Omega(w) = \\frac{1}{2} \\cdot \\frac{1}{b} \\sum_{i=1}^{b} \\sum_{j \\in J} \\sum_{c=1}^{C_j}
        W_{jc}\\; \\frac{1}{P_j} \\lVert FM_{jc}(x_i; w) - FM_{jc}(x_i; w^0) \\rVert_2^2 ,

where :math:`FM_{jc}` is channel ``c`` of the output of layer group ``j`` (over its ``P_j``
positions, e.g. grid cells or sequence steps; padding positions excluded when the batch has an
``attention_mask`` of matching shape), :math:`w^0` a frozen copy of the pretrained backbone and
:math:`W_{jc}` the channel attention, scaled to mean 1 over a group's channels.

Shapes: a group output ``(b, C, *spatial)`` or ``(b, T, C)`` becomes ``(b, P, C)``; the squared
difference is averaged over ``P`` -> ``(b, C)``, weighted by ``W_j`` ``(C,)``, summed over channels
and groups and averaged over the batch -> scalar.

Layers ``J`` (option ``layers``): by default the outputs of the backbone groups that train
(``layer_groups()[frozen_groups:]``), at most the last ``max_layers=3`` of them — a frozen group's
output cannot move, so distilling it is wasted work.

Channel attention (option ``attention``):

- ``"loss_drop"`` (default) — **the paper's criterion**, as TLlib's DELTA example also computes it:
  a classifier on top of the frozen pretrained features (here a linear probe fitted with L-BFGS on
  the batch) measures the loss :math:`L_0`; channel ``c`` of group ``j`` is zeroed in the frozen
  copy and the loss :math:`L_{jc}` measured again. The relative increases
  :math:`(L_{jc} - L_0)^+ / L_0` are standardised over the group's channels and passed through a
  softmax. This costs :math:`\\sum_j C_j` forward passes of the frozen copy on one batch (done in
  chunks of ``attention_chunk`` rows), **once**: on the first batch the term sees, or earlier by
  calling :meth:`estimate_attention` with more data. One small batch gives a noisy estimate.
- ``"taylor"`` (default) — the same quantity to first order: zeroing channel ``c`` changes the
  loss by about :math:`-\sum_{i,p} \partial L / \partial FM_{jc}(x_i)_p \cdot FM_{jc}(x_i)_p` (the
  Taylor criterion of Molchanov et al. 2017, "Pruning Convolutional Neural Networks for Resource
  Efficient Inference", ICLR), read off **one forward and backward pass per group** instead of
  :math:`C_j` forward passes. Increases are then standardised and softmaxed as above. On the
  tests' small batches its channel ranking agrees with ``loss_drop``'s at Spearman 0.56
  (``efficientnet_lite0``, 192 channels) and 0.96 (``minilm_l6``, 384 channels). Why it is the
  default: with ``efficientnet_lite0`` on 100 inputs of 64 × 64, ``loss_drop`` took 197 s on one CPU
  thread for the attention alone, against under 2 s for the whole of a plain fine-tune.
- ``"uniform"`` — every :math:`W_{jc} = 1`: the paper's ablation without attention (TLlib's
  ``BehavioralRegularization``); cheap.

The live maps are caught by forward hooks on the live backbone's group outputs; when the last
forward the hooks saw was not on ``outputs.batch`` (the loop ran another batch since), the term runs
the live backbone on ``outputs.batch`` again. The frozen copy is made in :meth:`setup` (deepcopy,
eval, no gradients, outside the term's ``state_dict``); hooks are removed in :meth:`teardown`. It
runs in eval mode, so BatchNorm batch statistics / dropout in the live backbone make the term
nonzero even at :math:`w = w^0`. Default ``weight=0.01`` (the paper's :math:`\\alpha`, picked on
validation data there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..terms import LossTerm, StepOutputs
from ._common import (channels_last, frozen_copy, group_map, position_mask, replace_map, require_backbone,
                      zero_channel)

ATTENTIONS = ("taylor", "loss_drop", "uniform")


class DELTA(LossTerm):
    """Attention-weighted feature-map distance to the pretrained backbone at selected groups."""

    name = "delta"

    def __init__(self, weight: float = 0.01, *, layers=None, max_layers: int = 3,
                 attention: str = "taylor", attention_chunk: int = 256):
        super().__init__(weight)
        if attention not in ATTENTIONS:
            raise ConfigError(f"delta attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if isinstance(max_layers, bool) or not isinstance(max_layers, int) or max_layers < 1:
            raise ConfigError(f"delta max_layers must be a positive integer, got {max_layers!r}")
        self.requested_layers = None if layers is None else [str(layer) for layer in layers]
        self.max_layers, self.attention, self.attention_chunk = max_layers, attention, int(attention_chunk)
        self.layers: list[str] = []
        self.channel_attention: dict[str, torch.Tensor] = {}
        # Outside the module tree: the frozen copy is neither trained nor saved with the term.
        self.__dict__.update(_reference=None, _handles=[], _live={}, _ref={}, _live_batch=None, _zeroing=None)

    # -- lifecycle ---------------------------------------------------------------------------
    def setup(self, model) -> None:
        require_backbone(model, "delta")
        self.teardown(model)
        backbone = model.backbone
        groups = backbone.layer_groups()
        if self.requested_layers is not None:
            backbone.check_layers(self.requested_layers)
            self.layers = list(self.requested_layers)
        else:
            training = [g.name for g in groups[backbone.frozen_groups:] if any(p.requires_grad for p in g.parameters())]
            self.layers = training[-self.max_layers:]
        if not self.layers:
            raise ConfigError(
                f"delta regularizes the trainable layer groups of the backbone, and {backbone.name} has "
                f"none (freeze={backbone.frozen_groups} of {len(groups)}); unfreeze some groups or "
                f"pass layers=[...]"
            )
        reference = frozen_copy(backbone)
        self.__dict__["_reference"] = reference
        live_groups = {g.name: g for g in groups}
        ref_groups = {g.name: g for g in reference.layer_groups()}
        handles = [backbone.register_forward_pre_hook(self._on_live_batch)]
        for layer in self.layers:
            handles.append(live_groups[layer].output_module.register_forward_hook(self._live_hook(layer)))
            handles.append(ref_groups[layer].output_module.register_forward_hook(self._ref_hook(layer)))
        self.__dict__["_handles"] = handles
        self.channel_attention = {}

    def teardown(self, model) -> None:
        for handle in self.__dict__["_handles"]:
            handle.remove()
        self.__dict__.update(_reference=None, _handles=[], _live={}, _ref={}, _live_batch=None, _zeroing=None)

    # -- hooks -------------------------------------------------------------------------------
    def _on_live_batch(self, module, args):
        self.__dict__["_live_batch"] = args[0] if args else None
        self.__dict__["_live"] = {}

    def _live_hook(self, layer):
        def hook(module, inputs, output):
            self._live[layer] = group_map(output)
        return hook

    def _ref_hook(self, layer):
        def hook(module, inputs, output):
            zeroing = self._zeroing
            if zeroing is not None and zeroing[0] == "taylor":
                if zeroing[1] != layer:
                    return None
                leaf = group_map(output).detach().requires_grad_(True)
                self.__dict__["_taylor_leaf"] = leaf
                return replace_map(output, leaf)
            if zeroing is not None:
                return zero_channel(output, zeroing[1]) if zeroing[0] == layer else None
            self._ref[layer] = group_map(output)
            return None
        return hook

    # -- channel attention (the paper's loss-drop criterion) --------------------------------
    @torch.no_grad()
    def estimate_attention(self, batch: dict, labels: torch.Tensor, n_classes: int | None = None) -> None:
        """Set :attr:`channel_attention` from the loss increase when each channel is zeroed."""
        reference = self._reference
        if reference is None:
            raise ConfigError("delta.estimate_attention needs setup(model) first")
        labels = labels.long()
        features = reference(batch)
        n_classes = int(n_classes or int(labels.max()) + 1)
        probe = _fit_probe(features, labels, max(n_classes, 2))
        base = F.cross_entropy(probe(features), labels)
        b = labels.shape[0]
        replicas = max(1, self.attention_chunk // b)
        for layer in self.layers:
            n_channels = channels_last(self._ref[layer]).shape[-1]
            drops = torch.empty(n_channels, device=features.device)
            for start in range(0, n_channels, replicas):
                channels = torch.arange(start, min(start + replicas, n_channels), device=features.device)
                k = channels.numel()
                repeated = {key: value.repeat(k, *([1] * (value.dim() - 1))) for key, value in batch.items()}
                self.__dict__["_zeroing"] = (layer, channels.repeat_interleave(b))
                try:
                    masked = reference(repeated)
                finally:
                    self.__dict__["_zeroing"] = None
                loss = F.cross_entropy(probe(masked), labels.repeat(k), reduction="none").view(k, b).mean(1)
                drops[start:start + k] = loss
            self.channel_attention[layer] = _attention((drops - base).clamp(min=0) / base.clamp(min=1e-8))

    def estimate_attention_taylor(self, batch: dict, labels: torch.Tensor, n_classes: int | None = None) -> None:
        """Set :attr:`channel_attention` from the first-order loss increase of zeroing each channel."""
        reference = self._reference
        if reference is None:
            raise ConfigError("delta.estimate_attention_taylor needs setup(model) first")
        labels = labels.long()
        with torch.no_grad():
            features = reference(batch)
        probe = _fit_probe(features, labels, max(int(n_classes or int(labels.max()) + 1), 2))
        for layer in self.layers:
            self.__dict__["_zeroing"] = ("taylor", layer)  # the hook swaps this group's output for a leaf
            try:
                with torch.enable_grad():
                    loss = F.cross_entropy(probe(reference(batch)), labels)
                    leaf = self.__dict__.pop("_taylor_leaf")
                    (grad,) = torch.autograd.grad(loss, leaf)
            finally:
                self.__dict__["_zeroing"] = None
            increase = -(channels_last(grad) * channels_last(leaf.detach())).sum(dim=(0, 1))  # (C,)
            self.channel_attention[layer] = _attention(increase.clamp(min=0) / loss.detach().clamp(min=1e-8))

    # -- the term ----------------------------------------------------------------------------
    def forward(self, outputs: StepOutputs, model) -> torch.Tensor:
        reference = self._reference
        if reference is None:
            raise ConfigError("delta was used before setup(model); the training loop must call setup first")
        batch = outputs.batch
        live = self._live if self._live_batch is batch else {}
        if any(layer not in live for layer in self.layers):
            model.backbone(batch)  # the pre-hook resets the capture; the group hooks fill it
            live = self._live
        self.__dict__.update(_live={}, _live_batch=None)  # each capture is used once
        with torch.no_grad():
            reference(batch)
        if self.attention != "uniform" and not self.channel_attention:
            estimate = self.estimate_attention if self.attention == "loss_drop" else self.estimate_attention_taylor
            estimate(batch, outputs.labels, outputs.logits.shape[-1])
        total = None
        for layer in self.layers:
            current, pretrained = live[layer], self._ref[layer].to(live[layer].dtype)
            squared = channels_last(current - pretrained).pow(2)  # (b, P, C)
            mask = position_mask(batch, live[layer])
            if mask is None:
                per_channel = squared.mean(dim=1)
            else:
                per_channel = (squared * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            weights = self.channel_attention.get(layer)
            if weights is not None:
                per_channel = per_channel * weights.to(per_channel)
            part = 0.5 * per_channel.sum(dim=1).mean()
            total = part if total is None else total + part
        return total


def _attention(increase: torch.Tensor) -> torch.Tensor:
    """Relative loss increases ``(C,)`` -> channel weights: standardised, softmaxed, scaled to mean 1."""
    z = (increase - increase.mean()) / (increase.std(unbiased=False) + 1e-8)
    return torch.softmax(z, dim=0) * increase.numel()


def _fit_probe(features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float = 1e-2) -> nn.Module:
    """A linear classifier on frozen features (L-BFGS, small L2): the paper's pretrained classifier."""
    features = features.float()
    mean, std = features.mean(0, keepdim=True), features.std(0, keepdim=True).clamp(min=1e-6)
    probe = nn.Linear(features.shape[1], n_classes).to(features.device)
    with torch.enable_grad():
        optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=50, line_search_fn="strong_wolfe")
        normalized = (features - mean) / std

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(probe(normalized), labels) + l2 * probe.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    for p in probe.parameters():
        p.requires_grad_(False)
    return nn.Sequential(_Standardize(mean, std), probe)


class _Standardize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return (x.float() - self.mean) / self.std
