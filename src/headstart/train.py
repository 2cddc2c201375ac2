"""The one training loop every strategy uses.

Devices and precision are placed by Hugging Face Accelerate, so the same loop runs on a CPU, one
GPU, or (launched with ``accelerate launch``) several GPUs or machines with DDP, without the
strategies knowing. Optimisation: AdamW with layer-wise learning-rate decay (the head at ``head_lr``,
the last trainable group at ``lr``, each earlier group ``layer_decay`` times the next), a linear
warm-up then cosine decay, and early stopping on validation accuracy that restores the best epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .model import TransferModel


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


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def _collate(backbone, items, labels, train: bool):
    def collate(indices):
        batch = backbone.preprocess([items[i] for i in indices], train=train)
        batch["labels"] = torch.as_tensor(labels[np.asarray(indices)], dtype=torch.long)
        return batch
    return collate


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
                     settings: TrainSettings) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    from tqdm.auto import tqdm

    torch.manual_seed(settings.seed)
    model.backbone.batchnorm_stats_frozen = not settings.train_bn
    accelerator = make_accelerator(settings.device, settings.precision)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(_Indices(len(train_items)), batch_size=settings.batch_size, shuffle=True,
                        generator=generator, collate_fn=_collate(model.backbone, train_items, train_y, settings.augment))
    optimizer = torch.optim.AdamW(parameter_groups(model, settings), weight_decay=settings.weight_decay)
    total_steps = max(1, settings.epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, settings.warmup_fraction))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    result = TrainResult()
    best_state, best_key, stale = None, None, 0
    started = time.perf_counter()
    seen = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        epoch_loss, batches = 0.0, 0
        for batch in tqdm(loader, desc=f"epoch {epoch}/{settings.epochs}", leave=False, disable=not settings.progress):
            labels = batch.pop("labels")
            loss = loss_fn(model(batch), labels)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            epoch_loss += float(loss.detach())
            batches += 1
            seen += len(labels)
        unwrapped = accelerator.unwrap_model(model)
        logits = predict_logits(unwrapped, val_items, batch_size=max(64, settings.batch_size))
        val_loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.as_tensor(val_y, dtype=torch.long)))
        val_accuracy = float((logits.argmax(1) == val_y).mean()) if len(val_y) else float("nan")
        result.history.append({"epoch": epoch, "train_loss": epoch_loss / max(1, batches),
                               "val_loss": val_loss, "val_accuracy": val_accuracy,
                               "seconds": time.perf_counter() - started})
        key = (val_accuracy, -val_loss)
        if best_key is None or key > best_key:
            best_key, stale = key, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in unwrapped.state_dict().items()})
            result.best_epoch, result.best_val_accuracy = epoch, val_accuracy
        else:
            stale += 1
            if stale >= settings.patience:
                break
    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    unwrapped.eval()
    unwrapped.backbone.batchnorm_stats_frozen = False
    result.seconds = time.perf_counter() - started
    result.examples_per_second = seen / max(result.seconds, 1e-9)
    return result
