"""Reports end to end: demo-sized synthetic cohort → evaluate and audit → Markdown, CSV, HTML in Chromium."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from phenoflow.evaluation.audit import audit_dir
from phenoflow.evaluation.evaluate import EvaluationResult, evaluate_dir
from phenoflow.evaluation.synth import write_synthetic_cohort
from phenoflow.reports import plots
from phenoflow.reports.audit_report import write_audit_report
from phenoflow.reports.evaluation_report import (
    evaluation_markdown,
    write_evaluation_report,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    write_synthetic_cohort(root, participants=20, days=120, hourly_features=4, stepup_bias=0.5, seed=3)
    return root


@pytest.fixture(scope="module")
def reports(cohort: Path) -> dict[str, object]:
    out = cohort / "reports"
    ev = evaluate_dir(cohort, protocol="adler", iterations=20, compare="emitted,lof:hourly,hst:rhythm", compare_iterations=2)
    ev.files += write_evaluation_report(ev, out / "evaluation.html")
    au = audit_dir(cohort)
    au.files = write_audit_report(au, out)
    return {"evaluation": ev, "audit": au, "dir": out}


def test_evaluation_files_and_tables(reports: dict[str, object], cohort: Path) -> None:
    out = reports["dir"]
    assert isinstance(out, Path)
    ev = reports["evaluation"]
    for name in ("evaluation.html", "evaluation.md", "evaluation_participants.csv", "evaluation_models.csv"):
        assert (out / name).is_file(), name
    with open(out / "evaluation_participants.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    labels = (cohort / "labels.csv").read_text().splitlines()[1:]
    relapsed = {line.split(",")[0] for line in labels}
    for row in rows:  # participants without relapse: TPR n/a, never 0
        assert (row["sensitivity"] == "n/a") == (row["participant"] not in relapsed)
    with open(out / "evaluation_models.csv") as fh:
        models = list(csv.DictReader(fh))
    assert [m["model"] for m in models] == ["emitted", "lof:hourly", "hst:rhythm"] and all(m["status"] == "ok" for m in models)
    md = (out / "evaluation.md").read_text()
    for heading in ("## Model comparison", "## Anomaly rate by days before relapse", "## Features that differ", "## Per participant"):
        assert heading in md
    assert isinstance(ev, EvaluationResult) and md == evaluation_markdown(ev)


def test_evaluation_shows_intervals_null_and_burden(reports: dict[str, object]) -> None:
    ev = reports["evaluation"]
    out = reports["dir"]
    assert isinstance(ev, EvaluationResult) and isinstance(out, Path)
    html = (out / "evaluation.html").read_text()
    md = (out / "evaluation.md").read_text()
    assert ev.null is not None and ev.null.sentence() in md.lower()  # the plain-words line
    iv = ev.intervals["median_tpr_fpr"]
    assert f"| median TPR/FPR (per participant) | {iv.value:.2f} | {iv.low:.2f} | {iv.high:.2f} |" in md
    assert iv.low <= iv.value <= iv.high  # type: ignore[operator]
    # error bars: one whisker (3 lines) per figure with an interval, plus burden rows; and the null histogram
    assert "95 % bootstrap interval" in html and "Permutation null of the median TPR/FPR" in html
    assert "Alert burden" in html and "Adherence and missing data" in html
    assert html.count('stroke-width="2"/>') >= 3 * len(ev.intervals)
    assert "IN-SAMPLE" not in html  # thresholds came from calibration


def test_audit_files(reports: dict[str, object]) -> None:
    out = reports["dir"]
    assert isinstance(out, Path)
    md = (out / "audit.md").read_text()
    assert md.startswith("# phenoflow fairness audit")
    with open(out / "audit_tests.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(reports["audit"].tests)  # type: ignore[attr-defined]


def test_html_is_self_contained(reports: dict[str, object]) -> None:
    out = reports["dir"]
    assert isinstance(out, Path)
    for name in ("evaluation.html", "audit.html"):
        html = (out / name).read_text()
        assert "<script" not in html
        urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls  # nothing fetched from the network
        assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("headless Chromium is needed for this test: install it with `apt-get install -y chromium`")
    return exe


def _render(html: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp / 'profile'}", *extra, html.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_html_renders_in_headless_chromium(reports: dict[str, object], tmp_path: Path) -> None:
    out = reports["dir"]
    assert isinstance(out, Path)
    ev = reports["evaluation"]
    for name, min_svgs in (("evaluation.html", 0), ("audit.html", 2)):
        dom = _render(out / name, tmp_path, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr, dom.stderr[-2000:]
        n_svg = dom.stdout.count("<svg")
        if name == "evaluation.html":
            # 2 model intervals + rate + participant map + a panel per trajectory and feature + d panels
            trajs = ev.trajectories  # type: ignore[attr-defined]
            min_svgs = 4 + sum(1 + len(t.features) for t in trajs) + len(ev.explanations)  # type: ignore[attr-defined]
            assert trajs and ev.explanations  # type: ignore[attr-defined]
        assert n_svg >= min_svgs, (name, n_svg, min_svgs)
        assert "<rect" in dom.stdout and "<polyline" in dom.stdout or name == "audit.html"
    shot = tmp_path / "report.png"
    res = _render(out / "evaluation.html", tmp_path, f"--screenshot={shot}", "--window-size=1200,2000")
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 50_000, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


# --- plotting helpers ---------------------------------------------------------------------


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert plots.nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert plots.nice_ticks(-2.6, 4.6, 4) == [-2, 0, 2, 4]
    t = plots.nice_ticks(3.1, 97.2, 5)
    assert t[0] >= 3.1 and t[-1] <= 97.2 and len(set(np.diff(t).round(9))) == 1


def test_chart_scales_and_gaps_break_lines() -> None:
    c = plots.Chart(200, 100, "t", margin=(10, 10, 10, 10))
    c.set_x(0, 10)
    c.set_y(0, 1)
    assert (c.x(0), c.x(10), c.y(0), c.y(1)) == (10, 190, 90, 10)
    c.set_x(0.01, 100, log=True)
    assert c.x(1) == pytest.approx(100)
    days = np.array(["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-06"], dtype="datetime64[D]")
    xs, ys = plots._with_gaps(days, np.array([1.0, 2.0, 3.0, 4.0]))
    assert np.isnan(xs[2]) and len(xs) == 5
    c2 = plots.Chart(200, 100, "t")
    c2.set_x(xs[0], xs[-1])
    c2.set_y(0, 5)
    c2.line(xs, ys)
    assert c2.render().count("<polyline") == 2
    assert "&lt;b&gt;" in plots.Chart(10, 10, "<b>").render()  # titles are escaped
