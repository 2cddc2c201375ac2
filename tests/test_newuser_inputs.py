"""What a new user hit (issue 26): audio through ``headstart predict``, fixed-length clips through the
estimator, a batch that survives one unreadable file, and CLI wording in CLI messages.

One tiny audio fit (GE2E linear probe on synthetic tones, written as WAVs) serves the CLI tests.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile", reason="audio needs soundfile: pip install 'headstart[audio]'")
pytest.importorskip("resemblyzer", reason="the audio zoo model needs resemblyzer: pip install 'headstart[audio]'")

from headstart import TransferClassifier  # noqa: E402
from headstart.cli import main  # noqa: E402
from headstart.errors import UnknownNameError  # noqa: E402

from helpers import tiny_tones  # noqa: E402


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def tone(freq: float, seconds: float = 0.4, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav_folder(root: Path) -> Path:
    """root/low/*.wav and root/high/*.wav, three tones each."""
    for label, freq in (("low", 200.0), ("high", 1200.0)):
        (root / label).mkdir(parents=True)
        for i in range(4):
            sf.write(root / label / f"{i}.wav", tone(freq * (1 + 0.05 * i)), 16_000)
    return root


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("audio-run")
    data = write_wav_folder(base / "tones")
    code, out, err = run(["fit", data, "--out", base / "run", "--strategy", "linear_probe",
                          "--cache-dir", base / "cache", "--quiet"])
    assert code == 0, err
    return {"data": data, "run": base / "run", "base": base}


def read_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# --------------------------------------------------------------------------- predict reads audio


def test_predict_audio_folder_and_single_wav_write_rows(audio_run, tmp_path):
    code, out, err = run(["predict", audio_run["run"], audio_run["data"]])
    assert code == 0, err
    rows = read_rows(out)
    assert len(rows) == 8 and {r["prediction"] for r in rows} <= {"low", "high"}
    assert all(r["input"].endswith(".wav") and r["error"] == "" for r in rows)
    flat = tmp_path / "incoming"  # no class layout: prediction learns nothing from folder names
    flat.mkdir()
    sf.write(flat / "clip.wav", tone(1250.0), 16_000)
    code, out, err = run(["predict", audio_run["run"], flat])
    assert code == 0, err
    assert [r["input"] for r in read_rows(out)] == [str(flat / "clip.wav")]
    code, out, err = run(["predict", audio_run["run"], flat / "clip.wav"])
    assert code == 0, err
    assert read_rows(out)[0]["input"] == str(flat / "clip.wav")


def test_predict_folder_without_audio_names_what_it_searched(audio_run, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run(["predict", audio_run["run"], tmp_path / "empty"])
    assert code == 2 and out == ""
    assert err.startswith(f"headstart: error: no audio files found in {tmp_path / 'empty'}") and ".wav" in err


# --------------------------------------------------------------------------- predict skips unreadable files


def test_predict_unreadable_file_is_skipped_and_listed(audio_run, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    for name, freq in (("a.wav", 200.0), ("c.wav", 1200.0)):
        sf.write(folder / name, tone(freq), 16_000)
    (folder / "b.wav").write_bytes(b"not a wav")
    target = tmp_path / "out.csv"
    code, out, err = run(["predict", audio_run["run"], folder, "--output", target])
    assert code == 0, err
    assert out.strip() == f"wrote 2 predictions to {target} (1 unreadable input(s) listed with an error instead)"
    rows = read_rows(target.read_text())
    assert [Path(r["input"]).name for r in rows] == ["a.wav", "b.wav", "c.wav"]  # input order kept
    assert rows[1]["prediction"] == "" and "not a recognised audio format" in rows[1]["error"]
    assert rows[0]["error"] == rows[2]["error"] == "" and rows[0]["prediction"] in ("low", "high")
    assert "headstart: warning: skipped 1 of 3 audio files" in err and str(folder / "b.wav") in err
    assert "error column" in err and "--strict" in err


def test_predict_strict_fails_on_the_unreadable_file(audio_run, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    sf.write(folder / "a.wav", tone(200.0), 16_000)
    (folder / "b.wav").write_bytes(b"")
    code, out, err = run(["predict", audio_run["run"], folder, "--strict"])
    assert code == 2 and out == ""
    assert "cannot read audio" in err and str(folder / "b.wav") in err and "empty file (0 bytes)" in err
    assert "strict=True" not in err


# --------------------------------------------------------------------------- per-class probabilities, --top-k


def test_predict_writes_per_class_probabilities_and_top_k(audio_run):
    code, out, err = run(["predict", audio_run["run"], audio_run["data"]])
    assert code == 0, err
    rows = read_rows(out)
    assert list(rows[0]) == ["input", "prediction", "probability", "proba_high", "proba_low", "error"]
    for row in rows:
        probabilities = {c: float(row[f"proba_{c}"]) for c in ("high", "low")}
        assert abs(sum(probabilities.values()) - 1) < 1e-3
        assert row["prediction"] == max(probabilities, key=probabilities.get)
        assert float(row["probability"]) == probabilities[row["prediction"]]
    code, out, err = run(["predict", audio_run["run"], audio_run["data"], "--top-k", "2"])
    assert code == 0, err
    ranked = read_rows(out)
    assert list(ranked[0]) == ["input", "prediction", "probability", "top_1", "top_1_probability", "top_2",
                               "top_2_probability", "error"]
    assert all(r["top_1"] == r["prediction"] and float(r["top_1_probability"]) >= float(r["top_2_probability"])
               for r in ranked)
    code, out, err = run(["predict", audio_run["run"], audio_run["data"], "--top-k", "3"])
    assert code == 2 and "--top-k 3 is more than the 2 classes" in err and "pass --top-k 2 or less" in err


# --------------------------------------------------------------------------- CLI wording


def test_evaluate_skipped_warning_uses_cli_words(audio_run, tmp_path):
    data = write_wav_folder(tmp_path / "tones")
    (data / "low" / "broken.wav").write_bytes(b"garbage")
    code, out, err = run(["evaluate", audio_run["run"], data])
    assert code == 0, err
    assert "headstart: warning: skipped 1 of 9 audio files" in err
    assert "--strict" in err and ".skipped" not in err and "strict=True" not in err


def test_top_level_help_names_audio():
    code, out, err = run(["--help"])
    assert code == 0 and "images, texts and audio" in out
    assert "audio" in TransferClassifier.__doc__.splitlines()[0]


def test_strategy_typo_suggests_auto(tmp_path):
    X, y = tiny_tones(3)
    with pytest.raises(UnknownNameError, match=r"unknown strategy 'atuo'\. Did you mean 'auto'\?"):
        TransferClassifier(strategy="atuo").fit(X, y)
    code, out, err = run(["fit", tmp_path, "--out", tmp_path / "run", "--strategy", "aut"])
    assert code == 2 and "Did you mean 'auto'?" in err and "; or auto (the planner" in err


# --------------------------------------------------------------------------- fixed-length clips in the API


def fixed_clips(n_per_class: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One-second clips at 16 kHz: a 2-D float array, one clip per row (keyword data's usual shape)."""
    clips = [tone(f * (1 + 0.05 * i), 1.0) for f in (200.0, 1200.0) for i in range(n_per_class)]
    return np.stack(clips), np.array(["low"] * n_per_class + ["high"] * n_per_class)


def test_fixed_length_clips_are_waveforms_for_an_audio_model(tmp_path):
    X, y = tiny_tones(4)
    clf = TransferClassifier(verbose=0, cache_dir=tmp_path / "cache").fit(X, y)
    assert clf.modality_ == "audio"
    clips, labels = fixed_clips()
    assert set(clf.predict(clips)) <= {"low", "high"}  # a 2-D float array
    assert clf.predict_proba(list(clips)).shape == (8, 2)  # a list of equal-length 1-D arrays
    assert (clf.predict(clips) == labels).mean() >= 0.75


def test_fixed_length_clips_are_waveforms_for_an_audio_backbone(tmp_path):
    clips, labels = fixed_clips()
    clf = TransferClassifier(backbone="resemblyzer_ge2e", verbose=0, cache_dir=tmp_path / "cache").fit(clips, labels)
    assert clf.modality_ == "audio" and not hasattr(clf, "n_features_in_")
    assert set(clf.predict(clips[:2])) <= {"low", "high"}
