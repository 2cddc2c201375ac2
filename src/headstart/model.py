"""TransferModel (a backbone plus a linear head) and its run folder: safetensors + JSON, never pickle.

A run folder holds:

- ``model.safetensors``: the head and every backbone tensor that training could change. Tensors of
  frozen pretrained groups are not copied; they are rebuilt from the installed pretrained weights,
  whose fingerprint must match the one recorded at save time.
- ``config.json``: library and format version, backbone, classes, preprocessing, strategy and the
  estimator's parameters.
- ``metrics.json`` and ``history.json``: what the fit measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ._version import __version__
from .backbones import Backbone, create_backbone
from .atomic import write_atomic, write_json
from .errors import RunFolderError

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
_REQUIRED_BASELINE = {"format_version": int, "headstart_version": str, "baseline": str, "classes": list,
                      "params": dict}
_REQUIRED = {
    "format_version": int, "headstart_version": str, "backbone": str, "pretrained": bool,
    "frozen_groups": int, "feature_dim": int, "classes": list, "strategy": str, "params": dict,
    "pretrained_fingerprint": (str, type(None)), "image_size": (int, type(None)),
    "max_length": (int, type(None)),
}


class TransferModel(nn.Module):
    """``logits = head(backbone(batch))``; ``batch`` is what ``backbone.preprocess`` returns."""

    def __init__(self, backbone: Backbone, n_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, n_classes)

    def forward(self, batch: dict[str, torch.Tensor], return_features: bool = False):
        features = self.backbone(batch)
        logits = self.head(features)
        return (logits, features) if return_features else logits

    def predict_logits(self, items, batch_size: int = 64):
        return predict_logits(self, items, batch_size=batch_size)

    def frozen_keys(self) -> set[str]:
        """state_dict keys of the frozen layer groups (parameters and BatchNorm buffers)."""
        frozen = set()
        owned = {id(t): k for k, t in self.state_dict(keep_vars=True).items()}
        for group in self.backbone.layer_groups()[: self.backbone.frozen_groups]:
            for module in group.modules:
                frozen.update(owned[id(t)] for t in module.state_dict(keep_vars=True).values() if id(t) in owned)
            frozen.update(owned[id(p)] for p in group.parameters() if id(p) in owned)
        return frozen


def predict_logits(model: TransferModel, items, *, batch_size: int = 64, device=None) -> np.ndarray:
    """Logits ``(n, n_classes)`` in eval mode, inference-only."""
    return _inference(model, items, batch_size, device, features=False)


def predict_features(model: TransferModel, items, *, batch_size: int = 64, device=None) -> np.ndarray:
    """What the head reads, ``(n, feature_dim)``, in eval mode, inference-only."""
    return _inference(model, items, batch_size, device, features=True)


def _inference(model: TransferModel, items, batch_size: int, device, *, features: bool) -> np.ndarray:
    device = device or next(model.parameters()).device
    model.eval()
    width = model.head.in_features if features else model.head.out_features
    rows = np.zeros((len(items), width), np.float32)
    with torch.inference_mode():
        for positions in model.backbone.inference_batches(items, batch_size):  # text: like lengths together
            batch = model.backbone.preprocess([items[i] for i in positions])
            logits, feature_rows = model({k: v.to(device) for k, v in batch.items()}, return_features=True)
            rows[positions] = (feature_rows if features else logits).float().cpu().numpy()
    return rows


def environment() -> dict:
    """Versions that decide whether a run can be reproduced bit for bit (recorded in config.json)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "timm", "transformers", "scikit-learn", "numpy", "accelerate", "safetensors"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def save_model(model: TransferModel, folder, config: dict, metrics: dict | None = None, history=None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backbone = model.backbone
    frozen = model.frozen_keys() if backbone.pretrained else set()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in frozen}
    config = {
        "format_version": FORMAT_VERSION,
        "headstart_version": __version__,
        "backbone": backbone.name,
        "pretrained": bool(backbone.pretrained),
        "frozen_groups": int(backbone.frozen_groups),
        "feature_dim": int(backbone.feature_dim),
        "image_size": getattr(backbone, "image_size", None),
        "max_length": getattr(backbone, "max_length", None),
        "environment": environment(),
        **config,
    }
    write_atomic(folder / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_json(folder / CONFIG_FILE, config)
    if metrics is not None:
        write_json(folder / "metrics.json", metrics)
    if history is not None:
        write_json(folder / "history.json", history)
    return folder


def read_config(folder) -> dict:
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist; pass the --out folder of `headstart fit` or a `clf.save()` path")
    if not path.is_file():
        raise RunFolderError(f"{path} is missing: {folder} is not a headstart run folder (or it was not saved completely)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is not valid JSON ({error}); the file is damaged or was edited by hand, re-save the model") from None
    if not isinstance(config, dict):
        raise RunFolderError(f"{path} must hold a JSON object, found {type(config).__name__}")
    required = _REQUIRED_BASELINE if config.get("model_kind") == "baseline" else _REQUIRED
    for key, kind in required.items():
        if key not in config:
            raise RunFolderError(f"{path} lacks the field {key!r}; re-save the model with headstart {__version__}")
        if not isinstance(config[key], kind) or (kind is int and isinstance(config[key], bool)):
            raise RunFolderError(f"{path}: field {key!r} has the wrong type ({config[key]!r}); the file was edited or damaged")
    _check_values(config, path)
    if config["format_version"] > FORMAT_VERSION:
        raise RunFolderError(
            f"{path} was written by headstart {config['headstart_version']} in run-folder format "
            f"{config['format_version']}; this headstart ({__version__}) reads format {FORMAT_VERSION} "
            f"and older. Upgrade headstart: pip install -U headstart"
        )
    return config


def _check_values(config: dict, path: Path) -> None:
    """Values a well-formed file can still get wrong (edited or tampered): refuse them here, not
    deep inside numpy or torch."""
    def bad(field, why):
        raise RunFolderError(f"{path}: field {field!r} = {config.get(field)!r} {why}; the file was edited or damaged, re-save the model")

    if config["format_version"] < 1:
        bad("format_version", "must be >= 1")
    classes = config["classes"]
    if len(classes) < 2 or not all(isinstance(c, (str, int, float, bool)) for c in classes):
        bad("classes", "must list at least two class labels (strings or numbers)")
    if "classes_dtype" in config:
        import numpy as np

        try:
            np.asarray(classes, dtype=np.dtype(config["classes_dtype"]))
        except (TypeError, ValueError):
            bad("classes_dtype", "is not a dtype the classes can be read as")
    if config.get("n_features_in") is not None and (not isinstance(config["n_features_in"], int) or config["n_features_in"] < 1):
        bad("n_features_in", "must be a positive integer or null")
    if config.get("model_kind") == "baseline":
        return
    if config["feature_dim"] < 1:
        bad("feature_dim", "must be >= 1")
    if config["frozen_groups"] < 0:
        bad("frozen_groups", "must be >= 0")
    for field in ("image_size", "max_length"):
        if config[field] is not None and config[field] < 1:
            bad(field, "must be null or >= 1")


def _check_head_shape(weights_path: Path, config: dict) -> None:
    """Compare the head's stored shape with the config before building anything of that size."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shape = tuple(handle.get_slice("head.weight").get_shape()) if "head.weight" in handle.keys() else None
    except Exception as error:
        raise RunFolderError(f"{weights_path} is not a readable safetensors file ({error}); it is truncated or tampered with, re-save the model") from None
    expected = (len(config["classes"]), config["feature_dim"])
    if shape != expected:
        raise RunFolderError(f"{weights_path}: the head has shape {shape}, but config.json describes {expected} "
                             f"(classes x feature_dim); one of the two files was tampered with or comes from another run")


def load_model(folder) -> tuple[TransferModel, dict]:
    folder = Path(folder)
    config = read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise RunFolderError(f"{weights_path} is missing; the run folder is incomplete, re-save the model")
    _check_head_shape(weights_path, config)
    try:
        tensors = load_file(str(weights_path))
    except Exception as error:
        raise RunFolderError(f"{weights_path} is not a readable safetensors file ({error}); it is truncated or tampered with, re-save the model") from None
    backbone = create_backbone(
        config["backbone"], pretrained=config["pretrained"], image_size=config["image_size"],
        max_length=config["max_length"], feature_dim=config["feature_dim"],
    )
    if config["pretrained"] and config["frozen_groups"] and config["pretrained_fingerprint"] != backbone.pretrained_fingerprint:
        raise RunFolderError(
            f"the installed pretrained weights of {config['backbone']} (fingerprint "
            f"{backbone.pretrained_fingerprint}) differ from the ones this model was trained on "
            f"({config['pretrained_fingerprint']}); install the same weights package version"
        )
    backbone.freeze(config["frozen_groups"])
    model = TransferModel(backbone, len(config["classes"]))
    expected = set(model.state_dict()) - (model.frozen_keys() if config["pretrained"] else set())
    unexpected, missing = set(tensors) - set(model.state_dict()), expected - set(tensors)
    if unexpected or missing:
        raise RunFolderError(
            f"{weights_path} does not match {config['backbone']}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; the weights file belongs to another model or was tampered with"
        )
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(model.state_dict()[key].shape):
            raise RunFolderError(f"{weights_path}: tensor {key} has shape {tuple(tensor.shape)}, expected {tuple(model.state_dict()[key].shape)}; the file was tampered with")
    model.load_state_dict(tensors, strict=False)
    model.eval()
    return model, config


def save_run(model, folder, config: dict, metrics=None, history=None, plan=None) -> Path:
    """Save a fitted model of either kind (TransferModel or a no-transfer baseline) as a run folder."""
    from .baselines import Baseline

    folder = Path(folder)
    if isinstance(model, Baseline):
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder)
        write_json(folder / CONFIG_FILE, {"format_version": FORMAT_VERSION, "headstart_version": __version__,
                                          "model_kind": "baseline", "baseline": model.name,
                                          "environment": environment(), **config})
        for name, data in (("metrics.json", metrics), ("history.json", history)):
            if data is not None:
                write_json(folder / name, data)
    else:
        save_model(model, folder, {"model_kind": "transfer", **config}, metrics=metrics, history=history)
    if plan is not None:
        write_json(folder / "plan.json", plan)
    return folder


def load_run(folder):
    """``(model, config)`` of a run folder of either kind."""
    config = read_config(folder)
    if config.get("model_kind") == "baseline":
        from .baselines import BASELINES

        if config["baseline"] not in BASELINES:
            raise RunFolderError(f"{Path(folder) / CONFIG_FILE} names an unknown baseline {config['baseline']!r}; "
                                 f"it was written by another headstart version or edited")
        return BASELINES.get(config["baseline"]).load(folder), config
    return load_model(folder)
