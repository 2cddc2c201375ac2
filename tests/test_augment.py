"""Data-side regularization: mixup / CutMix, RandAugment, token dropout, and their refusals."""

import numpy as np
import pytest
import torch

from headstart import TransferClassifier
from headstart.augment import BatchMixer, configure_augmentation, drop_tokens, make_batch_mixer
from headstart.backbones import create_backbone
from headstart.errors import ConfigError
from headstart.config import ResolvedConfig

from helpers import tiny_images, tiny_texts


@pytest.fixture(scope="module")
def image_backbone():
    return create_backbone("efficientnet_lite0", pretrained=True, image_size=32)


@pytest.fixture(scope="module")
def text_backbone():
    return create_backbone("minilm_l6", pretrained=True, max_length=64)


@pytest.fixture()
def image_batch(image_backbone):
    X, y = tiny_images(per_class=4)
    labels = torch.as_tensor(np.unique(y, return_inverse=True)[1])
    return image_backbone.preprocess(list(X))["pixel_values"], labels


# --------------------------------------------------------------------------- mixup / CutMix


@pytest.mark.parametrize("options", [{"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixing_changes_the_batch_and_gives_soft_targets_summing_to_one(options, smoothing, image_batch):
    pixels, labels = image_batch
    np.random.seed(3)  # timm draws lam (and mixup vs CutMix) from NumPy's global generator
    mixer = BatchMixer(**options, label_smoothing=smoothing, n_classes=2)
    mixed, targets = mixer(pixels.clone(), labels)
    assert mixed.shape == pixels.shape and not torch.equal(mixed, pixels)
    assert targets.shape == (len(labels), 2)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(len(labels)))
    assert ((targets > 0) & (targets < 1)).any()  # soft, not one-hot
    if options == {"cutmix": 1.0}:  # a box is pasted: some pixels are untouched
        assert (mixed == pixels).any()


def test_mixing_an_odd_batch_works(image_batch):
    pixels, labels = image_batch
    np.random.seed(0)
    mixed, targets = BatchMixer(mixup=0.4, n_classes=2)(pixels[:5].clone(), labels[:5])
    assert mixed.shape[0] == 5 and not torch.equal(mixed, pixels[:5])
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(5))


def test_mixing_is_refused_for_a_backbone_without_a_mixable_input(image_backbone, text_backbone):
    assert make_batch_mixer(ResolvedConfig(), image_backbone, 2) is None  # off by default
    mixer, key = make_batch_mixer(ResolvedConfig(mixup=0.2), image_backbone, 2)
    assert key == "pixel_values" and isinstance(mixer, BatchMixer)
    with pytest.raises(ConfigError, match=r"mixup/cutmix mix input tensors.*minilm_l6 \(text inputs\)"):
        make_batch_mixer(ResolvedConfig(cutmix=1.0), text_backbone, 2)


# --------------------------------------------------------------------------- RandAugment


def test_randaugment_is_in_the_training_transform_only(image_backbone):
    try:
        assert "RandAugment" not in repr(image_backbone._transform(True))
        X, _ = tiny_images(per_class=2)
        before = image_backbone.preprocess(list(X))["pixel_values"]
        configure_augmentation(image_backbone, randaugment=True)
        assert "RandAugment" in repr(image_backbone._transform(True))
        assert "RandAugment" not in repr(image_backbone._transform(False))
        assert "RandomResizedCrop" in repr(image_backbone._transform(True))  # the mild crops stay with augment
        torch.testing.assert_close(image_backbone.preprocess(list(X))["pixel_values"], before, rtol=0, atol=0)
        configure_augmentation(image_backbone, augment=False, randaugment=True)
        assert "RandAugment" in repr(image_backbone._transform(True))
        assert "ColorJitter" not in repr(image_backbone._transform(True))
        configure_augmentation(image_backbone, augment=False)
        assert repr(image_backbone._transform(True)) == repr(image_backbone._transform(False))
    finally:
        configure_augmentation(image_backbone)


def test_options_a_backbone_cannot_apply_are_refused(image_backbone, text_backbone):
    with pytest.raises(ConfigError, match=r"randaugment=True cannot be applied to backbone minilm_l6 \(text inputs\)"):
        configure_augmentation(text_backbone, randaugment=True)
    with pytest.raises(ConfigError, match=r"token_dropout=0.2 cannot be applied to backbone efficientnet_lite0"):
        configure_augmentation(image_backbone, token_dropout=0.2)


# --------------------------------------------------------------------------- token dropout


def _texts(n=40):
    texts, _ = tiny_texts(per_class=n // 2)
    return texts


def test_token_dropout_masks_about_the_fraction_never_special_tokens_and_only_in_training(text_backbone):
    texts = _texts()
    tokenizer = text_backbone.tokenizer
    plain = text_backbone.preprocess(texts, train=True)
    try:
        configure_augmentation(text_backbone, token_dropout=0.25)
        torch.manual_seed(0)
        dropped = text_backbone.preprocess(texts, train=True)
        torch.manual_seed(0)
        again = text_backbone.preprocess(texts, train=True)
        evaluated = text_backbone.preprocess(texts, train=False)
    finally:
        configure_augmentation(text_backbone)
    for name in plain:
        torch.testing.assert_close(evaluated[name], plain[name], rtol=0, atol=0)  # not at prediction time
        torch.testing.assert_close(again[name], dropped[name], rtol=0, atol=0)  # same seed, same drops
    ids, new = plain["input_ids"], dropped["input_ids"]
    assert new.shape == ids.shape and torch.equal(dropped["attention_mask"], plain["attention_mask"])
    special = torch.isin(ids, torch.as_tensor(tokenizer.all_special_ids))
    real = plain["attention_mask"].bool() & ~special
    changed = new != ids
    assert not (changed & ~real).any()  # [CLS], [SEP] and padding untouched
    assert (new[changed] == tokenizer.mask_token_id).all()
    fraction = changed.sum().item() / real.sum().item()
    assert real.sum() > 300 and 0.2 < fraction < 0.3


def test_token_dropout_deletes_tokens_when_there_is_no_mask_token(text_backbone):
    texts = _texts()
    tokenizer = text_backbone.tokenizer
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt",
                        return_special_tokens_mask=True)
    batch = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    torch.manual_seed(1)
    out = drop_tokens(batch, encoded["special_tokens_mask"], 0.3, mask_token_id=None,
                      pad_token_id=tokenizer.pad_token_id)
    before, after = batch["attention_mask"].sum(dim=1), out["attention_mask"].sum(dim=1)
    special_per_row = (encoded["special_tokens_mask"].bool() & batch["attention_mask"].bool()).sum(dim=1)
    removed = (before - after).sum().item() / (before - special_per_row).sum().item()
    assert 0.25 < removed < 0.35
    for row in range(len(texts)):
        kept = out["input_ids"][row][out["attention_mask"][row].bool()].tolist()
        original = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert kept[0] == tokenizer.cls_token_id and kept[-1] == tokenizer.sep_token_id
        iterator = iter(original)
        assert all(token in iterator for token in kept)  # an order-preserving subsequence
        assert (out["input_ids"][row][~out["attention_mask"][row].bool()] == tokenizer.pad_token_id).all()
    assert out["input_ids"].shape[1] <= batch["input_ids"].shape[1]
    assert drop_tokens(batch, encoded["special_tokens_mask"], 0.0, mask_token_id=None, pad_token_id=0) is batch


# --------------------------------------------------------------------------- options


def test_loop_options_with_linear_probe_are_refused_with_the_fix():
    X, y = tiny_texts(3)
    # the fix lists every strategy that runs the loop, read from the strategies' declarations (LoRA runs it too)
    with pytest.raises(ConfigError, match=r"mixup=0.2 act\(s\) in the fine-tuning loop.*'finetune', 'lp_ft', 'lora', 'scratch' or 'contrastive'"):
        TransferClassifier(mixup=0.2).fit(X, y)
    with pytest.raises(ConfigError, match=r"token_dropout=0.7 is above its maximum 0.5"):
        TransferClassifier(strategy="finetune", token_dropout=0.7).fit(X, y)
    with pytest.raises(ConfigError, match=r"label_smoothing=-0.1 is below its minimum 0.0"):
        TransferClassifier(strategy="finetune", label_smoothing=-0.1).fit(X, y)
