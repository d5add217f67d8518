"""The broker-less benchmarks still run: each at a toy size, in a fresh process, to the end.

A benchmark is only worth its figures if it runs; after a refactor nothing else
imports these scripts (``bench_evaluate.py`` patched a function in a module that
no longer held it, and failed on the first run after the layout change). Sizes
here are for speed, so nothing below checks a figure — only that each script
finishes and prints the comparison line it exists for. The broker-bound scripts
(hourly, replay, cluster, RADAR, dashboard) are covered by the integration tests
of the code they time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "default.onnx"

CASES = {
    "bench_evaluate": (["--participants", "6", "--days", "40", "--features", "20", "--iterations", "3"],
                       "same τ: True"),
    "bench_state": (["--participants", "2", "--days", "3"], "HourlyAggregator"),
    "bench_simulate": (["--participants", "2", "--days", "3"], "vs json"),
    "bench_scoring": (["--model", str(MODEL), "--participants", "8", "--days", "2", "--batch", "8",
                       "--repeats", "1"], "inference + Mahalanobis"),
    "bench_rhythm_observed": (["--participants", "1", "--days", "15", "--repeat", "1"], "ratio after/before"),
    "bench_import_files": (["--rows", "20000"], "reader / plain rate"),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_to_its_comparison(script: str, tmp_path: Path) -> None:
    args, expected = CASES[script]
    if script == "bench_evaluate":
        args = [*args, "--dir", str(tmp_path / "evaluate")]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
