"""TransferSegmenter: strategies, masks at the input's size, run-folder round trip, auto, data errors."""

import numpy as np
import pytest
from PIL import Image

from headstart import TransferSegmenter
from headstart.datasets.segmentation import pasted_items, write_folders
from headstart.errors import ConfigError, DataError, WeightsNotFoundError
from headstart.segmentation import iou_scores
from headstart.segmentation.planner import choose
from headstart.segmentation.strategies import STRATEGIES

FAST = {"epochs": 1, "image_size": 32, "batch_size": 4}


@pytest.fixture(scope="module")
def data():
    return pasted_items(6, size=32, seed=0, classes=(0, 1))


def test_iou_scores_leave_absent_classes_out_of_the_mean():
    truth = [np.array([[0, 0], [1, 1]])]
    pred = [np.array([[0, 1], [1, 1]])]
    scores = iou_scores(truth, pred, 3)
    assert scores["per_class_iou"] == {0: 0.5, 1: 2 / 3, 2: None}
    assert scores["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_strategy_fits_and_its_run_folder_round_trips_to_identical_predictions(strategy, data, tmp_path):
    seg = TransferSegmenter(strategy=strategy, **FAST).fit(data.images, data.masks)
    predicted = seg.predict(data.images)
    assert predicted.shape == data.masks.shape and set(np.unique(predicted)) <= set(seg.classes_)
    assert seg.strategy_ == strategy and 0.0 <= seg.score(data.images, data.masks) <= 1.0
    loaded = TransferSegmenter.load(seg.save(tmp_path / "run"))
    np.testing.assert_array_equal(loaded.predict(data.images), predicted)
    assert loaded.strategy_ == strategy and loaded.classes_.tolist() == seg.classes_.tolist()


def test_segmenter_predicts_masks_at_each_inputs_own_size(data):
    seg = TransferSegmenter(strategy="frozen", **FAST).fit(data.images, data.masks)
    odd = [data.images[0][:24, :30], np.zeros((40, 52, 3), np.uint8)]
    assert [m.shape for m in seg.predict(odd)] == [(24, 30), (40, 52)]
    assert [p.shape for p in seg.predict_proba(odd)] == [(3, 24, 30), (3, 40, 52)]


def test_finetune_freeze_k_freezes_the_first_k_encoder_stages(data):
    seg = TransferSegmenter(strategy="finetune", freeze=2, **FAST).fit(data.images, data.masks)
    assert seg.frozen_stages_ == ["stem", "blocks.0"]
    frozen = [p.requires_grad for p in seg.model_.net.encoder.model.conv_stem.parameters()]
    assert frozen == [False]
    with pytest.raises(ConfigError, match=r"freeze=99 but the encoder of 'efficientnet_lite0' has only 8 stages"):
        TransferSegmenter(strategy="finetune", freeze=99, **FAST).fit(data.images, data.masks)


def test_auto_keeps_its_chosen_candidate_which_equals_that_fixed_fit(data):
    auto = TransferSegmenter(strategy="auto", **FAST).fit(data.images, data.masks)
    assert [row["strategy"] for row in auto.plan_] == ["finetune", "frozen", "scratch", "pixels"]
    beaten = [row for row in auto.plan_ if row["beats_default"]]
    expected = max(beaten, key=lambda row: row["val_mean_iou"])["strategy"] if beaten else "finetune"
    assert auto.strategy_ == expected and [row["chosen"] for row in auto.plan_].count(True) == 1
    fixed = TransferSegmenter(strategy=auto.strategy_, **FAST).fit(data.images, data.masks)
    np.testing.assert_array_equal(auto.predict(data.images), fixed.predict(data.images))


class _Fixed:
    """A fitted stand-in predicting given masks (one-hot probabilities)."""

    def __init__(self, masks):
        self.masks = masks

    def predict_proba(self, images):
        return [np.eye(2)[m].transpose(2, 0, 1) for m in self.masks]


@pytest.mark.parametrize("scratch_right, chosen", [(4, "scratch"), (1, "frozen")])
def test_auto_leaves_the_frozen_default_only_for_a_paired_95_percent_lead(scratch_right, chosen):
    truth = [np.eye(4, dtype=int)[:, :4] for _ in range(4)]
    wrong = [1 - t for t in truth]
    outputs = {"frozen": wrong, "scratch": truth[:scratch_right] + wrong[scratch_right:]}
    fitted, name, plan = choose(["frozen", "scratch"], lambda s: _Fixed(outputs[s]), (truth, truth), 2)
    assert name == chosen and fitted.masks is outputs[chosen]
    assert plan[1]["beats_default"] == (chosen == "scratch")


def test_segmenter_fits_from_folders_and_scores_mean_iou(data, tmp_path):
    root = write_folders(data, tmp_path / "set")
    seg = TransferSegmenter(strategy="pixels").fit(str(root))
    split = TransferSegmenter(strategy="pixels").fit(str(root / "images"), str(root / "masks"))
    assert seg.score(str(root)) == split.score(data.images, data.masks)
    assert len(seg.predict(str(root / "images"))) == len(data.images)


def test_folder_errors_name_the_unmatched_file_and_the_size_mismatch(data, tmp_path):
    root = write_folders(data, tmp_path / "set")
    Image.fromarray(data.images[0]).save(root / "images" / "extra.png")
    with pytest.raises(DataError, match=r"1 image\(s\) in .*images have no mask of the same name .*: extra.png"):
        TransferSegmenter(strategy="pixels").fit(str(root))
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / "extra.png")
    with pytest.raises(DataError, match=r"extra.png is 12x10 \(w x h\) but its image .* is 32x32"):
        TransferSegmenter(strategy="pixels").fit(str(root))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "masks" / "extra.png")
    with pytest.raises(DataError, match=r"mode 'RGB': a mask must be a single-channel label image"):
        TransferSegmenter(strategy="pixels").fit(str(root))


def test_score_counts_a_mask_value_the_model_never_saw_as_missed(data):
    seg = TransferSegmenter(strategy="pixels").fit(data.images, data.masks)
    unseen = data.masks.copy()
    unseen[1, :4, :4] = 7  # a class the training masks never held: never predicted, so IoU 0
    with pytest.warns(UserWarning, match=r"class value\(s\) \[7\] absent from the training masks .* IoU 0"):
        scores = seg.iou(data.images, unseen)
    assert scores["per_class_iou"][7] == 0.0
    assert set(scores["per_class_iou"]) == {*seg.classes_.tolist(), 7}


@pytest.mark.parametrize("params, message", [
    ({"image_size": 50}, r"image_size=50 is not a multiple of 32 .*use 32 or 64"),
    ({"strategy": "froze"}, r"strategy='froze' is not one of .*Did you mean 'frozen'"),
    ({"strategy": "scratch", "freeze": 1}, r"freeze=1 applies to strategy finetune, lp_ft or auto"),
    ({"resume": True}, r"resume=True needs run_dir"),
])
def test_invalid_parameters_raise_config_errors_naming_them(params, message, data):
    with pytest.raises(ConfigError, match=message):
        TransferSegmenter(**params).fit(data.images, data.masks)


def test_timm_encoder_without_network_says_how_to_get_weights(data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=r"timm: models download their weights .*use a zoo model"):
        TransferSegmenter(backbone="timm:resnet18", strategy="frozen", **FAST).fit(data.images, data.masks)


def test_window_reads_16_bit_images_and_round_trips_through_the_run_folder(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 2, size=(5, 32, 32))
    images = (masks * 20000 + rng.integers(0, 3000, size=masks.shape)).astype(np.uint16)  # (h, w) 16-bit scans
    seg = TransferSegmenter(strategy="pixels", window=(20000, 40000)).fit(images, masks)
    loaded = TransferSegmenter.load(seg.save(tmp_path / "run"))
    assert loaded.config_.window == "(20000, 40000)"
    np.testing.assert_array_equal(loaded.predict(images), seg.predict(images))
    assert seg.score(images, masks) > 0.9


def test_every_segmentation_strategy_declares_whether_it_transfers():
    from headstart.segmentation.strategies import AUTO_CANDIDATES, USES_PRETRAINED

    assert set(USES_PRETRAINED) == set(STRATEGIES) and set(AUTO_CANDIDATES) <= set(STRATEGIES)
    assert {name for name, pretrained in USES_PRETRAINED.items() if not pretrained} == {"scratch", "pixels"}


def test_default_schedule_gives_small_sets_enough_optimizer_steps(data):
    from headstart.segmentation.config import MIN_EPOCHS, MIN_STEPS, epochs_for

    assert epochs_for(8, 4) == 150 and epochs_for(80, 8) == MIN_EPOCHS  # 2 steps an epoch, then 10
    assert all(epochs_for(n, b) * -(-n // b) >= MIN_STEPS for n in (1, 5, 24, 80, 400) for b in (4, 8))
    seg = TransferSegmenter(strategy="pixels").fit(data.images, data.masks)
    assert seg.config_.epochs == epochs_for(seg.n_train_images_, seg.config_.batch_size)
