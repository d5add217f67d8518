"""Thresholds provenance and the in-sample refusal; adherence and alert burden, hand-computed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from phenoflow.core.contract import AnomalyEvent, HourlyFeatures, ScoreDaily, StepUpEvent, decode, encode
from phenoflow.core.errors import UserError
from phenoflow.evaluation.evaluate import evaluate_dir
from phenoflow.evaluation.provenance import REGISTRY, cohort_hash, day_ranges, file_hash, label_hashes
from phenoflow.evaluation.synth import write_synthetic_cohort
from phenoflow.reports.evaluation_report import evaluation_html, evaluation_markdown

D0 = np.datetime64("2021-03-01", "D")


def _restamp(root: Path, source: str) -> None:
    """Rewrite the scores.daily dump as if the score stage had used thresholds with this source."""
    path = root / "outputs" / "scores.daily.jsonl"
    lines = []
    for raw in path.read_bytes().splitlines():
        ev = decode("scores.daily", None, raw)
        ev.threshold_source = source  # type: ignore[union-attr]
        lines.append(encode(ev))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_labels_hash_ignores_order_and_format_but_not_dates() -> None:
    a = {"p1": [np.datetime64("2020-01-05")], "p2": []}
    b = {"p2": np.array([], dtype="datetime64[D]"), "p1": np.array(["2020-01-05"], dtype="datetime64[D]")}
    assert cohort_hash(a) == cohort_hash(b) and label_hashes(a) == label_hashes(b)
    assert cohort_hash({**a, "p1": [np.datetime64("2020-01-06")]}) != cohort_hash(a)
    days = np.array(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-07", "2020-01-09"], dtype="datetime64[D]")
    assert day_ranges(days) == [["2020-01-01", "2020-01-03"], ["2020-01-07", "2020-01-07"], ["2020-01-09", "2020-01-09"]]


def test_in_sample_thresholds_are_refused_unless_allowed(tmp_path: Path) -> None:
    root = tmp_path / "cohort"
    write_synthetic_cohort(root, participants=8, days=120, relapse_share=0.5, seed=5)
    thr = tmp_path / "thresholds.json"
    fit = evaluate_dir(root, protocol="adler", iterations=4, permutations=0, thresholds_out=thr)
    assert len(fit.thresholds) == 8
    h = file_hash(thr)
    assert (root / REGISTRY / f"{h}.json").read_bytes() == thr.read_bytes()  # found from the cohort dir alone
    _restamp(root, h)  # the stream ran with these thresholds
    with pytest.raises(UserError, match="fitted on this cohort's own labels.*--allow-in-sample"):
        evaluate_dir(root, permutations=0)
    r = evaluate_dir(root, permutations=0, allow_in_sample=True)
    assert r.in_sample and len(r.provenance.participants) == 8  # type: ignore[union-attr]
    assert "IN-SAMPLE" in evaluation_markdown(r)
    assert 'class="insample" style="color:#b91c1c' in evaluation_html(r)
    # the same stream evaluated against other labels (τ never saw them) is out of sample
    labels = (root / "labels.csv").read_text().splitlines()
    shifted = [ln if "," not in ln or ln.endswith(",") or ln.startswith("participant") else
               ln.split(",")[0] + "," + str(np.datetime64(ln.split(",")[1]) - 3) for ln in labels]
    (root / "labels.csv").write_text("\n".join(shifted) + "\n")
    moved = evaluate_dir(root, permutations=0)
    assert 0 < sum(1 for p in moved.participants if p.relapses) < 8
    assert not moved.in_sample and moved.provenance.files  # type: ignore[union-attr]  # checked, not ignored


def test_thresholds_of_unknown_provenance_are_refused_and_checked_when_passed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_synthetic_cohort(a, participants=6, days=120, relapse_share=0.5, seed=1)
    write_synthetic_cohort(b, participants=6, days=120, relapse_share=0.5, seed=2)
    thr = tmp_path / "from_a.json"
    evaluate_dir(a, protocol="adler", iterations=3, permutations=0, thresholds_out=thr)
    _restamp(b, file_hash(thr))  # cohort b streamed with a's thresholds
    with pytest.raises(UserError, match="provenance is unknown.*--thresholds FILE"):
        evaluate_dir(b, permutations=0)
    r = evaluate_dir(b, permutations=0, thresholds=[thr])
    assert not r.in_sample and r.provenance.files == {file_hash(thr): thr}  # type: ignore[union-attr]
    assert "calibration" not in r.provenance.sources  # type: ignore[union-attr]


def _write(root: Path) -> None:
    """P1: days 0–39, relapse day 35 (NR30 = 5–34); calibrating 0–4; no record on days 20–24
    (disengaged) and a null score on day 30; flags on 10, 12 and 36. P2: days 0–29, no relapse,
    calibrating 0–4, no records 10–11; flag on 15. Hourly: every scored day has 24 hours, of
    which 6 are type 2 on P1's flagged days and 2 on every other day."""
    out = root / "outputs"
    out.mkdir(parents=True)
    fs, fa, fh, fu = (open(out / f"{t}.jsonl", "wb") for t in ("scores.daily", "events.anomaly", "features.hourly", "events.stepup"))
    spec = {"P1": (40, set(range(20, 25)), {30}, {10, 12, 36}), "P2": (30, {10, 11}, set(), {15})}
    for pid, (n, gone, null, flags) in spec.items():
        for i in range(n):
            if i in gone:
                continue
            day = str(D0 + i)
            cal = i < 5
            score = None if cal or i in null else (2.0 if i in flags else 0.5)
            fs.write(encode(ScoreDaily(participant=pid, day=day, score=score, threshold=None if cal else 1.0,
                                       calibrating=cal, model="m", threshold_source="calibration")) + b"\n")
            if i in flags:
                ev = AnomalyEvent(participant=pid, event_id=f"{pid}-{i}", day=day, score=2.0, threshold=1.0, contributors=[], model="m")
                fa.write(encode(ev) + b"\n" + encode(ev) + b"\n")  # repeated after a restart: counted once
            t2 = 6 if (pid == "P1" and i in flags) else 2
            for h in range(24):
                hs = float((D0 + i - np.datetime64("1970-01-01", "D")).astype(np.int64) * 86400 + 3600 * h)
                fh.write(encode(HourlyFeatures(participant=pid, utc_offset_min=0, hour_start=hs, local_hour=h,
                                               weekday=0, features={"x": 1.0}, filled=1.0 if h < t2 else 0.1)) + b"\n")
    fu.write(encode(StepUpEvent(participant="P1", event_id="s1", from_level="a", to_level="b", source="passive",
                                evidence={}, day=str(D0 + 36))) + b"\n")
    for f in (fs, fa, fh, fu):
        f.close()
    (root / "labels.csv").write_text(f"participant,relapse_date\nP1,{D0 + 35}\nP2,\n")


def test_adherence_and_burden_hand_computed(tmp_path: Path) -> None:
    _write(tmp_path)
    r = evaluate_dir(tmp_path, permutations=0)
    a = {x.participant: x for x in r.adherence.participants}  # type: ignore[union-attr]
    p1, p2 = a["P1"], a["P2"]
    # P1: span 40, eligible 35 (days 5–39), scored 35 − 5 missing − 1 null = 29
    assert (p1.span_days, p1.eligible, p1.scored) == (40, 35, 29)
    # NR30 eligible = days 5–34 (30), unscored 20–24 and 30 → 6; DRH eligible = 35–39 (5), none unscored
    assert (p1.nr30_days, p1.unscored_nr30, p1.drh_days, p1.unscored_drh) == (30, 6, 5, 0)
    assert (p2.span_days, p2.eligible, p2.scored, p2.unscored_drh) == (30, 25, 23, 2)
    assert r.adherence.pooled_unscored == (pytest.approx(6 / 30), pytest.approx(2 / 30))  # type: ignore[union-attr]
    # type-2 hours: flagged days P1 10, 12 (NR30) and 36 (DRH) with 6, P2 15 with 2 → 20 of 96;
    # other scored days: 29 + 23 − 4 = 48 days × 2 = 96 of 1152
    assert r.adherence.type2 == (20, 76, 96, 1056)  # type: ignore[union-attr]
    from scipy.stats.contingency import odds_ratio
    assert r.adherence.odds_ratio == pytest.approx(odds_ratio([[20, 76], [96, 1056]]).statistic)  # type: ignore[union-attr]
    assert r.adherence.odds_ratio > 2  # type: ignore[union-attr, operator]
    burden = {b.group: b for b in r.burden}
    months = 40 / 30.4375
    assert burden["relapsing"].anomalies == 3 and burden["relapsing"].stepups == 1
    assert burden["relapsing"].pooled_anomaly_rate == pytest.approx(3 / months)
    assert burden["healthy"].pooled_anomaly_rate == pytest.approx(1 / (30 / 30.4375))
    assert burden["all"].months == pytest.approx(70 / 30.4375)
    assert burden["healthy"].stepup_rate.value == 0.0
    md = evaluation_markdown(r)
    assert "## Alert burden" in md and "## Adherence and missing data" in md and "## 95 % intervals" in md
    assert math.isclose(r.intervals["sensitivity"].value, 2 / 24)  # type: ignore[arg-type]  # tp 2 of 24 scored NR30


def test_cli_prints_the_plain_words_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from phenoflow.cli.main import app

    write_synthetic_cohort(tmp_path, participants=8, days=120, effect=3.0, seed=9)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--permutations", "200"])
    assert res.exit_code == 0, res.output
    assert "Separation is distinguishable from chance on this cohort (p = 0.00498)." in res.output  # 1/201
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--resamples", "5"])
    assert isinstance(res.exception, UserError) and "resamples must be ≥ 100" in str(res.exception)  # main() prints it


def test_comparison_autoencoder_calibrates_per_participant_like_the_stream() -> None:
    from phenoflow.evaluation.compare import participant_day_scores, participant_error_models
    from phenoflow.operators.scoring.calibration import fit_error_model

    rng = np.random.default_rng(0)
    # A's errors are 10× B's: a pooled Σ would call every A day anomalous and no B day
    keys = [("A", f"d{i}") for i in range(8)] + [("B", f"d{i}") for i in range(8)] + [("C", "d0"), ("C", "d1")]
    rows = [rng.gamma(2.0, 1.0, size=(1, 4)) * (10.0 if k[0] == "A" else 1.0) for k in keys]
    models = participant_error_models(keys, rows, fit_error_model)
    assert set(models) == {"A", "B"}  # C has 2 < 3 days: no calibration, no score
    got = participant_day_scores(models, keys, rows)
    own_a = fit_error_model(np.concatenate(rows[:8]))
    assert got[("A", "d3")] == pytest.approx(float(own_a.distances(rows[3]).mean()))
    assert ("C", "d0") not in got
    pooled = fit_error_model(np.concatenate(rows[:16]))
    a_pooled = np.mean([pooled.distances(r).mean() for r in rows[:8]])
    b_pooled = np.mean([pooled.distances(r).mean() for r in rows[8:16]])
    a_own = np.mean([got[k] for k in keys[:8]])
    b_own = np.mean([got[k] for k in keys[8:16]])
    assert a_pooled > 2 * b_pooled and a_own < 2 * b_own  # per-participant scales are comparable
