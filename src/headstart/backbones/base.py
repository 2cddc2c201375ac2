"""The one backbone interface every modality implements.

A backbone turns a list of raw inputs (image paths / PIL images / uint8 arrays, or strings) into
tensors (:meth:`Backbone.preprocess`), and tensors into pooled feature vectors
(:meth:`Backbone.forward_features`): ``(n, feature_dim)`` from the last layer, or one
``(n, d_layer)`` matrix per named layer group. Layer groups are ordered from input to output; the
strategies freeze the first ``k`` of them and decay learning rates along them, without ever asking
which modality they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, did_you_mean
from .info import ModelInfo


@dataclass
class LayerGroup:
    """One unit of freezing and layer-wise learning rates: some modules, and the one whose output
    (globally average-pooled) is this group's feature vector."""

    name: str
    modules: list[nn.Module]
    output_module: nn.Module
    params: list[nn.Parameter] | None = None  # when some belong to no module (ViT's pos_embed)

    def parameters(self):
        if self.params is not None:
            yield from self.params
            return
        for module in self.modules:
            yield from module.parameters()

    def eval(self) -> None:
        for module in self.modules:
            module.eval()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass
class FreezeReport:
    """What :meth:`Backbone.freeze` matched: reported to the user, never a silent no-op."""

    frozen_groups: list[str]
    trainable_groups: list[str]
    frozen_params: int
    trainable_params: int

    def __str__(self) -> str:
        frozen = ", ".join(self.frozen_groups) or "nothing"
        return (
            f"froze {len(self.frozen_groups)} layer group(s) ({frozen}; {self.frozen_params:,} "
            f"parameters, BatchNorm statistics included); training {len(self.trainable_groups)} "
            f"group(s) ({self.trainable_params:,} parameters) plus the head"
        )


class Backbone(nn.Module):
    """Base class: subclasses set ``self._groups`` (their layer groups, input to output) once in
    ``__init__``, and implement ``preprocess``, ``preprocess_signature`` and ``_forward_final``
    (or ``_pooled_outputs``)."""

    # Training-time options this backbone applies (see headstart.augment); others are refused.
    augmentations: tuple[str, ...] = ()
    # The batch key mixup/CutMix may blend (images: "pixel_values"); None: not mixable.
    mixable_input_key: str | None = None

    def __init__(self, info: ModelInfo, *, pretrained: bool):
        super().__init__()
        self.info = info
        self.pretrained = pretrained
        self.frozen_groups = 0
        self.batchnorm_stats_frozen = False  # set by fine-tuning; see train()
        self.pretrained_fingerprint: str | None = None  # set by create_backbone, before any training
        self._groups: list[LayerGroup] | None = None  # set once by the subclass's __init__

    def __repr__(self) -> str:
        """One line (``estimator.backbone_`` in a notebook), not nn.Module's listing of every layer."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return (f"{type(self).__name__}(name={self.name!r}, modality={self.modality!r}, feature_dim={self.feature_dim}, "
                f"groups={len(self._groups or [])}, frozen_groups={self.frozen_groups}, trainable={trainable:,})")

    # -- what every backbone tells about itself -------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def modality(self) -> str:
        return self.info.modality

    @property
    def feature_dim(self) -> int:
        return self.info.feature_dim

    def layer_groups(self) -> list[LayerGroup]:
        """Ordered groups from input to output; the last one gives the features."""
        if self._groups is None:
            raise NotImplementedError(f"{type(self).__name__} sets no layer groups: its __init__ must assign "
                                      f"self._groups, the list of LayerGroup from input to output")
        return self._groups

    @property
    def layer_names(self) -> list[str]:
        return [group.name for group in self.layer_groups()]

    def preprocess_signature(self) -> dict:
        """Everything about preprocessing that changes the features (part of the cache key)."""
        raise NotImplementedError

    def weights_fingerprint(self) -> str:
        """A short hash of the weights (names, shapes and sampled values): the cache key's part."""
        digest = hashlib.sha256()
        for key, tensor in self.state_dict().items():
            flat = tensor.detach().reshape(-1)
            sample = torch.cat([flat[:16], flat[-16:]]).float().cpu().numpy().tobytes()
            digest.update(key.encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(sample)
        return digest.hexdigest()[:16]

    # -- the work ------------------------------------------------------------------------
    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def count_truncated(self, items: Sequence) -> int:
        """How many inputs preprocessing cuts short (texts over the token limit); 0 if none can be."""
        return 0

    def inference_batches(self, items: Sequence, batch_size: int) -> list[list[int]]:
        """Positions of ``items`` grouped into the batches that inference (frozen extraction,
        prediction) runs, in that order.

        Default: consecutive slices of ``batch_size``. A backbone whose cost depends on each
        batch's longest input (padded text) orders them so that batches hold inputs of like size.
        """
        return [list(range(start, min(start + batch_size, len(items)))) for start in range(0, len(items), batch_size)]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features of the last layer, ``(n, feature_dim)``; differentiable."""
        return self._pooled_outputs(batch, [self.layer_names[-1]])[self.layer_names[-1]]

    def forward_features(
        self, batch: dict[str, torch.Tensor], layers: Sequence[str] | None = None
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Pooled features: ``(n, feature_dim)`` when ``layers`` is None, else ``{layer: (n, d)}``."""
        if layers is None:
            return self.forward(batch)
        self.check_layers(layers)
        return self._pooled_outputs(batch, list(layers))

    def check_layers(self, layers: Sequence[str]) -> None:
        names = self.layer_names
        for layer in layers:
            if layer not in names:
                raise ConfigError(
                    f"{self.name} has no layer group {layer!r}.{did_you_mean(layer, names)} "
                    f"Its layer groups, input to output: {', '.join(names)}."
                )

    def _forward_final(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run the whole network; return the pooled features of the last group, ``(n, d)``."""
        raise NotImplementedError

    def _pool(self, output, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return pool_output(output)

    def _pooled_outputs(self, batch, layers: list[str]) -> dict[str, torch.Tensor]:
        # One forward pass; forward hooks catch the intermediate groups' outputs on the way.
        groups = {group.name: group for group in self.layer_groups()}
        last = self.layer_names[-1]
        captured: dict[str, torch.Tensor] = {}
        handles = []

        def capture(layer):
            return lambda module, inputs, output: captured.__setitem__(layer, self._pool(output, batch))

        for layer in layers:
            if layer != last:
                handles.append(groups[layer].output_module.register_forward_hook(capture(layer)))
        try:
            final = self._forward_final(batch)
        finally:
            for handle in handles:
                handle.remove()
        captured[last] = final
        return {layer: captured[layer] for layer in layers}

    # -- reusing a frozen prefix's outputs (headstart.prefix) ---------------------------------
    def training_inputs_vary(self) -> bool:
        """Whether ``preprocess(train=True)`` draws different inputs every epoch (augmentation, random
        windows); the conservative answer is yes."""
        return True

    def input_lengths(self, items: Sequence) -> np.ndarray | None:
        """Each input's length when :meth:`preprocess` pads a batch to its longest input (tokens of a
        text), so training may batch similar lengths together; None when batches never pad."""
        return None

    def supports_prefix_reuse(self) -> bool:
        """Whether :meth:`prefix_rows` and :meth:`collate_prefix` are implemented."""
        return False

    def prefix_rows(self, batch: dict[str, torch.Tensor], activation: torch.Tensor) -> list:
        """One row per example of a frozen group's output ``activation (n, ...)`` for ``batch``."""
        raise NotImplementedError

    def collate_prefix(self, rows: list) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Rows back into a batch: ``(activation, batch dict the forward pass takes)``."""
        raise NotImplementedError

    # -- freezing ------------------------------------------------------------------------
    def freeze(self, k: int) -> FreezeReport:
        """Freeze the first ``k`` layer groups: no gradients, and BatchNorm statistics kept.

        ``k=0`` trains everything; ``k=len(layer_groups())`` freezes the whole backbone.
        """
        groups = self.layer_groups()
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(groups):
            raise ConfigError(
                f"freeze={k!r} is out of range for {self.name}: it has {len(groups)} layer groups "
                f"({', '.join(g.name for g in groups)}); use an integer from 0 (train all) to "
                f"{len(groups)} (freeze all)"
            )
        for param in self.parameters():
            param.requires_grad_(True)
        frozen = trainable = 0
        for index, group in enumerate(groups):
            for param in group.parameters():
                param.requires_grad_(index >= k)
                if index < k:
                    frozen += param.numel()
                else:
                    trainable += param.numel()
        self.frozen_groups = k
        self.train(self.training)  # re-apply eval mode to the frozen groups
        return FreezeReport(
            frozen_groups=[g.name for g in groups[:k]],
            trainable_groups=[g.name for g in groups[k:]],
            frozen_params=frozen,
            trainable_params=trainable,
        )

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen groups stay in eval mode, so BatchNorm running statistics and dropout stay as
        # pre-trained: freezing the weights but not the statistics silently changes the model.
        for group in self.layer_groups()[: self.frozen_groups]:
            group.eval()
        if self.batchnorm_stats_frozen:
            # Fine-tuning on small batches of a new domain would overwrite the pretrained running
            # statistics (docs/benchmarks.md, "Why these defaults" of the regularized fine-tuning section).
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def pool_output(output) -> torch.Tensor:
    """Global-average a layer's output to ``(n, channels)``: NCHW over space, NTC over tokens."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 4:
        return output.mean(dim=(2, 3))
    if output.dim() == 3:
        return output.mean(dim=1)
    return output
