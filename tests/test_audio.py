"""Audio through the same interface as images and text (issue 7).

Real audio: a tiny spoken-word set made by espeak-ng (``bench.audio_data``: 2 words x 3 voices x
3 speeds); those tests skip, saying so, where espeak-ng is not installed. Real weights:
resemblyzer's GE2E encoder ships inside its wheel. No Hugging Face audio model can be downloaded
here, so the ``hf:`` path is tested on tiny RANDOMLY INITIALISED wav2vec2 / HuBERT / Whisper / AST
configs saved with ``save_pretrained`` into a temporary local model directory next to their feature
extractors: the code path is real, the weights are not.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile", reason="audio needs soundfile: pip install 'headstart[audio]'")
pytest.importorskip("resemblyzer", reason="the audio zoo model needs resemblyzer: pip install 'headstart[audio]'")

from headstart.backbones import create_backbone  # noqa: E402
from headstart.data import from_arrays, load_dataset  # noqa: E402
from headstart.errors import DataError  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src" / "headstart"
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")


def tone(freq: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """The tiny espeak-ng set: ``{"clean": folder, "noisy": folder, "split": csv, "test_voices": [...]}``."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from bench.audio_data import build

    out = tmp_path_factory.mktemp("espeak")
    return build(out, words=("yes", "no"), voices=("en+m1", "en+f2", "en+m4"), speeds=(130, 170, 210),
                 pitches=(50,), noisy_snr=10, test_fraction=0.34, binary=ESPEAK)


@pytest.fixture(scope="module")
def ge2e():
    return create_backbone("resemblyzer_ge2e")


# --------------------------------------------------------------------------- data


def write_wav_folder(root: Path) -> Path:
    for label, freq in (("low", 220.0), ("high", 880.0)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            sf.write(root / label / f"{i}.wav", tone(freq * (1 + 0.05 * i), 0.5, 8000), 8000)
    return root


def test_audio_folder_is_audio_and_unreadable_files_are_skipped(tmp_path):
    root = write_wav_folder(tmp_path / "sounds")
    (root / "low" / "empty.wav").write_bytes(b"")
    (root / "high" / "broken.flac").write_bytes(b"not audio at all")
    sf.write(root / "high" / "silent0.wav", np.zeros(0, np.float32), 16000)  # a header, 0 samples
    with pytest.warns(UserWarning, match=r"skipped 3 of 9 audio files"):
        data = load_dataset(root)
    assert data.modality == "audio" and len(data) == 6 and all(isinstance(p, str) for p in data.inputs)
    reasons = {Path(s.where).name: s.reason for s in data.skipped}
    assert reasons["empty.wav"] == "empty file (0 bytes)"
    assert "0 frames" in reasons["silent0.wav"] and "broken.flac" in reasons
    with pytest.raises(DataError, match="cannot read audio"):
        load_dataset(root, strict=True)


def test_table_with_an_audio_column(tmp_path):
    root = write_wav_folder(tmp_path / "sounds")
    lines = ["audio,label"] + [f"sounds/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(root.rglob("*.wav"))]
    (tmp_path / "clips.csv").write_text("\n".join(lines) + "\n")
    data = load_dataset(tmp_path / "clips.csv")
    assert data.modality == "audio" and len(data) == 6 and Path(data.inputs[0]).is_absolute()
    (tmp_path / "paths.csv").write_text("path,label\n" + "\n".join(lines[1:]).replace("sounds/", str(root) + "/"))
    assert load_dataset(tmp_path / "paths.csv").modality == "audio"


def test_from_arrays_audio_and_features_inference():
    ragged = [tone(440, 0.5), tone(660, 0.7), tone(440, 0.3)]
    data = from_arrays(ragged, ["a", "b", "a"])
    assert data.modality == "audio" and [len(x) for x in data.inputs] == [8000, 11200, 4800]
    same = [tone(440, 0.1), tone(660, 0.1)]
    assert from_arrays(same, [0, 1]).modality == "features"  # unchanged: equal-length rows are features
    assert from_arrays(np.stack(same), [0, 1]).modality == "features"
    forced = from_arrays(np.stack(same), [0, 1], modality="audio")
    assert forced.modality == "audio" and len(forced.inputs[0]) == 1600
    at_8k = from_arrays([tone(440, 1.0, 8000), tone(440, 0.5, 8000)], sample_rate=8000)
    assert [len(x) for x in at_8k.inputs] == [16000, 8000]  # resampled to the 16 kHz every array is held at
    with pytest.raises(DataError, match="NaN"):
        from_arrays([np.array([0.1, np.nan], np.float32), tone(1, 0.1)], modality="audio")


def test_from_arrays_audio_paths(tmp_path):
    root = write_wav_folder(tmp_path / "s")
    paths = [str(p) for p in sorted(root.rglob("*.wav"))]
    assert from_arrays(paths, [Path(p).parent.name for p in paths]).modality == "audio"


# --------------------------------------------------------------------------- backbones


def test_resemblyzer_backbone_equals_resemblyzer(ge2e):
    from resemblyzer import VoiceEncoder

    assert ge2e.modality == "audio" and ge2e.feature_dim == 256
    assert ge2e.layer_names == ["lstm.0", "lstm.1", "lstm.2", "projection"]
    batch = ge2e.preprocess([tone(300, 1.0), tone(500, 2.5)])
    assert batch["mels"].shape == (2, 160, 40)
    encoder = VoiceEncoder("cpu", verbose=False)
    with torch.no_grad():
        assert torch.allclose(ge2e(batch), encoder(batch["mels"]), atol=1e-6)
        features = ge2e.forward_features(batch, layers=ge2e.layer_names)
    assert all(v.shape == (2, 256) for v in features.values())
    assert ge2e.count_truncated([tone(300, 1.0), tone(300, 3.0)]) == 1
    report = ge2e.freeze(3)
    assert report.frozen_groups == ["lstm.0", "lstm.1", "lstm.2"] and report.trainable_params == 256 * 257
    ge2e.freeze(0)


def _tiny_hf_dirs(root: Path) -> dict[str, Path]:
    """Tiny random-weight audio encoders saved as local model directories (nothing is downloaded)."""
    from headstart._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()
    import transformers as tf

    conv = dict(conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    models = {
        "wav2vec2": (tf.Wav2Vec2Model(tf.Wav2Vec2Config(**small, **conv)), tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)),
        "hubert": (tf.HubertModel(tf.HubertConfig(**small, **conv, do_stable_layer_norm=True, feat_extract_norm="layer")),
                   tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)),
        "whisper": (tf.WhisperModel(tf.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                                      decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                                      vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                                      decoder_start_token_id=1)),
                    tf.WhisperFeatureExtractor(feature_size=80)),
        "ast": (tf.ASTModel(tf.ASTConfig(**small, max_length=128, num_mel_bins=64)),
                tf.ASTFeatureExtractor(max_length=128, num_mel_bins=64)),
    }
    dirs = {}
    for name, (model, extractor) in models.items():
        model.save_pretrained(root / name)
        extractor.save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    torch.manual_seed(0)
    return _tiny_hf_dirs(tmp_path_factory.mktemp("hf-audio"))


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "whisper", "ast"])
def test_hf_audio_encoders_random_tiny_configs(hf_dirs, kind):
    """Random-weight tiny configs (no audio model can be downloaded here): the code path only."""
    from headstart.backbones import backbone_modality

    name = f"hf:{hf_dirs[kind]}"
    assert backbone_modality(name) == "audio"
    backbone = create_backbone(name)
    assert backbone.modality == "audio" and backbone.feature_dim == 32
    assert backbone.layer_names == ["feature_encoder", "layer.0", "layer.1"]
    grouped = sum(g.num_params() for g in backbone.layer_groups())
    assert grouped == sum(p.numel() for p in backbone.parameters())  # every parameter is in one group
    clips = [tone(300, 0.5), tone(500, 1.0)]
    backbone.eval()
    with torch.no_grad():
        batch = backbone.preprocess(clips)
        features = backbone.forward_features(batch, layers=backbone.layer_names)
        assert all(v.shape == (2, 32) and torch.isfinite(v).all() for v in features.values())
        assert torch.allclose(features["layer.1"], backbone(batch))
        alone = backbone(backbone.preprocess(clips[:1]))
    if kind in ("hubert", "whisper", "ast"):  # padding frames are masked out of the mean
        assert torch.allclose(alone, features["layer.1"][:1], atol=1e-4)
    assert backbone.freeze(1).frozen_groups == ["feature_encoder"]


# --------------------------------------------------------------------------- no modality branches


def test_no_modality_words_in_the_modality_free_code():
    """strategies/, selection/, adapt/, regularizers/ and train.py must never ask which modality they hold."""
    files = [p for d in ("strategies", "selection", "adapt", "regularizers") for p in (SRC / d).rglob("*.py")]
    files.append(SRC / "train.py")
    pattern = re.compile(r"""["'](audio|image|text)["']|\baudio\b""")
    offenders = [f"{p.relative_to(SRC)}:{i}: {line.strip()}" for p in files
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "modality branches found:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------- strategies, adaptation, ranking


def _split(spoken):
    import csv

    root = Path(spoken["split"]).parent
    rows = list(csv.DictReader(open(spoken["split"], encoding="utf-8")))
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    return ([str(root / r["path"]) for r in train], np.array([r["label"] for r in train]),
            [str(root / r["path"]) for r in test], np.array([r["label"] for r in test]))


def _strategy_cases():
    from headstart.strategies import STRATEGIES

    cases = {"linear_probe": {}, "finetune": {"freeze": 2}, "lp_ft": {}, "scratch": {"batch_size": 16}}
    assert set(cases) <= set(STRATEGIES.names())
    return [pytest.param(name, cases.get(name, {}), id=name) for name in STRATEGIES.names()]


@needs_espeak
@pytest.mark.slow
@pytest.mark.parametrize("strategy,extra", _strategy_cases())
def test_every_strategy_on_spoken_words(spoken, strategy, extra, tmp_path):
    from headstart.estimator import TransferClassifier

    X, y, X_test, y_test = _split(spoken)
    clf = TransferClassifier(backbone="resemblyzer_ge2e", strategy=strategy, epochs=1,
                             cache_dir=str(tmp_path / "cache"), verbose=0, **{"batch_size": 8, **extra})
    if strategy == "lora":  # an LSTM has no attention projections: refused, not trained some other way
        from headstart.errors import ConfigError

        with pytest.raises(ConfigError, match="strategy='lora' adapts attention projections, and backbone "
                                              "'resemblyzer_ge2e' has none"):
            clf.fit(X, y)
        return
    clf.fit(X, y)
    assert clf.modality_ == "audio"
    scores = clf.decision_function(X_test)
    assert scores.shape == (len(X_test),) and set(clf.predict(X_test)) <= {"yes", "no"}
    clf.save(tmp_path / "run")
    assert np.allclose(TransferClassifier.load(tmp_path / "run").decision_function(X_test), scores, atol=1e-4)


@needs_espeak
@pytest.mark.slow
@pytest.mark.parametrize("adapt", ["coral", "dann"])
def test_adaptation_to_noisy_speech(spoken, adapt, tmp_path):
    from headstart.adapt import ADAPTERS
    from headstart.estimator import TransferClassifier

    assert adapt in ADAPTERS.names()
    clf = TransferClassifier(backbone="resemblyzer_ge2e", strategy="finetune", freeze=3, adapt=adapt, epochs=1,
                             batch_size=8, cache_dir="none", verbose=0)
    clf.fit(spoken["clean"], X_target=spoken["noisy"])
    assert set(clf.predict(spoken["noisy"])) <= {"yes", "no"} and clf.fit_summary_["modality"] == "audio"


@needs_espeak
@pytest.mark.slow
def test_ranking_and_auto_use_the_audio_baseline(spoken, hf_dirs, tmp_path):
    from headstart.baselines import baseline_for
    from headstart.estimator import TransferClassifier
    from headstart.selection.rank import rank_backbones

    X, y, _, _ = _split(spoken)
    rows = rank_backbones(X, y, ["resemblyzer_ge2e", f"hf:{hf_dirs['wav2vec2']}"], cache="none")
    assert {r.backbone for r in rows} == {"resemblyzer_ge2e", f"hf:{hf_dirs['wav2vec2']}"}
    assert {r.layer for r in rows if r.backbone == "resemblyzer_ge2e"} == {"lstm.0", "lstm.1", "lstm.2", "projection"}
    assert baseline_for("audio").name == "logmel_logistic"
    clf = TransferClassifier(strategy="auto", budget="20s", epochs=1, batch_size=8, cache_dir="none", verbose=0)
    clf.fit(spoken["clean"])
    names = [c["name"] for c in clf.plan_["candidates"]] if "candidates" in clf.plan_ else str(clf.plan_)
    assert "baseline:logmel_logistic" in str(names)
    assert "linear_probe@resemblyzer_ge2e" in str(names)


@needs_espeak
@pytest.mark.slow
def test_headstart_fit_cli_on_the_espeak_folder(spoken, tmp_path):
    from headstart.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["fit", spoken["clean"], "--out", str(tmp_path / "run"), "--strategy", "linear_probe",
                     "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, err.getvalue()
    assert (tmp_path / "run" / "config.json").is_file()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["evaluate", str(tmp_path / "run"), spoken["noisy"]]) == 0, err.getvalue()


def test_audio_baseline_roundtrip(tmp_path):
    from headstart.baselines import BASELINES

    cls = BASELINES.get("logmel_logistic")
    items = [tone(f, 0.4) for f in (200, 220, 240, 900, 950, 1000)]
    y = np.array([0, 0, 0, 1, 1, 1])
    baseline = cls()
    baseline.fit(items[::2] + items[1:2], np.array([0, 1, 1, 0]), items[3:5], y[3:5], 2)
    baseline.save(tmp_path / "b")
    again = cls.load(tmp_path / "b")
    assert np.allclose(again.predict_logits(items), baseline.predict_logits(items), atol=1e-5)
    assert baseline.transform(items).shape == (6, 186)


def test_wave_memo_reads_a_file_once_and_again_after_it_changes(tmp_path):
    import soundfile as sf

    from headstart.backbones.wave_memo import WaveMemo

    path = tmp_path / "clip.wav"
    sf.write(str(path), tone(300, 0.2), 16_000)
    reads = []
    decode = lambda item: reads.append(item) or np.ones(10, np.float32)
    memo = WaveMemo()
    memo.get(str(path), decode), memo.get(str(path), decode)
    assert len(reads) == 1 and memo.bytes == 40
    sf.write(str(path), tone(300, 0.3), 16_000)  # edited: new size, so it is read again
    memo.get(str(path), decode)
    assert len(reads) == 2
    array = np.zeros(5, np.float32)
    memo.get(array, decode), memo.get(array, decode)  # arrays are never kept
    assert len(reads) == 4
    small = WaveMemo(max_bytes=20)
    small.get(str(path), decode), small.get(str(path), decode)  # over budget: decoded every time, not kept
    assert small.bytes == 0 and len(reads) == 6
