"""One fit over several processes: what each process reads from the launcher, and the few collectives
headstart needs beside Accelerate's own.

``torchrun --nproc_per_node N -m headstart fit …`` or ``accelerate launch --multi_gpu --num_processes N
-m headstart fit …`` (torchrun underneath) start N copies of the same program with ``RANK`` /
``WORLD_SIZE`` (and ``MASTER_ADDR`` / ``MASTER_PORT``) in their environment. On CPUs use torchrun:
Accelerate 1.16's ``launch --cpu`` starts one process (its multi-CPU launch goes through mpirun). Every copy runs the whole fit: it reads the
data, resolves the options and builds the model, so that nothing has to be sent between processes
but the gradients (Accelerate's DDP) and these few decisions:

- **batches**: every process draws the same global batches (:func:`headstart.train.epoch_batches`,
  a function of (seed, epoch)) and trains on its own contiguous slice of each (:func:`shard`); the
  loss is weighted by the slice's size so that DDP's average of the processes' gradients is the
  gradient of the mean over the global batch, even when the last batch does not divide evenly;
- **decisions** that read a clock or a validation score (early stopping, the deadline, checkpoint
  averaging) are made on the main process and broadcast (:func:`on_main`), so no process can go on
  training while another stops;
- **files** (checkpoints, the run folder, the feature cache) are written by the main process only
  (:func:`is_main`); where another process may read them next, every process waits at a
  :func:`barrier` first.

Without a launcher (``WORLD_SIZE`` unset or 1) every function here is a no-op or the identity, and a
fit runs exactly as it does in one process. The process group is Accelerate's when the training loop
has made one; code that runs before any training (saving a linear probe's run folder) starts it here,
with the backend Accelerate would choose (gloo on CPUs, NCCL for CUDA tensors).
"""

from __future__ import annotations

import os

import numpy as np

from .errors import HeadstartError


def world_size() -> int:
    """How many processes share this fit (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's index among :func:`world_size` (0 without a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    """Whether this process writes files and logs: rank 0, or the only process."""
    return rank() == 0


def launched() -> bool:
    return world_size() > 1


def ensure_process_group() -> None:
    """Join the launcher's process group if no one has yet (a no-op in one process).

    Started by ``torch.distributed`` itself rather than Accelerate so that it does not fix
    Accelerate's device choice early: with CUDA present it serves CUDA tensors by NCCL and CPU
    tensors by gloo, which is what Accelerate then finds and uses."""
    if not launched():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if not os.environ.get("MASTER_ADDR"):
        raise HeadstartError(f"WORLD_SIZE={world_size()} says this is one of several processes, but MASTER_ADDR is "
                             f"not set; start the fit with `torchrun --nproc_per_node N -m headstart …` or "
                             f"`accelerate launch --multi_gpu --num_processes N -m headstart …`, or unset WORLD_SIZE")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="cuda:nccl,cpu:gloo")
    else:
        dist.init_process_group(backend="gloo")


def barrier() -> None:
    """Wait until every process gets here (a no-op in one process)."""
    if launched():
        import torch.distributed as dist

        ensure_process_group()
        dist.barrier()


def finish() -> None:
    """End a launched fit together: wait for every process, then close the process group, so that no
    process exits while another still talks to it (gloo aborts the early one: "terminate called")."""
    if launched():
        import torch.distributed as dist

        barrier()
        if dist.is_initialized():
            dist.destroy_process_group()


def on_main(decide):
    """``decide()`` run on the main process only, its value (or the exception it raised) returned (or
    raised) on every process: a decision read from a clock or a score cannot then differ between
    processes, which would leave one waiting forever for a step the others never take."""
    if not launched():
        return decide()
    import torch.distributed as dist

    ensure_process_group()
    outcome = [None]
    if is_main():
        try:
            outcome[0] = (True, decide())
        except Exception as error:  # shared, then raised on every process, this one included
            outcome[0] = (False, error)
    dist.broadcast_object_list(outcome, src=0)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def shard(indices: np.ndarray, rank_: int | None = None, world: int | None = None) -> tuple[np.ndarray, float]:
    """This process's contiguous slice of a global batch, and the weight of its mean loss.

    Slices differ by at most one example. The weight ``len(slice) * world / len(batch)`` makes the
    processes' average of their weighted means (what DDP's gradient average computes) the mean over
    the whole batch. A process whose slice is empty (a last batch smaller than the process count)
    still has to run a step for the collectives to meet: it trains on the batch's first example
    with weight 0, which adds nothing."""
    world = world_size() if world is None else world
    rank_ = rank() if rank_ is None else rank_
    if world == 1:
        return indices, 1.0
    mine = np.array_split(indices, world)[rank_]
    if not len(mine):
        return indices[:1], 0.0
    return mine, len(mine) * world / len(indices)


def average_gradients(parameters) -> None:
    """Average the gradients of ``parameters`` over the processes: for trainable tensors outside the
    DDP-wrapped model (a loss term's own parameters, as DANN's discriminator)."""
    if not launched():
        return
    import torch
    import torch.distributed as dist

    for parameter in parameters:
        if parameter.grad is None:  # unused this step: zeros, so that every process joins the same collectives
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad /= world_size()
