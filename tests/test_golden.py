"""The fixed-seed fits recorded in tests/golden/fixed_fits.json still give the same predictions.

Recorded with ``python -m bench.golden --record`` before the hallway redesign (issue 23), which was
to change no behaviour; a change that means to alter predictions records them again and says why in
its commit. Labels and the planner's choices must match exactly; probabilities to 1e-6, so that a
CPU that sums in another order does not fail the suite (here they match to the last digit:
``python -m bench.golden``).
"""

import json

import numpy as np
import pytest
import torch

from bench.golden import FITS, GOLDEN, THREADS, compare, run_fit

RECORDED = json.loads(GOLDEN.read_text())


@pytest.fixture
def ci_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", list(FITS))
def test_golden_fit_predicts_as_recorded(name, ci_threads):
    same, gap = compare(name, RECORDED[name], run_fit(name))
    assert same, f"{name}: predicted labels or planner choices differ from tests/golden/fixed_fits.json"
    assert gap <= 1e-6, f"{name}: a predicted probability moved by {gap:.3g}"


def test_golden_record_covers_every_fit():
    assert set(RECORDED) == set(FITS)
    assert all(np.isfinite(np.asarray(r["probabilities"])).all() for r in RECORDED.values())
