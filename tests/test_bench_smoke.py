"""The benchmark harness runs end to end at its smoke size (bundled data only), so it cannot rot."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_strategies_benchmark_smoke_runs_every_method(tmp_path, monkeypatch, capsys):
    from bench import strategies

    monkeypatch.setattr(strategies, "ROOT", tmp_path)  # results land in tmp, docs/benchmarks.md untouched
    assert strategies.main(["--smoke", "--tasks", "digits@10", "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "strategies-smoke.json").read_text())["results"]
    assert set(results["digits@10"]) == {*strategies.FIXED, "auto"}
    assert "| digits@10 |" in capsys.readouterr().out


def test_audio_benchmark_smoke_runs_every_part(tmp_path, monkeypatch, capsys):
    import shutil

    import pytest

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from bench import audio, datasets

    monkeypatch.setattr(audio, "ROOT", tmp_path)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "data"))
    assert audio.main(["--smoke", "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "audio-smoke.json").read_text())["results"]
    assert set(results["words@3"]) == {*audio.FIXED, "auto"}
    assert set(results["clean→noisy"]) == {"source_only", "coral", "auto"}
    assert "| words@3 |" in capsys.readouterr().out


def test_peers_benchmark_smoke_runs_every_peer_and_speed_row(tmp_path, monkeypatch, capsys):
    import importlib.util

    import pytest

    if importlib.util.find_spec("setfit") is None:
        pytest.skip("the peers group is not installed: pip install -e '.[peers]'")
    from bench import peers

    monkeypatch.setattr(peers, "ROOT", tmp_path)
    assert peers.main(["--smoke", "--tasks", "vader@8,digits@10", "--cache-dir", str(tmp_path / "cache"),
                       "--threads", "1"]) == 0
    saved = json.loads((tmp_path / "bench" / "results" / "peers-smoke.json").read_text())
    assert set(saved["accuracy"]["vader@8"]) == {f"headstart:{m}" for m in peers.HEADSTART["text"]} | set(peers.TEXT_PEERS)
    assert set(saved["accuracy"]["digits@10"]) == {f"headstart:{m}" for m in peers.HEADSTART["image"]} | set(peers.IMAGE_PEERS)
    assert {k.split(":")[1] for k in saved["speed"]} == {"floor", "extract", "headstart", "plain_loop", "hf_trainer"}
    assert all(row["examples_per_s"] > 0 and row["peak_mb"] > 0 for row in saved["speed"].values())
    assert "| vader@8 | setfit |" in capsys.readouterr().out


def test_regularizers_benchmark_smoke_runs_every_method(tmp_path, monkeypatch, capsys):
    from bench import regularizers

    monkeypatch.setattr(regularizers, "ROOT", tmp_path)
    assert regularizers.main(["--smoke", "--tasks", "digits@10", "--planner-tasks", "", "--methods", "plain,l2_sp,augment",
                              "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "regularizers-smoke.json").read_text())["results"]
    assert set(results["digits@10"]) == {"plain", "l2_sp", "augment"}
    assert "| digits@10 |" in capsys.readouterr().out


def test_contrastive_benchmark_smoke_runs_both_objectives(tmp_path, monkeypatch, capsys):
    from bench import contrastive

    monkeypatch.setattr(contrastive, "ROOT", tmp_path)
    assert contrastive.main(["--smoke", "--tasks", "digits@10", "--methods", "supcon,pairs,linear_probe",
                             "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "contrastive-smoke.json").read_text())["results"]
    assert set(results["digits@10"]) == {"supcon", "pairs", "linear_probe"}
    assert "| digits@10 |" in capsys.readouterr().out


def test_transferability_benchmark_smoke_reports_tau_and_ranking_cost(tmp_path, monkeypatch, capsys):
    from bench import transferability

    monkeypatch.setattr(transferability, "ROOT", tmp_path)
    assert transferability.main(["--smoke", "--tasks", "digits@10"]) == 0
    seeds = json.loads((tmp_path / "bench" / "results" / "transferability-smoke.json").read_text())["results"]["digits@10"]
    pairs = seeds[0]["pairs"]
    assert {p["backbone"] for p in pairs} == {"efficientnet_lite0", "mobilenetv2_100"}
    tau = seeds[0]["tau"]
    assert all(p["freeze"] in (0, 1) for p in pairs) and (tau != tau or -1 <= tau <= 1)  # NaN when accuracies tie
    assert seeds[0]["rank_seconds"] > 0 and "Kendall" in capsys.readouterr().out



def test_transferability_cost_only_times_ranking_against_one_full_fine_tune(tmp_path, monkeypatch, capsys):
    from bench import transferability

    monkeypatch.setattr(transferability, "ROOT", tmp_path)
    assert transferability.main(["--smoke", "--cost-only", "--tasks", "digits@10"]) == 0
    seeds = json.loads((tmp_path / "bench" / "results" / "transferability-cost-smoke.json").read_text())["results"]
    (seed,) = seeds["digits@10"]
    assert seed["rank_seconds"] > 0 and seed["full_finetune_seconds"] > 0 and seed["layers"] >= 2
    assert seed["top_backbone"] in ("efficientnet_lite0", "mobilenetv2_100")
    assert "| digits@10 | 100 |" in capsys.readouterr().out

def test_adaptation_benchmark_smoke_runs_headstart_skada_and_the_upper_bound(tmp_path, monkeypatch, capsys):
    from bench import adaptation

    monkeypatch.setattr(adaptation, "ROOT", tmp_path)
    assert adaptation.main(["--smoke", "--pairs", "movie→tweets", "--finetune", "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = json.loads((tmp_path / "bench" / "results" / "adaptation-smoke.json").read_text())["results"]["movie→tweets"]
    assert {"source_only", "hs:coral@1", "hs:auto", "ft:source_only", "ft:coral@1", "ft:auto", "skada:source_only",
            "skada:CORAL", "target_labeled"} <= set(rows)
    assert rows["hs:auto"][0]["chosen"] in ("source_only", "coral@1")
    assert all(rows[name][0]["dev"] is not None for name in ("source_only", "hs:coral@1", "ft:coral@1"))
    auto = rows["hs:auto"][0]
    assert auto["dev_rows"] > 0 and 0 < auto["dev_effective_rows"] <= auto["dev_rows"]
    assert "best skada adapter: skada:CORAL" in capsys.readouterr().out



def test_adaptation_benchmark_finetune_only_runs_just_the_asked_fine_tuning_rows(tmp_path, monkeypatch):
    from bench import adaptation

    monkeypatch.setattr(adaptation, "ROOT", tmp_path)
    assert adaptation.main(["--smoke", "--pairs", "movie→tweets", "--finetune-only", "--finetune-methods", "mcc",
                            "--finetune-weights", "0.3", "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = json.loads((tmp_path / "bench" / "results" / "adaptation-smoke.json").read_text())["results"]["movie→tweets"]
    assert set(rows) == {"ft:source_only", "ft:mcc@0.3", "ft:auto"}
    assert rows["ft:auto"][0]["chosen"] in ("source_only", "mcc@0.3")

def test_strategies_benchmark_methods_subset_runs_only_those_and_keeps_the_full_results(tmp_path, monkeypatch, capsys):
    from bench import strategies

    monkeypatch.setattr(strategies, "ROOT", tmp_path)
    assert strategies.main(["--smoke", "--tasks", "digits@10", "--methods", "baseline"]) == 0
    out = tmp_path / "bench" / "results"
    assert set(json.loads((out / "strategies-baseline-smoke.json").read_text())["results"]["digits@10"]) == {"baseline"}
    assert not (out / "strategies-smoke.json").exists()
    assert "| digits@10 |" in capsys.readouterr().out


def test_peers_merge_keeps_tasks_and_speed_of_earlier_runs(tmp_path, monkeypatch):
    import os

    from bench import peers

    monkeypatch.setattr(peers, "ROOT", tmp_path)
    folder = tmp_path / "bench" / "results"
    folder.mkdir(parents=True)
    row = lambda accuracy: [{"accuracy": accuracy, "seconds": 1.0}]
    earlier = {"meta": {"date": "2026-01-01", "machine": "x86_64, 1 threads"},
               "accuracy": {"vader@8": {"setfit": row(0.5)}, "fashion@10": {"setfit": row(0.1)}},
               "speed": {"image:floor": {"examples_per_s": 9.0, "peak_mb": 1.0}}}
    (folder / "peers-vader8.json").write_text(json.dumps(earlier))
    os.utime(folder / "peers-vader8.json", (1, 1))  # older than the run below
    now = {"date": "2026-02-02", "machine": "x86_64, 2 threads"}
    current = {"accuracy": {"fashion@10": {"plain_loop": row(0.7)}}, "speed": {}}
    (folder / "peers-fashion10.json").write_text(json.dumps({"meta": now, **current}))
    merged, meta = peers._merged(current, now)
    assert merged["accuracy"]["vader@8"] == {"setfit": row(0.5)}
    assert merged["accuracy"]["fashion@10"] == {"plain_loop": row(0.7)}  # the newer run of a task replaces it whole
    assert merged["speed"] == earlier["speed"]
    assert meta["measured"] == {"vader@8": "2026-01-01, x86_64, 1 threads", "fashion@10": "2026-02-02, x86_64, 2 threads",
                                "speed": "2026-01-01, x86_64, 1 threads"}


def test_bench_threads_option_sets_torch_threads_and_refuses_zero(capsys):
    import argparse

    import pytest
    import torch

    from bench.report import add_threads_option, apply_threads

    parser = argparse.ArgumentParser(prog="python -m bench.x")
    add_threads_option(parser)
    before = torch.get_num_threads()
    try:
        apply_threads(parser.parse_args(["--threads", "1"]))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    apply_threads(parser.parse_args([]))  # no flag: torch's own count, untouched
    assert torch.get_num_threads() == before
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    assert "--threads takes a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_fewshot_benchmark_smoke_runs_cheap_methods_and_renders_from_the_json(tmp_path, monkeypatch, capsys):
    from bench import fewshot

    monkeypatch.setattr(fewshot, "ROOT", tmp_path)
    assert fewshot.main(["--smoke", "--tasks", "vader_movie@8,digits@10", "--test-size", "20", "--threads", "1",
                         "--methods", "headstart:linear_probe,tfidf_logistic,pixel_logistic,small_cnn"]) == 0
    saved = json.loads((tmp_path / "bench" / "results" / "fewshot-smoke.json").read_text())
    results = saved["results"]
    assert set(results["vader_movie@8"]) == {"headstart:linear_probe", "tfidf_logistic"}
    assert set(results["digits@10"]) == {"headstart:linear_probe", "pixel_logistic", "small_cnn"}
    for entry in (e for by in results.values() for e in by.values()):
        assert entry["seeds"] == 1 and entry["per_seed"][0]["seed"] == 0 and 0 <= entry["mean"] <= 1
        assert entry["fit_seconds_median"] == entry["per_seed"][0]["fit_seconds"] >= 0
    assert saved["meta"]["threads"] == 1 and saved["meta"]["smoke"] is True
    assert not (tmp_path / "docs").exists()  # a smoke run writes no docs
    assert "| digits@10 | " in capsys.readouterr().out


def test_fewshot_render_computes_the_issue_checks_from_the_json(tmp_path, monkeypatch, capsys):
    from bench import fewshot

    def entry(accuracies, seconds):
        return fewshot.summarize([{"seed": s, "accuracy": a, "fit_seconds": seconds, "predict_seconds": 0.0}
                                  for s, a in enumerate(accuracies)])

    results = {}
    for task in fewshot.CHECK_TEXT_TASKS:
        results[task] = {"headstart:auto[minilm_l6]": entry([0.80, 0.82], 10.0), "setfit:minilm_l6": entry([0.78, 0.80], 40.0),
                         "headstart:auto": entry([0.80, 0.80], 30.0), "headstart:linear_probe": entry([0.78, 0.78], 1.0),
                         "setfit:mpnet_base": {"unavailable": "mpnet_base is not in headstart's zoo"}}
    results["vader_tweets@8"]["headstart:linear_probe"] = entry([0.85, 0.85], 1.0)  # auto 5 points below its probe
    results["fashion@10"] = {"headstart:auto": entry([0.73, 0.74], 50.0), "pixel_logistic": entry([0.72, 0.72], 0.1)}
    body = fewshot.render(results, {"date": "2026-01-01", "machine": "x86_64, 2 threads", "torch": "2", "headstart": "0"})
    assert "`headstart:auto[minilm_l6]` − `setfit:minilm_l6` = +2.0 points" in body and "0.25×" in body
    assert "setfit:mpnet_base unavailable: mpnet_base is not in headstart's zoo" in body
    assert "Below the bar: vader_tweets@8" in body and "vader_tweets@8 -5.0 ⚠" in body
    assert "`headstart:auto` on fashion@10 = 0.735" in body and "| fashion@10 |" in body
    # --render-only rewrites the docs section from the saved JSON, running nothing
    monkeypatch.setattr(fewshot, "ROOT", tmp_path)
    folder = tmp_path / "bench" / "results"
    folder.mkdir(parents=True)
    (folder / "fewshot.json").write_text(json.dumps({"meta": {"date": "2026-01-01", "machine": "m", "torch": "2",
                                                              "headstart": "0"}, "results": results}))
    assert fewshot.main(["--render-only"]) == 0
    assert "<!-- bench:fewshot:begin -->" in (tmp_path / "docs" / "benchmarks.md").read_text()


def test_fewshot_merge_replaces_a_rerun_seed_and_keeps_measured_rows_over_unavailable():
    from bench import fewshot

    results = {}
    fewshot.add_row(results, "t@8", "m", {"seed": 0, "accuracy": 0.5, "fit_seconds": 1.0})
    fewshot.add_row(results, "t@8", "m", {"seed": 1, "accuracy": 0.7, "fit_seconds": 3.0})
    fewshot.add_row(results, "t@8", "m", {"seed": 0, "accuracy": 0.9, "fit_seconds": 2.0})
    assert results["t@8"]["m"]["seeds"] == 2 and abs(results["t@8"]["m"]["mean"] - 0.8) < 1e-9
    assert results["t@8"]["m"]["fit_seconds_median"] == 2.5
    fewshot.mark_unavailable(results, "t@8", "m", "gone")
    assert results["t@8"]["m"]["seeds"] == 2
    fewshot.mark_unavailable(results, "t@8", "other", "gone")
    assert results["t@8"]["other"] == {"unavailable": "gone"}


def test_budget_benchmark_smoke_times_a_fit_against_its_budget(tmp_path, monkeypatch, capsys):
    from bench import budget

    monkeypatch.setattr(budget, "ROOT", tmp_path)
    assert budget.main(["--smoke", "--tasks", "digits", "--budgets", "5s"]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "budget-smoke.json").read_text())["results"]
    assert [(r["task"], r["budget"]) for r in results] == [("digits", "5s")]
    assert "| digits | 5s |" in capsys.readouterr().out


def test_paired_speed_benchmark_smoke_interleaves_both_sides_and_keeps_every_run(tmp_path, monkeypatch, capsys):
    import importlib.util

    import pytest

    if importlib.util.find_spec("datasets") is None:
        pytest.skip("the peers group is not installed: pip install -e '.[peers]'")
    from bench import paired

    monkeypatch.setattr(paired, "ROOT", tmp_path)
    calls = []
    assert paired.paired(lambda: calls.append("a") or 2.0, lambda: calls.append("b") or 1.0, 3)["ratios"] == [2.0] * 3
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # a warm-up each, then A B, B A, A B
    for _ in range(2):
        assert paired.main(["--smoke", "--rows", "image"]) == 0
    saved = json.loads((tmp_path / "bench" / "results" / "speed-smoke.json").read_text())
    assert len(saved["pairs_runs"]) == 2 and set(saved["pairs"]["rows"]) == {"image:freeze=0", "image:freeze=4"}
    assert all(row["ratio_median"] > 0 for row in saved["pairs"]["rows"].values())
    out = capsys.readouterr().out
    assert "| image:freeze=4 vs plain loop |" in out and ("(+" in out or "(-" in out)


def test_contrastive_head_benchmark_smoke_fits_four_heads_on_one_tuned_body(tmp_path, monkeypatch, capsys):
    from bench import contrastive_head

    monkeypatch.setattr(contrastive_head, "ROOT", tmp_path)
    assert contrastive_head.main(["--smoke", "--tasks", "digits@10", "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "bench" / "results" / "contrastive_head-smoke.json").read_text())["results"]
    assert set(results["digits@10"]) == set(contrastive_head.HEADS)
    library = results["digits@10"]["raw_cv"][0]
    # the features the bench fits its heads on are those predict's head reads (up to float rounding at a tie)
    assert library["features_agree_with_predict"] >= 0.95
    assert "| digits@10 | 1 |" in capsys.readouterr().out


def test_paired_render_compares_a_row_only_with_a_run_on_the_same_processor():
    from bench import paired

    def run(cpu, ratio, date):
        meta = {"machine": "x86_64, 2 torch threads", "cpu": cpu, "headstart": "0", "torch": "0", "date": date,
                "epochs": 10, "n_image": 256, "n_text": 128, "image_size": 64, "smoke": False, "hf_trainer_clock": "epochs"}
        row = {"ratio_median": ratio, "ratio_min": ratio, "ratio_max": ratio, "headstart_examples_per_s": 2.0,
               "peer_examples_per_s": 1.0, "pairs": 5}
        return {"meta": meta, "rows": {"image:freeze=0": row}}

    table = paired.render([run("CPU A", 1.10, "d1"), run("CPU B", 1.50, "d2")])
    assert "| image:freeze=0 vs plain loop | d2 (5), CPU B |" in table and "| — | — |" in table
    table = paired.render([run("CPU A", 1.10, "d1"), run("CPU B", 1.50, "d2"), run("CPU A", 1.12, "d3")])
    assert "| 1.10× | yes (+1.8%) |" in table
