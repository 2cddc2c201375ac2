"""How a segmenter transfers, one function per strategy (the classifier's ladder, for dense labels):

- ``frozen``: ImageNet encoder frozen (eval mode), U-Net decoder + head trained — the linear probe's analogue;
- ``finetune``: everything trained, the encoder at lr/10, ``freeze=k`` freezing its first k stages;
- ``lp_ft``: ``frozen`` for half the epochs, then ``finetune`` from there (Kumar et al. 2022);
- ``scratch``: the same network from random weights, all at lr (no transfer);
- ``pixels``: a per-pixel logistic regression on colour features (no transfer, no network).

Each returns a fitted object with ``predict_proba(images) -> [(C, h, w)]``, ``tensors()`` and
``history``. A pretrained encoder keeps its BatchNorm statistics (small batches of a new domain would
overwrite them); scratch trains them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError
from .model import EncoderSpec, build_network, encoder_stages, predict_probabilities
from .pixels import PixelSegmenter
from .train import LoopSettings, train


@dataclass
class Context:
    spec: EncoderSpec
    settings: LoopSettings
    lr: float
    freeze: int | None
    train_set: tuple
    val_set: tuple | None
    checkpoint_dir: Path | None
    key: str
    device: str = "cpu"


@dataclass
class NetworkSegmenter:
    net: torch.nn.Module
    spec: EncoderSpec
    image_size: int
    batch_size: int = 8
    history: list = field(default_factory=list)
    frozen: list = field(default_factory=list)  # names of the encoder stages that were not trained
    kind: str = "network"
    device: str = "cpu"

    def predict_proba(self, images):
        return predict_probabilities(self.net, images, self.image_size, self.spec.mean, self.spec.std,
                                     batch_size=self.batch_size, device=self.device)

    def tensors(self) -> dict:
        return {f"network/{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}


def _folder(ctx: Context, name: str):
    return None if ctx.checkpoint_dir is None else ctx.checkpoint_dir / name


def _network(ctx: Context, pretrained: bool) -> torch.nn.Module:
    torch.manual_seed(ctx.settings.seed)  # the decoder's (and scratch's encoder's) initialisation
    return build_network(ctx.spec, ctx.settings.n_classes, pretrained=pretrained)


def _decoder_params(net):
    return [p for name, p in net.named_parameters() if not name.startswith("encoder.")]


def _run(ctx, net, groups, name, frozen_eval, epochs=None, frozen=()):
    settings = ctx.settings if epochs is None else LoopSettings(**{**ctx.settings.__dict__, "epochs": epochs})
    history = train(net, groups, ctx.train_set, ctx.val_set, settings, frozen_eval=frozen_eval,
                    checkpoint_dir=_folder(ctx, name), key=f"{ctx.key}/{name}", device=ctx.device)
    return NetworkSegmenter(net, ctx.spec, settings.image_size, settings.batch_size, history, list(frozen),
                            device=ctx.device)


def fit_frozen(ctx: Context, net=None, name="frozen", epochs=None) -> NetworkSegmenter:
    net = net if net is not None else _network(ctx, pretrained=True)
    net.encoder.requires_grad_(False)
    frozen = [stage for stage, _ in encoder_stages(net)]
    return _run(ctx, net, [{"params": _decoder_params(net), "lr": ctx.lr}], name, [net.encoder], epochs, frozen)


def fit_finetune(ctx: Context, net=None, name="finetune", epochs=None) -> NetworkSegmenter:
    net = net if net is not None else _network(ctx, pretrained=True)
    stages = encoder_stages(net)
    k = ctx.freeze or 0
    if k > len(stages):
        raise ConfigError(f"freeze={k} but the encoder of {ctx.spec.name!r} has only {len(stages)} stages "
                          f"({', '.join(s for s, _ in stages)}); pass freeze between 0 and {len(stages)}")
    net.requires_grad_(True)
    for _, modules in stages[:k]:
        for module in modules:
            module.requires_grad_(False)
    encoder = [p for p in net.encoder.parameters() if p.requires_grad]
    groups = [{"params": encoder, "lr": ctx.lr / 10}, {"params": _decoder_params(net), "lr": ctx.lr}]
    return _run(ctx, net, groups, name, [net.encoder], epochs, [s for s, _ in stages[:k]])


def fit_lp_ft(ctx: Context) -> NetworkSegmenter:
    probe_epochs = max(1, ctx.settings.epochs // 2)
    probed = fit_frozen(ctx, name="lp_ft-probe", epochs=probe_epochs)
    tuned = fit_finetune(ctx, net=probed.net, name="lp_ft-tune")
    tuned.history = [{**h, "phase": "probe"} for h in probed.history] + [{**h, "phase": "tune"} for h in tuned.history]
    return tuned


def fit_scratch(ctx: Context) -> NetworkSegmenter:
    net = _network(ctx, pretrained=False)
    return _run(ctx, net, [{"params": list(net.parameters()), "lr": ctx.lr}], "scratch", [])


def fit_pixels(ctx: Context) -> PixelSegmenter:
    fitted = PixelSegmenter(ctx.settings.n_classes).fit(*ctx.train_set, seed=ctx.settings.seed)
    fitted.history, fitted.frozen = [], []
    return fitted


STRATEGIES = {"frozen": fit_frozen, "finetune": fit_finetune, "lp_ft": fit_lp_ft, "scratch": fit_scratch,
              "pixels": fit_pixels}
AUTO_CANDIDATES = ("finetune", "frozen", "scratch", "pixels")  # the first is auto's default
# declared beside the registry, so the planner and the report name no strategy to tell the baselines apart
USES_PRETRAINED = {"frozen": True, "finetune": True, "lp_ft": True, "scratch": False, "pixels": False}
