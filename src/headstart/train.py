"""The one training loop every strategy uses.

Devices and precision are placed by Hugging Face Accelerate (model, optimizer, scheduler, backward),
so the same loop runs on a CPU or a GPU without the strategies knowing. Batches are drawn by
:func:`epoch_batches` rather than a prepared DataLoader so that an epoch is a function of
(seed, epoch) and resumes exactly; sharding them across DDP processes is the step still missing
for multi-GPU runs. Optimisation: AdamW (fused where the device has the kernel) with layer-wise
learning-rate decay (the head at ``head_lr``, the last trainable group at ``lr``, each earlier group
``layer_decay`` times the next), a linear warm-up then cosine decay, and early stopping on
validation accuracy that restores the best epoch.

Data-side regularization (:mod:`headstart.augment`): the backbone is told the training-time
preprocessing options (RandAugment, token dropout) and applies the ones it supports; mixup / CutMix
mix the batch tensor the backbone names and train against soft targets. Checkpoint averaging
(``average_checkpoints=k``) keeps the trainable weights and buffers of the k best epochs on the CPU
(and in the checkpoint), averages them at the end, and keeps the average only if it scores at least
as well on validation as the best single epoch.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .augment import DEFAULT_AUGMENTATION, configure_augmentation, make_batch_mixer, uses_training_preprocessing
from .checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from .errors import ConfigError, RunFolderError
from .intervals import accuracy_text
from .model import TransferModel, predict_logits
from .terms import LossTerm, StepOutputs


DEFAULT_BATCH_SIZE = 32
MIN_STEPS_PER_EPOCH = 16
SMALLEST_DEFAULT_BATCH = 8


def default_batch_size(n_train: int) -> int:
    """Examples per step when the user sets none: 32, or fewer so that an epoch of ``n_train``
    examples takes at least 16 optimizer steps, but never fewer than 8 examples.

    With a few examples per class, batches of 32 leave an early-stopped fine-tune only a few dozen
    steps in all. Measured with ``finetune`` (3 seeds each, docs/benchmarks.md): batch 8 against 32
    gave digits@10 0.818 against 0.757, vader@64 0.706 against 0.639, vader@8 0.545 against 0.516
    and fashion@10 0.705 against 0.696. From 512 training examples on, this is 32 as before.
    """
    return int(min(DEFAULT_BATCH_SIZE, max(SMALLEST_DEFAULT_BATCH, math.ceil(n_train / MIN_STEPS_PER_EPOCH))))


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
    randaugment: bool = False
    mixup: float = 0.0  # mixup alpha; 0 = off
    cutmix: float = 0.0  # CutMix alpha; 0 = off
    token_dropout: float = 0.0
    average_checkpoints: int = 0  # average the k best epochs' weights at the end; 0/1 = off
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
    # Time inside the training batches only (preprocessing, forward, backward, optimizer step): the
    # figure to compare with a bare training loop, which does no per-epoch validation.
    batch_seconds: float = 0.0
    batch_examples_per_second: float = 0.0
    checkpoint_average: dict | None = None  # what averaging the best epochs gave, and whether it was kept
    frozen_prefix: str = ""  # whether the frozen groups' outputs were computed once (headstart.prefix), and why
    resumed_after_epoch: int | None = None  # the last epoch a restored checkpoint had finished; None on a fresh fit


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


def make_optimizer(groups: list[dict], settings: TrainSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``groups``, with torch's fused kernel where the device has one.

    On a 2-core CPU the fused update of ``minilm_l6`` (22M weights) took 0.01 s against 0.07 s
    for the default multi-tensor one: a fifth of a fine-tuning step at batch 8.
    """
    fused = device.type in ("cpu", "cuda", "mps", "xpu")  # the devices torch 2.13 has fused AdamW for
    return torch.optim.AdamW(groups, weight_decay=settings.weight_decay, fused=fused or None)


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


def _diverged(loss_value: float, epoch: int, index: int, terms, settings) -> None:
    from .errors import TrainingDivergedError

    weighted = ", ".join(f"{t.name} (weight {t.weight:g})" for t in terms)
    hint = (f"lower the loss terms' weight (adapt_weight / regularizer_weight; now: {weighted}) or the learning rate "
            f"(lr={settings.lr:g})" if terms else f"lower the learning rate (lr={settings.lr:g})")
    raise TrainingDivergedError(f"training diverged at epoch {epoch}, batch {index + 1}: the loss is {loss_value}; "
                                f"{hint}")


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
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


def _rank(key: tuple, epoch: int) -> tuple:
    """Sort order of the averaging pool: best validation key first, the earlier epoch on ties."""
    return tuple(-x for x in key), epoch


def _enters_pool(pool: list, key: tuple, epoch: int, k: int) -> bool:
    return len(pool) < k or _rank(key, epoch) < _rank(*pool[-1][:2])


def _add_to_pool(pool: list, entry: tuple, k: int) -> list:
    """The k best ``(key, epoch, state)`` entries, best first."""
    return sorted([*pool, entry], key=lambda e: _rank(*e[:2]))[:k]


def _evaluate(model: TransferModel, items, y: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(accuracy, loss) on ``items``."""
    logits = predict_logits(model, items, batch_size=max(64, batch_size))
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.as_tensor(y, dtype=torch.long)))
    accuracy = float((logits.argmax(1) == y).mean()) if len(y) else float("nan")
    return accuracy, loss


def train_classifier(model: TransferModel, train_items, train_y: np.ndarray, val_items, val_y: np.ndarray,
                     settings: TrainSettings, *, terms: Sequence[LossTerm] = (), target_items=None,
                     checkpoint_dir=None, run_key: str = "", epoch_log=None) -> TrainResult:
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
    configure_augmentation(model.backbone, augment=settings.augment, randaugment=settings.randaugment,
                           token_dropout=settings.token_dropout)
    mixer, mix_key = make_batch_mixer(settings, model.backbone, model.head.out_features) or (None, None)
    train_preprocessing = uses_training_preprocessing(settings)
    average_k = settings.average_checkpoints if settings.average_checkpoints >= 2 else 0
    accelerator = make_accelerator(settings.device, settings.precision)
    device = accelerator.device
    groups = parameter_groups(model, settings)
    term_params = [p for p in terms.parameters() if p.requires_grad]
    if term_params:
        groups.append({"params": term_params, "lr": settings.head_lr, "initial_lr": settings.head_lr, "name": "terms"})
    optimizer = make_optimizer(groups, settings, device)
    steps_per_epoch = math.ceil(len(train_items) / settings.batch_size)
    total_steps = max(1, settings.epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, settings.warmup_fraction))
    terms.to(device)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    for term in terms:
        term.setup(unwrapped)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    if mixer:
        from timm.loss import SoftTargetCrossEntropy

        soft_loss_fn = SoftTargetCrossEntropy()  # the mixer's targets carry the label smoothing
    average_pool: list = []  # (key, epoch, trainable state) of the best epochs, for checkpoint averaging
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
        result.resumed_after_epoch = meta["epoch"]
        average_pool = [(tuple(entry[0]), entry[1], state)
                        for entry, state in zip(meta.get("average_pool", []), tensors["avg"])]
    started = time.perf_counter()
    elapsed_before = result.history[-1]["seconds"] if result.history else 0.0
    prefix = None
    if first_epoch <= settings.epochs and not stopped:
        prefix, result.frozen_prefix = _frozen_prefix(unwrapped.backbone, train_items, settings, mixer, terms, device)
    for epoch in range(first_epoch, settings.epochs + 1):
        if stopped:
            break
        seed_everything(settings.seed * 10_007 + epoch)
        model.train()
        terms.train()
        epoch_loss, batches = 0.0, 0
        target_batches = epoch_batches(len(target_items), settings.batch_size, settings.seed + 1, epoch) if target_items else []
        batches_started, seen_before = time.perf_counter(), seen
        # The frozen modules are swapped for the cached outputs during the training batches only.
        with prefix.swapped() if prefix else contextlib.nullcontext():
            for index, indices in enumerate(tqdm(epoch_batches(len(train_items), settings.batch_size, settings.seed, epoch),
                                                 desc=f"epoch {epoch}/{settings.epochs}", leave=False, disable=None if settings.progress else True)):
                batch = prefix.batch(indices) if prefix else _preprocess(unwrapped.backbone, train_items, indices,
                                                                         train_preprocessing, device)
                labels = torch.as_tensor(train_y[indices], dtype=torch.long, device=device)
                if mixer:  # labels stay the hard labels for loss terms; the loss uses the mixed targets
                    batch[mix_key], targets = mixer(batch[mix_key], labels)
                logits, features = model(batch, return_features=True)
                loss = soft_loss_fn(logits, targets) if mixer else loss_fn(logits, labels)
                if terms:
                    outputs = StepOutputs(batch=batch, features=features, logits=logits, labels=labels,
                                          step=step, total_steps=total_steps)
                    if target_batches:
                        target_indices = target_batches[index % len(target_batches)]
                        outputs.target_batch = _preprocess(unwrapped.backbone, target_items, target_indices, train_preprocessing, device)
                        outputs.target_logits, outputs.target_features = model(outputs.target_batch, return_features=True)
                    for term in terms:
                        loss = loss + term.weight * term(outputs, unwrapped)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):  # before the step: NaN gradients would corrupt every weight
                    _diverged(loss_value, epoch, index, terms, settings)
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                epoch_loss += loss_value
                batches += 1
                step += 1
                seen += len(indices)
        if seen > seen_before:
            result.batch_seconds += time.perf_counter() - batches_started
        val_accuracy, val_loss = _evaluate(unwrapped, val_items, val_y, settings.batch_size)
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
        if epoch_log:  # progress a log file keeps too: tqdm's bar shows only on a terminal
            entry = result.history[-1]
            epoch_log(f"epoch {epoch}/{settings.epochs}: train loss {entry['train_loss']:.4f}, validation accuracy "
                      f"{accuracy_text(val_accuracy, len(val_y))} (loss {val_loss:.4f}), {entry['seconds']:.0f} s"
                      + (f"; stopping early: no better validation score for {stale} epochs, keeping epoch "
                         f"{result.best_epoch}" if stopped and epoch < settings.epochs else ""))
        if average_k and not math.isnan(val_accuracy) and _enters_pool(average_pool, key, epoch, average_k):
            average_pool = _add_to_pool(average_pool, (key, epoch, trainable_state(unwrapped)), average_k)
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, model=unwrapped, terms=terms, optimizer=optimizer, scheduler=scheduler,
                            best_state=best_state, average_states=[state for _, _, state in average_pool], meta={
                                "average_pool": [[list(k), e] for k, e, _ in average_pool],
                                "run_key": run_key, "epoch": epoch, "step": step, "seen": seen, "stale": stale,
                                "stopped": stopped, "best_key": list(best_key) if best_key else None,
                                "best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
                                "history": result.history})
    for term in terms:
        term.teardown(unwrapped)
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
        if len(average_pool) >= 2:
            _try_average(unwrapped, average_pool, best_state, val_items, val_y, settings, result)
    unwrapped.eval()
    unwrapped.backbone.batchnorm_stats_frozen = False
    unwrapped.backbone.augmentation = DEFAULT_AUGMENTATION
    result.seconds = time.perf_counter() - started
    result.examples_per_second = seen / max(result.seconds, 1e-9)
    trained_here = seen - (meta["seen"] if restored else 0)
    result.batch_examples_per_second = trained_here / result.batch_seconds if result.batch_seconds else 0.0
    return result


def _frozen_prefix(backbone, train_items, settings: TrainSettings, mixer, terms, device):
    """``(FrozenPrefix or None, note for the summary)``: whether the frozen groups run once for all epochs."""
    from .prefix import FrozenPrefix, blocker

    inputs_vary = uses_training_preprocessing(settings) and backbone.training_inputs_vary()
    why_not = blocker(backbone, inputs_vary=inputs_vary, mixes_batches=mixer is not None, terms=terms)
    if why_not:
        return None, f"not reused: {why_not}"
    started = time.perf_counter()
    prefix, note = FrozenPrefix.build(backbone, train_items, max(64, settings.batch_size), device)
    return prefix, f"{note} in {time.perf_counter() - started:.1f} s"


def _try_average(model: TransferModel, pool: list, best_state: dict, val_items, val_y: np.ndarray,
                 settings: TrainSettings, result: TrainResult) -> None:
    """Load the average of the pool's states into ``model`` if it scores at least as well on validation
    as the best epoch (already loaded), else reload the best epoch; record the outcome in ``result``
    and in the last history entry."""
    model.load_state_dict({**best_state, **average_states([state for _, _, state in pool])})
    accuracy, loss = _evaluate(model, val_items, val_y, settings.batch_size)
    kept = accuracy >= result.best_val_accuracy  # False for NaN (no validation examples)
    record = {"k": settings.average_checkpoints, "epochs": [epoch for _, epoch, _ in pool], "val_accuracy": accuracy,
              "val_loss": loss, "best_epoch_val_accuracy": result.best_val_accuracy, "kept": bool(kept)}
    if kept:
        result.best_val_accuracy = accuracy
    else:
        model.load_state_dict(best_state)
    result.checkpoint_average = record
    if result.history:
        result.history[-1]["checkpoint_average"] = record
