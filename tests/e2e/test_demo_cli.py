"""The demo and the reports through the CLI, as a new user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "phenoflow"]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_demo_then_evaluate_and_audit(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = _cli("demo", "--out", str(out), "--participants", "4", "--days", "60", "--seed", "3")
    assert "phenoflow demo" in res.stdout and "wall time" in res.stdout
    dumps = {p.name: p.read_bytes().splitlines() for p in (out / "outputs").glob("*.jsonl")}
    # Every participant-day after calibration is scored; hourly records cover every hour.
    assert len(dumps["features.hourly.jsonl"]) >= 4 * 55 * 24
    scores = [json.loads(x) for x in dumps["scores.daily.jsonl"]]
    assert {s["participant"] for s in scores} == {"p001", "p002", "p003", "p004"}
    for p in ("p001", "p002", "p003", "p004"):
        assert f"{p} " in res.stdout or f"│ {p}" in res.stdout

    report = tmp_path / "eval" / "report.html"
    ev = _cli("evaluate", str(out / "cohort"), "--outputs", str(out / "outputs"), "--report", str(report))
    assert "sensitivity" in ev.stdout.lower()
    html = report.read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")

    audit_html = tmp_path / "audit" / "audit.html"
    au = _cli("audit", str(out / "cohort"), "--outputs", str(out / "outputs"), "--report", str(audit_html))
    assert "Fisher" in au.stdout or "fisher" in au.stdout.lower()
    assert audit_html.exists()
