"""``phenoflow rhythm``: the CLI takes ``count_columns`` from the config file and the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phenoflow.cli.main import app


@pytest.fixture(autouse=True)
def _no_phenoflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PHENOFLOW_"):
            monkeypatch.delenv(key)


def _csv(path: Path) -> Path:
    """Two days of two columns with a daily rhythm (IS/IV are defined for both)."""
    lines = ["time,accel_sd,call_n"]
    for d in (1, 2):
        for h in range(24):
            lines.append(f"2024-05-0{d}T{h:02d}:00,{0.1 + 0.02 * h},{h % 3}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _is_columns(out: Path) -> set[str]:
    last = json.loads(out.read_text().splitlines()[-1])
    return {k.split(".")[0] for k in last["features"] if ".is." in k and last["features"][k] is not None}


def test_cli_takes_count_columns_from_config_env_and_flag(tmp_path: Path) -> None:
    src, out = _csv(tmp_path / "h.csv"), tmp_path / "r.jsonl"
    cfg = tmp_path / "c.toml"
    cfg.write_text('count_columns = "call_n"\n')
    runner = CliRunner()

    def run(*args: str, **env: str) -> set[str]:
        res = runner.invoke(app, ["rhythm", str(src), "--out", str(out), *args], env=env or None)
        assert res.exit_code == 0, res.output
        assert "wrote 2 days" in res.output  # the days written, one JSON line each
        return _is_columns(out)

    assert run() == {"accel_sd", "call_n"}  # default: every column gets IS/IV
    assert run("--config", str(cfg)) == {"accel_sd"}  # the config file opts call_n out
    assert run(PHENOFLOW_CONFIG=str(cfg)) == {"accel_sd"}
    assert run("--config", str(cfg), PHENOFLOW_COUNT_COLUMNS="accel_sd") == {"call_n"}  # env beats file
    assert run("--config", str(cfg), "--count-columns", "", PHENOFLOW_COUNT_COLUMNS="accel_sd") == {
        "accel_sd", "call_n"}  # an explicit empty flag beats both
    # A column the CSV lacks is one clear error, whichever layer named it.
    res = runner.invoke(app, ["rhythm", str(src), "--out", str(out)], env={"PHENOFLOW_COUNT_COLUMNS": "calls"})
    assert res.exit_code != 0 and "PHENOFLOW_COUNT_COLUMNS" in str(res.exception)


def test_cli_takes_min_coverage_from_config_env_and_flag(tmp_path: Path) -> None:
    # Day 2 misses 6 of accel_sd's 24 hours: its 2-day window has 42/48 = 0.875 of its hours.
    lines = ["time,accel_sd"] + [f"2024-05-0{d}T{h:02d}:00,{'' if d == 2 and h < 6 else 0.1 + 0.02 * h}"
                                 for d in (1, 2) for h in range(24)]
    src, out = tmp_path / "h.csv", tmp_path / "r.jsonl"
    src.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("rhythm_min_coverage = 0.9\n")
    runner = CliRunner()

    def m10(*args: str, **env: str) -> float | None:
        res = runner.invoke(app, ["rhythm", str(src), "--out", str(out), *args], env=env or None)
        assert res.exit_code == 0, res.output
        return json.loads(out.read_text().splitlines()[-1])["features"]["accel_sd.m10.w2"]

    assert m10() is not None  # default 0.5 ≤ 0.875
    assert m10("--config", str(cfg)) is None  # the file's 0.9 > 0.875
    assert m10(PHENOFLOW_RHYTHM_MIN_COVERAGE="0.9") is None
    assert m10("--config", str(cfg), "--min-coverage", "0.8") is not None  # the flag beats the file
