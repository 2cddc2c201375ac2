"""DICOM files and 16-bit images: windowing checked against pixel values computed by hand from the
stored values of pydicom's own test files, the errors for files that cannot be used, and the
``window`` option through fit, predict, save/load and the CLI."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402

from headstart import TransferClassifier  # noqa: E402
from headstart.cache import FeatureCache  # noqa: E402
from headstart.cli import main  # noqa: E402
from headstart.data import Window, load_image, parse_window, read_dicom, set_window  # noqa: E402
from headstart.data.images import image_problem, list_image_folder  # noqa: E402
from headstart.errors import ConfigError, DataError  # noqa: E402


def grey(item, window=None) -> np.ndarray:
    return np.asarray(load_image(item, window=window))[:, :, 0]


# --------------------------------------------------------------------------- windowing by hand


def test_dicom_ct_user_window_matches_hand_computed_values():
    # CT_small: RescaleSlope 1, RescaleIntercept -1024, no window tags. Window 40,400 (c - 0.5 = 39.5, w - 1 = 399).
    path = get_testdata_file("CT_small.dcm")
    stored = pydicom.dcmread(path).pixel_array
    assert (stored[47, 24], stored[0, 48], stored[0, 0]) == (1071, 958, 175)
    pixels = grey(path, "40,400")
    assert pixels[47, 24] == round(((1071 - 1024 - 39.5) / 399 + 0.5) * 255)  # 47 HU -> 132.29
    assert pixels[47, 24] == 132
    assert pixels[0, 48] == 60  # -66 HU: ((-66 - 39.5) / 399 + 0.5) * 255 = 60.08
    assert pixels[0, 0] == 0  # -849 HU is below 40 - 200


def test_dicom_without_window_tags_uses_its_min_max():
    # CT_small has no WindowCenter: its own range, -896..1167 HU, spread over 0..255
    pixels = grey(get_testdata_file("CT_small.dcm"))
    assert pixels[0, 0] == 6  # (-849 + 896) / (1167 + 896) * 255 = 5.81
    assert pixels.min() == 0 and pixels.max() == 255


def test_dicom_file_window_is_the_default():
    # MR_small: WindowCenter 600, WindowWidth 1600, no rescale
    path = get_testdata_file("MR_small.dcm")
    stored = pydicom.dcmread(path).pixel_array
    assert (stored[0, 0], stored[32, 32]) == (905, 182)
    pixels = grey(path)
    assert pixels[0, 0] == 176  # ((905 - 599.5) / 1599 + 0.5) * 255 = 176.22
    assert pixels[32, 32] == 61  # ((182 - 599.5) / 1599 + 0.5) * 255 = 60.92
    assert np.array_equal(read_dicom(path), pixels)


def test_dicom_monochrome1_is_inverted_after_windowing(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "inverted.dcm")
    pixels = grey(tmp_path / "inverted.dcm")
    assert (pixels[0, 0], pixels[32, 32]) == (255 - 176, 255 - 61)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_image_window_matches_hand_computed_values(tmp_path, suffix):
    ramp = (np.arange(16, dtype=np.uint16) * 1000).reshape(4, 4)  # 0, 1000, ..., 15000
    path = tmp_path / f"ramp{suffix}"
    Image.fromarray(ramp).save(path)
    # window 7000,4001: 0 at or below 4999.5, 255 above 8999.5, ((x - 6999.5) / 4000 + 0.5) * 255 between
    windowed = grey(path, (7000, 4001)).ravel()
    assert list(windowed[4:10]) == [0, 0, 64, 128, 191, 255]  # 4000 5000 6000 7000 8000 9000
    assert np.array_equal(grey(path).ravel(), np.round(ramp.ravel() / 257).astype(np.uint8))  # None: as before
    assert grey(ramp, "7000,4001")[1, 2] == 64  # a uint16 array windows the same way
    assert list(grey(path, "minmax").ravel()[[0, 15]]) == [0, 255]


def test_parse_window_forms_and_errors():
    assert parse_window("40,400") == parse_window((40, 400)) == parse_window([40.0, 400]) == Window(40.0, 400.0)
    assert parse_window(" MinMax ") == "minmax" and parse_window(None) is None and parse_window("None") is None
    assert parse_window(str((40, 400))) == parse_window("[40, 400]") == Window(40.0, 400.0)
    with pytest.raises(ConfigError, match=r"window='40x400' is not a window; use None .*'C,W' such as '40,400'"):
        parse_window("40x400")
    with pytest.raises(ConfigError, match=r"window='40,0': the width must be a finite number >= 1"):
        parse_window("40,0")


# --------------------------------------------------------------------------- files that cannot be used


def test_dicom_compressed_without_decoder_names_file_syntax_and_install():
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    try:
        pydicom.dcmread(path).pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except RuntimeError:
        pass
    with pytest.raises(DataError, match=r"MR_small_jpeg_ls_lossless\.dcm: its pixel data is compressed as JPEG-LS "
                                        r"Lossless Image Compression .*pip install pylibjpeg pylibjpeg-libjpeg "
                                        r"pylibjpeg-openjpeg"):
        load_image(path)


def test_dicom_unreadable_files_say_which_and_why(tmp_path):
    fake = tmp_path / "scan.dcm"
    fake.write_bytes(b"not a dicom file at all" * 20)
    with pytest.raises(DataError, match=r"cannot read DICOM file .*scan\.dcm: not a DICOM file"):
        load_image(fake)
    with pytest.raises(DataError, match=r"MR_truncated\.dcm: the pixel data cannot be decoded .*less than expected"):
        load_image(get_testdata_file("MR_truncated.dcm"))
    with pytest.raises(DataError, match=r"rtdose\.dcm: it has 15 frames, and headstart reads single images; export"):
        load_image(get_testdata_file("rtdose.dcm"))
    assert image_problem(fake).startswith("not a DICOM file")
    assert image_problem(get_testdata_file("MR_small.dcm")) is None


# --------------------------------------------------------------------------- through fit, predict and the CLI


def write_dicom_folder(root: Path) -> Path:
    """Two classes of four CT_small copies each: a bright square top-left or bottom-right, plus noise."""
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    rng = np.random.default_rng(0)
    for label, corner in (("left", (slice(10, 60), slice(10, 60))), ("right", (slice(68, 118), slice(68, 118)))):
        (root / label).mkdir(parents=True)
        for i in range(4):
            pixels = base.pixel_array.astype(np.int32) + rng.integers(-20, 20, base.pixel_array.shape)
            pixels[corner] = 1024 + 200  # 200 HU: bright in a 40,400 window
            base.PixelData = pixels.astype(base.pixel_array.dtype).tobytes()
            base.save_as(root / label / f"{i}.dcm")
    return root


@pytest.fixture(scope="module")
def dicom_folder(tmp_path_factory):
    return write_dicom_folder(tmp_path_factory.mktemp("dicom"))


def test_dicom_folder_fits_predicts_and_round_trips_the_window(dicom_folder, tmp_path):
    paths, labels = list_image_folder(dicom_folder)
    assert len(paths) == 8 and set(labels) == {"left", "right"}
    clf = TransferClassifier(backbone="efficientnet_lite0", image_size=32, window="40,400", val_size=2,
                             cache_dir="none", verbose=0).fit(dicom_folder)
    assert clf.get_params()["window"] == "40,400" and clf.backbone_.window == Window(40.0, 400.0)
    predicted = clf.predict(paths)
    assert (predicted == np.asarray(labels)).mean() >= 0.75
    loaded = TransferClassifier.load(clf.save(tmp_path / "run"))
    assert loaded.backbone_.window == Window(40.0, 400.0)
    assert np.array_equal(loaded.predict(paths), predicted)
    assert np.allclose(loaded.predict_proba(paths), clf.predict_proba(paths), atol=1e-5)


def test_window_is_part_of_the_feature_cache_key(dicom_folder, tmp_path):
    from headstart.backbones import create_backbone

    backbone = create_backbone("efficientnet_lite0", image_size=32)
    cache = FeatureCache(tmp_path / "cache")
    item = [str(next((dicom_folder / "left").iterdir()))]
    default_key, default = cache.backbone_key(backbone), cache.features(backbone, item)
    set_window(backbone, "40,400")
    windowed = cache.features(backbone, item)
    assert cache.backbone_key(backbone) != default_key and cache.last_computed == 1
    assert not np.allclose(next(iter(default.values())), next(iter(windowed.values())))


def test_bad_window_is_a_config_error_at_fit(dicom_folder):
    with pytest.raises(ConfigError, match=r"TransferClassifier: window='40;400;2' is not a window"):
        TransferClassifier(window="40;400;2", verbose=0).fit(dicom_folder)


def test_cli_fit_with_window_then_predict(dicom_folder, tmp_path):
    run = tmp_path / "run"
    assert main(["fit", str(dicom_folder), "--out", str(run), "--backbone", "efficientnet_lite0", "--image-size",
                 "32", "--window", "40,400", "--val-size", "2", "--cache-dir", "none", "--quiet"]) == 0
    assert TransferClassifier.load(run).get_params()["window"] == "40,400"
    copy = tmp_path / "one.dcm"
    shutil.copy(next((dicom_folder / "right").iterdir()), copy)
    assert main(["predict", str(run), str(copy)]) == 0


def test_pixel_baseline_windows_16bit_images_and_keeps_the_window(tmp_path):
    from headstart.baselines import PixelLogistic

    ramp = np.full((8, 8), 7000, dtype=np.uint16)
    path = tmp_path / "flat.png"
    Image.fromarray(ramp).save(path)
    windowed = PixelLogistic(size=4, window="7000,4001")
    assert np.allclose(windowed.transform([str(path)]), 128 / 255)  # ((7000 - 6999.5) / 4000 + 0.5) * 255 = 127.53
    assert np.allclose(PixelLogistic(size=4).transform([str(path)]), 27 / 255)  # 7000 / 257 = 27.24
    settings, _ = windowed.state()
    restored = PixelLogistic()
    restored.set_state(settings, {})
    assert settings["window"] == "7000,4001" and restored.window == Window(7000.0, 4001.0)


def test_window_object_round_trips_through_a_saved_config():
    import json

    assert parse_window(json.loads(json.dumps({"w": Window(40, 400)}, default=str))["w"]) == Window(40.0, 400.0)


def test_16bit_png_folder_fits_and_predicts_with_a_window(tmp_path):
    rng = np.random.default_rng(1)
    for label, row in (("top", slice(0, 8)), ("bottom", slice(8, 16))):
        (tmp_path / label).mkdir()
        for i in range(4):
            pixels = rng.integers(30000, 31000, (16, 16)).astype(np.uint16)
            pixels[row] += 600  # 2 grey levels once divided by 257; the window spreads 30500..31100 over 0..255
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    paths, labels = list_image_folder(tmp_path)
    clf = TransferClassifier(backbone="efficientnet_lite0", image_size=32, window="30800,601", val_size=2,
                             cache_dir="none", verbose=0).fit(tmp_path)
    assert clf.backbone_.window == Window(30800.0, 601.0)
    assert (clf.predict(paths) == np.asarray(labels)).mean() >= 0.75


def test_dicom_without_pydicom_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now raises ImportError
    with pytest.raises(DataError, match=r"MR_small\.dcm: pydicom is not installed; install it with "
                                        r"pip install 'headstart\[medical\]'"):
        load_image(get_testdata_file("MR_small.dcm"))


def test_ranking_and_planner_baseline_read_images_with_the_window(dicom_folder, monkeypatch):
    from headstart.baselines import pixels
    from headstart.selection import rank_backbones

    paths, labels = list_image_folder(dicom_folder)
    scores = {w: rank_backbones(paths, labels, ["efficientnet_lite0"], layers="last", cache="none", image_size=32,
                                window=w)[0].score for w in (None, "40,400")}
    assert scores[None] != scores["40,400"]  # the window reaches the ranking pass's decoding
    seen = []
    original = pixels.PixelLogistic.fit
    monkeypatch.setattr(pixels.PixelLogistic, "fit",
                        lambda self, *args, **kwargs: seen.append(self.window) or original(self, *args, **kwargs))
    TransferClassifier(strategy="auto", backbone="efficientnet_lite0", image_size=32, window="40,400", budget="20s",
                       cache_dir="none", verbose=0).fit(dicom_folder)
    assert seen and all(w == Window(40.0, 400.0) for w in seen)
