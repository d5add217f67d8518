"""The ``>>>`` examples in the docstrings of the public operator classes and core helpers run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "phenoflow.core.timebase",
    "phenoflow.core.pseudonym",
    "phenoflow.operators.hourly.aggregator",
    "phenoflow.operators.rhythm.rolling",
    "phenoflow.operators.scoring.calibration",
    "phenoflow.operators.stepup.who5",
    "phenoflow.operators.stepup.passive",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no >>> example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
