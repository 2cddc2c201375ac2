"""The one training loop every strategy uses.

Devices and precision are placed by Hugging Face Accelerate (model, optimizer, scheduler, backward),
so the same loop runs on a CPU or a GPU without the strategies knowing. Batches are drawn by
:func:`epoch_batches` rather than a prepared DataLoader so that an epoch is a function of
(seed, epoch) and resumes exactly. Optimisation (:mod:`headstart.optim`): AdamW with layer-wise learning-rate
decay and a warm-up cosine schedule, and early stopping on validation accuracy that restores the
best epoch.

The loop runs in four steps, each a function: set-up (:func:`_set_up`), one epoch of training
batches (:func:`_train_epoch`), validation and early stopping (:func:`_end_epoch`), and the end of
training (:func:`_finish`: the best epoch, or the average of the best). What carries from one
epoch to the next is one :class:`LoopState`, which is also what a checkpoint saves and a resumed
fit restores.

Data-side regularization (:mod:`headstart.augment`): the backbone is told the training-time
preprocessing options (RandAugment, token dropout) and applies the ones it supports; mixup / CutMix
mix the batch tensor the backbone names and train against soft targets. Checkpoint averaging
(``average_checkpoints=k``) keeps the trainable weights and buffers of the k best epochs on the CPU
(and in the checkpoint), averages them at the end, and keeps the average only if it scores at least
as well on validation as the best single epoch.

Several processes (``torchrun`` / ``accelerate launch``; :mod:`headstart.distributed`): one model
is trained by DDP. ``batch_size`` is the global batch: every process draws the same batches and trains
on its slice of each, its loss weighted by the slice's size, so a fit at N processes takes the steps a
one-process fit takes, on the same examples. Each process's random streams (dropout, augmentation)
are seeded from (seed, epoch, rank), so resume stays exact. Validation, early stopping and the deadline
are decided on the main process and broadcast; only it writes checkpoints and logs.

Deadlines (:func:`run_until`): the planner's budget is a deadline on the monotonic clock that every
fit it starts runs under. The loop checks it between batches: once an epoch has finished, the fit
stops at the deadline (or before an epoch that would end after it) and keeps its best epoch so far;
before then, a few timed steps estimate the first epoch, and a fit that cannot finish it in time
raises :class:`OutOfTimeError` rather than spend the rest of the budget on nothing it could keep.
"""

from __future__ import annotations

import contextlib
import contextvars
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
from .checkpoint import average_states, load_checkpoint, restore_optimizer, save_checkpoint, trainable_state
from .config import ResolvedConfig
from .distributed import average_gradients, is_main, launched, on_main, rank, shard
from .errors import ConfigError, OutOfTimeError, RunFolderError, TrainingDivergedError
from .intervals import accuracy_text
from .model import TransferModel, predict_logits, progress_bar
from .optim import make_accelerator, make_optimizer, parameter_groups, warmup_cosine
from .prefix import reuse_frozen_prefix
from .terms import LossTerm, StepOutputs


DEFAULT_BATCH_SIZE = 32
MIN_STEPS_PER_EPOCH = 16
SMALLEST_DEFAULT_BATCH = 8


# Steps timed before a fit under a deadline commits to its first epoch: the first step (allocations,
# lazy initialisation) is left out of the estimate, the next ones give the time per step.
TIMED_STEPS = 3


@dataclass(frozen=True)
class Deadline:
    """When the fits started inside :func:`run_until` must end, on :func:`clock`'s time line."""

    at: float
    # A fit that must return a model (the planner's refit of its winner) finishes its first epoch
    # whatever the time; it still stops at the deadline after that.
    finish_first_epoch: bool = False


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("headstart_deadline", default=None)


def clock() -> float:
    """The monotonic clock deadlines are read on (a module function, so that tests can replace it)."""
    return time.monotonic()


@contextlib.contextmanager
def run_until(at: float, *, finish_first_epoch: bool = False):
    """Every training loop started inside the block stops at ``at`` (:func:`clock` time).

    A context rather than an option because the planner's fits reach the loop through strategies
    that know nothing of budgets; an enclosing deadline that comes first still counts."""
    outer = _DEADLINE.get()
    token = _DEADLINE.set(Deadline(min(at, outer.at) if outer else at, finish_first_epoch))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    return _DEADLINE.get()


def default_batch_size(n_train: int) -> int:
    """Examples per step when the user sets none: 32, or fewer so that an epoch of ``n_train``
    examples takes at least 16 optimizer steps, but never fewer than 8 examples.

    With a few examples per class, batches of 32 leave an early-stopped fine-tune only a few dozen
    steps in all, and fine-tunes score lower (docs/benchmarks.md, "Why these defaults" of the
    regularized fine-tuning section). From 512 training examples on, this is 32.
    """
    return int(min(DEFAULT_BATCH_SIZE, max(SMALLEST_DEFAULT_BATCH, math.ceil(n_train / MIN_STEPS_PER_EPOCH))))


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")
    seconds: float = 0.0
    examples_per_second: float = 0.0
    # Time inside the training batches only (preprocessing, forward, backward, optimizer step, and
    # building a reused prefix or input cache): the figure to compare with a bare training loop,
    # which does no per-epoch validation.
    batch_seconds: float = 0.0
    batch_examples_per_second: float = 0.0
    checkpoint_average: dict | None = None  # what averaging the best epochs gave, and whether it was kept
    frozen_prefix: str = ""  # whether the frozen groups' outputs were computed once (headstart.prefix), and why
    resumed_after_epoch: int | None = None  # the last epoch a restored checkpoint had finished; None on a fresh fit
    deadline_stop: str = ""  # why a deadline ended training before its epochs were done; "" when none did


def seed_everything(seed: int) -> None:
    """Seed every generator an epoch draws from: data order, augmentation (Python's ``random``
    and torch, as timm's transforms use both), dropout."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


BATCHES_PER_BUCKET = 8


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, lengths: np.ndarray | None = None
                  ) -> list[np.ndarray]:
    """The epoch's shuffled batches, a function of (seed, epoch) alone, so a run resumed at an
    epoch boundary draws exactly what the uninterrupted run drew.

    With ``lengths`` (inputs padded to their batch's longest, e.g. tokenized text), each run of
    :data:`BATCHES_PER_BUCKET` batches of the shuffled order is sorted by length before it is cut,
    and the batches are shuffled again: every batch pads to a length close to its own rows', while
    which examples meet still changes every epoch. On 1,000 VADER movie snippets in batches of 8 this
    pads 30% fewer tokens than random batches (docs/benchmarks.md, issue 29's section).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    if lengths is not None:
        bucket = BATCHES_PER_BUCKET * batch_size
        order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                                for chunk in np.split(order, range(bucket, n, bucket))])
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if lengths is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _preprocess(backbone, items, indices, train: bool, device) -> dict[str, torch.Tensor]:
    batch = backbone.preprocess([items[i] for i in indices], train=train)
    return {k: v.to(device) for k, v in batch.items()}


def _diverged(loss_value: float, epoch: int, index: int, terms, settings) -> None:
    weighted = ", ".join(f"{t.name} (weight {t.weight:g})" for t in terms)
    hint = (f"lower the loss terms' weight (adapt_weight / regularizer_weight; now: {weighted}) or the learning rate "
            f"(lr={settings.lr:g})" if terms else f"lower the learning rate (lr={settings.lr:g})")
    raise TrainingDivergedError(f"training diverged at epoch {epoch}, batch {index + 1}: the loss is {loss_value}; "
                                f"{hint}")


def _rank(key: tuple, epoch: int) -> tuple:
    """Sort order of the averaging pool: best validation key first, the earlier epoch on ties."""
    return tuple(-x for x in key), epoch


def _evaluate(model: TransferModel, items, y: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(accuracy, loss) on ``items``; NaN for both when there are none."""
    if not len(y):
        return float("nan"), float("nan")
    logits = predict_logits(model, items, batch_size=max(64, batch_size))
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.as_tensor(y, dtype=torch.long)))
    return float((logits.argmax(1) == y).mean()), loss


@dataclass
class _Setup:
    """What one fit builds before its first epoch and every epoch uses."""

    model: nn.Module  # as Accelerate prepared it (possibly wrapped); ``unwrapped`` is the TransferModel itself
    unwrapped: TransferModel
    terms: nn.ModuleList
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    accelerator: object
    device: torch.device
    loss_fn: nn.Module  # on hard labels; with mixed batches, on the mixer's soft targets
    mixer: object | None
    mix_key: str | None
    train_preprocessing: bool
    total_steps: int
    lengths: np.ndarray | None = None  # per training example, when batches group similar lengths (epoch_batches)


@dataclass
class LoopState:
    """Everything the loop carries from one epoch to the next; a checkpoint is this state written out,
    and a resumed fit reads it back before its next epoch."""

    result: TrainResult = field(default_factory=TrainResult)  # history, best epoch and its score
    epoch: int = 0  # the last finished epoch
    step: int = 0  # optimizer steps taken, over every session of the fit
    seen: int = 0  # training examples stepped on, over every session
    seen_at_start: int = 0  # ``seen`` when this session began: its own throughput counts the rest
    stale: int = 0  # epochs since the best validation key last improved
    stopped: bool = False  # early stopping ended the fit
    best_key: tuple | None = None  # (validation accuracy, -validation loss) of the best epoch
    best_state: dict | None = None  # CPU copy of the best epoch's weights
    average_pool: list = field(default_factory=list)  # (key, epoch, trainable state) of the best epochs, best first

    def save(self, folder, run_key: str, setup: _Setup) -> None:
        save_checkpoint(folder, model=setup.unwrapped, terms=setup.terms, optimizer=setup.optimizer,
                        scheduler=setup.scheduler, best_state=self.best_state,
                        average_states=[state for _, _, state in self.average_pool], meta={
                            "average_pool": [[list(k), e] for k, e, _ in self.average_pool],
                            "run_key": run_key, "epoch": self.epoch, "step": self.step, "seen": self.seen,
                            "stale": self.stale, "stopped": self.stopped,
                            "best_key": list(self.best_key) if self.best_key else None,
                            "best_epoch": self.result.best_epoch, "best_val_accuracy": self.result.best_val_accuracy,
                            "history": self.result.history})

    @classmethod
    def restore(cls, folder, run_key: str, setup: _Setup) -> LoopState:
        """The state saved in ``folder`` (loading the weights, loss terms, optimizer and scheduler into
        ``setup``), or a fresh one when ``folder`` is None or holds no checkpoint."""
        restored = load_checkpoint(folder) if folder else None
        if not restored:
            return cls()
        meta, tensors = restored
        if meta.get("run_key") != run_key:
            raise RunFolderError(f"the checkpoint in {folder} belongs to another fit (other data or settings); "
                                 f"delete it, or resume with the data and options it was started with")
        setup.unwrapped.load_state_dict(tensors["model"])
        setup.terms.load_state_dict(tensors["terms"])
        restore_optimizer(setup.optimizer, meta, tensors["optim"])
        setup.scheduler.load_state_dict(meta["scheduler"])
        result = TrainResult(history=meta["history"], best_epoch=meta["best_epoch"],
                             best_val_accuracy=meta["best_val_accuracy"], resumed_after_epoch=meta["epoch"])
        pool = [(tuple(key), epoch, state) for (key, epoch), state in zip(meta.get("average_pool", []), tensors["avg"])]
        return cls(result=result, epoch=meta["epoch"], step=meta["step"], seen=meta["seen"],
                   seen_at_start=meta["seen"], stale=meta["stale"], stopped=meta["stopped"],
                   best_key=tuple(meta["best_key"]) if meta["best_key"] else None,
                   best_state=tensors["best"] if meta["has_best"] else None, average_pool=pool)

    def score_epoch(self, epoch: int, key: tuple, val_accuracy: float, model: TransferModel, patience: int) -> None:
        """Keep ``model``'s weights if ``key`` is the best so far, else count the epoch towards early stopping."""
        if self.best_key is None or key > self.best_key:
            self.best_key, self.stale = key, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            self.result.best_epoch, self.result.best_val_accuracy = epoch, val_accuracy
        else:
            self.stale += 1
            self.stopped = self.stale >= patience

    def offer_for_averaging(self, epoch: int, key: tuple, model: TransferModel, k: int) -> None:
        """Keep the k best epochs' trainable states, best first (ties: the earlier epoch)."""
        if len(self.average_pool) < k or _rank(key, epoch) < _rank(*self.average_pool[-1][:2]):
            entry = (key, epoch, trainable_state(model))
            self.average_pool = sorted([*self.average_pool, entry], key=lambda e: _rank(*e[:2]))[:k]


def train_classifier(model: TransferModel, train_items, train_y: np.ndarray, val_items, val_y: np.ndarray,
                     settings: ResolvedConfig, *, terms: Sequence[LossTerm] = (), target_items=None,
                     checkpoint_dir=None, run_key: str = "", epoch_log=None, log=None) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    ``terms`` add to the cross-entropy (regularizers, domain adaptation); ``target_items`` are the
    unlabeled target inputs that terms with ``needs_target`` see. With ``checkpoint_dir``, every
    finished epoch is saved there, and a later call with the same ``run_key`` continues from it,
    saying so through ``log`` as it restores (not once training is over). Inside :func:`run_until`
    the fit ends by the deadline (see the module's docstring).
    """
    terms = nn.ModuleList(terms)
    if not is_main():  # under a launcher one process speaks for the fit
        log = epoch_log = None
    if any(t.needs_target for t in terms) and not target_items:
        needing = ", ".join(t.name for t in terms if t.needs_target)
        raise ConfigError(f"{needing} adapt(s) to unlabeled target data, but no target inputs were given; "
                          f"pass X_target (API) or --target (CLI)")
    setup = _set_up(model, terms, len(train_items), settings)
    state = LoopState.restore(checkpoint_dir, run_key, setup)
    if state.result.resumed_after_epoch is not None and log:
        log(f"resumed from the checkpoint in {checkpoint_dir} after epoch {state.epoch} of {settings.epochs} "
            f"(the fit time counts this session only)")
    started = time.perf_counter()
    elapsed_before = state.result.history[-1]["seconds"] if state.result.history else 0.0
    prefix = _frozen_prefix(setup, state, train_items, terms, settings)
    setup.lengths = _bucket_lengths(setup, train_items)
    watch = _Watch(current_deadline(), len(val_y), settings, _last_epoch_seconds(state.result.history))
    for epoch in range(state.epoch + 1, settings.epochs + 1):
        if state.stopped or not _agreed(watch, state, lambda: watch.may_start(state)):
            break
        epoch_started = clock()
        outcome = _train_epoch(setup, state, epoch, train_items, train_y, target_items, prefix, settings, watch)
        if outcome is None:  # the deadline came mid-epoch: the unfinished epoch is dropped
            break
        _end_epoch(setup, state, epoch, outcome[0] / max(1, outcome[1]), val_items, val_y, settings,
                   lambda: elapsed_before + time.perf_counter() - started, epoch_log)
        if checkpoint_dir:
            state.save(checkpoint_dir, run_key, setup)
        watch.last_epoch_seconds = clock() - epoch_started
    if state.result.deadline_stop and epoch_log:
        epoch_log(state.result.deadline_stop)
    return _finish(setup, state, val_items, val_y, settings, started)


def _frozen_prefix(setup: _Setup, state: LoopState, train_items, terms: nn.ModuleList, settings: ResolvedConfig):
    """The frozen groups' outputs computed once for all epochs, when they can be (None otherwise)."""
    if state.epoch >= settings.epochs or state.stopped:
        return None
    backbone = setup.unwrapped.backbone
    inputs_vary = setup.train_preprocessing and backbone.training_inputs_vary()
    started = time.perf_counter()
    prefix, state.result.frozen_prefix = reuse_frozen_prefix(
        backbone, train_items, max(64, settings.batch_size), setup.device, terms=terms,
        inputs_vary=inputs_vary, mixes_batches=setup.mixer is not None)
    # Computing the cache is work the batches would otherwise do: it counts as batch time, so the
    # batch rate stays comparable with a loop that preprocesses and runs every layer every step.
    state.result.batch_seconds += time.perf_counter() - started
    return prefix


def _bucket_lengths(setup: _Setup, train_items) -> np.ndarray | None:
    """The inputs' padded lengths when batches may group similar lengths: the backbone pads to the
    batch's longest input, and no loss term or batch mixer depends on which examples share a batch."""
    if setup.mixer is not None or not all(term.batch_free for term in setup.terms):
        return None
    return setup.unwrapped.backbone.input_lengths(train_items)


def _agreed(watch: "_Watch", state: LoopState, decide) -> bool:
    """``decide()`` (a deadline check) and the stop note it may record, as the main process found them,
    on every process: the clocks of several processes would disagree on the step to stop at."""
    if watch.deadline is None or not launched():
        return decide()
    go_on, state.result.deadline_stop = on_main(lambda: (decide(), state.result.deadline_stop))
    return go_on


def _last_epoch_seconds(history: list[dict]) -> float:
    """How long the last recorded epoch took (the history's times add up), 0 without one."""
    if not history:
        return 0.0
    return history[-1]["seconds"] - (history[-2]["seconds"] if len(history) > 1 else 0.0)


@dataclass
class _Watch:
    """The loop's view of its deadline (None: no deadline, and every check passes).

    Until an epoch has finished there is nothing to keep, so the first epoch is estimated from
    :data:`TIMED_STEPS` steps and refused early when it cannot end in time; after that, the fit
    stops at the deadline, or before an epoch the last one says would end after it."""

    deadline: Deadline | None
    n_val: int
    settings: ResolvedConfig
    last_epoch_seconds: float = 0.0
    first_step_end: float = 0.0

    def may_start(self, state: LoopState) -> bool:
        """Whether to start the next epoch; when not, ``state`` records why. Raises
        :class:`OutOfTimeError` when setting the fit up took the time of its first epoch."""
        if self.deadline is None:
            return True
        if state.best_state is None:
            if not self.deadline.finish_first_epoch and clock() >= self.deadline.at:
                raise OutOfTimeError("the deadline came before its first epoch began (setting the fit up took the time)")
            return True
        if clock() + self.last_epoch_seconds <= self.deadline.at:
            return True
        self._stop(state, f"the next epoch would end after the deadline ({self.last_epoch_seconds:.0f} s each)")
        return False

    def may_go_on(self, state: LoopState, epoch: int, steps: int, n_batches: int) -> bool:
        """Checked after each training step: whether to take the next one. Raises
        :class:`OutOfTimeError` when a first epoch cannot end in time."""
        if self.deadline is None or steps >= n_batches:  # a fully trained epoch is validated and kept
            return True
        now = clock()
        if state.best_state is None:  # nothing to keep yet
            if not self.deadline.finish_first_epoch:
                self._check_first_epoch(now, steps, n_batches)
            return True
        if now < self.deadline.at:
            return True
        self._stop(state, f"the deadline came during epoch {epoch}, which is dropped")
        return False

    def _check_first_epoch(self, now: float, steps: int, n_batches: int) -> None:
        if steps == 1:
            self.first_step_end = now
        left = self.deadline.at - now
        if left <= 0:
            raise OutOfTimeError(f"the deadline came after {steps} of the {n_batches} steps of its first epoch")
        if steps == TIMED_STEPS and n_batches > TIMED_STEPS:
            per_step = (now - self.first_step_end) / (TIMED_STEPS - 1)
            validation = per_step * math.ceil(self.n_val / self.settings.batch_size) / 3  # forward passes only
            needed = per_step * (n_batches - steps) + validation
            if needed > left:
                raise OutOfTimeError(f"its first epoch needed about {needed:.0f} s more ({per_step:.2f} s per step "
                                     f"over {TIMED_STEPS - 1} timed steps, {n_batches} steps), {left:.0f} s were left "
                                     f"for the fit", needed)

    def _stop(self, state: LoopState, why: str) -> None:
        epochs = self.settings.epochs
        state.result.deadline_stop = (f"stopped by the time budget after epoch {state.epoch} of {epochs}: {why}; "
                                      f"keeping epoch {state.result.best_epoch}")


def _set_up(model: TransferModel, terms: nn.ModuleList, n_train: int, settings: ResolvedConfig) -> _Setup:
    """Seed, configure the backbone's training-time preprocessing, and build the optimizer, the
    schedule and the loss, with the model and optimizer placed by Accelerate."""
    seed_everything(settings.seed)
    model.backbone.batchnorm_stats_frozen = not settings.train_bn
    configure_augmentation(model.backbone, augment=settings.augment, randaugment=settings.randaugment,
                           token_dropout=settings.token_dropout)
    mixer, mix_key = make_batch_mixer(settings, model.backbone, model.head.out_features) or (None, None)
    accelerator = make_accelerator(settings.device, settings.precision)
    device = accelerator.device
    groups = parameter_groups(model, lr=settings.lr, head_lr=settings.head_lr, layer_decay=settings.layer_decay)
    term_params = [p for p in terms.parameters() if p.requires_grad]
    if term_params:
        groups.append({"params": term_params, "lr": settings.head_lr, "initial_lr": settings.head_lr, "name": "terms"})
    optimizer = make_optimizer(groups, weight_decay=settings.weight_decay, device=device)
    total_steps = max(1, settings.epochs * math.ceil(n_train / settings.batch_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, settings.warmup_fraction))
    terms.to(device)
    prepared, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(prepared)
    for term in terms:
        term.setup(unwrapped)
    if mixer:
        from timm.loss import SoftTargetCrossEntropy

        loss_fn = SoftTargetCrossEntropy()  # the mixer's targets carry the label smoothing
    else:
        loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    return _Setup(model=prepared, unwrapped=unwrapped, terms=terms, optimizer=optimizer, scheduler=scheduler,
                  accelerator=accelerator, device=device, loss_fn=loss_fn, mixer=mixer, mix_key=mix_key,
                  train_preprocessing=uses_training_preprocessing(settings), total_steps=total_steps)


def _train_epoch(setup: _Setup, state: LoopState, epoch: int, train_items, train_y: np.ndarray, target_items,
                 prefix, settings: ResolvedConfig, watch: _Watch) -> tuple[float, int] | None:
    """One pass over the training batches; ``(summed loss, batches)``, or None when the deadline
    (``watch``) ended it before its last batch. Under a launcher each process trains on its slice of
    every batch (:func:`headstart.distributed.shard`) and the loss recorded is the global batch's."""
    # Other processes draw other dropout masks and augmentations; each stream is still a function of
    # (seed, epoch, rank), and one process (rank 0) draws what it always drew.
    seed_everything(settings.seed * 10_007 + epoch + rank() * 1_000_003)
    setup.model.train()
    setup.terms.train()
    epoch_loss, batches = 0.0, 0
    target_batches = (epoch_batches(len(target_items), settings.batch_size, settings.seed + 1, epoch)
                      if target_items else [])
    term_params = [p for p in setup.terms.parameters() if p.requires_grad]
    batches_started, seen_before = time.perf_counter(), state.seen
    batches_of_epoch = epoch_batches(len(train_items), settings.batch_size, settings.seed, epoch, setup.lengths)
    progress = progress_bar(batches_of_epoch, desc=f"epoch {epoch}/{settings.epochs}", unit="step",
                            enabled=settings.progress and is_main())
    finished = True
    # The frozen modules are swapped for the cached outputs during the training batches only.
    with prefix.swapped() if prefix else contextlib.nullcontext():
        for index, global_indices in enumerate(progress):
            indices, weight = shard(global_indices)
            batch = prefix.batch(indices) if prefix else _preprocess(setup.unwrapped.backbone, train_items, indices,
                                                                     setup.train_preprocessing, setup.device)
            labels = torch.as_tensor(train_y[indices], dtype=torch.long, device=setup.device)
            target_indices = shard(target_batches[index % len(target_batches)])[0] if target_batches else None
            loss = _batch_loss(setup, state, batch, labels, target_items, target_indices)
            loss_value = _global_loss(setup, loss, weight)  # the same on every process
            if not math.isfinite(loss_value):  # before the step: NaN gradients would corrupt every weight
                _diverged(loss_value, epoch, index, setup.terms, settings)
            setup.optimizer.zero_grad(set_to_none=True)
            setup.accelerator.backward(loss * weight if launched() else loss)
            average_gradients(term_params)  # the DDP-wrapped model's own are averaged by DDP
            setup.optimizer.step()
            setup.scheduler.step()
            epoch_loss += loss_value
            batches += 1
            state.step += 1
            state.seen += len(global_indices)
            if not _agreed(watch, state, lambda: watch.may_go_on(state, epoch, batches, len(batches_of_epoch))):
                finished = False
                break
    if state.seen > seen_before:
        state.result.batch_seconds += time.perf_counter() - batches_started
    return (epoch_loss, batches) if finished else None


def _global_loss(setup: _Setup, loss: torch.Tensor, weight: float) -> float:
    """The mean loss over the whole batch: this process's own, or under a launcher the processes'
    average of their weighted means (the loss their averaged gradients descend)."""
    if not launched():
        return float(loss.detach())
    return float(setup.accelerator.reduce(loss.detach() * weight, reduction="mean"))


def _batch_loss(setup: _Setup, state: LoopState, batch: dict, labels: torch.Tensor, target_items,
                target_indices) -> torch.Tensor:
    """The training loss of one batch: cross-entropy (on mixed targets when batches are mixed) plus
    each loss term's weighted value; a term that needs target data sees the target batch."""
    targets = labels
    if setup.mixer:  # labels stay the hard labels for loss terms; the loss uses the mixed targets
        batch[setup.mix_key], targets = setup.mixer(batch[setup.mix_key], labels)
    logits, features = setup.model(batch, return_features=True)
    loss = setup.loss_fn(logits, targets)
    if setup.terms:
        outputs = StepOutputs(batch=batch, features=features, logits=logits, labels=labels,
                              step=state.step, total_steps=setup.total_steps)
        if target_indices is not None:
            outputs.target_batch = _preprocess(setup.unwrapped.backbone, target_items, target_indices,
                                               setup.train_preprocessing, setup.device)
            outputs.target_logits, outputs.target_features = setup.model(outputs.target_batch, return_features=True)
        for term in setup.terms:
            loss = loss + term.weight * term(outputs, setup.unwrapped)
    return loss


def _end_epoch(setup: _Setup, state: LoopState, epoch: int, train_loss: float, val_items, val_y: np.ndarray,
               settings: ResolvedConfig, elapsed, epoch_log) -> None:
    """Validate, record the epoch in the history, keep the best weights, decide early stopping, and
    offer the epoch to checkpoint averaging."""
    # Scored on the main process and shared, so every process keeps the same epoch and stops together.
    val_accuracy, val_loss = on_main(lambda: _evaluate(setup.unwrapped, val_items, val_y, settings.batch_size))
    result = state.result
    result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                           "val_accuracy": val_accuracy, "seconds": elapsed()})
    state.epoch = epoch
    # Without validation rows (a fixed schedule) each epoch outranks the last: the final one is kept.
    key = (val_accuracy, -val_loss) if len(val_y) else (float(epoch), 0.0)
    state.score_epoch(epoch, key, val_accuracy, setup.unwrapped, settings.patience)
    if epoch_log:  # progress a log file keeps too: tqdm's bar shows only on a terminal
        entry = result.history[-1]
        epoch_log(f"epoch {epoch}/{settings.epochs}: train loss {entry['train_loss']:.4f}, validation accuracy "
                  f"{accuracy_text(val_accuracy, len(val_y))} (loss {val_loss:.4f}), {entry['seconds']:.0f} s"
                  + (f"; stopping early: no better validation score for {state.stale} epochs, keeping epoch "
                     f"{result.best_epoch}" if state.stopped and epoch < settings.epochs else ""))
    if settings.average_checkpoints >= 2 and not math.isnan(val_accuracy):
        state.offer_for_averaging(epoch, key, setup.unwrapped, settings.average_checkpoints)


def _finish(setup: _Setup, state: LoopState, val_items, val_y: np.ndarray, settings: ResolvedConfig,
            started: float) -> TrainResult:
    """Load the best epoch (or the average of the best epochs, if it validates at least as well),
    hand the backbone back in its inference configuration, and fill in the timings."""
    model, result = setup.unwrapped, state.result
    for term in setup.terms:
        term.teardown(model)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
        if len(state.average_pool) >= 2:
            _try_average(model, state.average_pool, state.best_state, val_items, val_y, settings, result)
    model.eval()
    model.backbone.batchnorm_stats_frozen = False
    model.backbone.augmentation = DEFAULT_AUGMENTATION
    result.seconds = time.perf_counter() - started
    result.examples_per_second = state.seen / max(result.seconds, 1e-9)
    trained_here = state.seen - state.seen_at_start
    result.batch_examples_per_second = trained_here / result.batch_seconds if result.batch_seconds else 0.0
    return result


def _try_average(model: TransferModel, pool: list, best_state: dict, val_items, val_y: np.ndarray,
                 settings: ResolvedConfig, result: TrainResult) -> None:
    """Load the average of the pool's states into ``model`` if it scores at least as well on validation
    as the best epoch (already loaded), else reload the best epoch; record the outcome in ``result``
    and in the last history entry."""
    model.load_state_dict({**best_state, **average_states([state for _, _, state in pool])})
    accuracy, loss = on_main(lambda: _evaluate(model, val_items, val_y, settings.batch_size))
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
