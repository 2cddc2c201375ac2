"""The candidates of strategy="auto" and adapt="auto" as Ray tasks (``ray_address``, issue 27): the same plan_
and the same choice as one after another, the budget's deadline carried into the tasks, and the errors of a
missing Ray or a wrong address."""

import dataclasses
import importlib.util
import math
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from headstart import TransferClassifier, train
from headstart.cli import build_parser, fit_options
from headstart.errors import ConfigError, OutOfTimeError
from headstart.planner.candidates import Candidate
from headstart.planner.parallel import _score_task

from helpers import separable_features

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed: pip install headstart[ray] (make test installs it)")
# What plan_ records of each candidate, times and the time-worded reasons aside
EVIDENCE = ("name", "kind", "strategy", "backbone", "freeze", "options", "status", "scores", "correct", "log_loss",
            "default")


@needs_ray
def test_planner_on_local_ray_records_the_sequential_plan():
    X, y = separable_features(per_class=12)  # under 30 per class: each candidate scored by 3-fold cross-validation
    options = dict(strategy="auto", backbone="precomputed", epochs=1, verbose=0)
    sequential = TransferClassifier(**options).fit(X, y).plan_
    parallel = TransferClassifier(**options, ray_address="local").fit(X, y).plan_
    evidence = lambda plan: [{k: c[k] for k in EVIDENCE} for c in plan["candidates"]]
    assert evidence(parallel) == evidence(sequential)
    assert [c["status"] for c in parallel["candidates"]].count("scored") >= 2  # a choice among several
    for key in ("winner", "rule", "default", "defaults", "negative_transfer", "winner_refit"):
        assert parallel[key] == sequential[key], key
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()  # the local cluster was shut down


@needs_ray
def test_adapt_auto_on_local_ray_records_the_sequential_choice():
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(60, 6)), rng.normal(size=(40, 6)) + 0.5
    y = np.where(source[:, 0] > 0, "a", "b")
    options = dict(strategy="linear_probe", backbone="precomputed", adapt="auto", adapt_weight=1.0, epochs=2, verbose=0)
    sequential = TransferClassifier(**options).fit(source, y, X_target=target)
    parallel = TransferClassifier(**options, ray_address="local").fit(source, y, X_target=target)
    untimed = lambda record: {**record, "candidates": [{k: v for k, v in row.items() if k != "seconds"}
                                                       for row in record["candidates"]]}
    assert untimed(parallel.adaptation_) == untimed(sequential.adaptation_)  # IM and DEV to the last bit
    assert [row["status"] for row in parallel.adaptation_["candidates"]] == ["scored"] * 6
    np.testing.assert_array_equal(parallel.predict_proba(target), sequential.predict_proba(target))
    assert hasattr(parallel, "source_only_") == hasattr(sequential, "source_only_")


@dataclasses.dataclass
class _Scorer:
    """Stands in for the planner's run inside a task: a bounded fit past its deadline cannot start."""

    ends: float = math.inf

    def score(self, candidate, bounded):
        if bounded and train.clock() >= self.ends:
            raise OutOfTimeError("its first epoch needs about 5 s", needed=5.0)
        return "model", [{"seconds_left": self.ends - train.clock()}]


def test_importing_headstart_leaves_ray_unimported():
    code = ("import sys, headstart, headstart.estimator, headstart.cli, headstart.planner.parallel; "
            "print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_task_deadline_counts_the_time_queued():
    candidate = Candidate("finetune@x", "transfer", "finetune")
    # sent with 60 s left, started at once: its deadline is about 60 s away on the task's own clock
    fresh = _score_task(_Scorer(), candidate, True, 60.0, time.time(), True, 1)
    assert fresh.model == "model" and 55 < fresh.summaries[0]["seconds_left"] <= 60
    # sent with 60 s left but queued for 61 s behind other tasks: out of time, as a value, with the reason
    queued = _score_task(_Scorer(), candidate, True, 60.0, time.time() - 61, True, 1)
    assert queued.model is None and queued.out_of_time == ("its first epoch needs about 5 s", 5.0)
    # the first candidate runs whatever the time; a model the planner will not keep does not travel back
    first = _score_task(_Scorer(), candidate, False, 60.0, time.time() - 61, False, 1)
    assert first.out_of_time is None and first.model is None


class _InstantRay:
    """Enough of Ray for map_in_order, in this process: a task runs when its result is asked for, and a task
    whose arguments say "slow" never finishes."""

    class exceptions:
        RayTaskError = type("RayTaskError", (Exception,), {})

    def __init__(self):
        self.cancelled = []

    def is_initialized(self):  # a session the caller started: used as it is
        return True

    def cluster_resources(self):
        return {"CPU": 2.0}

    def put(self, value):
        return value

    def remote(self, function):
        return types.SimpleNamespace(options=lambda **resources: types.SimpleNamespace(
            remote=lambda *args: types.SimpleNamespace(run=lambda: function(*args), slow="slow" in args)))

    def wait(self, references, timeout=None):
        return [r for r in references if not r.slow], [r for r in references if r.slow]

    def cancel(self, reference, force=False):
        self.cancelled.append(reference)

    def get(self, reference):
        return reference.run()


def test_map_in_order_cancels_what_the_budget_leaves_and_returns_divergence(monkeypatch):
    from headstart.errors import TrainingDivergedError
    from headstart.planner.parallel import map_in_order

    fake = _InstantRay()
    monkeypatch.setitem(sys.modules, "ray", fake)

    def fit(shared, name):
        if name == "diverges":
            raise TrainingDivergedError("loss is nan")
        return f"{shared}:{name}"

    results = list(map_in_order("local", fit, "data", [("first",), ("slow",), ("diverges",), ("done",)], seconds=0,
                                returned=(TrainingDivergedError,)))
    assert [r for r, _ in results][0::3] == ["data:first", "data:done"]  # finished ones are kept, budget or not
    assert results[1] == ("skipped: not done when the 0 s budget ran out (candidates run in parallel on Ray)", 0.0)
    assert isinstance(results[2][0], TrainingDivergedError) and len(fake.cancelled) == 1


def test_ray_address_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    X, y = separable_features(per_class=5)
    with pytest.raises(ConfigError, match=r"not installed; pip install headstart\[ray\]"):
        TransferClassifier(strategy="auto", backbone="precomputed", ray_address="local", verbose=0).fit(X, y)


def test_ray_address_bad_value_is_refused_with_the_accepted_ones():
    X, y = separable_features(per_class=5)
    with pytest.raises(ConfigError, match=r"ray_address='localhost' is not a Ray address; use 'local'.*'auto'.*"
                                          r"'ray://HOST:PORT'"):
        TransferClassifier(strategy="auto", backbone="precomputed", ray_address="localhost").fit(X, y)
    with pytest.raises(ConfigError, match=r"strategy='linear_probe' fits one model; drop ray_address"):
        TransferClassifier(backbone="precomputed", ray_address="local").fit(X, y)


def test_cli_ray_flag_sets_ray_address():
    args = build_parser().parse_args(["fit", "data", "--out", "run", "--strategy", "auto", "--ray", "ray://head:10001"])
    assert fit_options.fit_params(args)["ray_address"] == "ray://head:10001"
    assert fit_options.fit_params(build_parser().parse_args(["fit", "data", "--out", "run"]))["ray_address"] is None
