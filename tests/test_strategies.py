import numpy as np
import pytest

from headstart import TransferClassifier
from headstart.strategies import STRATEGIES

from helpers import tiny_inputs

FAST = {"epochs": 2, "batch_size": 4, "image_size": 32, "verbose": 0, "val_size": 4}
BACKBONES = {"image": ["efficientnet_lite0", "mobilenetv2_100"], "text": ["minilm_l6"]}
CASES = [(strategy, modality, backbone) for strategy in STRATEGIES.names()
         for modality, names in BACKBONES.items() for backbone in names]


@pytest.mark.parametrize("strategy,modality,backbone", CASES)
def test_strategy_fits_saves_and_reloads_to_identical_predictions(strategy, modality, backbone, tmp_path):
    X, y = tiny_inputs(modality, per_class=6)
    if strategy == "lora" and modality == "image":  # convnets have no attention projections to adapt
        from headstart.errors import ConfigError

        with pytest.raises(ConfigError, match=rf"strategy='lora' adapts attention projections, and backbone "
                                              rf"'{backbone}' has none .*strategy='finetune' with freeze=K"):
            TransferClassifier(backbone=backbone, strategy=strategy, **FAST).fit(X, y)
        return
    clf = TransferClassifier(backbone=backbone, strategy=strategy, **FAST).fit(X, y)
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (len(y), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.history_ and clf.fit_summary_["strategy"] == strategy
    clf.save(tmp_path / "run")
    loaded = TransferClassifier.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict_proba(X), probabilities)
    assert list(loaded.classes_) == list(clf.classes_)


def test_linear_probe_learns_digits_well_above_chance():
    X, y = tiny_inputs("image", per_class=30)
    clf = TransferClassifier(strategy="linear_probe", image_size=32, verbose=0).fit(X[::2], y[::2])
    assert clf.score(X[1::2], y[1::2]) >= 0.9


def test_linear_probe_second_fit_reads_features_from_the_cache(tmp_path):
    X, y = tiny_inputs("text", per_class=6)
    first = TransferClassifier(strategy="linear_probe", cache_dir=str(tmp_path), verbose=0).fit(X, y)
    second = TransferClassifier(strategy="linear_probe", cache_dir=str(tmp_path), verbose=0).fit(X, y)
    assert first.fit_summary_["inputs_run_through_backbone"] == len(y)
    assert second.fit_summary_["inputs_run_through_backbone"] == 0
    np.testing.assert_allclose(first.predict_proba(X), second.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_finetune_freeze_keeps_frozen_weights_and_batchnorm_statistics():
    X, y = tiny_inputs("image", per_class=6)
    from headstart.backbones import create_backbone

    reference = create_backbone("efficientnet_lite0", image_size=32).state_dict()
    clf = TransferClassifier(strategy="finetune", freeze=3, lr=1e-2, **FAST).fit(X, y)
    groups = clf.backbone_.layer_groups()
    frozen_keys = clf.model_.frozen_keys()
    assert any("running_mean" in k for k in frozen_keys)
    state = clf.model_.state_dict()
    for key in frozen_keys:
        assert np.array_equal(state[key].cpu().numpy(), reference[key.removeprefix("backbone.")].numpy()), key
    changed = [k for k in state if k.startswith("backbone.") and k not in frozen_keys and "weight" in k
               and not np.array_equal(state[k].cpu().numpy(), reference[k.removeprefix("backbone.")].numpy())]
    assert changed, "the unfrozen layers did not train"
    assert clf.fit_summary_["frozen_groups"] == 3 and "froze 3 layer group(s)" in clf.fit_summary_["freeze"]
    assert len(groups) == 8


def test_scratch_starts_from_random_weights():
    X, y = tiny_inputs("image", per_class=6)
    clf = TransferClassifier(strategy="scratch", **FAST).fit(X, y)
    assert not clf.backbone_.pretrained


def test_lp_ft_starts_fine_tuning_from_the_probe_head():
    X, y = tiny_inputs("text", per_class=6)
    clf = TransferClassifier(strategy="lp_ft", **FAST).fit(X, y)
    stages = [h["stage"] for h in clf.history_]
    assert stages[0] == "linear_probe" and stages[-1] == "finetune"
    assert "linear_probe" in clf.fit_summary_


def test_linear_probe_C_search_stops_after_scores_fall_past_the_best():
    from headstart.heads import C_GRID, PAST_BEST, choose_C

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 20)) * 3
    y = np.repeat([0, 1, 2], 40)
    X = centers[y] + rng.normal(size=(120, 20))
    C, history, solution = choose_C(X[::2], y[::2], X[1::2], y[1::2])
    best = max(range(len(history)), key=lambda i: (history[i]["val_accuracy"], -history[i]["val_log_loss"]))
    assert C == history[best]["C"] and C in C_GRID
    assert len(history) == len(C_GRID) or len(history) == best + 1 + PAST_BEST
    assert solution[1].shape == (3, 20)


def test_default_cache_dir_keeps_features_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    X, y = tiny_inputs("text", per_class=4)
    TransferClassifier(strategy="linear_probe", verbose=0, val_size=2).fit(X, y)
    assert list(tmp_path.rglob("chunk-*.safetensors")), "cache_dir=None must mean the disk cache, not memory only"
    second = TransferClassifier(strategy="linear_probe", verbose=0, val_size=2).fit(X, y)
    assert second.fit_summary_["inputs_run_through_backbone"] == 0


@pytest.mark.parametrize("modality", ["image", "text"])
def test_partly_frozen_finetune_saves_and_reloads_to_identical_predictions(modality, tmp_path):
    X, y = tiny_inputs(modality, per_class=6)
    clf = TransferClassifier(strategy="finetune", freeze=2, lr=1e-2, **FAST).fit(X, y)
    clf.save(tmp_path)
    loaded = TransferClassifier.load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_lora_trains_only_adapters_and_merging_keeps_the_function():
    import torch

    from headstart.backbones import create_backbone
    from headstart.strategies.lora import inject_lora, lora_targets, merge_lora

    backbone = create_backbone("minilm_l6", max_length=16)
    reference = {k: v.clone() for k, v in backbone.state_dict().items()}
    targets = inject_lora(backbone, rank=4)
    assert len(targets) == 12 and all(t.rsplit(".", 1)[-1] in ("query", "value") for t in targets)
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # a trained-looking update: B is zero at the start, so make it non-zero
        for name, param in backbone.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    backbone.eval()
    batch = backbone.preprocess(["a fine film", "dull and long"])
    with torch.no_grad():
        adapted = backbone(batch)
    assert merge_lora(backbone) == 12
    assert not lora_targets(backbone) == [] and set(backbone.state_dict()) == set(reference)
    with torch.no_grad():
        torch.testing.assert_close(backbone(batch), adapted, rtol=1e-4, atol=1e-5)
    changed = [k for k in reference if not torch.equal(reference[k], backbone.state_dict()[k])]
    assert changed and all(k.rsplit(".", 2)[-2] in ("query", "value") for k in changed)


def test_lora_records_rank_and_targets_in_the_summary():
    X, y = tiny_inputs("text", per_class=6)
    clf = TransferClassifier(strategy="lora", lora_rank=2, **FAST).fit(X, y)
    assert clf.fit_summary_["lora_rank"] == 2 and clf.fit_summary_["lora_merged_layers"] == 12
    assert all(p.requires_grad for p in clf.backbone_.parameters())  # merged back into a plain backbone


def test_linear_probe_head_stays_bounded_for_a_near_constant_feature():
    """A feature constant up to rounding once gave head weights near 1e30 (W / sigma); LP-FT then diverged."""
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 20)
    X = np.column_stack([rng.normal(size=(40, 5)) + (y == "b")[:, None], 1e-20 * rng.normal(size=40)]).astype(np.float64)
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", verbose=0).fit(X, y)
    assert np.abs(clf.model_.head.weight.detach().numpy()).max() < 1e3
    assert clf.score(X, y) > 0.8


def test_lp_ft_probe_leaves_the_validation_split_unseen():
    X, y = tiny_inputs("text", per_class=6)
    clf = TransferClassifier(strategy="lp_ft", **FAST).fit(X, y)
    assert clf.fit_summary_["linear_probe"]["refit_on"] == "train"
