import numpy as np

import headstart.cache as cache_module
from headstart.backbones import create_backbone
from headstart.cache import FeatureCache, content_hash

from helpers import tiny_inputs


def test_content_hash_depends_on_content_not_location(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"same")
    (tmp_path / "b.txt").write_bytes(b"same")
    assert content_hash(str(tmp_path / "a.txt"), "image") == content_hash(str(tmp_path / "b.txt"), "image")
    assert content_hash(str(tmp_path / "a.txt"), "text") != content_hash(str(tmp_path / "b.txt"), "text")


def test_cache_serves_any_subset_and_layer_without_recomputing(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "CHUNK_SIZE", 5)  # several chunk files
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    items, _ = tiny_inputs("image", per_class=6)
    items = list(items)
    cache = FeatureCache(tmp_path)
    everything = cache.features(backbone, items, backbone.layer_names)
    assert cache.last_computed == len(items) and len(list(tmp_path.rglob("chunk-*.safetensors"))) == 3
    fresh = FeatureCache(tmp_path)  # a new process: reads the files
    subset = fresh.features(backbone, items[3:7], ["blocks.2"])
    assert fresh.last_computed == 0
    np.testing.assert_array_equal(subset["blocks.2"], everything["blocks.2"][3:7])


def test_cache_ignores_a_damaged_chunk_and_recomputes(tmp_path):
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    items = list(tiny_inputs("image", per_class=2)[0])
    FeatureCache(tmp_path).features(backbone, items)
    for chunk in tmp_path.rglob("chunk-*.safetensors"):
        chunk.write_bytes(b"garbage")
    again = FeatureCache(tmp_path)
    again.features(backbone, items)
    assert again.last_computed == len(items)


def test_cache_reads_only_the_chunks_holding_the_inputs_asked_for(tmp_path):
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    images = list(tiny_inputs("image", per_class=4)[0])
    first, second = images[:4], images[4:]
    FeatureCache(tmp_path).features(backbone, first)
    FeatureCache(tmp_path).features(backbone, second)
    fresh = FeatureCache(tmp_path)
    fresh.features(backbone, second)
    assert fresh.last_computed == 0
    held = {h for bucket in next(iter(fresh._memory.values())).values() for h in bucket}
    assert held == {content_hash(item, "image") for item in second}  # the first data set stayed on disk


def test_cache_keeps_the_first_features_of_an_input_when_other_layers_recompute_it(tmp_path):
    # 10 inputs first run through the backbone itself, then all 140 through a BatchNorm-folded copy (for
    # the other layers): the rows differ in the last float bits, and the 10 first computed must stay
    # what every later call reads
    backbone = create_backbone("mobilenetv2_100", image_size=32)
    images = list(tiny_inputs("image", per_class=70)[0])[:140]
    assert len(images) == 140
    last = backbone.layer_names[-1]
    cache = FeatureCache(tmp_path)
    first = cache.features(backbone, images[:10])[last]
    everything = cache.features(backbone, images, backbone.layer_names)
    assert cache.last_computed == 140  # the 10 lacked the other layers
    np.testing.assert_array_equal(everything[last][:10], first)
    again = FeatureCache(tmp_path).features(backbone, images[:10])[last]  # a new process reads the files
    np.testing.assert_array_equal(again, first)


def test_cache_writes_an_input_given_twice_once(tmp_path):
    from safetensors.numpy import load_file

    backbone = create_backbone("mobilenetv2_100", image_size=32)
    images = list(tiny_inputs("image", per_class=2)[0])
    rows = FeatureCache(tmp_path).features(backbone, [images[0], images[1], images[0]])[backbone.layer_names[-1]]
    np.testing.assert_array_equal(rows[0], rows[2])
    (chunk,) = tmp_path.rglob("chunk-*.safetensors")
    assert len(load_file(str(chunk))["hashes"]) == 2


def test_second_linear_probe_reads_its_c_search_from_the_cache_and_predicts_the_same(tmp_path, monkeypatch):
    import headstart.heads as heads
    from headstart import TransferClassifier

    X, y = tiny_inputs("image", per_class=6)
    options = dict(strategy="linear_probe", image_size=32, cache_dir=tmp_path / "cache", verbose=0)
    first = TransferClassifier(**options).fit(X, y)
    assert not first.fit_summary_["C_chosen_by"].endswith("read from the cache")
    searches = []
    original = heads.choose_C_by_cv
    monkeypatch.setattr(heads, "choose_C_by_cv", lambda *a, **k: searches.append(1) or original(*a, **k))
    second = TransferClassifier(**options).fit(X, y)
    assert searches == [] and second.fit_summary_["C_chosen_by"].endswith("read from the cache")
    assert second.fit_summary_["C"] == first.fit_summary_["C"]
    np.testing.assert_array_equal(second.predict_proba(X), first.predict_proba(X))
    relabeled = TransferClassifier(**options).fit(X, y[::-1])  # other labels: searched again, not recalled
    assert searches == [1] and not relabeled.fit_summary_["C_chosen_by"].endswith("read from the cache")


def test_cache_record_survives_a_new_cache_object_and_ignores_a_damaged_file(tmp_path):
    FeatureCache(tmp_path).remember("C-search", "k", {"C": 0.1})
    assert FeatureCache(tmp_path).recall("C-search", "k") == {"C": 0.1}
    (tmp_path / "C-search" / "k.json").write_text("{not json")
    assert FeatureCache(tmp_path).recall("C-search", "k") is None  # searched again, never a crash
    assert FeatureCache(None).recall("C-search", "k") is None
