"""Fairness audit: Fisher's exact tests per group, Benjamini–Yekutieli correction (Buda et al. 2022)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from phenoflow.core.contract import AnomalyEvent, ScoreDaily, StepUpEvent, encode
from phenoflow.core.errors import UserError
from phenoflow.evaluation.audit import audit_dir, group_test
from phenoflow.reports.audit_report import audit_markdown, write_audit_report


def _fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Independent two-sided Fisher p: sum of hypergeometric tables no likelier than the observed."""
    r1, c1, n = a + b, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(c1, x) * math.comb(n - c1, r1 - x) / math.comb(n, r1)

    p_obs = prob(a)
    lo, hi = max(0, r1 + c1 - n), min(r1, c1)
    return min(1.0, sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= p_obs * (1 + 1e-7)))


def _by(p: list[float]) -> np.ndarray:
    """Independent Benjamini–Yekutieli: p_(i)·m·Σ1/j / i, cumulative minimum from the largest, ≤ 1."""
    m = len(p)
    order = np.argsort(p)
    cm = sum(1 / j for j in range(1, m + 1))
    adj = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m * cm / rank)
        adj[i] = running
    return adj


def test_group_test_hand_computed() -> None:
    members = np.array([1] * 10 + [0] * 6, dtype=bool)
    has = np.array([1] * 8 + [0] * 2 + [1] * 1 + [0] * 5, dtype=bool)
    t = group_test("gender", "f", "step-up", members, has)
    assert (t.n_group, t.events_group, t.n_rest, t.events_rest) == (10, 8, 6, 1)
    assert t.odds_ratio == pytest.approx(8 * 5 / (2 * 1))
    assert t.p == pytest.approx(_fisher_two_sided(8, 2, 1, 5))
    assert t.ci_low < t.odds_ratio < t.ci_high
    assert t.rate_group == 0.8 and t.rate_rest == pytest.approx(1 / 6)


def _cohort(root: Path, rows: list[tuple[str, str, str, bool, bool]], monitored: set[str] | None = None) -> Path:
    """rows: (participant, gender, age_band, has anomaly, has step-up)."""
    out = root / "outputs"
    out.mkdir(parents=True)
    (root / "participants.csv").write_text("participant,gender,age_band\n" + "".join(f"{p},{g},{a}\n" for p, g, a, _, _ in rows))
    with open(out / "scores.daily.jsonl", "wb") as fs, open(out / "events.anomaly.jsonl", "wb") as fa, open(out / "events.stepup.jsonl", "wb") as fu:
        for p, _, _, anomaly, stepup in rows:
            if monitored is None or p in monitored:
                fs.write(encode(ScoreDaily(participant=p, day="2020-01-01", score=1.0, threshold=2.0, calibrating=False, model="m")) + b"\n")
            if anomaly:
                fa.write(encode(AnomalyEvent(participant=p, event_id=p, day="2020-01-02", score=3.0, threshold=2.0, contributors=[], model="m")) + b"\n")
            if stepup:
                fu.write(encode(StepUpEvent(participant=p, event_id=p, from_level="regular", to_level="low", source="survey", evidence={}, day="2020-01-03")) + b"\n")
    return root


def test_planted_disparity_is_significant_after_correction(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(100):
        g = "f" if i < 50 else "m"
        stepup = (i % 50) < (40 if g == "f" else 5)  # 80 % of women vs 10 % of men
        rows.append((f"P{i:03d}", g, ("18-29", "30-44", "45+", "60+")[i % 4], bool(rng.random() < 0.5), stepup))
    a = audit_dir(_cohort(tmp_path, rows))
    files = write_audit_report(a, tmp_path / "report")
    tests = {(t.attribute, t.group, t.outcome): t for t in a.tests}
    f = tests[("gender", "f", "step-up")]
    assert f.level == "alert" and f.p_by < 1e-6 and f.odds_ratio == pytest.approx(40 * 45 / (10 * 5))
    assert tests[("gender", "m", "step-up")].level == "alert"
    assert all(t.level != "alert" for t in a.tests if t.attribute == "age_band")
    assert len(a.tests) == 2 * 2 + 4 * 2  # (2 genders + 4 age bands) × 2 outcomes
    md = audit_markdown(a)
    assert "**Alerts:** gender = f: step-up rate 80% vs 10%" in md
    assert (tmp_path / "report" / "audit.html").is_file() and (tmp_path / "report" / "audit_tests.csv").is_file()
    assert set(files) >= {tmp_path / "report" / "audit.html", tmp_path / "report" / "audit_tests.csv"}


def test_balanced_table_is_not_significant(tmp_path: Path) -> None:
    # every block of 6 consecutive ids holds 3 f / 3 m and 2 of each age band; events by block
    rows = [(f"P{i:02d}", "fm"[i % 2], ("a", "b", "c")[i % 3], (i // 6) % 2 == 0, (i // 12) % 2 == 0) for i in range(60)]
    a = audit_dir(_cohort(tmp_path, rows))
    assert a.tests and all(t.level == "ok" and t.p_by >= 0.05 for t in a.tests)
    g = [t for t in a.tests if t.attribute == "gender"]
    assert all(t.rate_group == pytest.approx(t.rate_rest) for t in g)
    assert "**No alert:**" in audit_markdown(a)


def test_corrected_p_values_are_benjamini_yekutieli(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [(f"P{i:02d}", "fmx"[i % 3], ("a", "b")[i % 2], bool(rng.random() < 0.3 + 0.3 * (i % 3 == 0)), bool(rng.random() < 0.4)) for i in range(90)]
    a = audit_dir(_cohort(tmp_path, rows))
    p = [t.p for t in a.tests]
    got = np.array([t.p_by for t in a.tests])
    assert np.allclose(got, false_discovery_control(p, method="by"))
    assert np.allclose(got, _by(p))
    for t in a.tests:
        assert t.p == pytest.approx(_fisher_two_sided(t.events_group, t.n_group - t.events_group, t.events_rest, t.n_rest - t.events_rest))


def test_small_groups_unmonitored_and_blank_values(tmp_path: Path) -> None:
    # gender f: 5 of 60 (8 %, below 10 %); age_band blank: 10 of 60 (17 %, its own group)
    rows = [(f"P{i:02d}", "f" if i < 5 else "m", "" if 5 <= i < 15 else "a" if i % 2 else "b", i % 2 == 0, i % 3 == 0) for i in range(60)]
    rows.append(("P99", "f", "a", False, False))  # never monitored: not audited
    a = audit_dir(_cohort(tmp_path, rows, monitored={r[0] for r in rows[:-1]}), min_group_share=0.1)
    assert a.participants == 60
    assert a.small_groups == [("gender", "f", 5)]
    groups = {(t.attribute, t.group) for t in a.tests}
    assert groups == {("gender", "m"), ("age_band", "(blank)"), ("age_band", "a"), ("age_band", "b")}
    blank = next(t for t in a.tests if t.group == "(blank)" and t.outcome == "step-up")
    assert (blank.n_group, blank.events_group) == (10, sum(1 for i in range(5, 15) if i % 3 == 0))
    assert any("never monitored" in n for n in a.notes)


def test_audit_user_errors(tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    with pytest.raises(UserError, match="participants.csv not found"):
        audit_dir(tmp_path)
    (tmp_path / "participants.csv").write_text("participant\nA\n")
    with pytest.raises(UserError, match="no attribute column"):
        audit_dir(tmp_path)
    (tmp_path / "participants.csv").write_text("participant,timezone\nA,Europe/London\n")
    with pytest.raises(UserError, match="no attribute column"):
        audit_dir(tmp_path)
    (tmp_path / "participants.csv").write_text("participant,gender\nA,f\nA,m\n")
    with pytest.raises(UserError, match="listed twice"):
        audit_dir(tmp_path)
    (tmp_path / "participants.csv").write_text("participant,gender\nA,f\nB,m\n")
    with pytest.raises(UserError, match="no events.anomaly or events.stepup dump"):
        audit_dir(tmp_path)
    with pytest.raises(UserError, match="between 0 and 1"):
        audit_dir(tmp_path, min_group_share=10)
