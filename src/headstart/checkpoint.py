"""Training checkpoints: one safetensors file per run, replaced atomically after every epoch.

Tensors (model, loss terms, optimizer moments, the best epoch's weights, and for checkpoint
averaging the trainable weights and buffers of the best epochs so far, ``avg/<rank>/<name>``) go in
the file's tensors;
everything else (epoch, step, history, scheduler, early-stopping state, a key identifying the fit)
goes as JSON in the file's own metadata. One file means one atomic ``os.replace``: a reader, or a
resumed run, sees the previous complete epoch or the new one, never a mixture. Nothing is pickled.

Under a launcher (:mod:`headstart.distributed`) the main process writes and removes checkpoints while
the others wait for it; every process reads the same file when a fit resumes, so the checkpoint folder
must be one they all see (a shared file system when the processes span machines).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import write_atomic
from .distributed import on_main
from .errors import RunFolderError

CHECKPOINT_FILE = "checkpoint.safetensors"


def _flat(prefix: str, state: dict) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().cpu().clone().contiguous() for k, v in state.items()}


def save_checkpoint(folder, *, model, terms, optimizer, scheduler, best_state, meta: dict,
                    average_states: list[dict] | None = None) -> Path:
    """``average_states``: the states kept for checkpoint averaging, best first (their ranking,
    epochs and scores belong in ``meta``). Written by the main process; the others wait for it."""
    return on_main(lambda: _write_checkpoint(Path(folder), model=model, terms=terms, optimizer=optimizer,
                                             scheduler=scheduler, best_state=best_state, meta=meta,
                                             average_states=average_states))


def _write_checkpoint(folder: Path, *, model, terms, optimizer, scheduler, best_state, meta: dict,
                      average_states: list[dict] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = _flat("model", model.state_dict())
    tensors.update(_flat("terms", terms.state_dict()))
    if best_state is not None:
        tensors.update(_flat("best", best_state))
    for rank, state in enumerate(average_states or []):
        tensors.update(_flat(f"avg/{rank}", state))
    optimizer_state = optimizer.state_dict()
    for index, values in optimizer_state["state"].items():
        for name, value in values.items():
            tensors[f"optim/{index}/{name}"] = torch.as_tensor(value).detach().cpu().clone()
    meta = {**meta, "param_groups": optimizer_state["param_groups"], "scheduler": scheduler.state_dict(),
            "has_best": best_state is not None, "n_average_states": len(average_states or [])}
    path = folder / CHECKPOINT_FILE
    write_atomic(path, lambda temporary: save_file(tensors, temporary, metadata={"headstart": json.dumps(meta, default=float)}))
    return path


def load_checkpoint(folder) -> tuple[dict, dict[str, dict[str, torch.Tensor]]] | None:
    """``(meta, {"model": …, "terms": …, "best": …, "optim": {index/name: tensor}, "avg": [state, …]})``
    or None; ``avg`` lists the checkpoint-averaging states by rank (empty when none were saved)."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["headstart"])
            groups: dict = {"model": {}, "terms": {}, "best": {}, "optim": {}}
            ranked: dict[int, dict[str, torch.Tensor]] = {}
            for key in handle.keys():
                prefix, name = key.split("/", 1)
                if prefix == "avg":
                    rank, name = name.split("/", 1)
                    ranked.setdefault(int(rank), {})[name] = handle.get_tensor(key)
                else:
                    groups[prefix][name] = handle.get_tensor(key)
            n_average = meta.get("n_average_states", 0)
            if sorted(ranked) != list(range(n_average)):
                raise ValueError(f"expected {n_average} averaging states, found ranks {sorted(ranked)}")
            groups["avg"] = [ranked[rank] for rank in range(n_average)]
    except Exception as error:
        raise RunFolderError(f"{path} is not a readable headstart checkpoint ({type(error).__name__}: {error}); "
                             f"delete it to train from the start") from None
    return meta, groups


def remove_checkpoints(folder) -> bool:
    """Delete the headstart checkpoints in ``folder`` and its subfolders (the planner's and the
    adaptation search's candidates checkpoint in their own), then every folder this left empty.

    Called once the finished model is saved: a spent checkpoint left behind would be resumed by the
    next fit with the same options, which then trains no epoch at all. Only files headstart wrote
    go (a checkpoint file carrying headstart's metadata, or an unfinished temporary of one), never a
    user's other files. Returns whether anything was removed. Under a launcher the main process
    removes them while the others wait.
    """
    return on_main(lambda: _remove_checkpoints(Path(folder)))


def _remove_checkpoints(folder: Path) -> bool:
    if not folder.is_dir() or folder.is_symlink():
        return False
    removed = False
    for entry in list(folder.iterdir()):
        if entry.is_dir():
            removed = _remove_checkpoints(entry) or removed
        elif _written_here(entry):
            entry.unlink()
            removed = True
    if removed and not any(folder.iterdir()):
        folder.rmdir()
    return removed


def _written_here(path: Path) -> bool:
    """A checkpoint file :func:`save_checkpoint` wrote, or the temporary of one a kill left behind."""
    if path.is_symlink() or not path.is_file():
        return False
    if path.name.startswith(f".{CHECKPOINT_FILE}.") and path.name.endswith(".tmp"):
        return True
    if path.name != CHECKPOINT_FILE:
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            return "headstart" in (handle.metadata() or {})
    except Exception:  # not a safetensors file: someone else's
        return False


def restore_optimizer(optimizer, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# --------------------------------------------------------------------------- checkpoint averaging


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of what training changes: the trainable parameters and every buffer."""
    trainable = {name for name, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    trainable.update(name for name, _ in model.named_buffers(remove_duplicate=False))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in trainable}


def average_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; other tensors (counters) from the first."""
    averaged = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            total = torch.zeros_like(first, dtype=torch.float64)
            for state in states:
                total += state[name].to(torch.float64)
            averaged[name] = (total / len(states)).to(first.dtype)
        else:
            averaged[name] = first.clone()
    return averaged
