"""Fuzz tests: whatever bytes, tables or arrays come in, only headstart's own errors come out.

Property of every test here: the call either succeeds or raises a
:class:`~headstart.errors.HeadstartError` subclass, never another exception type and never a hang
(each example runs under an alarm). Hypothesis runs derandomized with no example database, so CI
sees the same examples on every run; the example counts keep the whole file well under a minute.
Each test makes its own temporary folder with ``tempfile`` (a function-scoped pytest fixture would be
shared by every example of a test).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from headstart.data import check_classification_labels, from_arrays, load_dataset, load_image, stratified_split
from headstart.errors import HeadstartError

pytestmark = pytest.mark.timeout(120)

_BASE = settings(
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    deadline=5000,  # ms per example; slower ones fail the test (the alarm below stops real hangs)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
HANG_SECONDS = 10


def fuzz(max_examples: int, **overrides) -> settings:
    return settings(_BASE, max_examples=max_examples, **overrides)


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Fail instead of hanging: SIGALRM raises inside the call after ``seconds``."""

    def alarm(signum, frame):
        raise TimeoutError(f"the call did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def only_headstart_errors(call, *args, **kwargs):
    """Run ``call``; return its result, or the HeadstartError it raised. Anything else fails the test."""
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call(*args, **kwargs)
        except HeadstartError as error:
            assert str(error).strip(), f"{type(error).__name__} with an empty message"
            return error


def check_labels_like_fit(labels):
    """What ``TransferClassifier.fit`` does with the labels it is given, before training."""
    checked = only_headstart_errors(check_classification_labels, labels, "the data")
    if not isinstance(checked, HeadstartError):
        split = only_headstart_errors(stratified_split, labels, 0.2, 0)
        if not isinstance(split, HeadstartError):
            assert len(split[0]) + len(split[1]) == len(labels)


@contextlib.contextmanager
def scratch_dir():
    folder = tempfile.mkdtemp(prefix="headstart-fuzz-")
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- files of random bytes


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".webp", ".PNG")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@functools.cache
def _valid_image_bytes() -> dict[str, bytes]:
    """One small real image per format, to be mutated (random bytes alone rarely pass a header)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (12, 9, 3), dtype=np.uint8)
    out = {}
    for fmt, mode in (("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"),
                      ("TIFF", "I;16"), ("WEBP", "RGB"), ("PNG", "LA")):
        buf = io.BytesIO()
        image = Image.fromarray(pixels).convert("RGBA" if mode == "LA" else mode)
        image = image.convert("LA") if mode == "LA" else image
        image.save(buf, fmt)
        out[f"{fmt}-{mode}"] = buf.getvalue()
    return out


@st.composite
def image_bytes(draw):
    """Random bytes, or a real image truncated and with a few bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    data = bytearray(draw(st.sampled_from(sorted(_valid_image_bytes().items())))[1])
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        data = data[:cut]
    for _ in range(draw(st.integers(0, 6))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@fuzz(60)
@given(files=st.lists(st.tuples(st.sampled_from(["cat", "dog", "a b", "ü"]), st.sampled_from(IMAGE_SUFFIXES),
                                image_bytes()), min_size=1, max_size=6),
       strict=st.booleans())
def test_fuzz_image_folder_of_random_bytes(files, strict):
    with scratch_dir() as root:
        for i, (label, suffix, data) in enumerate(files):
            (root / label).mkdir(exist_ok=True)
            (root / label / f"{i}{suffix}").write_bytes(data)
        result = only_headstart_errors(load_dataset, root, strict=strict)
        if not isinstance(result, HeadstartError):
            assert len(result.inputs) == len(result.labels) >= 1
            assert len(result.inputs) + len(result.skipped) == len(files)
            for path in result.inputs:  # what screening accepted must decode for training as well
                image = only_headstart_errors(load_image, path)
                assert not isinstance(image, HeadstartError), f"{path} passed screening but: {image}"
                assert image.mode == "RGB"


@fuzz(60)
@given(suffix=st.sampled_from(TABLE_SUFFIXES), data=st.binary(max_size=400),
       require_labels=st.booleans())
def test_fuzz_table_file_of_random_bytes(suffix, data, require_labels):
    with scratch_dir() as root:
        path = root / f"data{suffix}"
        path.write_bytes(data)
        only_headstart_errors(load_dataset, path, require_labels=require_labels)


@fuzz(40)
@given(suffix=st.sampled_from(TABLE_SUFFIXES + IMAGE_SUFFIXES + (".txt", "")), data=st.binary(max_size=200))
def test_fuzz_single_file_of_random_bytes_as_a_folder_entry(suffix, data):
    """A file of random bytes lying directly in the root, next to one class folder."""
    with scratch_dir() as root:
        (root / "cls").mkdir()
        (root / f"loose{suffix}").write_bytes(data)
        only_headstart_errors(load_dataset, root)


# --------------------------------------------------------------------------- random tables

_cell_text = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4) | st.sampled_from(
        ['"', ",", "\n", "\r", "\t", " ", "é", "日本", "\x00", "NA", "null", "nan", "cat.png", "../x.jpg"]),
    max_size=4,
).map("".join)
_cell = st.one_of(_cell_text, st.just(""), st.none(), st.integers(-5, 5),
                  st.floats(allow_nan=True, allow_infinity=True))
_column_name = st.one_of(st.sampled_from(["label", "text", "image", "path", "y", "Label", "lable", "class ", ""]),
                         _cell_text)
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "shift_jis", "ascii")


@st.composite
def random_frames(draw):
    columns = draw(st.lists(_column_name, min_size=1, max_size=4))  # duplicates allowed
    rows = draw(st.lists(st.lists(_cell, min_size=len(columns), max_size=len(columns)), max_size=6))
    return pd.DataFrame(rows, columns=columns)


@fuzz(80)
@given(header=st.lists(_column_name, min_size=1, max_size=4),
       rows=st.lists(st.lists(_cell_text, min_size=0, max_size=5), max_size=6),
       sep=st.sampled_from([",", "\t", ";"]), quote=st.booleans(),
       encoding=st.sampled_from(ENCODINGS), suffix=st.sampled_from([".csv", ".tsv"]),
       text_column=st.sampled_from([None, "text", "txt"]), label_column=st.sampled_from([None, "label", "lbl"]))
def test_fuzz_random_csv_text(header, rows, sep, quote, encoding, suffix, text_column, label_column):
    def line(cells):
        if quote:
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        return sep.join(cells)

    text = "\n".join([line(header), *map(line, rows)]) + "\n"
    with scratch_dir() as root:
        path = root / f"data{suffix}"
        path.write_bytes(text.encode(encoding, errors="replace"))
        only_headstart_errors(load_dataset, path, text_column=text_column, label_column=label_column)
        only_headstart_errors(load_dataset, path, require_labels=False)


@fuzz(60)
@given(frame=random_frames(), suffix=st.sampled_from([".csv", ".jsonl", ".json", ".parquet"]),
       strict=st.booleans())
def test_fuzz_random_tables_written_by_pandas(frame, suffix, strict):
    with scratch_dir() as root:
        path = root / f"data{suffix}"
        try:
            if suffix == ".csv":
                frame.to_csv(path, index=False)
            elif suffix == ".jsonl":
                frame.to_json(path, orient="records", lines=True)
            elif suffix == ".json":
                frame.to_json(path, orient="records")
            else:
                frame.astype(str).to_parquet(path)
        except Exception:  # pandas cannot write this frame in that format: nothing to read
            return
        for require_labels in (True, False):
            result = only_headstart_errors(load_dataset, path, require_labels=require_labels, strict=strict)
            if not isinstance(result, HeadstartError) and result.labels is not None:
                assert len(result.labels) == len(result.inputs)
                check_labels_like_fit(result.labels)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@fuzz(60)
@given(records=st.one_of(
    st.lists(st.dictionaries(st.sampled_from(["text", "label", "image", "x", ""]), _json_values, max_size=3),
             max_size=5),
    _json_values),
    lines=st.booleans(), require_labels=st.booleans())
def test_fuzz_random_json_records(records, lines, require_labels):
    """JSON of any shape (nested lists and objects as cells, bare values) as .json or .jsonl."""
    with scratch_dir() as root:
        path = root / ("data.jsonl" if lines else "data.json")
        if lines and isinstance(records, list):
            path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
        else:
            path.write_text(json.dumps(records), encoding="utf-8")
        result = only_headstart_errors(load_dataset, path, require_labels=require_labels)
        if not isinstance(result, HeadstartError) and result.labels is not None:
            check_labels_like_fit(result.labels)


# --------------------------------------------------------------------------- random arrays

_dtypes = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
    hnp.complex_number_dtypes(), hnp.datetime64_dtypes(), hnp.timedelta64_dtypes(),
    hnp.unicode_string_dtypes(max_len=4), hnp.byte_string_dtypes(max_len=4), st.just(np.dtype(object)),
    st.sampled_from([np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)]),
)


@st.composite
def random_arrays(draw):
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5))
    if dtype == np.dtype(object):
        elements = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=4), st.binary(max_size=3),
                             st.just(np.zeros((2, 2), np.uint8)), st.just([1.0, 2.0]), st.complex_numbers())
        flat = draw(st.lists(elements, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        array = np.empty(int(np.prod(shape)), dtype=object)
        for i, value in enumerate(flat):
            array[i] = value
        return array.reshape(shape)
    return draw(hnp.arrays(dtype, shape))


@fuzz(250, deadline=None)
@given(X=random_arrays(), y=st.one_of(st.none(), random_arrays(), st.lists(st.sampled_from(["a", "b", 0, 1]))),
       as_list=st.booleans(), strict=st.booleans())
def test_fuzz_random_arrays_through_from_arrays(X, y, as_list, strict):
    if as_list and X.ndim >= 1:
        X = list(X)
    result = only_headstart_errors(from_arrays, X, y, strict=strict)
    if isinstance(result, HeadstartError):
        return
    assert len(result.inputs) >= 1 and result.modality in ("image", "text", "features")
    if result.labels is not None:
        assert len(result.labels) == len(result.inputs)
        check_labels_like_fit(result.labels)
    if result.modality == "features":
        assert all(np.isfinite(row).all() and row.dtype == np.float32 and row.size for row in result.inputs)
    if result.modality == "image":  # what from_arrays accepts must convert for training
        for item in result.inputs[:3]:
            image = only_headstart_errors(load_image, item)
            assert not isinstance(image, HeadstartError), f"accepted by from_arrays but: {image}"


# --------------------------------------------------------------------------- run folders


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A real run folder (precomputed features: milliseconds to fit), built once per module, so that
    importing torch and fitting is not counted against the first example's deadline."""
    from headstart import TransferClassifier

    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("fuzz-run") / "run"
    TransferClassifier(backbone="precomputed", cache_dir="none", verbose=0).fit(
        rng.normal(size=(20, 4)), np.array(["a", "b"] * 10)).save(folder)
    return folder


def _load_both(folder: Path, *, estimator: bool = True):
    from headstart import TransferClassifier
    from headstart.runs import load_model, read_config

    only_headstart_errors(read_config, folder)
    only_headstart_errors(load_model, folder)
    if estimator:
        only_headstart_errors(TransferClassifier.load, folder)


@contextlib.contextmanager
def run_copy(base: Path):
    with scratch_dir() as root:
        folder = root / "run"
        shutil.copytree(base, folder)
        yield folder


@fuzz(60)
@given(data=st.one_of(st.binary(max_size=300),
                      st.builds(lambda s: s.encode("utf-8"), st.text(max_size=100))))
def test_fuzz_config_json_of_random_bytes(base_run, data):
    with run_copy(base_run) as folder:
        (folder / "config.json").write_bytes(data)
        _load_both(folder)


_CONFIG_KEYS = ("format_version", "headstart_version", "backbone", "pretrained", "frozen_groups", "feature_dim",
                "classes", "strategy", "params", "pretrained_fingerprint", "image_size", "max_length",
                "classes_dtype", "n_features_in", "model_kind", "baseline", "modality")


@fuzz(80, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(_CONFIG_KEYS),
                               st.one_of(_json_values, st.sampled_from(
                                   [0, -1, 1, 5, "", "nope", "minilm_l6", [], ["a"], ["a", "b", "c"], {}, None,
                                    "<U1", "O", "V8", "f8", 1.5, True, "baseline", "transfer", "majority",
                                    "image", "text", "features"])),
                               min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(_CONFIG_KEYS), max_size=1))
@example(changes={"feature_dim": -1}, drop=[])  # crashed before read_config checked values
@example(changes={"classes_dtype": None}, drop=[])  # crashed before read_config checked values
@example(changes={"classes_dtype": 0}, drop=[])  # crashed before read_config checked values
@example(changes={"classes_dtype": "f8"}, drop=[])  # crashed before read_config checked values
@example(changes={"n_features_in": ""}, drop=[])  # crashed before read_config checked values
@example(changes={"n_features_in": []}, drop=[])  # crashed before read_config checked values
def test_fuzz_config_json_with_random_field_values(base_run, changes, drop):
    """A real config.json with one to three fields set to random JSON values (or dropped)."""
    with run_copy(base_run) as folder:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        for key in drop:
            config.pop(key, None)
        (folder / "config.json").write_text(json.dumps(config))
        _load_both(folder)


@fuzz(60)
@given(data=st.one_of(st.binary(max_size=300), st.builds(
    lambda head, cut, noise: (head + noise)[:cut],
    st.sampled_from([b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"\xff" * 8]), st.integers(0, 300),
    st.binary(max_size=200))))
def test_fuzz_weights_file_of_random_bytes(base_run, data):
    with run_copy(base_run) as folder:
        (folder / "model.safetensors").write_bytes(data)
        _load_both(folder)


@fuzz(60)
@given(keep=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                    max_size=4))
def test_fuzz_weights_file_truncated_or_flipped(base_run, keep, flips):
    with run_copy(base_run) as folder:
        data = bytearray((folder / "model.safetensors").read_bytes())
        data = data[: keep % (len(data) + 1)]
        for where, value in flips:
            if data:
                data[where % len(data)] = value
        (folder / "model.safetensors").write_bytes(bytes(data))
        _load_both(folder)


@fuzz(40, deadline=None)
@given(tensors=st.dictionaries(
    st.sampled_from(["head.weight", "head.bias", "backbone.x", ""]),
    st.tuples(st.sampled_from(["float32", "float16", "int64", "uint8", "bool", "float64"]),
              hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)),
    max_size=3))
def test_fuzz_weights_file_with_random_tensors(base_run, tensors):
    import torch
    from safetensors.torch import save_file

    with run_copy(base_run) as folder:
        save_file({k: torch.zeros(shape, dtype=getattr(torch, dtype)) for k, (dtype, shape) in tensors.items()},
                  str(folder / "model.safetensors"))
        _load_both(folder)
