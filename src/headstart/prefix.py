"""Reuse the outputs of a frozen prefix every epoch, so a partly frozen model trains at the cost of
its trainable part; with nothing frozen, reuse the preprocessed inputs (:class:`CachedInputs`).

When the first ``k`` layer groups of a backbone are frozen (no gradients, eval mode, BatchNorm
statistics kept) and the training inputs are the same every epoch (no augmentation, no mixup, no
loss term that reads the raw batch), the frozen groups compute the same activations every epoch.
:class:`FrozenPrefix` computes them once per training example and, during the training batches,
stands in for the frozen modules:

* the first frozen module to run (the stem, the embeddings) becomes :class:`_Inject`, which returns
  the batch's cached activation ``(b, ...)`` whatever it is called with;
* the other frozen modules become :class:`_Passthrough`, which return their first input in the
  output structure the original module had (a tensor, or a one-tuple);
* the trainable groups and the head run as usual, with gradients.

Backbones say how to cut a batch of activations into per-example rows and put rows back together
(:meth:`~headstart.backbones.base.Backbone.prefix_rows` / ``collate_prefix``; text rows are cut to
their own length and padded again per batch). Nothing is assumed about the architecture: before it
is used, the swapped model must reproduce the full forward pass on a probe batch (``atol=1e-4``),
and any failed condition is recorded in the fit summary with its reason, never skipped silently.
The swap lasts for the training batches only; validation, checkpoints and saved weights always see
the real modules.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn

MAX_CACHE_BYTES = 2 * 1024**3  # past this the activations stay uncached (a note says so)


class _StopForward(Exception):
    """Raised by the capture hook: nothing after the frozen prefix needs to run."""


class _Inject(nn.Module):
    def __init__(self):
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, *args, **kwargs):
        return self.value


class _Passthrough(nn.Module):
    def __init__(self, as_tuple: bool):
        super().__init__()
        self.as_tuple = as_tuple

    def forward(self, *args, **kwargs):
        hidden = args[0] if args else next(iter(kwargs.values()))
        return (hidden,) if self.as_tuple else hidden


def blocker(backbone, *, inputs_vary: bool, mixes_batches: bool, terms) -> str | None:
    """Why the frozen prefix cannot be reused in this fit, or ``None`` when it can."""
    k = backbone.frozen_groups
    if k >= len(backbone.layer_groups()):
        return "the whole backbone is frozen"
    if not backbone.supports_prefix_reuse():
        return f"{backbone.name} does not cut its activations into per-example rows"
    if inputs_vary:
        return "augmentation changes the training inputs every epoch"
    if mixes_batches:
        return "mixup/CutMix mix the inputs"
    if any(term.reads_batch for term in terms):
        return "a loss term reads the raw batch"
    return None


def reuse_frozen_prefix(backbone, items, batch_size: int, device, *, inputs_vary: bool, mixes_batches: bool,
                        terms) -> tuple[FrozenPrefix | None, str]:
    """``(prefix or None, note for the fit summary)``: the frozen groups' outputs for ``items``,
    computed once for every epoch when :func:`blocker` allows it and the probe agrees."""
    why_not = blocker(backbone, inputs_vary=inputs_vary, mixes_batches=mixes_batches, terms=terms)
    if why_not:
        return None, f"not reused: {why_not}"
    started = time.perf_counter()
    kind = FrozenPrefix if backbone.frozen_groups else CachedInputs
    prefix, note = kind.build(backbone, items, batch_size, device)
    return prefix, f"{note} in {time.perf_counter() - started:.1f} s"


class CachedInputs:
    """Nothing frozen, but the inputs repeat: each training example is preprocessed once, not every epoch.

    Decoding and resizing an image or tokenizing a sentence costs the same every epoch; a plain
    loop pays it per step (about a tenth of an efficientnet_lite0 step at 64 px, docs/benchmarks.md).
    The rows are cut and put back together by the same backbone methods as the frozen prefix's, with
    the batch's first input tensor (``pixel_values``, ``input_ids``) standing in for the activation,
    so a text batch is padded to its own longest row again.
    """

    def __init__(self, backbone, rows: list):
        self.backbone, self.rows = backbone, rows

    @classmethod
    def build(cls, backbone, items, batch_size: int, device) -> tuple[CachedInputs | None, str]:
        rows, total = [], 0
        for start in range(0, len(items), batch_size):
            batch = {k: v.to(device) for k, v in backbone.preprocess(items[start:start + batch_size]).items()}
            rows += backbone.prefix_rows(batch, next(iter(batch.values())))
            total += sum(v.numel() * v.element_size() for v in batch.values())
            if total > MAX_CACHE_BYTES:
                return None, f"not reused: the preprocessed inputs exceed {MAX_CACHE_BYTES / 1024**3:.0f} GB"
        return cls(backbone, rows), (f"reused: nothing frozen, the inputs preprocessed once for {len(items)} "
                                     f"inputs ({total / 1024**2:.0f} MB), not every epoch")

    def batch(self, indices) -> dict[str, torch.Tensor]:
        return self.backbone.collate_prefix([self.rows[i] for i in indices])[1]

    @contextlib.contextmanager
    def swapped(self):
        yield self  # no module stands in: the whole network runs on the cached inputs


class FrozenPrefix:
    """The frozen groups' output for every training example, and the module swap that uses it."""

    def __init__(self, backbone, rows: list, injected: nn.Module, originals: dict, as_tuple: dict):
        self.backbone, self.rows = backbone, rows
        self._injected, self._originals, self._as_tuple = injected, originals, as_tuple
        self._inject = _Inject()

    @classmethod
    def build(cls, backbone, items, batch_size: int, device) -> tuple[FrozenPrefix | None, str]:
        """``(prefix, note)``; ``prefix`` is None when the probe or the memory bound refuses it."""
        groups = backbone.layer_groups()[: backbone.frozen_groups]
        frozen = [module for group in groups for module in group.modules]
        last = groups[-1].output_module
        kinds: dict[int, bool] = {}
        captured: list[torch.Tensor] = []

        def remember(module, args, output):
            kinds[id(module)] = isinstance(output, tuple)

        def capture(module, args, output):
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _StopForward

        hooks = [module.register_forward_hook(remember) for module in frozen]
        hooks.append(last.register_forward_hook(capture))
        rows, total = [], 0
        was_training = backbone.training
        backbone.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(items), batch_size):
                    batch = {k: v.to(device) for k, v in backbone.preprocess(items[start:start + batch_size]).items()}
                    with contextlib.suppress(_StopForward):
                        backbone(batch)
                    if not captured:
                        return None, "not reused: the forward pass never reached the last frozen group's output module"
                    activation = captured.pop()
                    rows += backbone.prefix_rows(batch, activation.detach())
                    total += activation.numel() * activation.element_size()
                    if total > MAX_CACHE_BYTES:
                        return None, (f"not reused: the frozen groups' outputs exceed {MAX_CACHE_BYTES / 1024**3:.0f} GB "
                                      f"for {len(items)} inputs")
        finally:
            for hook in hooks:
                hook.remove()
            backbone.train(was_training)
        prefix = cls(backbone, rows, frozen[0], {id(m): m for m in frozen}, kinds)
        problem = prefix._probe(items[: min(len(items), 4)], device)
        if problem:
            return None, f"not reused: {problem}"
        return prefix, (f"reused: {len(groups)} frozen group(s) run once for {len(items)} inputs "
                        f"({total / 1024**2:.0f} MB), not every epoch")

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """The batch dict for the model, with the cached activations ready to be injected."""
        activation, batch = self.backbone.collate_prefix([self.rows[i] for i in indices])
        self._inject.value = activation
        return batch

    @contextlib.contextmanager
    def swapped(self):
        """The frozen modules replaced by the injection and passthroughs, for the training batches."""
        parents = {id(child): (parent, name) for parent in self.backbone.modules()
                   for name, child in parent.named_children()}
        placed = []
        try:
            for key, module in self._originals.items():
                parent, name = parents[key]
                stand_in = self._inject if module is self._injected else _Passthrough(self._as_tuple.get(key, False))
                parent._modules[name] = stand_in
                placed.append((parent, name, module))
            yield self
        finally:
            for parent, name, module in placed:
                parent._modules[name] = module
            self._inject.value = None

    def _probe(self, items, device) -> str | None:
        """Whether the swapped model reproduces the full forward pass on the first training inputs."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                batch = {k: v.to(device) for k, v in self.backbone.preprocess(items).items()}
                expected = self.backbone(batch)
                with self.swapped():
                    got = self.backbone(self.batch(list(range(len(items)))))
        except Exception as error:  # an architecture whose forward does not fit the swap
            return f"the model cannot run from the cached outputs ({type(error).__name__}: {error})"
        finally:
            self.backbone.train(was_training)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
            return "running from the cached outputs does not reproduce the full forward pass"
        return None
