"""Crash safety of segmentation fits: `headstart fit --task segmentation` killed with SIGKILL after an
epoch's checkpoint resumes (`--resume RUN_DIR`) to the weights and predictions of an uninterrupted fit."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from headstart import TransferSegmenter
from headstart.checkpoint import save_checkpoint
from headstart.datasets.segmentation import pasted_items, write_folders
from headstart.errors import RunFolderError

ROOT = Path(__file__).resolve().parent.parent
FIT = ["fit", "--task", "segmentation", "--strategy", "finetune", "--epochs", "5", "--image-size", "32",
       "--batch-size", "4", "--quiet"]


def _start(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "headstart", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _epochs_checkpointed(path: Path) -> int:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return json.loads(handle.metadata()["headstart"])["epoch"]
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    data = pasted_items(8, size=32, seed=3, classes=(0, 1))
    return data, write_folders(data, tmp_path_factory.mktemp("seg-kill"))


@pytest.mark.timeout(600)
def test_segmentation_fit_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(dataset, tmp_path):
    data, root = dataset
    reference = tmp_path / "reference"
    process = _start([*FIT, str(root), "--out", str(reference)])
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()

    killed = tmp_path / "killed"
    process = _start([*FIT, str(root), "--out", str(killed)])
    checkpoint = killed / "checkpoint" / "finetune" / "checkpoint.safetensors"
    deadline = time.monotonic() + 300
    while _epochs_checkpointed(checkpoint) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the fit finished before it could be killed: give it more epochs"
    process.kill()
    process.wait()
    assert not (killed / "model.safetensors").exists() and checkpoint.is_file()

    process = _start(["fit", "--resume", str(killed)])
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    assert not (killed / "checkpoint").exists()  # spent checkpoints are removed
    expected, resumed = load_file(str(reference / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert expected.keys() == resumed.keys()
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
    history = lambda run: [{k: v for k, v in h.items() if k != "seconds"}  # noqa: E731
                           for h in json.loads((run / "config.json").read_text())["history"]]
    assert history(killed) == history(reference)
    np.testing.assert_array_equal(TransferSegmenter.load(killed).predict(data.images),
                                  TransferSegmenter.load(reference).predict(data.images))


def test_resume_without_a_checkpoint_says_there_is_nothing_to_continue(dataset, tmp_path):
    data, _ = dataset
    with pytest.raises(RunFolderError, match=r"resume=True but .*checkpoint holds no checkpoint to continue"):
        TransferSegmenter(strategy="pixels", run_dir=tmp_path / "run", resume=True).fit(data.images, data.masks)


def test_a_checkpoint_of_other_data_is_refused_not_resumed(dataset, tmp_path):
    data, _ = dataset
    params = {"strategy": "frozen", "epochs": 1, "image_size": 32, "run_dir": tmp_path / "run"}
    TransferSegmenter(**params).fit(data.images, data.masks)
    # a checkpoint left in the run folder by a fit killed on other data (another fingerprint)
    net = torch.nn.Linear(1, 1)
    save_checkpoint(tmp_path / "run" / "checkpoint" / "frozen", model=net, terms=torch.nn.Module(),
                    optimizer=torch.optim.AdamW(net.parameters()),
                    scheduler=torch.optim.lr_scheduler.LambdaLR(torch.optim.AdamW(net.parameters()), lambda e: 1.0),
                    best_state=None, meta={"key": "other"})
    with pytest.raises(RunFolderError, match=r"belongs to another fit \(other data or options\); delete it"):
        TransferSegmenter(**params).fit(data.images, data.masks)
