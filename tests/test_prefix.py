"""Reusing a frozen prefix's outputs: the same training as running it every epoch, and loud about when it is off."""

import numpy as np
import pytest
import torch

from headstart import TransferClassifier
from headstart.backbones import ZOO, create_backbone
from headstart.prefix import CachedInputs, FrozenPrefix, blocker

from helpers import tiny_inputs

REUSABLE = [name for name in ZOO.names() if ZOO.get(name).info.modality in ("image", "text")]


def _fit(X, y, **options):
    settings = dict(strategy="finetune", freeze=2, epochs=2, batch_size=4, val_size=4, augment=False, cache_dir="none",
                    random_state=0, verbose=0)
    return TransferClassifier(**{**settings, **options}).fit(X, y)


@pytest.mark.parametrize("name", REUSABLE)
def test_frozen_prefix_reproduces_the_full_forward_pass(name):
    backbone = create_backbone(name, image_size=32)
    backbone.freeze(2)
    X, _ = tiny_inputs(backbone.modality, per_class=3)
    items = list(X)
    prefix, note = FrozenPrefix.build(backbone, items, 4, torch.device("cpu"))
    assert prefix is not None, note
    assert note.startswith(f"reused: 2 frozen group(s) run once for {len(items)} inputs")
    backbone.eval()
    with torch.no_grad():
        expected = backbone(backbone.preprocess(items[1:4]))
        with prefix.swapped():
            got = backbone(prefix.batch([1, 2, 3]))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # the swap is undone: the real modules are back, and so are all the weights
    assert set(backbone.state_dict()) == set(create_backbone(name, image_size=32).state_dict())


@pytest.mark.parametrize("modality", ["image", "text"])
def test_fit_with_reused_prefix_predicts_like_the_fit_that_runs_it_every_epoch(modality, monkeypatch):
    X, y = tiny_inputs(modality, per_class=6)
    options = {"image_size": 32} if modality == "image" else {}
    reused = _fit(X, y, **options)
    assert reused.fit_summary_["frozen_prefix"].startswith("reused: 2 frozen group(s)")
    import headstart.prefix

    monkeypatch.setattr(headstart.prefix, "blocker", lambda *args, **kwargs: "switched off by the test")
    every_epoch = _fit(X, y, **options)
    assert every_epoch.fit_summary_["frozen_prefix"].startswith("not reused: switched off by the test")
    np.testing.assert_allclose(reused.predict_proba(X), every_epoch.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("options, reason", [
    ({"augment": True}, "augmentation changes the training inputs every epoch"),
    ({"mixup": 0.2}, "mixup/CutMix mix the inputs"),
    ({"regularizer": "l2_sp"}, "a loss term reads the raw batch"),
])
def test_fit_says_why_the_frozen_prefix_is_not_reused(options, reason):
    X, y = tiny_inputs("image", per_class=6)
    clf = _fit(X, y, image_size=32, **options)
    assert clf.fit_summary_["frozen_prefix"].startswith(f"not reused: {reason}")


def test_prefix_blocker_refuses_a_fully_frozen_backbone_and_unsupported_backbones():
    backbone = create_backbone("efficientnet_lite0", image_size=32)
    backbone.freeze(len(backbone.layer_groups()))
    assert blocker(backbone, inputs_vary=False, mixes_batches=False, terms=[]) == "the whole backbone is frozen"
    backbone.freeze(1)
    backbone.supports_prefix_reuse = lambda: False
    assert "does not cut its activations" in blocker(backbone, inputs_vary=False, mixes_batches=False, terms=[])


def test_frozen_prefix_is_not_built_when_the_forward_pass_skips_the_frozen_output():
    backbone = create_backbone("efficientnet_lite0", image_size=32)
    backbone.freeze(2)
    backbone.layer_groups()[1].output_module = torch.nn.Identity()  # a module the network never calls
    X, _ = tiny_inputs("image", per_class=2)
    prefix, note = FrozenPrefix.build(backbone, list(X), 4, torch.device("cpu"))
    assert prefix is None and note == "not reused: the forward pass never reached the last frozen group's output module"


@pytest.mark.parametrize("name", REUSABLE)
def test_cached_inputs_batch_equals_the_preprocessed_batch(name):
    backbone = create_backbone(name, image_size=32)
    X, _ = tiny_inputs(backbone.modality, per_class=3)
    items = list(X)
    cached, note = CachedInputs.build(backbone, items, 4, torch.device("cpu"))
    assert cached is not None and note.startswith(f"reused: nothing frozen, the inputs preprocessed once for {len(items)}")
    expected = backbone.preprocess([items[i] for i in (4, 1, 2)])
    got = cached.batch([4, 1, 2])
    assert set(got) == set(expected)
    for key in expected:  # a text batch is padded to its own longest row, as the tokenizer pads it
        torch.testing.assert_close(got[key], expected[key].to(got[key].dtype), atol=0, rtol=0)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_fit_with_cached_inputs_predicts_like_the_fit_that_preprocesses_every_epoch(modality, monkeypatch):
    X, y = tiny_inputs(modality, per_class=6)
    options = {"image_size": 32, "freeze": 0} if modality == "image" else {"freeze": 0}
    cached = _fit(X, y, **options)
    assert cached.fit_summary_["frozen_prefix"].startswith("reused: nothing frozen, the inputs preprocessed once")
    import headstart.prefix

    monkeypatch.setattr(headstart.prefix, "blocker", lambda *args, **kwargs: "switched off by the test")
    every_epoch = _fit(X, y, **options)
    np.testing.assert_allclose(cached.predict_proba(X), every_epoch.predict_proba(X), atol=1e-5)
