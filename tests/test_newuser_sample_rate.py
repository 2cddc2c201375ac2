import numpy as np
import pytest
from sklearn.base import clone

from headstart import TransferClassifier
from headstart.errors import ConfigError

pytest.importorskip("resemblyzer")


def tone(freq, seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_sample_rate_parameter_reads_fixed_clips_at_their_rate(tmp_path):
    clips = np.stack([tone(f * (1 + 0.05 * i), 1.0, 8000) for f in (200.0, 1200.0) for i in range(4)])
    labels = np.array(["low"] * 4 + ["high"] * 4)
    clf = TransferClassifier(sample_rate=8000, verbose=0, cache_dir=tmp_path / "cache").fit(clips, labels)
    assert clf.modality_ == "audio" and not hasattr(clf, "n_features_in_")
    assert (clf.predict(clips) == labels).mean() >= 0.75
    assert clone(clf).get_params()["sample_rate"] == 8000
    assert clf.set_params(sample_rate=16000).get_params()["sample_rate"] == 16000
    clf.save(tmp_path / "run")
    assert TransferClassifier.load(tmp_path / "run").get_params()["sample_rate"] == 16000
    with pytest.raises(ConfigError, match=r"sample_rate=0 is below its minimum 1"):
        TransferClassifier(sample_rate=0).fit(clips, labels)
