"""The segmentation training loop: per-pixel cross-entropy, AdamW, cosine learning rate, early stopping
on validation mean IoU, and a checkpoint after every epoch so a killed fit resumes to the same weights.

Batches are ``(b, 3, S, S)`` images and ``(b, S, S)`` class-index targets. Every random choice of an
epoch (the order, the horizontal flips) comes from a generator seeded by ``(seed, epoch)``, and the
model, optimizer, scheduler, best weights and early-stopping state are checkpointed with
:func:`headstart.checkpoint.save_checkpoint` (one safetensors file, replaced atomically), so epoch
``e`` after a resume computes exactly what it would have without the interruption.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from ..errors import RunFolderError, TrainingDivergedError
from .metrics import iou_scores
from .model import predict_probabilities, to_pixels, to_targets


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    patience: int
    batch_size: int
    image_size: int
    seed: int
    mean: tuple
    std: tuple
    n_classes: int
    verbose: int = 0


def segmentation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy plus the soft Dice loss over the classes present (Milletari et al. 2016, as in
    segmentation-models-pytorch). Logits ``(b, C, S, S)``, targets ``(b, S, S)``. Background is most of
    the pixels here (89% on the pasted garments), so cross-entropy alone learns it first and the small
    classes late; Dice weighs each class by its own overlap, whatever its pixel count."""
    return F.cross_entropy(logits, targets) + _dice()(logits, targets)


def _dice():
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss(mode="multiclass", from_logits=True)


def _cosine(epochs: int):
    return lambda epoch: 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))


def val_miou(net, images, masks, s: LoopSettings, device) -> float:
    probabilities = predict_probabilities(net, images, s.image_size, s.mean, s.std, batch_size=s.batch_size, device=device)
    return iou_scores(masks, [p.argmax(0) for p in probabilities], s.n_classes)["mean_iou"]


def _set_modes(net, frozen_eval: list) -> None:
    net.train()
    for module in frozen_eval:  # frozen layers keep their pretrained BatchNorm statistics
        module.eval()


def _epoch(net, optimizer, pixels, targets, s: LoopSettings, epoch: int, frozen_eval, device) -> float:
    generator = torch.Generator().manual_seed(s.seed * 100_003 + epoch)
    order = torch.randperm(len(pixels), generator=generator)
    flips = torch.rand(len(pixels), generator=generator) < 0.5
    _set_modes(net, frozen_eval)
    losses = []
    for start in range(0, len(order), s.batch_size):
        index = order[start:start + s.batch_size]
        if len(index) < 2 and len(order) > 1:  # BatchNorm cannot train on a batch of one
            continue
        x, y = pixels[index].clone(), targets[index].clone()
        flip = flips[index]
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        loss = segmentation_loss(net(x.to(device)), y.to(device))
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"the segmentation loss became {loss.item()} in epoch {epoch + 1}; lower lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def train(net, groups: list[dict], train_set, val_set, s: LoopSettings, *, frozen_eval=(), checkpoint_dir=None,
          key: str = "", device="cpu") -> list[dict]:
    """Train ``net`` in place on ``train_set = (images, index masks)``; ends holding the best epoch's
    weights (by ``val_set`` mean IoU, or the last epoch without one). Returns the history."""
    net.to(device)
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(s.epochs))
    state = {"epoch": 0, "history": [], "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "done": False}
    best = None
    saved = load_checkpoint(checkpoint_dir) if checkpoint_dir else None
    if saved is not None:
        meta, tensors = saved
        if meta.get("key") != key:
            raise RunFolderError(f"the checkpoint in {checkpoint_dir} belongs to another fit (other data or options); "
                                 "delete it, or fit with the data and options it was started with")
        net.load_state_dict(tensors["model"])
        restore_optimizer(optimizer, meta, tensors["optim"])
        scheduler.load_state_dict(meta["scheduler"])
        state = {k: meta[k] for k in state}
        best = tensors["best"] or None
    pixels = to_pixels(train_set[0], s.image_size, s.mean, s.std)
    targets = to_targets(train_set[1], s.image_size)
    while not state["done"] and state["epoch"] < s.epochs:
        epoch, started = state["epoch"], time.perf_counter()
        loss = _epoch(net, optimizer, pixels, targets, s, epoch, frozen_eval, device)
        scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": loss}
        if val_set is not None:
            record["val_mean_iou"] = val_miou(net, val_set[0], val_set[1], s, device)
        if val_set is None or record["val_mean_iou"] > state["best_score"]:
            state.update(best_score=record.get("val_mean_iou", -1.0), best_epoch=epoch + 1, bad_epochs=0)
            best = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        record["seconds"] = time.perf_counter() - started
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["done"] = state["bad_epochs"] >= s.patience or state["epoch"] >= s.epochs
        if s.verbose:
            shown = f", val mIoU {record['val_mean_iou']:.4f}" if "val_mean_iou" in record else ""
            print(f"[headstart] epoch {epoch + 1}/{s.epochs}: loss {loss:.4f}{shown}", flush=True)
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, model=net, terms=torch.nn.Module(), optimizer=optimizer,
                            scheduler=scheduler, best_state=best, meta={**state, "key": key})
    if best is not None:
        net.load_state_dict(best)
    return state["history"]
