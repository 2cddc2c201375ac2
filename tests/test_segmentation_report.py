"""The segmentation report: overlays, palette, verdict, and one page built from a real tiny run."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from headstart import TransferSegmenter
from headstart.cli import main
from headstart.datasets.segmentation import SegmentationSet, pasted_items, write_folders
from headstart.errors import ConfigError, DataError
from headstart.report.segmentation import _plan_rows, build_segmentation_report, error_map, overlay, palette, verdict

PNG_SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SECTIONS = ("What was chosen and how well it segments", "Candidates", "Per-class IoU",
            "Examples: predicted masks beside the truth")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_overlay_blends_foreground_classes_and_leaves_background_on_a_2x2_image():
    image = np.array([[[100, 100, 100], [0, 50, 200]],
                      [[255, 255, 255], [10, 20, 30]]], dtype=np.uint8)
    mask = np.array([[1, 0], [2, 0]])
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    blended = overlay(image, mask, colours)
    assert blended.dtype == np.uint8 and blended.shape == (2, 2, 3)
    # 0.55 * pixel + 0.45 * colour, rounded: 0.55*100 + 0.45*255 = 169.75 -> 170; 0.55*100 = 55
    assert blended[0, 0].tolist() == [170, 55, 55]
    # 0.55*255 = 140.25 -> 140; 0.55*255 + 0.45*255 = 255
    assert blended[1, 0].tolist() == [140, 140, 255]
    assert blended[0, 1].tolist() == [0, 50, 200] and blended[1, 1].tolist() == [10, 20, 30]  # background as is


def test_overlay_draws_a_grey_image_in_colour():
    blended = overlay(np.full((2, 2), 100, dtype=np.uint8), np.array([[0, 1], [0, 0]]), palette(2))
    assert blended.shape == (2, 2, 3) and blended[0, 0].tolist() == [100, 100, 100]
    assert blended[0, 1].tolist() == [round(0.55 * 100 + 0.45 * c) for c in palette(2)[1]]


def test_overlay_of_a_mask_of_another_shape_says_both_shapes():
    with pytest.raises(DataError, match=r"the mask has shape \(3, 2\) but its image is \(2, 2\)"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2), int), palette(2))


def test_overlay_of_a_class_outside_the_palette_names_it():
    with pytest.raises(DataError, match=r"holds class 5, outside the 3 classes of the palette \(0..2\)"):
        overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0, 5], [1, 2]]), palette(3))


@pytest.mark.parametrize("n_classes", [1, 2, 11, 19, 60])
def test_palette_gives_each_class_a_distinct_colour(n_classes):
    colours = palette(n_classes)
    assert colours.shape == (n_classes, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours.tolist()}) == n_classes
    assert colours[0].tolist() == [0, 0, 0]
    assert palette(n_classes).tolist() == colours.tolist()  # fixed: the same class has the same colour everywhere


def test_error_map_paints_exactly_the_wrong_pixels_red():
    image = np.zeros((2, 3, 3), np.uint8)
    painted = error_map(image, np.array([[0, 1, 1], [2, 0, 0]]), np.array([[0, 1, 2], [2, 1, 0]]))
    red = np.all(painted == [220, 38, 38], axis=2)
    assert red.tolist() == [[False, False, True], [False, True, False]]


def _plan(*rows):
    return [{"strategy": s, "val_mean_iou": v, "seconds": 1.0, **(extra[0] if extra else {})} for s, v, *extra in rows]


@pytest.mark.parametrize("rows, kept, kind, words", [
    ((("scratch", 0.40), ("frozen", 0.55)), "frozen", "positive", "Transfer helped."),
    ((("scratch", 0.60), ("frozen", 0.55)), "scratch", "negative", "Transfer did not pay off."),
    ((("pixels", 0.60), ("frozen", 0.55)), "frozen", "negative", "The baseline did better than the kept model."),
    ((("frozen", 0.55), ("finetune", 0.50)), "frozen", "neutral", "No baseline."),
    ((("frozen", 0.55, {"beats_default": False}), ("scratch", 0.57, {"beats_default": False})), "frozen",
     "neutral", "No difference shown."),
    ((("frozen", 0.55),), "frozen", "neutral", "Not compared."),
])
def test_verdict_says_whether_transfer_beat_the_no_transfer_baselines(rows, kept, kind, words):
    css, bold, sentence = verdict(_plan_rows(_plan(*rows), kept), kept)
    assert (css, bold) == (kind, words)
    assert kept in sentence


# --------------------------------------------------------------------------- a real tiny run


@pytest.fixture(scope="module")
def segmentation_run(tmp_path_factory):
    """strategy="auto" (frozen, finetune, scratch, pixels: 1 epoch each at 32 px) on 8 pasted-digit images; 4 other
    images written as images/ + masks/ + classes.txt for the report."""
    data = pasted_items(12, size=32, seed=0, classes=(0, 1))
    root = tmp_path_factory.mktemp("segmentation_report")
    seg = TransferSegmenter(strategy="auto", epochs=1, image_size=32, batch_size=4).fit(data.images[:8], data.masks[:8])
    run = seg.save(root / "run")
    test = write_folders(SegmentationSet(data.images[8:], data.masks[8:], data.class_names), root / "test")
    return run, test, seg


@pytest.fixture(scope="module")
def report_page(segmentation_run):
    run, test, _ = segmentation_run
    path = build_segmentation_report(run, test, max_examples=3)
    return path, path.read_text(encoding="utf-8")


def test_segmentation_report_holds_candidates_per_class_iou_and_one_overlay_strip_per_example(report_page,
                                                                                               segmentation_run):
    path, html = report_page
    run, test, seg = segmentation_run
    assert path == run / "report.html"
    for heading in SECTIONS:
        assert f">{heading}</h2>" in html, heading
    for row in seg.plan_:  # the candidates table: every strategy with its validation mean IoU, the kept one marked
        assert f"<td>{row['strategy']}</td>" in html and f"{row['val_mean_iou']:.3f}" in html
    assert html.count("✔ kept") == 1 and f'<tr class="chosen"><td>{seg.strategy_}</td>' in html
    scores = seg.iou(str(test))
    assert f"<strong>{scores['mean_iou']:.3f}</strong>" in html
    for value, iou in scores["per_class_iou"].items():  # per-class IoU, named from test/classes.txt
        name = ("background", "0", "1")[value]
        assert re.search(rf"<tr><td>{name}</td><td>.*?</td><td class=\"n\">{'n/a' if iou is None else f'{iou:.3f}'}</td>",
                         html), name
    payloads = PNG_SRC.findall(html)
    assert len(payloads) == html.count("<img ") == 3  # max_examples of the 4 test images
    for payload in payloads:  # image | truth | prediction | errors: 4 panels of 32 px drawn 5x, 8 px apart
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as strip:
            assert strip.format == "PNG" and strip.size == (4 * 160 + 3 * 8, 160)


def test_segmentation_report_cli_writes_the_page_from_a_root_or_an_images_and_masks_folder(segmentation_run,
                                                                                          tmp_path, capsys):
    run, test, _ = segmentation_run
    out = tmp_path / "cli.html"
    assert main(["report", str(run), str(test), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").count("<img ") == 4  # all 4 test images (default max_examples=8)
    split = tmp_path / "split.html"
    assert main(["report", str(run), str(test / "images"), "--masks", str(test / "masks"), "-o", str(split)]) == 0
    assert split.read_text(encoding="utf-8").count("<img ") == 4


def test_segmentation_report_cli_without_test_images_exits_2_saying_how_to_pass_them(segmentation_run, capsys):
    run, _, _ = segmentation_run
    assert main(["report", str(run)]) == 2
    error = capsys.readouterr().err
    assert "is a segmentation run: its report needs labeled test images" in error and "--masks MASKS_DIR" in error


def test_segmentation_report_cli_refuses_classification_options_naming_them(segmentation_run, capsys):
    run, test, _ = segmentation_run
    assert main(["report", str(run), str(test), "--curve-sizes", "1,5", "--strict"]) == 2
    assert ("--curve-sizes and --strict do not apply to the report of the segmentation run"
            in capsys.readouterr().err)


def test_overlay_of_a_float_image_asks_for_uint8():
    with pytest.raises(DataError, match=r"an image must be uint8 \(0..255\), got dtype float32"):
        overlay(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), int), palette(2))


def test_report_cli_refuses_masks_for_a_classification_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"model_kind": "head"}')
    assert main(["report", str(run), str(tmp_path), "--masks", str(tmp_path / "masks")]) == 2
    assert "is a classification run, and --masks is for segmentation runs; drop --masks" in capsys.readouterr().err


def test_segmentation_report_with_too_few_class_names_names_the_missing_value(segmentation_run):
    run, test, _ = segmentation_run
    with pytest.raises(ConfigError, match=r"class_names names 2 classes but the run's masks also hold the value\(s\) \[2\]"):
        build_segmentation_report(run, test, class_names=["background", "zero"])


def test_segmentation_report_of_a_fixed_strategy_given_arrays_says_it_was_not_compared(tmp_path):
    data = pasted_items(8, size=32, seed=1, classes=(0, 1))
    run = TransferSegmenter(strategy="pixels").fit(data.images[:6], data.masks[:6]).save(tmp_path / "run")
    html = build_segmentation_report(run, data.images[6:], data.masks[6:], out=tmp_path / "page.html",
                                     max_examples=1).read_text(encoding="utf-8")
    assert "<strong>Not compared.</strong> Only pixels was fit" in html and "pixels was the only strategy fit" in html
    assert "2 images given as arrays" in html and "Class names from the mask values" in html
    assert html.count("<img ") == 1


def test_segmentation_report_counts_a_class_unseen_in_training_as_iou_0_like_score(tmp_path):
    train, test = pasted_items(6, size=32, seed=1, classes=(0, 1)), pasted_items(3, size=32, seed=2, classes=(0, 1, 2))
    seg = TransferSegmenter(strategy="pixels").fit(train.images, train.masks)
    run = seg.save(tmp_path / "run")
    with pytest.warns(UserWarning, match=r"class value\(s\) \[3\] absent from the training masks"):
        html = build_segmentation_report(run, test.images, test.masks, class_names=test.class_names,
                                         out=tmp_path / "page.html").read_text(encoding="utf-8")
    with pytest.warns(UserWarning):
        score = seg.score(test.images, test.masks)
    assert f"<strong>{score:.3f}</strong>" in html
    assert "Class 2 is in the test masks but not in the training masks" in html
    assert re.search(r'<tr><td>2</td><td>.*?</td><td class="n">0.000</td>', html)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; "
                                              "`make setup` installs it when run as root)")
def test_segmentation_report_renders_in_headless_chromium_with_the_mask_overlays(report_page, tmp_path):
    path, _ = report_page
    shot = tmp_path / "shot.png"
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1100,1800", path.absolute().as_uri()],
                   check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        assert image.size == (1100, 1800)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, tables and the overlays, not a blank page
    dom = subprocess.run([*common, "--dump-dom", path.absolute().as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert ">Examples: predicted masks beside the truth</h2>" in dom
    assert len(PNG_SRC.findall(dom)) == dom.count("<img ") == 3
