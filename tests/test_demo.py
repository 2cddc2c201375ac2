from headstart.demo import _verdict

BEST = {"test_accuracy": 0.70, "test_accuracy_interval": [0.63, 0.76], "n_test": 200}
BASE = {"test_accuracy": 0.66, "test_accuracy_interval": [0.59, 0.72], "n_test": 200}


def test_demo_verdict_claims_a_win_only_when_the_paired_interval_excludes_zero():
    assert _verdict(BEST, BASE, (0.04, 0.01, 0.07)).startswith("transfer beat the no-transfer baseline")
    assert _verdict(BEST, BASE, (-0.04, -0.07, -0.01)).startswith("transfer did NOT beat")
    within = _verdict(BEST, BASE, (0.04, -0.02, 0.09))
    assert within.startswith("transfer and the no-transfer baseline are within noise") and "includes 0" in within
