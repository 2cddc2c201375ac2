"""Training checkpoints: one safetensors file per run, replaced atomically after every epoch.

Tensors (model, loss terms, optimizer moments, the best epoch's weights) go in the file's tensors;
everything else (epoch, step, history, scheduler, early-stopping state, a key identifying the fit)
goes as JSON in the file's own metadata. One file means one atomic ``os.replace``: a reader, or a
resumed run, sees the previous complete epoch or the new one, never a mixture. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import RunFolderError

CHECKPOINT_FILE = "checkpoint.safetensors"


def _flat(prefix: str, state: dict) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().cpu().clone().contiguous() for k, v in state.items()}


def save_checkpoint(folder, *, model, terms, optimizer, scheduler, best_state, meta: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = _flat("model", model.state_dict())
    tensors.update(_flat("terms", terms.state_dict()))
    if best_state is not None:
        tensors.update(_flat("best", best_state))
    optimizer_state = optimizer.state_dict()
    for index, values in optimizer_state["state"].items():
        for name, value in values.items():
            tensors[f"optim/{index}/{name}"] = torch.as_tensor(value).detach().cpu().clone()
    meta = {**meta, "param_groups": optimizer_state["param_groups"], "scheduler": scheduler.state_dict(),
            "has_best": best_state is not None}
    path = folder / CHECKPOINT_FILE
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".checkpoint.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={"headstart": json.dumps(meta, default=float)})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def load_checkpoint(folder) -> tuple[dict, dict[str, dict[str, torch.Tensor]]] | None:
    """``(meta, {"model": …, "terms": …, "best": …, "optim": {index/name: tensor}})`` or None."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["headstart"])
            groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "terms": {}, "best": {}, "optim": {}}
            for key in handle.keys():
                prefix, name = key.split("/", 1)
                groups[prefix][name] = handle.get_tensor(key)
    except Exception as error:
        raise RunFolderError(f"{path} is not a readable headstart checkpoint ({type(error).__name__}: {error}); "
                             f"delete it to train from the start") from None
    return meta, groups


def restore_optimizer(optimizer, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
