"""Tests of headstart.data: loading folders, tables and arrays, image modes, labels and splits."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from headstart.data import (
    LabeledData,
    SkippedInput,
    check_classification_labels,
    from_arrays,
    load_dataset,
    load_image,
    stratified_split,
)
from headstart.errors import DataError, DataPathError

# --------------------------------------------------------------------------- helpers


def save_image(path: Path, mode: str = "RGB", size=(16, 16), color=(200, 30, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).convert(mode).save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def image_folder(root: Path, classes=("cat", "dog"), per_class=3) -> Path:
    for c in classes:
        for i in range(per_class):
            save_image(root / c / f"{i}.png")
    return root


# --------------------------------------------------------------------------- image folders


def test_load_dataset_folder_reads_classes_sorted(tmp_path):
    root = image_folder(tmp_path / "pets")
    save_image(root / "cat" / "extra.JPG")  # upper-case extension counts
    (root / ".hidden").mkdir()
    save_image(root / ".hidden" / "x.png")
    save_image(root / "dog" / ".thumb.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_dataset(root)
    assert isinstance(data, LabeledData)
    assert data.modality == "image" and len(data) == 7 and data.skipped == []
    assert list(data.labels) == ["cat"] * 4 + ["dog"] * 3
    assert data.inputs == sorted(data.inputs) and all(isinstance(p, str) for p in data.inputs)
    assert all(Path(p).is_absolute() for p in data.inputs)
    assert data.source == str(root)


def test_load_dataset_missing_path_suggests_sibling(tmp_path):
    image_folder(tmp_path / "pets")
    with pytest.raises(DataPathError, match=r"no such file or folder: .*pest.*Did you mean 'pets'"):
        load_dataset(tmp_path / "pest")


def test_load_dataset_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope"))):
        load_dataset(tmp_path / "nope")


def test_load_dataset_empty_folder_says_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataPathError, match=r"is empty.*<class>/<image>"):
        load_dataset(tmp_path / "empty")


def test_load_dataset_empty_file_says_empty(tmp_path):
    (tmp_path / "data.csv").write_bytes(b"")
    with pytest.raises(DataPathError, match=r"data\.csv is empty \(0 bytes\)"):
        load_dataset(tmp_path / "data.csv")


def test_load_dataset_no_images_lists_extensions_and_found_files(tmp_path):
    root = tmp_path / "docs"
    (root / "a").mkdir(parents=True)
    for name in ("x.txt", "y.txt", "z.doc"):
        (root / "a" / name).write_text("hi")
    with pytest.raises(DataPathError, match=r"no images found.*\.jpg, \.jpeg.*\.webp.*found 3 file\(s\): a/x\.txt"):
        load_dataset(root)


def test_load_dataset_images_in_root_explain_layout(tmp_path):
    root = tmp_path / "flat"
    save_image(root / "1.png")
    save_image(root / "2.png")
    with pytest.raises(DataPathError, match=r"directly inside it \(1\.png, 2\.png\).*<class>/<image>.*cat/1\.jpg"):
        load_dataset(root)


def test_load_dataset_unsupported_file_lists_formats(tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataPathError, match=r"\.xlsx is not a supported format.*\.csv, \.tsv"):
        load_dataset(tmp_path / "data.xlsx")


# --------------------------------------------------------------------------- unreadable images


def test_load_dataset_bad_images_skipped_and_reported(tmp_path):
    root = image_folder(tmp_path / "pets")
    trunc = truncated_jpeg(root / "cat" / "trunc.jpg")
    zero = root / "dog" / "zero.png"
    zero.write_bytes(b"")
    junk = root / "dog" / "junk.gif"
    junk.write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match=r"skipped 3 of 9 images.*strict=True") as rec:
        data = load_dataset(root)
    assert len(rec) == 1  # a single summary warning
    assert len(data) == 6 and len(data.labels) == 6
    by_where = {s.where: s.reason for s in data.skipped}
    assert set(by_where) == {str(trunc), str(zero), str(junk)}
    assert all(isinstance(s, SkippedInput) for s in data.skipped)
    assert by_where[str(trunc)].startswith("truncated image file")
    assert by_where[str(zero)] == "empty file (0 bytes)"
    assert "not a recognised image format" in by_where[str(junk)]
    assert not set(data.inputs) & set(by_where)  # no skipped item sneaks into the inputs


def test_load_dataset_strict_raises_on_truncated_image(tmp_path):
    root = image_folder(tmp_path / "pets")
    truncated_jpeg(root / "cat" / "trunc.jpg")
    with pytest.raises(DataError, match=r"trunc\.jpg: truncated image file.*Delete or re-export the file, or leave strict off"):
        load_dataset(root, strict=True)


def test_load_dataset_all_images_unreadable_raises(tmp_path):
    root = tmp_path / "bad"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        (root / c / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 2 images could be read.*empty file"):
        load_dataset(root)


# --------------------------------------------------------------------------- tables


def test_load_dataset_csv_text_autodetects_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["good", "bad", "NA"], "label": ["pos", "neg", "neg"]}).to_csv(path, index=False)
    data = load_dataset(path)
    assert data.modality == "text" and data.inputs == ["good", "bad", "NA"]  # "NA" is text, not missing
    assert list(data.labels) == ["pos", "neg", "neg"] and data.source == str(path)


def test_load_dataset_tsv_numeric_labels_kept_as_given(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("Sentence\ttarget\nhello\t1\nbye\t0\n", encoding="utf-8")
    data = load_dataset(path)
    assert data.inputs == ["hello", "bye"] and data.labels.tolist() == [1, 0]


def test_load_dataset_jsonl_and_json_records(tmp_path):
    rows = [{"text": "a", "class": "x"}, {"text": "b", "class": "y"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "d.json").write_text(json.dumps(rows), encoding="utf-8")
    for name in ("d.jsonl", "d.json"):
        data = load_dataset(tmp_path / name)
        assert data.inputs == ["a", "b"] and list(data.labels) == ["x", "y"]


def test_load_dataset_parquet_images_resolved_relative_to_table(tmp_path):
    save_image(tmp_path / "imgs" / "a.png", "L")
    save_image(tmp_path / "imgs" / "b.png")
    path = tmp_path / "meta" / "d.parquet"
    path.parent.mkdir()
    pd.DataFrame({"image_path": ["../imgs/a.png", "../imgs/b.png"], "label": [0, 1]}).to_parquet(path)
    data = load_dataset(path)
    assert data.modality == "image" and data.labels.tolist() == [0, 1]
    assert [Path(p).resolve() for p in data.inputs] == [(tmp_path / "imgs" / n).resolve() for n in ("a.png", "b.png")]


def test_load_dataset_table_bad_image_skipped_with_row(tmp_path):
    save_image(tmp_path / "a.png")
    save_image(tmp_path / "b.png")
    truncated_jpeg(tmp_path / "c.jpg")
    path = tmp_path / "d.csv"
    path.write_text("file,label\na.png,x\nc.jpg,y\nb.png,y\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 images.*c\.jpg \(row 2 of d\.csv\)"):
        data = load_dataset(path)
    assert [Path(p).name for p in data.inputs] == ["a.png", "b.png"]
    assert data.labels.tolist() == ["x", "y"]  # filtered with the inputs
    assert len(data.skipped) == 1 and "row 2 of d.csv" in data.skipped[0].where
    with pytest.raises(DataError, match=r"c\.jpg \(row 2 of d\.csv\): truncated.*leave strict off"):
        load_dataset(path, strict=True)


def test_load_dataset_latin1_csv_names_byte_offset(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\u00e9,x\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv is not UTF-8: byte 0xe9 at byte offset 14 \(line 2\).*Re-save the file as UTF-8"):
        load_dataset(path)


def test_load_dataset_misspelt_label_column_suggests(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,labels_\nhi,x\nyo,y\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv has no label column 'lable'; columns present: 'text', 'labels_'\. Did you mean 'labels_'"):
        load_dataset(path, label_column="lable")


def test_load_dataset_no_label_column_lists_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,kind\nhi,x\nyo,y\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv has no label column: looked for label, labels.*columns present: 'text', 'kind'.*label_column="):
        load_dataset(path)
    assert load_dataset(path, label_column="kind").labels.tolist() == ["x", "y"]


def test_load_dataset_missing_text_column_suggests(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("txt,label\nhi,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no text column 'text'.*'txt', 'label'.*Did you mean 'txt'"):
        load_dataset(path, text_column="text")


def test_load_dataset_empty_text_names_row(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngood,pos\n   ,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2 of .*reviews\.csv \(data rows counted from 1, header not counted; spreadsheet row 3\) has an empty text.*Fill it in or delete the row"):
        load_dataset(path)


def test_load_dataset_missing_label_names_row(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngood,pos\nbad,\nok,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2 of .*reviews\.csv.*has no label in column 'label'.*Fill it in or delete the row"):
        load_dataset(path)


def test_load_dataset_predict_time_without_labels(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("text\nhello\nworld\n", encoding="utf-8")
    data = load_dataset(path, require_labels=False)
    assert data.labels is None and data.inputs == ["hello", "world"]
    with pytest.raises(DataError, match="no label column"):
        load_dataset(path)


def test_load_dataset_header_only_table(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataPathError, match=r"d\.csv has no data rows"):
        load_dataset(path)


# --------------------------------------------------------------------------- load_image modes


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "P", "RGBA", "LA", "PA", "CMYK", "YCbCr", "I", "F", "La", "RGBa"])
def test_load_image_mode_converts_to_rgb(mode):
    im = Image.new("RGB", (16, 16), (120, 120, 120)).convert(mode)
    out = load_image(im)
    assert out.mode == "RGB" and out.size == (16, 16)
    assert out is not im


def test_load_image_files_of_each_mode_are_rgb(tmp_path):
    for mode, ext in [("L", "png"), ("P", "gif"), ("RGBA", "png"), ("CMYK", "jpg"), ("RGB", "bmp"), ("RGB", "webp"), ("I;16", "tif")]:
        if mode == "I;16":
            p = tmp_path / f"x.{ext}"
            Image.fromarray(np.full((16, 16), 1000, np.uint16)).save(p)
        else:
            p = save_image(tmp_path / f"{mode}.{ext}", mode)
        out = load_image(str(p))
        assert out.mode == "RGB" and out.size == (16, 16), (mode, ext)


def test_load_image_transparency_composited_over_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0] * 256)
    p.info["transparency"] = 0
    assert load_image(p).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(Image.new("LA", (4, 4), (0, 255))).getpixel((0, 0)) == (0, 0, 0)


def test_load_image_16bit_scaled_by_dtype_range_not_image_max(tmp_path):
    a = np.full((8, 8), 257 * 100, np.uint16)  # a dark 16-bit image: 100/255
    for item in (Image.fromarray(a), a, Image.fromarray(a.astype(np.int32), mode="I")):
        assert load_image(item).getpixel((0, 0)) == (100, 100, 100)
    path = tmp_path / "dark16.png"
    Image.fromarray(a).save(path)
    assert load_image(path).getpixel((0, 0)) == (100, 100, 100)
    big_endian = Image.frombytes("I;16B", (8, 8), a.astype(">u2").tobytes())
    assert load_image(big_endian).getpixel((0, 0)) == (100, 100, 100)


def test_load_image_float_mode_reads_unit_range():
    f = Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F")
    assert load_image(f).getpixel((0, 0)) == (128, 128, 128)


def test_load_image_arrays_of_each_shape():
    assert load_image(np.zeros((5, 6), np.uint8)).size == (6, 5)
    assert load_image(np.zeros((5, 6, 1), np.uint8)).mode == "RGB"
    assert load_image(np.zeros((5, 6, 4), np.uint8)).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(DataError, match=r"must be uint8.*got dtype float64.*astype\(np\.uint8\)"):
        load_image(np.zeros((5, 6, 3)))
    with pytest.raises(DataError, match=r"got shape \(5, 6, 2\)"):
        load_image(np.zeros((5, 6, 2), np.uint8))


def test_load_image_bad_file_and_missing_file(tmp_path):
    with pytest.raises(DataPathError, match=r"image file not found: .*nope\.png"):
        load_image(tmp_path / "nope.png")
    p = truncated_jpeg(tmp_path / "t.jpg")
    with pytest.raises(DataError, match=r"cannot read image .*t\.jpg: truncated image file"):
        load_image(str(p))
    with pytest.raises(DataError, match=r"cannot use a int as an image"):
        load_image(3)


def test_load_image_closes_file(tmp_path):
    p = save_image(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        im = load_image(p)
    p.unlink()  # the pixels were read: the image is usable without the file
    assert im.getpixel((0, 0)) == (200, 30, 40)


# --------------------------------------------------------------------------- from_arrays


def test_from_arrays_text():
    data = from_arrays(["a b", "c"], ["x", "y"])
    assert data.modality == "text" and data.source == "array X" and data.labels.tolist() == ["x", "y"]


def test_from_arrays_image_paths_filter_labels_with_skips(tmp_path):
    good = [str(save_image(tmp_path / f"{i}.png")) for i in range(3)]
    bad = truncated_jpeg(tmp_path / "bad.jpg")
    X = [good[0], str(bad), good[1], good[2]]
    with pytest.warns(UserWarning, match=r"skipped 1 of 4 images.*X\[1\]"):
        data = from_arrays(X, ["a", "b", "c", "d"])
    assert data.modality == "image" and data.inputs == [good[0], good[1], good[2]]
    assert data.labels.tolist() == ["a", "c", "d"]  # never misaligned
    assert data.skipped[0].where.startswith("X[1]") and "truncated" in data.skipped[0].reason
    with pytest.raises(DataError, match=r"X\[1\].*bad\.jpg.*truncated.*leave strict off"):
        from_arrays(X, ["a", "b", "c", "d"], strict=True)


def test_from_arrays_mixed_paths_and_text_names_indices(tmp_path):
    p = str(save_image(tmp_path / "a.png"))
    with pytest.raises(DataError, match=r"mixes image paths and text: X\[0\].*existing image file but X\[1\] \('hello world'\)"):
        from_arrays([p, "hello world"])


def test_from_arrays_missing_image_path_named(tmp_path):
    p = str(save_image(tmp_path / "a.png"))
    with pytest.raises(DataError, match=r"looks like image paths, but X\[1\] .*b\.png.* is not a file"):
        from_arrays([p, str(tmp_path / "b.png")])


def test_from_arrays_pil_and_uint8_arrays():
    pil = from_arrays([Image.new("L", (4, 4)), Image.new("RGB", (5, 5))], [0, 1])
    assert pil.modality == "image"
    arr = from_arrays(np.zeros((3, 8, 8, 3), np.uint8), [0, 1, 0])
    assert arr.modality == "image" and len(arr) == 3 and arr.inputs[0].shape == (8, 8, 3)
    assert from_arrays(np.zeros((2, 8, 8), np.uint8)).inputs[1].shape == (8, 8)
    assert load_image(arr.inputs[0]).mode == "RGB"


def test_from_arrays_2d_numeric_is_features():
    data = from_arrays(np.arange(6).reshape(3, 2), [0, 1, 0])
    assert data.modality == "features" and data.inputs[0].dtype == np.float32 and len(data) == 3


def test_from_arrays_float_images_explain_uint8():
    with pytest.raises(DataError, match=r"shape \(2, 8, 8, 3\) and dtype float64; image arrays must be uint8.*\(X \* 255\)\.round\(\)\.astype\(np\.uint8\).*backbone='precomputed'"):
        from_arrays(np.zeros((2, 8, 8, 3)))


def test_from_arrays_nan_names_index():
    X = np.zeros((3, 4))
    X[1, 2] = np.nan
    with pytest.raises(DataError, match=r"nan at index \(1, 2\).*NaN and inf are not allowed"):
        from_arrays(X)


def test_from_arrays_wrong_ndim_and_channels():
    with pytest.raises(DataError, match=r"shape \(5,\) \(1-D\)"):
        from_arrays(np.zeros(5))
    with pytest.raises(DataError, match=r"shape \(2, 3, 8, 8\).*c=8 channels.*transpose\(0, 2, 3, 1\)"):
        from_arrays(np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"shape \(1, 2, 3, 4, 5\) \(5-D\)"):
        from_arrays(np.zeros((1, 2, 3, 4, 5), np.uint8))


def test_from_arrays_length_mismatch_gives_both():
    with pytest.raises(DataError, match=r"X has 3 examples but y has 2 labels"):
        from_arrays(["a", "b", "c"], ["x", "y"])


def test_from_arrays_empty_and_blank():
    with pytest.raises(DataError, match=r"X is empty"):
        from_arrays([])
    with pytest.raises(DataError, match=r"X is empty"):
        from_arrays(np.zeros((0, 4)))
    with pytest.raises(DataError, match=r"texts\[1\] is an empty or whitespace-only string"):
        from_arrays(["ok", "  "], name="texts")
    with pytest.raises(DataError, match=r"X\[1\] is missing \(None\)"):
        from_arrays(["ok", None])


def test_from_arrays_mixed_types_and_single_string():
    with pytest.raises(DataError, match=r"X\[0\] is a str but X\[1\] is a Image"):
        from_arrays(["a", Image.new("L", (2, 2))])
    with pytest.raises(DataError, match=r"single path or string.*load_dataset\(path\)"):
        from_arrays("data/train.csv")


def test_from_arrays_pandas_inputs():
    df = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    data = from_arrays(df[["text"]], df["label"])
    assert data.modality == "text" and data.inputs == ["a", "b"] and data.labels.tolist() == ["x", "y"]


# --------------------------------------------------------------------------- labels


def test_check_classification_labels_one_class():
    with pytest.raises(DataError, match=r"only one class \('cat'\) found in pets/; a classifier needs at least two"):
        check_classification_labels(np.array(["cat", "cat"]), "pets/")


def test_check_classification_labels_missing_names_index():
    with pytest.raises(DataError, match=r"label at index 2 of y is missing \(nan\)"):
        check_classification_labels(np.array([0.0, 1.0, np.nan]), "y")
    with pytest.raises(DataError, match=r"label at index 1 of y is missing \(None\)"):
        check_classification_labels(["a", None, "b"], "y")


def test_check_classification_labels_accepts_and_rejects_mixed():
    check_classification_labels([0, 1, 1], "y")
    with pytest.raises(DataError, match=r"mix text and numbers: 'a' at index 1, 0 at index 0"):
        check_classification_labels([0, "a"], "y")
    with pytest.raises(DataError, match=r"got shape \(2, 2\).*argmax"):
        check_classification_labels(np.eye(2), "y")


# --------------------------------------------------------------------------- split


def test_stratified_split_is_stratified_and_deterministic():
    labels = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    tr, va = stratified_split(labels, 0.2, random_state=1)
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va)
    assert sorted(np.concatenate([tr, va])) == list(range(100))
    assert {k: int((labels[va] == k).sum()) for k in "abc"} == {"a": 10, "b": 6, "c": 4}
    tr2, va2 = stratified_split(labels, 0.2, random_state=1)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, stratified_split(labels, 0.2, random_state=2)[1])


def test_stratified_split_int_val_size():
    tr, va = stratified_split([0, 1] * 10, val_size=4)
    assert len(va) == 4 and len(tr) == 16


def test_stratified_split_grows_val_to_one_per_class():
    labels = ["a"] * 100 + ["b"] * 2 + ["c"] * 2
    tr, va = stratified_split(labels, val_size=0.01)
    val_labels = {labels[i] for i in va}
    assert val_labels == {"a", "b", "c"} and {labels[i] for i in tr} == {"a", "b", "c"}


def test_stratified_split_singleton_class_names_class_and_fix():
    with pytest.raises(DataError, match=r"class 'x' has only 1 example.*Add at least one more example of 'x', or remove the class"):
        stratified_split(["a", "a", "b", "b", "x"])


def test_stratified_split_bad_val_size():
    with pytest.raises(ValueError, match=r"val_size=1\.5 must be a fraction strictly between 0 and 1"):
        stratified_split([0, 1, 0, 1], 1.5)
    with pytest.raises(ValueError, match=r"val_size=10 examples is not possible with 4 examples"):
        stratified_split([0, 1, 0, 1], 10)


# --------------------------------------------------------------------------- found by tests/test_fuzz.py


def test_from_arrays_zero_d_array_is_refused():
    for X in (np.array("a text"), np.array(3.0), np.array(None, dtype=object)):
        with pytest.raises(DataError, match=r"X is a single value \(a 0-d array of dtype"):
            from_arrays(X)


def test_from_arrays_features_beyond_float32_and_empty_shapes():
    with pytest.raises(DataError, match=r"X holds 1e\+300 at index \(1, 0\).*beyond the float32 range"):
        from_arrays(np.array([[1.0, 2.0], [1e300, 0.0]]))
    with pytest.raises(DataError, match=r"shape \(3, 0\): 3 rows but 0 feature columns"):
        from_arrays(np.zeros((3, 0)))
    with pytest.raises(DataError, match=r"images of 0x4 pixels hold nothing"):
        from_arrays(np.zeros((2, 0, 4), np.uint8))
    with pytest.raises(DataError, match=r"X\[1\] is an array of shape \(0, 3\)"):
        from_arrays([np.zeros((2, 2), np.uint8), np.zeros((0, 3), np.uint8)])


def test_nested_json_labels_and_inputs_name_the_row(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": ["x", "y"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2 of .*d\.jsonl.*holds a list in the label column 'label' "
                                        r"\(\['x', 'y'\]\); a label must be a single string or number"):
        load_dataset(path)
    assert load_dataset(path, require_labels=False).labels is None
    path.write_text('{"text": {"en": "a"}, "label": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 1 of .*holds a dict in column 'text' \(\{'en': 'a'\}\), not a single text"):
        load_dataset(path)


def test_check_classification_labels_refuses_unhashable_labels():
    labels = np.empty(3, dtype=object)
    labels[:] = [[1], [0], [1]]
    with pytest.raises(DataError, match=r"label at index 0 of y is a list \(\[1\]\); a label must be a single"):
        check_classification_labels(labels, "y")


def test_split_accepts_a_whole_float_count_as_from_the_command_line():
    from headstart.data import stratified_split

    train, val = stratified_split(np.array(["a", "b"] * 6), 4.0, 0)
    assert len(val) == 4 and len(train) == 8
