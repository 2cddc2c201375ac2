"""``--backbone timm:NAME`` fails in one line when its weights cannot be had, never in torchvision's import."""

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from helpers import tiny_images

SRC = Path(__file__).resolve().parents[1] / "src"


def test_timm_backbone_without_its_weights_fails_in_one_line_naming_it(tmp_path):
    """timm imports torchvision at its top; a bare `import timm` before the torchvision fix died with
    a 51-line `operator torchvision::nms does not exist` traceback on CPU torch + torchvision 0.28."""
    X, y = tiny_images(3)
    for i, (pixels, label) in enumerate(zip(X, y)):
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "headstart", "fit", str(tmp_path / "data"), "--out",
                           str(tmp_path / "run"), "--backbone", "timm:resnet18", "--image-size", "32",
                           "--cache-dir", "none", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "torchvision::nms" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("headstart: error:")]
    assert len(error) == 1, done.stderr
    assert error[0].startswith("headstart: error: could not get the pretrained weights of timm:resnet18 ")
    assert "run once with network access" in error[0]
