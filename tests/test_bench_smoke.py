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
