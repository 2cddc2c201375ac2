"""`headstart fit --task segmentation`, `predict` writing mask PNGs and `evaluate` printing IoU, in-process."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from headstart.cli import main
from headstart.datasets.segmentation import pasted_items, write_folders

FAST = ["--epochs", "1", "--image-size", "32", "--batch-size", "4", "--quiet"]


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg-cli")
    data = pasted_items(6, size=32, seed=0, classes=(0, 1))
    root = write_folders(data, tmp / "set")
    run_dir = tmp / "run"
    code, out, err = run(["fit", "--task", "segmentation", root / "images", "--masks", root / "masks",
                          "--out", run_dir, "--strategy", "frozen", *FAST])
    assert code == 0, err
    return data, root, run_dir, out


def test_fit_segmentation_writes_a_segmentation_run_folder(fitted):
    _, _, run_dir, out = fitted
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"] == "segmentation" and config["strategy"] == "frozen" and config["classes"] == [0, 1, 2]
    assert "segmentation: frozen on efficientnet_lite0, 3 classes" in out
    assert not (run_dir / "checkpoint").exists()


def test_predict_writes_one_mask_png_per_image_at_its_size(fitted, tmp_path):
    data, root, run_dir, _ = fitted
    code, out, err = run(["predict", run_dir, root / "images", "--out", tmp_path / "masks"])
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert written == sorted(p.name for p in (root / "images").iterdir())
    with Image.open(tmp_path / "masks" / written[0]) as mask:
        assert mask.mode == "L" and mask.size == (32, 32)
        assert set(np.unique(np.array(mask))) <= {0, 1, 2}


def test_evaluate_prints_mean_and_per_class_iou_and_json(fitted):
    _, root, run_dir, _ = fitted
    code, out, err = run(["evaluate", run_dir, root / "images", "--masks", root / "masks"])
    assert code == 0, err
    assert "mean IoU:" in out and "class" in out and (run_dir / "evaluation.json").is_file()
    code, out, err = run(["evaluate", run_dir, root, "--json"])  # a root holding images/ and masks/
    record = json.loads(out)
    assert code == 0 and record["n_images"] == 6 and set(record["per_class_iou"]) == {"0", "1", "2"}
    assert 0.0 <= record["mean_iou"] <= 1.0


def test_fit_segmentation_refuses_a_classification_only_option(fitted, tmp_path):
    _, root, _, _ = fitted
    code, _, err = run(["fit", "--task", "segmentation", root, "--out", tmp_path / "r", "--mixup", "0.2", *FAST])
    assert code == 2 and "--mixup 0.2 does not apply to --task segmentation; drop it" in err


def test_fit_segmentation_without_masks_names_the_missing_folder(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images / "a.png")
    code, _, err = run(["fit", "--task", "segmentation", images, "--out", tmp_path / "r", *FAST])
    assert code == 2 and "no masks for" in err and "--masks MASKS_DIR" in err


def test_predict_on_a_segmentation_run_needs_an_output_folder(fitted):
    _, root, run_dir, _ = fitted
    code, _, err = run(["predict", run_dir, root / "images"])
    assert code == 2 and "is a segmentation run: pass --out DIR" in err
