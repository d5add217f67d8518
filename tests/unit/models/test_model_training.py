"""Training on days of relative health and end-to-end detection of an injected shift (train extra)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from phenoflow.connectors.cohort import read_labels
from phenoflow.core.contract import HourlyFeatures, RhythmDaily
from phenoflow.core.errors import UserError
from phenoflow.models.train import (
    error_group,
    fit_feature_spec,
    is_near_relapse,
    train_model,
)
from phenoflow.operators.scoring.calibration import CalibrationConfig, ParticipantScorer
from phenoflow.operators.scoring.reconstruction import OnnxScorer

MODS = ("accel", "screen", "sound", "light")
METRICS = ("m10", "l5", "is", "periodogram.24")
NAMES = [f"{m}.{k}.w{w}" for m in MODS for k in METRICS for w in (2, 6, 14)]
SHIFTED = {n for n in NAMES if n.startswith(("screen.m10.", "sound.l5."))}
START = date(2024, 1, 1)


def cohort(n_part: int = 6, n_days: int = 80, relapse_day: int = 65, shift: float = 3.0, seed: int = 0):
    """Healthy days: a 3-factor structure plus noise; relapsing participants' last 20
    days before relapse get +``shift`` in the SHIFTED features (breaking the structure)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(len(NAMES), 3))
    idx = [NAMES.index(n) for n in sorted(SHIFTED)]
    recs, labels, shifted = [], {}, set()
    for j in range(n_part):
        pid = f"p{j:02d}"
        offset = 0.3 * rng.normal(size=len(NAMES))  # personal baseline
        relapse = START + timedelta(days=relapse_day) if j % 2 == 0 else None
        if relapse:
            labels[pid] = [relapse]
        for d in range(n_days):
            day = START + timedelta(days=d)
            x = A @ rng.normal(size=3) + offset + 0.3 * rng.normal(size=len(NAMES))
            if relapse and 0 <= (relapse - day).days <= 20:
                x[idx] += shift
                shifted.add((pid, day.isoformat()))
            feats: dict[str, float | None] = {n: float(v) for n, v in zip(NAMES, x, strict=True)}
            if rng.random() < 0.1:
                feats[NAMES[int(rng.integers(len(NAMES)))]] = None
            recs.append(RhythmDaily(participant=pid, day=day.isoformat(), features=feats, coverage={"w2": 1.0}))
    return recs, labels, shifted


def test_shifted_days_are_flagged_far_more_often(tmp_path: Path) -> None:
    recs, labels, shifted = cohort()
    summary = train_model(recs, labels, tmp_path / "m.onnx", hidden=16, seed=0, max_epochs=60, patience=8)
    # 3 relapsing participants × (30 days before + relapse day) = 93 records excluded from training
    assert summary.n_near_relapse_excluded == 93
    scorer = OnnxScorer(summary.out)
    space = scorer.error_space()
    states: dict[str, ParticipantScorer] = {}
    tp = fp = n_pos = n_neg = 0
    named: list[str] = []
    for d in scorer.day_errors(recs):
        st = states.setdefault(d.participant, ParticipantScorer(d.participant, space, CalibrationConfig()))
        out = st.update(d.day, d.errors, d.utc_offset_min, observed=d.observed)
        if out.score.calibrating:
            assert out.anomaly is None and out.score.threshold is None
            continue
        flagged = out.anomaly is not None
        assert flagged == (out.score.score > out.score.threshold)
        if (d.participant, d.day) in shifted:
            n_pos += 1
            tp += flagged
            if out.anomaly:
                named += [c.feature for c in out.anomaly.contributors]
        else:
            n_neg += 1
            fp += flagged
    tpr, fpr = tp / n_pos, fp / n_neg
    # κ was measured on the training days for the default calibration and is applied
    assert summary.threshold_factor == pytest.approx(float(scorer.metadata["threshold_factor"]))
    assert 0.5 < summary.threshold_factor < 3 and st.threshold_factor == summary.threshold_factor
    assert n_pos == 63 and tpr >= 0.8
    assert tpr / max(fpr, 1e-9) >= 2.0
    # contributors of the shifted days are overwhelmingly the shifted features
    assert sum(n in SHIFTED for n in named) / len(named) >= 0.9


def test_near_relapse_window_and_labels(tmp_path: Path) -> None:
    r = date(2024, 3, 31)
    assert is_near_relapse(r - timedelta(days=30), [r]) and is_near_relapse(r, [r])
    assert not is_near_relapse(r - timedelta(days=31), [r]) and not is_near_relapse(r + timedelta(days=1), [r])
    f = tmp_path / "labels.csv"
    f.write_text("participant,relapse_date\np1,2024-03-31\np1,2024-01-05\np2,\n")
    assert read_labels(f) == {"p1": [date(2024, 1, 5), date(2024, 3, 31)], "p2": []}
    f.write_text("participant,when\np1,2024-03-31\n")
    with pytest.raises(UserError, match="relapse_date"):
        read_labels(f)
    f.write_text("participant,relapse_date\np1,31/03/2024\n")
    with pytest.raises(UserError, match=r"labels.csv line 2"):
        read_labels(f)


def test_feature_selection_and_error_groups() -> None:
    names = ["a.x.w2", "b.y.w2", "c.z.w2", "d.pow.24.w2"]
    rng = np.random.default_rng(0)
    raw = np.column_stack([
        rng.normal(size=20),
        np.where(np.arange(20) < 12, np.nan, 1.0),  # 60 % missing: dropped
        np.full(20, 4.2),  # constant: dropped
        rng.exponential(size=20) ** 3,  # non-negative, very skewed: log1p
    ])
    spec, n_null, n_const = fit_feature_spec(raw, names, input_kind="rhythm")
    assert spec.names == ("a.x.w2", "d.pow.24.w2") and (n_null, n_const) == (1, 1)
    assert spec.log.tolist() == [False, True]
    assert spec.mean[1] == pytest.approx(np.log1p(raw[:, 3]).mean())
    # default: one group per modality, across statistics, parameters and windows
    assert error_group("accel_mean.sampen.tau3.w2", "rhythm") == "accel_mean"
    assert error_group("call_n.power.p32.w14", "rhythm") == "call_n"
    # per statistic (the former default)
    stat = {"level": "statistic"}
    assert error_group("accel_mean.sampen.tau3.w2", "rhythm", **stat) == "accel_mean.sampen"
    assert error_group("accel_mean.m10.w2", "rhythm", **stat) == "accel_mean.m10"  # m10 is no parameter
    assert error_group("accel_mean.dev.mean.w6", "rhythm", **stat) == "accel_mean.dev.mean"
    assert error_group("call_n.power.p16.w6", "rhythm", **stat) == "call_n.power.ultradian"
    assert error_group("call_n.power.p20.w6", "rhythm", **stat) == "call_n.power.circadian"
    assert error_group("call_n.power.p28.w6", "rhythm", **stat) == "call_n.power.circadian"
    assert error_group("call_n.power.p32.w14", "rhythm", **stat) == "call_n.power.infradian"
    assert error_group("x.pow.24.w2", "rhythm", **stat) == "x.pow"
    assert error_group("calls.count.w2", "hourly") == "calls.count.w2"
    with pytest.raises(UserError, match="no usable features"):
        fit_feature_spec(np.full((5, 1), 1.0), ["k.w2"], input_kind="rhythm")


def test_gru_on_hourly_input(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--input hourly"):
        train_model([], None, tmp_path / "x.onnx", model_kind="gru")
    rng = np.random.default_rng(1)
    prof = np.sin(np.arange(24) / 24 * 2 * np.pi)
    t0 = 1_704_067_200.0
    recs = [
        HourlyFeatures(participant=f"h{j}", utc_offset_min=0, hour_start=t0 + (d * 24 + h) * 3600,
                       local_hour=h, weekday=d % 7, filled=0.0,
                       features={"acc": float(prof[h] + 0.1 * rng.normal()), "scr": float(-prof[h] + 0.1 * rng.normal())})
        for j in range(2) for d in range(12) for h in range(24)
    ]
    s = train_model(recs, None, tmp_path / "g.onnx", input_kind="hourly", model_kind="gru", hidden=6,
                    max_epochs=4, patience=2)
    assert (s.n_train, s.n_val) == (20, 4)  # 24-h sequences: 10 + 2 days per participant
    sc = OnnxScorer(s.out)
    assert (sc.input_kind, sc.model_kind) == ("hourly", "gru")
    # Adler's context inputs join the features: hour of day (sin/cos) and day of week vary;
    # `filled` is 0 throughout here, so it is dropped as constant.
    assert sorted(sc.feature_names) == ["acc", "ctx.hour_cos", "ctx.hour_sin", "ctx.weekday", "scr"]
    days = sc.day_errors(recs)
    assert len(days) == 24 and days[0].errors.shape == (24, 5)
    raw = sc.spec.raw_matrix(recs[:24])
    col = list(sc.feature_names).index("ctx.hour_sin")
    np.testing.assert_allclose(raw[:, col], np.sin(2 * np.pi * np.arange(24) / 24), atol=1e-12)


def test_train_from_topic_dump_and_cohort(tmp_path: Path) -> None:
    from phenoflow.core.contract import encode
    from phenoflow.models.train import train_from_cohort

    recs, labels, _ = cohort(n_part=3, n_days=40, relapse_day=35)
    dump = tmp_path / "rhythm.jsonl"
    dump.write_bytes(b"\n".join(encode(r) for r in recs) + b"\n")
    lab = tmp_path / "labels.csv"
    lab.write_text("participant,relapse_date\n" + "".join(f"{p},{d[0]}\n" for p, d in labels.items()))
    s = train_from_cohort(dump, tmp_path / "d.onnx", labels=lab, hidden=8, max_epochs=3)
    assert s.n_near_relapse_excluded == 2 * 31 and s.n_participants == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"participant": "p1"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:1: not a rhythm.daily value"):
        train_from_cohort(bad, tmp_path / "x.onnx")
    with pytest.raises(UserError, match="not found"):
        train_from_cohort(tmp_path / "nope", tmp_path / "x.onnx")
    # a (tiny) simulated cohort directory: offline hourly features → RhythmState → training
    from phenoflow.simulate.simulator import simulate_cohort

    simulate_cohort(tmp_path / "cohort", participants=2, days=12, seed=3, accel_hz=1.0)
    s = train_from_cohort(tmp_path / "cohort", tmp_path / "c.onnx", hidden=8, max_epochs=2, seed=3)
    sc = OnnxScorer(s.out)
    assert sc.input_kind == "rhythm" and s.n_features > 50 and s.n_participants == 2
