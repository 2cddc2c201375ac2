"""The fixed-seed fits recorded in tests/golden/fixed_fits.json still give the same predictions.

Recorded with ``python -m bench.golden --record`` before the hallway redesign (issue 23), which was
to change no behaviour; a change that means to alter predictions records them again and says why in
its commit. Labels and the planner's choices must match exactly; probabilities to 1e-6 against the
record of this CPU's instruction set, or to ``CROSS_MACHINE_TOLERANCE`` where only another
instruction set has one (``bench/golden.py`` says why).
"""

import json

import numpy as np
import pytest
import torch

from bench.golden import FITS, GOLDEN, THREADS, compare, cpu_capability, reference, run_fit

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
    record, tolerance, source = reference(RECORDED, name, cpu_capability())
    same, gap = compare(name, record, run_fit(name))
    assert same, f"{name}: predicted labels or planner choices differ from the {source} record in {GOLDEN}"
    assert gap <= tolerance, f"{name}: a predicted probability moved by {gap:.3g} against the {source} record"


def test_golden_record_covers_every_fit():
    assert set().union(*RECORDED.values()) == set(FITS)
    for records in RECORDED.values():
        assert all(np.isfinite(np.asarray(r["probabilities"])).all() for r in records.values())


def test_golden_reference_prefers_this_instruction_set_and_falls_back_loosely():
    recorded = {"AVX2": {"a": {"p": 2}}, "AVX512": {"a": {"p": 5}, "b": {"p": 6}}}
    assert reference(recorded, "a", "AVX512") == ({"p": 5}, 1e-6, "AVX512")
    record, tolerance, source = reference(recorded, "b", "AVX2")
    assert (record, source) == ({"p": 6}, "AVX512") and tolerance > 1e-3
    with pytest.raises(KeyError, match="python -m bench.golden --record --only c"):
        reference(recorded, "c", "AVX2")
