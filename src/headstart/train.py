"""The one training loop every strategy uses.

Devices and precision are placed by Hugging Face Accelerate (model, optimizer, scheduler, backward),
so the same loop runs on a CPU or a GPU without the strategies knowing. Batches are drawn by
:func:`epoch_batches` rather than a prepared DataLoader so that an epoch is a function of
(seed, epoch) and resumes exactly; sharding them across DDP processes is the step still missing
for multi-GPU runs. Optimisation: AdamW with layer-wise learning-rate decay (the head at ``head_lr``,
the last trainable group at ``lr``, each earlier group ``layer_decay`` times the next), a linear
warm-up then cosine decay, and early stopping on validation accuracy that restores the best epoch.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from .checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from .errors import ConfigError, RunFolderError
from .model import TransferModel
from .terms import LossTerm, StepOutputs


@dataclass
class TrainSettings:
    epochs: int = 10
    lr: float = 3e-4
    head_lr: float = 3e-3
    layer_decay: float = 0.75
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    batch_size: int = 32
    patience: int = 3
    label_smoothing: float = 0.0
    augment: bool = True
    train_bn: bool = False
    device: str = "auto"
    precision: str = "no"  # Accelerate's mixed_precision: "no" | "fp16" | "bf16"
    seed: int = 0
    progress: bool = False


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")
    seconds: float = 0.0
    examples_per_second: float = 0.0


def make_accelerator(device: str = "auto", precision: str = "no"):
    from accelerate import Accelerator

    return Accelerator(cpu=(device == "cpu"), mixed_precision=precision)


def parameter_groups(model: TransferModel, settings: TrainSettings) -> list[dict]:
    """AdamW groups: head at head_lr; trainable backbone group i at lr * decay**(last - i)."""
    groups = model.backbone.layer_groups()
    seen: set[int] = set()
    result = [{"params": list(model.head.parameters()), "lr": settings.head_lr, "name": "head"}]
    seen.update(id(p) for p in model.head.parameters())
    last = len(groups) - 1
    for index, group in enumerate(groups):
        params = [p for p in group.parameters() if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            lr = settings.lr * settings.layer_decay ** (last - index)
            result.append({"params": params, "lr": lr, "name": group.name})
    leftover = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if leftover:  # e.g. a text model's unused pooler: train it like the top group
        result.append({"params": leftover, "lr": settings.lr, "name": "other"})
    for group in result:
        group["initial_lr"] = group["lr"]
    return result


def warmup_cosine(total_steps: int, warmup_fraction: float):
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def seed_everything(seed: int) -> None:
    """Seed every generator an epoch draws from: data order, augmentation (Python's ``random``
    and torch, as timm's transforms use both), dropout."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's shuffled batches, a function of (seed, epoch) alone, so a run resumed at an
    epoch boundary draws exactly what the uninterrupted run drew."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _preprocess(backbone, items, indices, train: bool, device) -> dict[str, torch.Tensor]:
    batch = backbone.preprocess([items[i] for i in indices], train=train)
    return {k: v.to(device) for k, v in batch.items()}


def predict_logits(model: TransferModel, items, *, batch_size: int = 64, device=None) -> np.ndarray:
    """Logits ``(n, n_classes)`` in eval mode, inference-only."""
    device = device or next(model.parameters()).device
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = model.backbone.preprocess(items[start : start + batch_size])
            chunks.append(model({k: v.to(device) for k, v in batch.items()}).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, model.head.out_features), np.float32)


def train_classifier(model: TransferModel, train_items, train_y: np.ndarray, val_items, val_y: np.ndarray,
                     settings: TrainSettings, *, terms: Sequence[LossTerm] = (), target_items=None,
                     checkpoint_dir=None, run_key: str = "") -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    ``terms`` add to the cross-entropy (regularizers, domain adaptation); ``target_items`` are the
    unlabeled target inputs that terms with ``needs_target`` see. With ``checkpoint_dir``, every
    finished epoch is saved there, and a later call with the same ``run_key`` continues from it.
    """
    from tqdm.auto import tqdm

    terms = nn.ModuleList(terms)
    if any(t.needs_target for t in terms) and not target_items:
        needing = ", ".join(t.name for t in terms if t.needs_target)
        raise ConfigError(f"{needing} adapt(s) to unlabeled target data, but no target inputs were given; "
                          f"pass X_target (API) or --target (CLI)")
    seed_everything(settings.seed)
    model.backbone.batchnorm_stats_frozen = not settings.train_bn
    accelerator = make_accelerator(settings.device, settings.precision)
    device = accelerator.device
    groups = parameter_groups(model, settings)
    term_params = [p for p in terms.parameters() if p.requires_grad]
    if term_params:
        groups.append({"params": term_params, "lr": settings.head_lr, "initial_lr": settings.head_lr, "name": "terms"})
    optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_items) / settings.batch_size)
    total_steps = max(1, settings.epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, settings.warmup_fraction))
    terms.to(device)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    for term in terms:
        term.setup(unwrapped)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    result = TrainResult()
    best_state, best_key, stale, step, seen, first_epoch, stopped = None, None, 0, 0, 0, 1, False
    restored = load_checkpoint(checkpoint_dir) if checkpoint_dir else None
    if restored:
        meta, tensors = restored
        if meta.get("run_key") != run_key:
            raise RunFolderError(f"the checkpoint in {checkpoint_dir} belongs to another fit (other data or settings); "
                                 f"delete it, or resume with the data and options it was started with")
        unwrapped.load_state_dict(tensors["model"])
        terms.load_state_dict(tensors["terms"])
        restore_optimizer(optimizer, meta, tensors["optim"])
        scheduler.load_state_dict(meta["scheduler"])
        best_state = tensors["best"] if meta["has_best"] else None
        best_key = tuple(meta["best_key"]) if meta["best_key"] else None
        stale, step, seen, stopped = meta["stale"], meta["step"], meta["seen"], meta["stopped"]
        result.history = meta["history"]
        result.best_epoch, result.best_val_accuracy = meta["best_epoch"], meta["best_val_accuracy"]
        first_epoch = meta["epoch"] + 1
    started = time.perf_counter()
    elapsed_before = result.history[-1]["seconds"] if result.history else 0.0
    for epoch in range(first_epoch, settings.epochs + 1):
        if stopped:
            break
        seed_everything(settings.seed * 10_007 + epoch)
        model.train()
        terms.train()
        epoch_loss, batches = 0.0, 0
        target_batches = epoch_batches(len(target_items), settings.batch_size, settings.seed + 1, epoch) if target_items else []
        for index, indices in enumerate(tqdm(epoch_batches(len(train_items), settings.batch_size, settings.seed, epoch),
                                             desc=f"epoch {epoch}/{settings.epochs}", leave=False, disable=None if settings.progress else True)):
            batch = _preprocess(unwrapped.backbone, train_items, indices, settings.augment, device)
            labels = torch.as_tensor(train_y[indices], dtype=torch.long, device=device)
            logits, features = model(batch, return_features=True)
            loss = loss_fn(logits, labels)
            if terms:
                outputs = StepOutputs(batch=batch, features=features, logits=logits, labels=labels,
                                      step=step, total_steps=total_steps)
                if target_batches:
                    target_indices = target_batches[index % len(target_batches)]
                    outputs.target_batch = _preprocess(unwrapped.backbone, target_items, target_indices, settings.augment, device)
                    outputs.target_logits, outputs.target_features = model(outputs.target_batch, return_features=True)
                for term in terms:
                    loss = loss + term.weight * term(outputs, unwrapped)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            epoch_loss += float(loss.detach())
            batches += 1
            step += 1
            seen += len(indices)
        logits = predict_logits(unwrapped, val_items, batch_size=max(64, settings.batch_size))
        val_loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.as_tensor(val_y, dtype=torch.long)))
        val_accuracy = float((logits.argmax(1) == val_y).mean()) if len(val_y) else float("nan")
        result.history.append({"epoch": epoch, "train_loss": epoch_loss / max(1, batches),
                               "val_loss": val_loss, "val_accuracy": val_accuracy,
                               "seconds": elapsed_before + time.perf_counter() - started})
        key = (val_accuracy, -val_loss)
        if best_key is None or key > best_key:
            best_key, stale = key, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in unwrapped.state_dict().items()})
            result.best_epoch, result.best_val_accuracy = epoch, val_accuracy
        else:
            stale += 1
            stopped = stale >= settings.patience
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, model=unwrapped, terms=terms, optimizer=optimizer, scheduler=scheduler,
                            best_state=best_state, meta={
                                "run_key": run_key, "epoch": epoch, "step": step, "seen": seen, "stale": stale,
                                "stopped": stopped, "best_key": list(best_key) if best_key else None,
                                "best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
                                "history": result.history})
    for term in terms:
        term.teardown(unwrapped)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    unwrapped.backbone.batchnorm_stats_frozen = False
    result.seconds = time.perf_counter() - started
    result.examples_per_second = seen / max(result.seconds, 1e-9)
    return result
