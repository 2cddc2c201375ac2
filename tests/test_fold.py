"""BatchNorm folding for frozen extraction (headstart.backbones.fold) and the extraction order."""

import numpy as np
import pytest
import torch
from torch import nn

import headstart.backbones.fold as fold_module
from headstart.backbones import ZOO, create_backbone
from headstart.backbones.fold import folded_for_inference
from headstart.cache import _extract, extract_features

from helpers import tiny_inputs

ZOO_NAMES = ZOO.names()


def _features(backbone, items):
    backbone.eval()
    with torch.inference_mode():
        return backbone.forward_features(backbone.preprocess(items), layers=backbone.layer_names)


def _stir_batchnorm_statistics(backbone):
    """Pretrained statistics far from (0, 1), so that a wrong fold shows."""
    generator = torch.Generator().manual_seed(0)
    for module in backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            module.running_mean.copy_(0.5 * torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) * 1.5 + 0.5)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_fold_keeps_every_layer_groups_features_and_the_original(name):
    backbone = create_backbone(name, image_size=32)
    _stir_batchnorm_statistics(backbone)
    items, _ = tiny_inputs(backbone.modality, per_class=3)
    expected = _features(backbone, items)
    state = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.train()
    runner, note = folded_for_inference(backbone, backbone.preprocess(items[:4]))
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules())
    if has_batchnorm:
        assert runner is not backbone and note.startswith("folded ") and "BatchNorm(s)" in note
        assert not any(type(m) is nn.BatchNorm2d or type(m).__name__ == "BatchNormAct2d"
                       for m in runner.modules() if "forward" not in vars(m))  # every one was folded
    else:
        assert runner is backbone and note == "no BatchNorm to fold"
    assert backbone.training  # the caller's mode is restored, its weights untouched
    got = _features(runner, items)
    for layer in backbone.layer_names:  # equal up to float32 rounding at the layer's own scale
        scale = max(1.0, float(expected[layer].abs().max()))
        assert float((got[layer] - expected[layer]).abs().max()) <= fold_module.MAX_RELATIVE_CHANGE * scale, layer
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


class _ConvThenBatchNormAndSkip(nn.Module):
    """The convolution's output also feeds a residual: folding it into the BatchNorm would change that."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.norm(y) + y


class _TinyBackbone(nn.Module):
    layer_names = ["out"]

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward_features(self, batch, layers):
        return {"out": self.model(batch["pixel_values"]).mean(dim=(2, 3))}


def test_fold_refuses_a_convolution_whose_output_is_also_used_elsewhere():
    backbone = _TinyBackbone(_ConvThenBatchNormAndSkip())
    _stir_batchnorm_statistics(backbone)
    runner, note = folded_for_inference(backbone, {"pixel_values": torch.randn(2, 3, 8, 8)})
    assert runner is backbone
    assert note.startswith("folding changed layer group 'out' by ") and note.endswith("the unfolded network is used")


def test_fold_in_place_folds_the_backbone_itself_and_undoes_a_fold_that_fails_its_check():
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    _stir_batchnorm_statistics(backbone)
    items, _ = tiny_inputs("image", per_class=3)
    expected = _features(backbone, items)
    runner, note = folded_for_inference(backbone, backbone.preprocess(items[:4]), in_place=True)
    assert runner is backbone and note.startswith("folded ")
    got = _features(runner, items)
    for layer in backbone.layer_names:
        scale = max(1.0, float(expected[layer].abs().max()))
        assert float((got[layer] - expected[layer]).abs().max()) <= fold_module.MAX_RELATIVE_CHANGE * scale, layer

    skip = _TinyBackbone(_ConvThenBatchNormAndSkip())  # its fold fails the check
    _stir_batchnorm_statistics(skip)
    state = {k: v.clone() for k, v in skip.state_dict().items()}
    pixels = {"pixel_values": torch.randn(2, 3, 8, 8)}
    runner, note = folded_for_inference(skip, pixels, in_place=True)
    assert runner is skip and note.endswith("the unfolded network is used")
    assert "forward" not in vars(skip.model.norm)  # the BatchNorm normalises again
    for key, value in skip.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_fold_reports_batchnorm_that_no_convolution_feeds():
    backbone = _TinyBackbone(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 2, 1)))
    runner, note = folded_for_inference(backbone, {"pixel_values": torch.randn(2, 3, 8, 8)})
    assert runner is backbone and note == "no BatchNorm directly follows a convolution"


def test_extract_features_folds_from_the_threshold_and_matches_the_plain_pass(monkeypatch):
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    _stir_batchnorm_statistics(backbone)
    items = list(tiny_inputs("image", per_class=5)[0])
    plain = _extract(backbone, items, backbone.layer_names, batch_size=4, progress=False)
    calls = []
    original = fold_module.folded_for_inference
    monkeypatch.setattr(fold_module, "folded_for_inference", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    monkeypatch.setattr(fold_module, "FOLD_MIN_INPUTS", len(items) + 1)
    extract_features(backbone, items, backbone.layer_names, batch_size=4)
    assert calls == []  # too few inputs for folding to pay
    monkeypatch.setattr(fold_module, "FOLD_MIN_INPUTS", len(items))
    folded = extract_features(backbone, items, backbone.layer_names, batch_size=4)
    assert calls == [1]
    for layer in backbone.layer_names:
        np.testing.assert_allclose(folded[layer], plain[layer], rtol=1e-4, atol=1e-4)


def test_text_inference_batches_group_like_lengths_and_rows_keep_input_order():
    backbone = create_backbone("minilm_l6")
    texts = ["a " * n + "end" for n in (30, 1, 12, 2, 25, 3, 40, 4, 18, 5, 7, 9, 11, 2, 33, 6, 8)]
    batches = backbone.inference_batches(texts, batch_size=64)
    assert sorted(i for batch in batches for i in batch) == list(range(len(texts)))
    assert max(len(batch) for batch in batches) == 3  # a small set is cut in about 8 batches: ceil(17 / 8)
    lengths = [len(texts[i]) for batch in batches for i in batch]
    assert lengths == sorted(lengths)
    ordered = _extract(backbone, texts, ["layer.2"], batch_size=64, progress=False)["layer.2"]
    one_batch = _features(backbone, texts)["layer.2"].numpy()
    np.testing.assert_allclose(ordered, one_batch, rtol=1e-4, atol=1e-4)
