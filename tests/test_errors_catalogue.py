"""One test per entry of docs/errors.md: each bad input, through the public API, and the exact message.

The regexes hold the stable parts of each message; paths are matched with ``re.escape``. The last
test reads docs/errors.md and checks that every test it cites exists here, so the catalogue cannot
drift from the code.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart import TransferClassifier
from headstart.cli import main
from headstart.data import from_arrays, load_dataset
from headstart.errors import (
    DataError,
    DataPathError,
    RunFolderError,
    UnknownNameError,
)

from helpers import tiny_images, tiny_texts

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
FAST = dict(strategy="linear_probe", cache_dir="none", verbose=0)


def esc(path) -> str:
    return re.escape(str(path))


def write_image_folder(root: Path, per_class: int = 3) -> Path:
    X, y = tiny_images(per_class)
    for i, (image, label) in enumerate(zip(X, y)):
        (root / f"digit_{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / f"digit_{label}" / f"{i}.png")
    return root


def truncated_jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def write_csv(path: Path, header: str, rows) -> Path:
    lines = [header] + [",".join(f'"{c}"' for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_error(capsys, argv) -> str:
    """Run the CLI, check it failed as a user error, return the one error line."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("headstart: error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def features_run(tmp_path_factory) -> Path:
    """A saved run folder (precomputed features: it fits in milliseconds)."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("runs") / "features"
    TransferClassifier(backbone="precomputed", **FAST).fit(rng.normal(size=(20, 4)), np.array(["a", "b"] * 10)).save(folder)
    return folder


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A real text model (minilm_l6) with max_length=8 tokens, fitted once and saved."""
    texts, labels = tiny_texts(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        clf = TransferClassifier(max_length=8, val_size=2, **FAST).fit(texts, labels)
    folder = tmp_path_factory.mktemp("runs") / "text"
    clf.save(folder)
    return clf, folder, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# --------------------------------------------------------------------------- paths and folders


def test_missing_path(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataPathError, match=rf"^no such file or folder: {esc(tmp_path / 'photo')}\. "
                                            rf"Did you mean 'photos' \(in {esc(tmp_path)}\)\?$"):
        load_dataset(tmp_path / "photo")
    with pytest.raises(FileNotFoundError, match=rf"^no such file or folder: {esc(tmp_path / 'zzz')}\. Check the "
                                                r"path; a relative path is read from the current folder, .+\.$"):
        load_dataset(tmp_path / "zzz")


def test_empty_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataPathError, match=rf"^the folder {esc(tmp_path / 'photos')} is empty\. An image dataset "
                                            rf"is laid out as {esc(tmp_path / 'photos')}/<class>/<image>, one "
                                            r"subfolder per class\.$"):
        load_dataset(tmp_path / "photos")


def test_empty_file(tmp_path):
    (tmp_path / "data.csv").write_bytes(b"")
    with pytest.raises(DataPathError, match=rf"^{esc(tmp_path / 'data.csv')} is empty \(0 bytes\)\. A table needs "
                                            r"a header row and one row per example; re-export the file"):
        load_dataset(tmp_path / "data.csv")
    (tmp_path / "header.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataPathError, match=rf"^{esc(tmp_path / 'header.csv')} has no data rows \(only a header "
                                            r"or an empty list\)\. Add one row per example"):
        load_dataset(tmp_path / "header.csv")


def test_no_images_found(tmp_path):
    (tmp_path / "docs" / "cat").mkdir(parents=True)
    (tmp_path / "docs" / "cat" / "notes.txt").write_text("hi")
    (tmp_path / "docs" / "cat" / "scan.heic").write_bytes(b"\x00")
    with pytest.raises(DataPathError, match=rf"^no images found in {esc(tmp_path / 'docs')}: looked for \.jpg, "
                                            r"\.jpeg, \.png, \.bmp, \.gif, \.tif, \.tiff, \.webp, \.dcm, \.dicom \(any case\) in "
                                            r".+/<class>/<image>, but found 2 file\(s\): cat/notes\.txt, "
                                            r"cat/scan\.heic\.$"):
        load_dataset(tmp_path / "docs")


# --------------------------------------------------------------------------- images


def _folder_with_bad_images(root: Path) -> dict[str, Path]:
    write_image_folder(root)
    bad = {"truncated": root / "digit_0" / "cut.jpg", "zero": root / "digit_1" / "zero.png",
           "junk": root / "digit_1" / "notes.png"}
    bad["truncated"].write_bytes(truncated_jpeg_bytes())
    bad["zero"].write_bytes(b"")
    bad["junk"].write_bytes(b"this is not an image")
    return bad


def test_unreadable_images_are_skipped_and_reported(tmp_path):
    bad = _folder_with_bad_images(tmp_path / "digits")
    with pytest.warns(UserWarning, match=r"^skipped 3 of 9 images that could not be read: .+ \(pass strict=True "
                                         r"to fail instead\)\.$"):
        data = load_dataset(tmp_path / "digits")
    reasons = {s.where: s.reason for s in data.skipped}
    assert reasons[str(bad["zero"])] == "empty file (0 bytes)"
    assert reasons[str(bad["junk"])] == "not a recognised image format (Pillow cannot identify it)"
    assert re.fullmatch(r"truncated image file \(image file is truncated \(\d+ bytes not processed\)\)",
                        reasons[str(bad["truncated"])])
    assert len(data) == 6


def test_unreadable_image_fails_with_strict(tmp_path):
    bad = _folder_with_bad_images(tmp_path / "digits")
    with pytest.raises(DataError, match=rf"^cannot read image {esc(bad['truncated'])}: truncated image file "
                                        r"\(.+\)\. Delete or re-export the file, or leave strict off to skip it\.$"):
        load_dataset(tmp_path / "digits", strict=True)


def test_unreadable_image_fails_with_cli_strict(tmp_path, capsys):
    bad = _folder_with_bad_images(tmp_path / "digits")
    line = cli_error(capsys, ["fit", tmp_path / "digits", "--out", tmp_path / "run", "--strict", "-q"])
    assert re.fullmatch(rf"headstart: error: cannot read image {esc(bad['truncated'])}: truncated image file "
                        r"\(.+\)\. Delete or re-export the file, or leave strict off to skip it\.", line)
    assert not (tmp_path / "run").exists()


def test_mixed_image_modes_and_sizes_are_converted(tmp_path):
    """Not an error: every mode is converted to RGB and every size resized to image_size."""
    X, y = tiny_images(4)
    modes = ["L", "RGB", "RGBA", "P", "CMYK", "1", "I;16", "LA"]
    for i, (image, label) in enumerate(zip(X, y)):
        size = (8 + 5 * i, 30 - i)
        picture = Image.fromarray(image).convert("RGB").resize(size)
        mode = modes[i % len(modes)]
        picture = picture.convert("I").convert("I;16") if mode == "I;16" else picture.convert(mode)
        folder = tmp_path / "digits" / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing warned
        data = load_dataset(tmp_path / "digits")
    assert len(data) == len(X) and data.skipped == []
    clf = TransferClassifier(image_size=32, val_size=2, **FAST).fit(data)
    assert clf.fit_summary_["n_skipped"] == 0
    assert clf.predict_proba(data.inputs).shape == (len(X), 2)


# --------------------------------------------------------------------------- labels


def test_label_column_misspelt_suggests_close_match(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", "text,lable", [("great film", "pos"), ("dull", "neg")])
    with pytest.raises(DataError, match=rf"^{esc(path)} has no label column: looked for label, labels, class, "
                                        r"target, y, category; columns present: 'text', 'lable'\. Column 'lable' "
                                        r"looks like a misspelling of 'label': rename it, or pass "
                                        r"label_column='lable' \(on the command line --label-column 'lable'\)\.$"):
        load_dataset(path)


def test_label_column_argument_misspelt(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", "text,sentiment", [("great film", "pos"), ("dull", "neg")])
    with pytest.raises(DataError, match=rf"^{esc(path)} has no label column 'sentimnet'; columns present: 'text', "
                                        r"'sentiment'\. Did you mean 'sentiment'\? Pass label_column= \(on the "
                                        r"command line --label-column\) with one of those names\.$"):
        load_dataset(path, label_column="sentimnet")


def test_one_class_only():
    texts, _ = tiny_texts(3)
    with pytest.raises(DataError, match=r"^only one class \('positive'\) found in array X; a classifier needs at "
                                        r"least two\. All 3 examples have that label: add examples of at least one "
                                        r"other class\.$"):
        TransferClassifier(**FAST).fit(texts[:3], ["positive"] * 3)


def test_class_with_too_few_examples_for_a_split():
    texts, _ = tiny_texts(4)
    with pytest.raises(DataError, match=r"^class 'neutral' has only 1 example; a train/validation split needs at "
                                        r"least 2 per class\. Add at least one more example of 'neutral', or "
                                        r"remove the class\.$"):
        TransferClassifier(**FAST).fit(texts[:7], ["positive"] * 3 + ["negative"] * 3 + ["neutral"])


def test_auto_with_too_few_examples_per_class():
    texts, _ = tiny_texts(4)
    with pytest.raises(DataError, match=r"^strategy='auto' scores every candidate on held-out examples, so it needs at "
                                        r"least 3 labeled examples per class; too few for: 'neutral' \(2\)\. Add "
                                        r"examples of those classes, or pick a strategy yourself \(e\.g\. "
                                        r"strategy='linear_probe'\)\.$"):
        TransferClassifier(strategy="auto", cache_dir="none", verbose=0).fit(
            texts[:8], ["positive"] * 3 + ["negative"] * 3 + ["neutral"] * 2)


def test_evaluate_with_labels_the_model_never_saw(tmp_path, capsys, text_run):
    _, run, _ = text_run
    path = write_csv(tmp_path / "test.csv", "text,label",
                     [("a lovely film", "positive"), ("awful", "negative"), ("it was fine", "neutral"),
                      ("so-so", "neutral")])
    line = cli_error(capsys, ["evaluate", run, path])
    assert line == (f"headstart: error: {path} has label(s) the model in {run} never saw in training: "
                    "'neutral' (2 rows). The model knows 2 classes: 'negative', 'positive'. Remove those rows, "
                    "or fit a new model that includes them")


# --------------------------------------------------------------------------- text


def test_empty_text_in_a_list():
    texts, labels = tiny_texts(3)
    texts[4] = " \t "
    with pytest.raises(DataError, match=r"^X\[4\] is an empty or whitespace-only string \(' \\t '\)\. Remove it "
                                        r"or fill it in\.$"):
        TransferClassifier(**FAST).fit(texts, labels)


def test_empty_text_in_a_table(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", "text,label", [("great", "pos"), ("   ", "neg"), ("dull", "neg")])
    with pytest.raises(DataError, match=rf"^row 2 of {esc(path)} \(data rows counted from 1, header not counted; "
                                        r"spreadsheet row 3\) has an empty text in column 'text' \(value: '   '\)\. "
                                        r"Fill it in or delete the row\.$"):
        load_dataset(path)


def test_text_longer_than_max_length_is_truncated(text_run):
    """Not an error: texts are cut to max_length tokens (here 8); words beyond it change nothing."""
    clf, _, fit_warnings = text_run
    assert fit_warnings == ["8 of 8 inputs of array X are longer than minilm_l6's 8 tokens and were truncated; "
                            "raise max_length (up to the model's limit) if their ends matter"]
    assert clf.fit_summary_["n_truncated"] == 8
    start = "the acting was wonderful and the story moved me to tears"
    long = start + " but then" * 200 + " it was the worst film ever made"
    short_p, long_p = clf.predict_proba([start, long])
    np.testing.assert_allclose(short_p, long_p, atol=1e-6)
    assert clf.backbone_.max_length == 8


# --------------------------------------------------------------------------- arrays


def test_nan_or_inf_in_an_array():
    with pytest.raises(DataError, match=r"^X contains nan at index \(1, 2\) \(row, col…\); NaN and inf are not "
                                        r"allowed\. Fill or drop those values first\.$"):
        from_arrays(np.array([[0.0, 1, 2], [3, 4, np.nan]]), [0, 1])
    images = np.zeros((4, 8, 8), dtype=np.float32)
    images[2, 3, 1] = np.inf
    with pytest.raises(DataError, match=r"^X contains inf at index \(2, 3, 1\) \(row, col…\)"):
        TransferClassifier(**FAST).fit(images, [0, 1, 0, 1])


def test_nan_with_precomputed_backbone_keeps_sklearns_wording():
    """backbone='precomputed' validates features with scikit-learn: its wording, as a DataError."""
    X = np.array([[0.0, 1.0], [np.nan, 2.0]] * 4)
    with pytest.raises(DataError, match=r"(?s)^Input X contains NaN\..*backbone='precomputed' takes a 2-D array of finite numbers"):
        TransferClassifier(backbone="precomputed", **FAST).fit(X, [0, 1] * 4)


def test_wrong_array_shape():
    with pytest.raises(DataError, match=r"^X has shape \(3,\) \(1-D\), which headstart cannot use\. Accepted: "
                                        r"uint8 images of shape \(n, h, w\) or \(n, h, w, c\) with c in 1, 3, 4; a "
                                        r"2-D array \(n, features\) of precomputed features"):
        from_arrays(np.array([1.0, 2.0, 3.0]), [0, 1, 0])
    with pytest.raises(DataError, match=r"^X has shape \(4, 3, 8, 8\): read as \(n, h, w, c\), c=8 channels is not "
                                        r"supported \(1, 3 or 4\)\. If channels come first \(n, c, h, w\), pass "
                                        r"X\.transpose\(0, 2, 3, 1\)\."):
        TransferClassifier(**FAST).fit(np.zeros((4, 3, 8, 8), np.uint8), [0, 1, 0, 1])
    with pytest.raises(DataError, match=r"^y must be 1-D, one label per example; got shape \(4, 2\)\. If it is "
                                        r"one-hot encoded, pass y\.argmax\(axis=1\)\.$"):
        from_arrays(np.zeros((4, 8, 8), np.uint8), np.eye(2)[[0, 1, 0, 1]])


# --------------------------------------------------------------------------- files and names


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("text,label\nsehr schön,pos\nöde,neg\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"^{esc(path)} is not UTF-8: byte 0xf6 at byte offset 19 \(line 2\) is not "
                                        r"valid UTF-8\. headstart does not guess encodings\. Re-save the file as "
                                        r"UTF-8, e\.g\. in Excel 'Save As > CSV UTF-8', or in Python: "
                                        r"pandas\.read_csv\(path, encoding='latin-1'\)\.to_csv\(path, index=False\)\.$"):
        load_dataset(path)


def test_unknown_backbone_name():
    texts, labels = tiny_texts(3)
    with pytest.raises(UnknownNameError, match=r"^unknown backbone 'minilm_l7'\. Did you mean 'minilm_l6'\? Use a zoo "
                                               r"model \(efficientnet_lite0, .*minilm_l6.*\), 'timm:<timm model name>', "
                                               r"'hf:<Hugging Face model id>', a local Hugging Face model directory, "
                                               r"or 'precomputed'; `headstart models list` shows the zoo$"):
        TransferClassifier(backbone="minilm_l7", **FAST).fit(texts, labels)


def test_unknown_strategy_name():
    texts, labels = tiny_texts(3)
    with pytest.raises(UnknownNameError, match=r"^unknown strategy 'fine_tune'\. Did you mean 'finetune'\? Known: "
                                               r"contrastive, finetune, linear_probe, lora, lp_ft, scratch"):
        TransferClassifier(strategy="fine_tune", verbose=0).fit(texts, labels)


# --------------------------------------------------------------------------- run folders


def test_run_folder_missing(tmp_path):
    with pytest.raises(RunFolderError, match=rf"^run folder {re.escape(repr(str(tmp_path / 'nowhere')))} does not "
                                             r"exist; pass the --out folder of `headstart fit` or a `clf\.save\(\)` "
                                             r"path$"):
        TransferClassifier.load(tmp_path / "nowhere")


def test_run_folder_without_config(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    (run / "config.json").unlink()
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'config.json')} is missing: {esc(run)} is not a "
                                             r"headstart run folder \(or it was not saved completely\)$"):
        TransferClassifier.load(run)


def test_run_folder_without_weights(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    (run / "model.safetensors").unlink()
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'model.safetensors')} is missing; the run folder is "
                                             r"incomplete, re-save the model$"):
        TransferClassifier.load(run)


def test_run_folder_tampered_weights(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    (run / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'model.safetensors')} is not a readable safetensors "
                                             r"file \(Error while deserializing header: .+\); it is truncated or "
                                             r"tampered with, re-save the model$"):
        TransferClassifier.load(run)


def test_run_folder_truncated_weights(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'model.safetensors')} is not a readable safetensors "
                                             r"file \(.+\); it is truncated or tampered with, re-save the model$"):
        TransferClassifier.load(run)


def _edit_config(run: Path, edit) -> None:
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


def test_run_folder_config_wrong_schema(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    config = run / "config.json"
    _edit_config(run, lambda c: c.pop("classes"))
    with pytest.raises(RunFolderError, match=rf"^{esc(config)} lacks the field 'classes'; re-save the model with "
                                             r"headstart \S+$"):
        TransferClassifier.load(run)
    shutil.copy(features_run / "config.json", config)
    _edit_config(run, lambda c: c.update(feature_dim="4"))
    with pytest.raises(RunFolderError, match=rf"^{esc(config)}: field 'feature_dim' has the wrong type \('4'\); the "
                                             r"file was edited or damaged$"):
        TransferClassifier.load(run)
    config.write_text("[1, 2]")
    with pytest.raises(RunFolderError, match=rf"^{esc(config)} must hold a JSON object, found list$"):
        TransferClassifier.load(run)


def test_run_folder_config_not_json(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    text = (run / "config.json").read_text()
    (run / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'config.json')} is not valid JSON \(.+\); the file is "
                                             r"damaged or was edited by hand, re-save the model$"):
        TransferClassifier.load(run)


def test_run_folder_newer_format(tmp_path, features_run):
    run = copy_run(features_run, tmp_path)
    _edit_config(run, lambda c: c.update(format_version=2, headstart_version="9.0.0"))
    with pytest.raises(RunFolderError, match=rf"^{esc(run / 'config.json')} was written by headstart 9\.0\.0 in "
                                             r"run-folder format 2; this headstart \(\S+\) reads format 1 and older\. "
                                             r"Upgrade headstart: pip install -U headstart$"):
        TransferClassifier.load(run)


# --------------------------------------------------------------------------- the catalogue itself


def test_catalogue_cites_only_existing_tests():
    text = CATALOGUE.read_text(encoding="utf-8")
    cited = set(re.findall(r"test_errors_catalogue\.py::(test_\w+)", text))
    defined = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    assert cited, "docs/errors.md cites no tests"
    assert not cited - defined, f"docs/errors.md cites tests that do not exist: {sorted(cited - defined)}"
    uncited = defined - cited - {"test_catalogue_cites_only_existing_tests"}
    assert not uncited, f"tests not cited in docs/errors.md: {sorted(uncited)}"


def test_training_that_diverges():
    from headstart.errors import TrainingDivergedError

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), np.repeat(["a", "b"], 20)
    with pytest.raises(TrainingDivergedError, match=r"^training diverged at epoch 1, batch \d+: the loss is (nan|inf); "
                                                    r"lower the learning rate \(lr=1e\+30\)$"):
        TransferClassifier(strategy="finetune", backbone="precomputed", lr=1e30, batch_size=4, epochs=2,
                           verbose=0).fit(X, y)
