"""The optimizer and learning-rate schedule of the training loop (:mod:`headstart.train`).

AdamW (Loshchilov & Hutter 2019) with layer-wise learning-rate decay (Howard & Ruder 2018, ULMFiT's
discriminative fine-tuning; Clark et al. 2020, ELECTRA): the head learns at ``head_lr``, the last
trainable layer group of the backbone at ``lr``, and each earlier group at ``layer_decay`` times the
next, so the layers nearest the input, the most general, move least. The schedule is a linear
warm-up over ``warmup_fraction`` of the steps, then a cosine decay to zero. Devices and precision
are placed by Hugging Face Accelerate.
"""

from __future__ import annotations

import math

import torch


def make_accelerator(device: str = "auto", precision: str = "no"):
    """Accelerate's placement: the CPU when ``device="cpu"``, else the accelerator it finds;
    ``precision`` is its ``mixed_precision`` ("no", "fp16", "bf16").

    Under a launcher (:mod:`headstart.distributed`) the model is wrapped in DDP. ``split_batches``:
    the loop's batch size is the global batch, split across the processes, so the schedule takes one
    step per optimizer step (by default Accelerate would step it once per process). Unused parameters
    are searched for each step because a backbone can hold some (a text model's pooler), which DDP
    otherwise waits for forever."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs

    from .distributed import ensure_process_group, launched

    ensure_process_group()
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if launched() else []
    return Accelerator(cpu=(device == "cpu"), mixed_precision=precision, kwargs_handlers=handlers,
                       dataloader_config=DataLoaderConfiguration(split_batches=True))


def parameter_groups(model, *, lr: float, head_lr: float, layer_decay: float) -> list[dict]:
    """AdamW groups of a :class:`~headstart.model.TransferModel`: the head at ``head_lr``, trainable
    backbone group i at ``lr * layer_decay ** (last - i)``."""
    groups = model.backbone.layer_groups()
    seen: set[int] = set()
    result = [{"params": list(model.head.parameters()), "lr": head_lr, "name": "head"}]
    seen.update(id(p) for p in model.head.parameters())
    last = len(groups) - 1
    for index, group in enumerate(groups):
        params = [p for p in group.parameters() if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            result.append({"params": params, "lr": lr * layer_decay ** (last - index), "name": group.name})
    leftover = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if leftover:  # e.g. a text model's unused pooler: train it like the top group
        result.append({"params": leftover, "lr": lr, "name": "other"})
    for group in result:
        group["initial_lr"] = group["lr"]
    return result


def make_optimizer(groups: list[dict], *, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``groups``, with torch's fused kernel where the device has one: on a CPU its update
    is several times faster than the default multi-tensor one (docs/benchmarks.md, "Why these
    defaults" of the speed section)."""
    fused = device.type in ("cpu", "cuda", "mps", "xpu")  # the devices torch 2.13 has fused AdamW for
    return torch.optim.AdamW(groups, weight_decay=weight_decay, fused=fused or None)


def warmup_cosine(total_steps: int, warmup_fraction: float):
    """The learning-rate factor at each step: linear warm-up, then cosine decay to zero."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor
