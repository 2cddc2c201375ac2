"""TransferModel: a backbone plus a linear head, and inference with it.

``logits = head(backbone(batch))`` with ``batch`` what ``backbone.preprocess`` returns; the head is
``nn.Linear(feature_dim, n_classes)``. Every strategy returns one. :meth:`TransferModel.save`
writes its tensors as safetensors (never pickle); :mod:`headstart.runs` writes the rest of the run
folder and loads it back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from .atomic import write_atomic
from .backbones import Backbone

WEIGHTS_FILE = "model.safetensors"


class TransferModel(nn.Module):
    """``logits = head(backbone(batch))``; ``batch`` is what ``backbone.preprocess`` returns."""

    kind = "transfer"  # the run folder's model_kind

    def __init__(self, backbone: Backbone, n_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, n_classes)

    def forward(self, batch: dict[str, torch.Tensor], return_features: bool = False):
        features = self.backbone(batch)
        logits = self.head(features)
        return (logits, features) if return_features else logits

    def predict_logits(self, items, batch_size: int = 64, progress: bool = False):
        return predict_logits(self, items, batch_size=batch_size, progress=progress)

    def frozen_keys(self) -> set[str]:
        """state_dict keys of the frozen layer groups (parameters and BatchNorm buffers)."""
        frozen = set()
        owned = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        for group in self.backbone.layer_groups()[: self.backbone.frozen_groups]:
            for module in group.modules:
                frozen.update(owned[id(t)] for t in module.state_dict(keep_vars=True).values() if id(t) in owned)
            frozen.update(owned[id(p)] for p in group.parameters() if id(p) in owned)
        return frozen

    def config_fields(self) -> dict:
        """What config.json records to rebuild this model's backbone."""
        backbone = self.backbone
        return {"backbone": backbone.name, "pretrained": bool(backbone.pretrained),
                "frozen_groups": int(backbone.frozen_groups), "feature_dim": int(backbone.feature_dim),
                "image_size": getattr(backbone, "image_size", None),
                "max_length": getattr(backbone, "max_length", None)}

    def save(self, folder: Path) -> None:
        """Write the head and every tensor training could change; frozen pretrained tensors are
        rebuilt from the installed weights on load, so they are not copied."""
        frozen = self.frozen_keys() if self.backbone.pretrained else set()
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if k not in frozen}
        write_atomic(folder / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))


def progress_bar(iterable, *, desc: str, enabled: bool, unit: str = "batch"):
    """``iterable`` behind a tqdm bar on stderr when ``enabled`` (verbose) and stderr is a terminal
    (tqdm's ``disable=None``), else ``iterable`` itself: in a log file a bar is noise (the loop and
    the planner write whole lines there instead), and stdout carries the results commands print."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, leave=False, disable=None, file=sys.stderr, dynamic_ncols=True)


def predict_logits(model: TransferModel, items, *, batch_size: int = 64, device=None, progress: bool = False) -> np.ndarray:
    """Logits ``(n, n_classes)`` in eval mode, inference-only; ``progress``: a bar on a terminal."""
    return _inference(model, items, batch_size, device, features=False, progress=progress)


def predict_features(model: TransferModel, items, *, batch_size: int = 64, device=None,
                     progress: bool = False) -> np.ndarray:
    """What the head reads, ``(n, feature_dim)``, in eval mode, inference-only; ``progress``: a bar on a terminal."""
    return _inference(model, items, batch_size, device, features=True, progress=progress)


def _inference(model: TransferModel, items, batch_size: int, device, *, features: bool, progress: bool) -> np.ndarray:
    device = device or next(model.parameters()).device
    model.eval()
    width = model.head.in_features if features else model.head.out_features
    rows = np.zeros((len(items), width), np.float32)
    batches = model.backbone.inference_batches(items, batch_size)  # text: like lengths together
    with torch.inference_mode():
        for positions in progress_bar(batches, desc=f"{'features' if features else 'predicting'} "
                                                    f"({model.backbone.name})", enabled=progress):
            batch = model.backbone.preprocess([items[i] for i in positions])
            logits, feature_rows = model({k: v.to(device) for k, v in batch.items()}, return_features=True)
            rows[positions] = (feature_rows if features else logits).float().cpu().numpy()
    return rows
