"""Crash safety: `headstart fit` killed with SIGKILL at random points resumes to the same result."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from safetensors.numpy import load_file

from helpers import tiny_images

FIT = ["fit", "--strategy", "finetune", "--epochs", "8", "--patience", "8", "--batch-size", "4",
       "--image-size", "32", "--backbone", "mobilenetv2_100", "--cache-dir", "none", "--quiet"]
ROOT = Path(__file__).resolve().parent.parent


def _run(args, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "headstart", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _outcome(run_dir: Path) -> dict:
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in json.loads((run_dir / "history.json").read_text())]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    kept = {k: metrics[k] for k in ("val_accuracy", "best_epoch", "epochs_run")}
    return {"history": history, "metrics": kept, "weights": load_file(str(run_dir / "model.safetensors"))}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill-data")
    X, y = tiny_images(12)
    for i, (image, label) in enumerate(zip(X, y)):
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(root / f"c{label}" / f"{i}.png")
    return root


@pytest.mark.timeout(900)
@pytest.mark.parametrize("trial", [0, 1])
def test_fit_killed_five_times_resumes_to_the_uninterrupted_result(data_dir, tmp_path, trial):
    reference = tmp_path / "reference"
    began = time.monotonic()
    process = _run([*FIT, str(data_dir), "--out", str(reference)])
    assert process.wait(timeout=120) == 0, process.stderr.read().decode()
    # Kill times scale with how long a whole fit takes here, so a loaded machine (slow start-up) still
    # gets kills during training rather than only during imports.
    whole_fit = time.monotonic() - began
    expected = _outcome(reference)

    run_dir, chooser, kills, started = tmp_path / "killed", random.Random(trial), 0, time.monotonic()
    # Five kills and the restarts between them take several whole fits; on a loaded machine a whole fit
    # took 60 s, so the loop's limit scales with it too (a fixed 300 s failed there).
    limit = min(700.0, max(300.0, 10 * whole_fit))
    while kills < 5:
        assert time.monotonic() - started < limit, f"the kill loop ran past {limit:.0f} s (whole fit: {whole_fit:.0f} s)"
        resumable = (run_dir / "fit_args.json").is_file()
        process = _run(["fit", "--resume", str(run_dir)] if resumable else [*FIT, str(data_dir), "--out", str(run_dir)])
        try:
            process.wait(timeout=chooser.uniform(0.25, 0.9) * whole_fit)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += (run_dir / "fit_args.json").is_file()  # a kill before the fit began tests nothing
            continue
        assert process.returncode == 0, process.stderr.read().decode()
        shutil.rmtree(run_dir)  # it finished before the kill: start over, so the trial is killed 5 times
    process = _run(["fit", "--resume", str(run_dir)])
    assert process.wait(timeout=120) == 0, process.stderr.read().decode()
    actual = _outcome(run_dir)
    assert actual["history"] == expected["history"]
    assert actual["metrics"] == expected["metrics"]
    assert actual["weights"].keys() == expected["weights"].keys()
    for key, tensor in expected["weights"].items():
        assert (actual["weights"][key] == tensor).all(), key
    assert not (run_dir / "checkpoint").exists()
