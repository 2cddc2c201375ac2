import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from headstart import TransferClassifier
from headstart.config import FitConfig
from headstart.errors import ConfigError, DataError, NotFittedError, RunFolderError, UnknownNameError

from helpers import tiny_images, tiny_texts

# Checks waived, each with its reason:
WAIVED = {
    # Our errors for bad input name the value and the fix; these checks require scikit-learn's
    # exact wording for a few of them, which we follow where it can be followed (see below).
}


def _expected_failed_checks(estimator):
    return WAIVED


@parametrize_with_checks(
    [TransferClassifier(backbone="precomputed", strategy="linear_probe", cache_dir="none", verbose=0),
     TransferClassifier(backbone="precomputed", strategy="finetune", epochs=30, cache_dir="none", verbose=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


def test_config_fields_are_the_estimator_parameters():
    from dataclasses import fields

    assert sorted(f.name for f in fields(FitConfig)) == sorted(TransferClassifier().get_params())
    assert list(TransferClassifier._get_param_names()) == sorted(f.name for f in fields(FitConfig))
    assert all(f.metadata["help"] for f in fields(FitConfig))


def test_unknown_strategy_suggests_close_matches():
    X, y = tiny_texts(3)
    with pytest.raises(UnknownNameError, match=r"unknown strategy 'linear_prob'\. Did you mean 'linear_probe'"):
        TransferClassifier(strategy="linear_prob").fit(X, y)


def test_invalid_parameter_names_the_value_and_the_range():
    X, y = tiny_texts(3)
    with pytest.raises(ConfigError, match=r"epochs=0 is below its minimum 1"):
        TransferClassifier(epochs=0).fit(X, y)
    with pytest.raises(ConfigError, match=r"freeze=2 only applies to strategy 'finetune', 'lp_ft' or 'contrastive', not 'linear_probe'"):
        TransferClassifier(freeze=2).fit(X, y)


def test_folder_options_take_a_path_and_other_types_are_refused(tmp_path):
    X, y = tiny_texts(4)
    TransferClassifier(verbose=0, cache_dir=tmp_path / "cache").fit(X, y)  # a linear probe caches its features
    assert any((tmp_path / "cache").iterdir())
    clf = TransferClassifier(strategy="finetune", epochs=1, verbose=0, checkpoint_dir=tmp_path / "checkpoint").fit(X, y)
    clf.save(tmp_path / "run")
    np.testing.assert_array_equal(TransferClassifier.load(tmp_path / "run").predict(X), clf.predict(X))
    with pytest.raises(ConfigError, match=r"checkpoint_dir=3 should be of type str"):
        TransferClassifier(checkpoint_dir=3).fit(X, y)


def test_backbone_of_the_wrong_modality_is_refused_with_the_right_one():
    X, y = tiny_texts(3)
    with pytest.raises(ConfigError, match=r"backbone 'efficientnet_lite0' takes image inputs.*holds text.*minilm_l6"):
        TransferClassifier(backbone="efficientnet_lite0").fit(X, y)


def test_one_class_only_is_refused():
    X, y = tiny_texts(3)
    with pytest.raises(DataError, match=r"only one class .*positive"):
        TransferClassifier(verbose=0).fit(X[:3], ["positive"] * 3)


def test_a_class_with_a_single_example_is_refused_with_its_name():
    X, y = tiny_texts(4)
    y = np.array(["a"] * 7 + ["b"])
    with pytest.raises(DataError, match=r"class 'b' has only 1 example.*Add at least one more example of 'b'"):
        TransferClassifier(verbose=0).fit(X, y)


def test_empty_text_is_refused_with_its_index():
    X, y = tiny_texts(3)
    X[2] = "   "
    with pytest.raises(DataError, match=r"X\[2\]"):
        TransferClassifier(verbose=0).fit(X, y)


def test_predict_before_fit_says_to_fit():
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit"):
        TransferClassifier().predict(["a sentence"])


def test_predict_with_the_wrong_modality_is_refused():
    X, y = tiny_texts(4)
    clf = TransferClassifier(verbose=0, val_size=2).fit(X, y)
    images, _ = tiny_images(1)
    with pytest.raises(DataError, match=r"trained on text inputs but received image"):
        clf.predict(images)


def test_fit_on_an_image_folder_path(tmp_path):
    from PIL import Image

    X, y = tiny_images(5)
    for i, (image, label) in enumerate(zip(X, y)):
        (tmp_path / f"class_{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / f"class_{label}" / f"{i}.png")
    clf = TransferClassifier(image_size=32, verbose=0, val_size=2).fit(str(tmp_path))
    assert list(clf.classes_) == ["class_0", "class_1"]


def test_load_refuses_a_tampered_weights_file(tmp_path):
    X, y = tiny_texts(4)
    TransferClassifier(verbose=0, val_size=2).fit(X, y).save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunFolderError, match=r"model.safetensors is not a readable safetensors file.*re-save"):
        TransferClassifier.load(tmp_path)


def test_load_refuses_a_folder_from_a_newer_format(tmp_path):
    import json

    X, y = tiny_texts(4)
    TransferClassifier(verbose=0, val_size=2).fit(X, y).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunFolderError, match=r"format 99.*Upgrade headstart"):
        TransferClassifier.load(tmp_path)


def test_load_refuses_a_missing_folder(tmp_path):
    with pytest.raises(RunFolderError, match=r"does not exist"):
        TransferClassifier.load(tmp_path / "nowhere")


def test_run_folder_holds_no_pickle(tmp_path):
    X, y = tiny_texts(4)
    TransferClassifier(verbose=0, val_size=2).fit(X, y).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "history.json", "metrics.json", "model.safetensors"]


def test_fit_on_labeled_feature_data_sets_the_feature_count():
    from headstart.data import from_arrays

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 5)), np.array([0, 1] * 10)
    clf = TransferClassifier(backbone="precomputed", cache_dir="none", verbose=0).fit(from_arrays(X, y))
    assert clf.n_features_in_ == 5
    texts, labels = tiny_texts(4)
    clf.set_params(backbone="auto").fit(texts, labels)
    assert not hasattr(clf, "n_features_in_")


def test_linear_probe_predicts_from_cached_features_without_running_the_backbone_again(tmp_path):
    from helpers import tiny_texts

    X, y = tiny_texts(8)
    clf = TransferClassifier(strategy="linear_probe", cache_dir=str(tmp_path / "cache"), verbose=0).fit(X, y)
    direct = clf.model_.predict_logits(list(X))  # the backbone's own forward pass
    first = clf.decision_function(X)
    forward = clf.backbone_.forward
    clf.backbone_.forward = lambda *a, **k: pytest.fail("the backbone ran although its features are cached")
    try:
        np.testing.assert_allclose(clf.decision_function(X), first)
    finally:
        clf.backbone_.forward = forward
    np.testing.assert_allclose(first, direct[:, 1] - direct[:, 0], rtol=1e-4, atol=1e-4)


def test_batch_size_defaults_to_16_steps_per_epoch_and_keeps_the_users(tmp_path):
    X, y = tiny_texts(8)  # 16 texts: 12 train after the 4 held out
    common = dict(strategy="finetune", epochs=1, val_size=4, cache_dir=str(tmp_path / "cache"), verbose=0)
    assert TransferClassifier(**common).fit(X, y).fit_summary_["batch_size"] == 8  # ceil(12 / 16) raised to 8
    assert TransferClassifier(batch_size=3, **common).fit(X, y).fit_summary_["batch_size"] == 3


def test_finetuned_backbone_predicts_with_its_own_forward_pass(tmp_path):
    from helpers import tiny_texts

    X, y = tiny_texts(8)
    clf = TransferClassifier(strategy="finetune", epochs=1, cache_dir=str(tmp_path / "cache"), verbose=0).fit(X, y)
    assert not clf._backbone_unchanged()
    direct = clf.model_.predict_logits(list(X))
    np.testing.assert_allclose(clf.decision_function(X), direct[:, 1] - direct[:, 0], rtol=1e-6)
