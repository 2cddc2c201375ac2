"""Run folders and caches are safe to open: nothing in headstart can unpickle."""

import re
from pathlib import Path

import numpy as np
import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "headstart"


def _calls(text: str, opening: str):
    """Every call's full text, nested parentheses included."""
    start = text.find(opening)
    while start != -1:
        depth, end = 0, start + len(opening) - 1
        for end in range(end, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        yield text[start : end + 1]
        start = text.find(opening, end)


def _sources():
    return sorted(SOURCE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_source_never_unpickles(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"^\s*import pickle|^\s*from pickle|import dill|joblib\.load", text, re.M), path
    for call in _calls(text, "torch.load("):
        assert "weights_only=True" in call, f"{path}: {call}"
    assert "trust_remote_code=True" not in text, path


def test_run_folder_records_seed_and_versions(tmp_path):
    import json

    from headstart import TransferClassifier

    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.array([0, 1] * 10)
    TransferClassifier(backbone="precomputed", random_state=7, verbose=0, cache_dir="none").fit(X, y).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["params"]["random_state"] == 7
    assert config["environment"]["torch"] and config["environment"]["python"]


def test_long_texts_are_counted_and_reported():
    from headstart import TransferClassifier

    from helpers import tiny_texts

    from headstart.backbones import create_backbone

    X, y = tiny_texts(4)
    X[0] = "word " * 300
    tokenizer = create_backbone("minilm_l6").tokenizer
    expected = sum(len(tokenizer(text)["input_ids"]) > 32 for text in X)
    assert expected >= 1
    with pytest.warns(UserWarning, match=rf"{expected} of 8 inputs .* longer than minilm_l6's 32 tokens and were truncated"):
        clf = TransferClassifier(max_length=32, verbose=0, val_size=2).fit(X, y)
    assert clf.fit_summary_["n_truncated"] == expected
