"""The planner's and ``adapt="auto"``'s candidates as Ray tasks (``ray_address``): the same ``plan_``, sooner.

Each candidate's scoring (its fits on every split and its held-out predictions: :meth:`_Run.score`)
depends on nothing another candidate learns, so with ``ray_address`` set every candidate the data
size did not rule out is submitted at once, one Ray task each, and the results are recorded in the
ladder's order by the same code the sequential loop uses (:meth:`_Run.scored`,
:meth:`_Run.out_of_time`, :meth:`_Run.keep`). The candidates, their per-example hits and scores,
and so the decision, are those of a sequential run; only the times differ.

- **One shared payload.** The configuration, the data, the labels, the splits and the fit function
  (``functools.partial(fitting.fit_strategy, ...)``, a top-level function, so it pickles by
  reference) go to the object store once (``ray.put``); each task receives the reference and its
  candidate. A task rebuilds a quiet :class:`_Run` from them: the scoring fits log nothing anyway,
  and the planner logs each candidate's outcome itself.
- **Resources.** Each task asks for an equal share of the cluster's CPUs (at least one) and sets
  torch's and the BLAS libraries' threads to it, so the tasks that run together do not oversubscribe
  the cores; with ``device="cuda"`` each also asks for a share of the GPUs (at most one). Ray queues
  what does not fit.
- **The budget.** Deadlines are on :func:`headstart.train.clock` (``time.monotonic``), whose origin
  is each process's own, so a task is sent the seconds left when it was submitted and the wall time
  of submission: it subtracts the time it waited in Ray's queue (wall clocks agree across processes,
  and across machines as far as NTP does) and sets its own deadline on its own clock. The first
  candidate runs whatever the time, as in the sequential loop; a fit that cannot end its first epoch
  in time comes back as a value (not an exception across processes), and the candidate is recorded
  as skipped with the loop's reason. Unlike the sequential loop, no candidate is skipped up front
  from what an earlier one cost: all start before any has finished.
- **Models.** A task returns its last split's model only when the planner would keep that scoring
  fit as the final model (:meth:`_Run.kept_as_scored`); torch modules and the baselines pickle, so the
  model travels whole, and a cross-validated candidate, which is refit on every row, returns none.
- **adapt="auto"** fits its candidates the same way (:func:`map_in_order`): every candidate a task,
  each a clone of the estimator fitted in the worker and sent back whole, then scored and chosen in
  the driver in the search's order by :func:`headstart.adapt.select.select_adaptation`'s own code, so
  the record (IM, DEV, the choice) is the sequential one. Its budget, which the sequential search
  spends by skipping candidates it cannot pay for from what earlier ones cost, here ends the wait:
  source-only is always awaited, and a later candidate not done by then is cancelled and recorded as
  skipped.
- **The cluster.** ``"local"`` starts a Ray cluster on this machine's CPUs for the planner and shuts
  it down after; ``"auto"`` and ``"ray://HOST:PORT"`` connect to a running cluster, whose workers
  need headstart (and the backbones' weights) installed. A Ray session the caller started already is
  used as it is, and left running. Ray is imported only here, when the option is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass

from .. import train
from ..errors import ConfigError, OutOfTimeError
from .candidates import Candidate


def require_ray():
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("ray_address runs the candidates on Ray, which is not installed; pip install "
                          "headstart[ray] (or pip install 'ray>=2.9'), or leave ray_address unset to run them "
                          "one after another") from None
    return ray


@contextlib.contextmanager
def connected(address: str):
    """Ray connected to ``address`` for the block; a session this block started is shut down at its end."""
    ray = require_ray()
    if ray.is_initialized():  # the caller's own session: use it, leave it running
        yield ray
        return
    if address == "local":
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass
class TaskResult:
    """What one candidate's task sends back: its evidence, its model when kept, or why it ran out of time."""

    candidate: Candidate  # the task's copy, holding the scores, hits, log-losses and probabilities
    model: object = None
    summaries: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    out_of_time: tuple[str, float] | None = None  # (the reason, what the fit would have taken)


def score_on_ray(run, candidates: list[Candidate]) -> dict:
    """:meth:`_Run.score_ladder` with every candidate's scoring as a Ray task; recorded in ladder order."""
    with connected(run.config.ray_address) as ray:
        ruled_out = {c.name for c in candidates if c.status == "skipped"}  # by the data size, with the reason
        todo = [c for c in candidates if c.name not in ruled_out]
        resources = task_resources(ray, run.config.device, run.config.ray_address, len(todo))
        shared = ray.put(dataclasses.replace(run, log=_quiet, ends=float("inf"), seconds_per_epoch={}))
        task = ray.remote(_score_task).options(**resources, max_retries=0)
        pending = {}
        for number, candidate in enumerate(todo):
            bounded = number > 0  # the first candidate runs whatever the time: the fit ends with a model
            left = run.ends - train.clock()
            if bounded and left <= 0:
                run.skip(candidate, f"skipped: no time left, {run.time_left()}")
                continue
            run.log_trying(candidate)
            pending[candidate.name] = task.remote(shared, candidate, bounded, left, time.time(),
                                                  run.kept_as_scored(candidate), int(resources["num_cpus"]))
        run.log(f"auto: scoring {len(pending)} candidates as Ray tasks on {run.config.ray_address} "
                f"({_describe(resources)} each)")
        try:
            return _record(run, ray, candidates, pending, ruled_out)
        except BaseException:  # a fit failed (or the user interrupted): the others' work is not wanted
            for reference in pending.values():
                ray.cancel(reference, force=True)
            raise


def _record(run, ray, candidates: list[Candidate], pending: dict, ruled_out: set) -> dict:
    """Wait for the tasks in ladder order, and record each outcome as the sequential loop does."""
    kept_models = {}
    for candidate in candidates:
        if candidate.name in ruled_out:
            run.log(f"auto: {candidate.name} skipped ({candidate.reason})")
        if candidate.name not in pending:  # ruled out, or no time was left to submit it
            continue
        result = _get(ray, pending.pop(candidate.name))
        if result.out_of_time is not None:
            run.out_of_time(candidate, *result.out_of_time)
            continue
        for name in ("scores", "correct", "log_loss", "probabilities"):
            setattr(candidate, name, getattr(result.candidate, name))
        run.scored(candidate, result.seconds, result.summaries)
        run.keep(kept_models, candidate, result.model, candidates)
    return kept_models


def _get(ray, reference):
    """A task's result; an error raised inside it is raised here as itself, not wrapped in Ray's."""
    try:
        return ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise


def task_resources(ray, device: str, address: str, tasks: int) -> dict:
    """Each task's equal share of the cluster: whole CPUs (at least one), and a share of a GPU for cuda."""
    cluster = ray.cluster_resources()
    resources = {"num_cpus": max(1, int(cluster.get("CPU", 1) // max(1, tasks)))}
    if device == "cuda":
        gpus = cluster.get("GPU", 0)
        if not gpus:
            raise ConfigError(f"device='cuda' but the Ray cluster at {address!r} has no GPU; connect to a cluster "
                              f"with GPUs, or set device='cpu'")
        resources["num_gpus"] = min(1.0, gpus / max(1, tasks))
    return resources


def map_in_order(address: str, function, shared, arguments: list[tuple], *, device: str = "cpu",
                 seconds: float | None = None, returned: tuple = ()):
    """``function(shared, *args)`` for every ``args`` as Ray tasks at once (``shared`` sent once); yields
    ``(result, seconds the call took)`` in the order given. An exception of a ``returned`` type comes as the
    result; other exceptions are raised. With ``seconds``, a task after the first that is not done when
    they have passed is cancelled and its result is the reason (the first is always awaited, as the
    sequential search always fits it). ``adapt="auto"`` fits its candidates through this."""
    with connected(address) as ray:
        resources = task_resources(ray, device, address, len(arguments))
        task = ray.remote(_call_task).options(**resources, max_retries=0)
        shared_ref = ray.put(shared)
        ends = None if seconds is None else time.monotonic() + seconds
        references = [task.remote(shared_ref, function, resources["num_cpus"], returned, *args) for args in arguments]
        for number, reference in enumerate(references):
            timeout = None if ends is None or number == 0 else max(0.0, ends - time.monotonic())
            if not ray.wait([reference], timeout=timeout)[0]:
                ray.cancel(reference, force=True)
                yield f"skipped: not done when the {seconds:.0f} s budget ran out (candidates run in parallel on Ray)", 0.0
                continue
            yield _get(ray, reference)


@contextlib.contextmanager
def _cpu_share(threads: int):
    """torch's and the BLAS libraries' threads held to a task's CPU share, so tasks side by side do not
    oversubscribe the cores."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        yield


def _call_task(shared, function, threads: int, returned: tuple, *args):
    """One :func:`map_in_order` call inside a Ray worker, at its CPU share."""
    started = time.monotonic()
    with _cpu_share(threads):
        try:
            result = function(shared, *args)
        except returned as error:
            result = error
    return result, time.monotonic() - started


def _describe(resources: dict) -> str:
    cpus = resources["num_cpus"]
    text = f"{cpus} CPU{'s' if cpus != 1 else ''}"
    return text + (f", {resources['num_gpus']:g} GPU" if "num_gpus" in resources else "")


def _score_task(shared, candidate: Candidate, bounded: bool, seconds_left: float, submitted: float,
                keep_model: bool, threads: int) -> TaskResult:
    """One candidate's scoring inside a Ray worker: its deadline on this process's clock, its CPU share."""
    waited = max(0.0, time.time() - submitted)  # queued behind other tasks: that time counts against the budget
    run = dataclasses.replace(shared, ends=train.clock() + seconds_left - waited)
    started = train.clock()
    with _cpu_share(threads):
        try:
            model, summaries = run.score(candidate, bounded)
        except OutOfTimeError as why:
            return TaskResult(candidate, out_of_time=(str(why), why.fit_seconds))
    return TaskResult(candidate, model if keep_model else None, summaries, train.clock() - started)


def _quiet(message: str) -> None:
    """The tasks' log: their fits are silent, and the planner logs each outcome."""
