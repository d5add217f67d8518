"""Per-participant calibration: shrunk Σ, Mahalanobis score, LOO threshold, contributors, state."""

from __future__ import annotations

import json
import pickle
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import ledoit_wolf

from phenoflow.core.contract import decode, encode
from phenoflow.core.errors import UserError
from phenoflow.core.event_ids import anomaly_event_id
from phenoflow.core.state import StateVersionError
from phenoflow.operators.scoring import reconstruction as scoring
from phenoflow.operators.scoring.calibration import (
    CalibrationConfig,
    ParticipantScorer,
    load_thresholds,
)
from phenoflow.operators.scoring.reconstruction import ErrorSpace

P, GROUP = 30, 3  # 30 features in 10 groups of 3
NAMES = tuple(f"mod{i // GROUP}.stat.w{2 * (i % GROUP) + 2}" for i in range(P))


def space(model_id: str = "test@000000000001") -> ErrorSpace:
    return ErrorSpace(model_id, NAMES, np.arange(P) // GROUP, tuple(f"mod{g}.stat" for g in range(P // GROUP)))


def days(n: int) -> list[str]:
    return [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(n)]


def errors(n: int, seed: int = 0, rows: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, P) if rows is None else (n, rows, P)
    scale = np.linspace(0.5, 2.0, P)  # heterogeneous error scales
    return np.abs(rng.normal(size=shape)) * scale


def group_means(E: np.ndarray) -> np.ndarray:
    """Independent group reduction: a plain loop over groups."""
    E = np.atleast_2d(E)
    return np.stack([E[:, g * GROUP : (g + 1) * GROUP].mean(axis=1) for g in range(P // GROUP)], axis=1)


def shrunk_sigma(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent (μ, Σ): correlation shrunk by sklearn's ledoit_wolf, rescaled by the SDs."""
    mu, sd = G.mean(axis=0), G.std(axis=0)
    R = ledoit_wolf((G - mu) / sd, assume_centered=True)[0]
    return mu, R * np.outer(sd, sd)


def calibrated(n_cal: int = 14, seed: int = 0, **cfg: object) -> tuple[ParticipantScorer, np.ndarray]:
    """A scorer after ``n_cal`` fit days; τ from leave-one-out scores (no threshold days)."""
    cfg.setdefault("threshold_days", 0)
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=n_cal, **cfg))  # type: ignore[arg-type]
    E = errors(n_cal, seed)
    for d, e in zip(days(n_cal), E, strict=True):
        sc.update(d, e)
    return sc, E


def test_group_reduction_matches_a_loop() -> None:
    E = errors(5)
    assert np.allclose(space().reduce(E), group_means(E))
    assert np.allclose(space().reduce(E[0]), group_means(E[0])[0])
    # interleaved groups (feature i in group i mod 10) need a permutation first
    inter = ErrorSpace("inter@1", NAMES, np.arange(P) % 10, tuple(f"g{g}" for g in range(10)))
    want = np.stack([E[:, g::10].mean(axis=1) for g in range(10)], axis=1)
    assert np.allclose(inter.reduce(E), want)
    with pytest.raises(ValueError):
        ErrorSpace("bad@1", ("a", "b"), np.array([0, 2]), ("g0", "g1", "g2"))


@pytest.mark.parametrize("n_cal", [5, 14])  # 5 days < 10 dims: Woodbury form; 14: dense R⁻¹
def test_shrunk_covariance_and_mahalanobis_match_scipy(n_cal: int) -> None:
    sc, E = calibrated(n_cal)
    assert (sc.error_model.W is not None) == (n_cal < P // GROUP)
    mu, sigma = shrunk_sigma(group_means(E))
    assert np.allclose(sc.error_model.mu, mu, rtol=1e-12, atol=1e-12)
    assert np.allclose(sc.covariance, sigma, rtol=1e-8, atol=1e-12)
    # few days per dimension: the sample covariance is (near) singular, the shrunk one is not
    assert np.linalg.cond(sigma) < 1e4
    for e in errors(5, seed=9):
        g = group_means(e)[0]
        want = mahalanobis(g, mu, np.linalg.inv(sigma))
        assert sc.distances(e)[0] == pytest.approx(want, rel=1e-9)


def test_fixed_shrinkage_option() -> None:
    sc, E = calibrated(shrinkage=0.5)
    G = group_means(E)
    mu, sd = G.mean(axis=0), G.std(axis=0)
    Z = (G - mu) / sd
    S = Z.T @ Z / len(Z)
    R = 0.5 * S + 0.5 * np.trace(S) / S.shape[0] * np.eye(S.shape[0])
    assert np.allclose(sc.covariance, R * np.outer(sd, sd), rtol=1e-8)


def test_threshold_is_quantile_of_leave_one_out_scores() -> None:
    sc, E = calibrated()
    G = group_means(E)
    loo = []
    for i in range(len(G)):
        mu, sigma = shrunk_sigma(np.delete(G, i, axis=0))
        loo.append(mahalanobis(G[i], mu, np.linalg.inv(sigma)))
    assert np.allclose(sc.calibration_scores, loo, rtol=1e-9)
    # Weibull position: 0.9·(14+1) = 13.5 → halfway between the 13th and 14th smallest
    srt = np.sort(loo)
    assert sc.threshold == pytest.approx((srt[12] + srt[13]) / 2, rel=1e-12)


def test_threshold_from_the_days_after_the_fit_days() -> None:
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=6, threshold_days=9))
    E = errors(20, seed=2)
    E[6:15] *= 50  # huge errors during the threshold phase: still no anomaly
    ds = days(20)
    outs = [sc.update(d, e, 60) for d, e in zip(ds, E, strict=True)]
    mu, sigma = shrunk_sigma(group_means(E[:6]))
    want = [mahalanobis(g, mu, np.linalg.inv(sigma)) for g in group_means(E[6:15])]
    for i, out in enumerate(outs[:15]):
        assert out.score.calibrating and out.score.threshold is None
        assert out.anomaly is None and out.stepup is None
        assert out.score.day == ds[i] and out.score.utc_offset_min == 60 and out.score.model == sc.model
        if i < 6:
            assert out.score.score is None  # fit days are not scored
        else:
            assert out.score.score == pytest.approx(want[i - 6], rel=1e-9)
    srt = np.sort(want)  # Weibull position 0.9·10 = 9 → the largest of 9
    assert sc.threshold == pytest.approx(srt[8], rel=1e-12)
    assert np.allclose(sc.calibration_scores, want, rtol=1e-9)
    assert all(not o.score.calibrating and o.score.threshold == sc.threshold for o in outs[15:])
    assert not any(o.anomaly for o in outs[15:])  # ordinary days under a threshold set on huge ones


def test_anomaly_event_and_contributors() -> None:
    sc, E = calibrated()
    e = E.mean(axis=0) - 0.01 * E.std(axis=0)  # every feature slightly better than usual...
    e[[4, 17, 25]] += np.array([30.0, 20.0, 10.0])  # ...but three with big errors
    out = sc.update("2024-02-01", e, -120)
    assert out.anomaly is not None and out.score.score is not None
    assert out.score.score > out.score.threshold
    a = out.anomaly
    assert a.event_id == anomaly_event_id("p1", "2024-02-01", sc.model)
    assert (a.score, a.threshold, a.day, a.utc_offset_min) == (out.score.score, sc.threshold, "2024-02-01", -120)
    z = (e - E.mean(axis=0)) / E.std(axis=0)  # independent per-feature z
    want = [NAMES[i] for i in np.argsort(-z, kind="stable")[:5] if z[i] > 0]
    assert [c.feature for c in a.contributors] == want
    # only features with z > 0 contribute, largest first
    assert [c.feature for c in a.contributors] == [NAMES[4], NAMES[17], NAMES[25]]
    assert np.allclose([c.z for c in a.contributors], np.sort(z)[::-1][:3], rtol=1e-5)
    # the records meet the contract: they survive encode → decode unchanged
    for topic, rec in (("events.anomaly", a), ("scores.daily", out.score)):
        assert decode(topic, b"p1", encode(rec)) == rec
    # an ordinary day is not anomalous
    assert sc.update("2024-02-02", E.mean(axis=0)).anomaly is None


def test_hourly_errors_average_hourly_distances() -> None:
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=4, threshold_days=0))
    E = errors(4, rows=24)
    for d, e in zip(days(4), E, strict=True):
        sc.update(d, e)
    mu, sigma = shrunk_sigma(group_means(E.reshape(-1, P)))
    assert np.allclose(sc.covariance, sigma, rtol=1e-8)
    new = errors(1, seed=5, rows=24)[0]
    want = np.mean([mahalanobis(g, mu, np.linalg.inv(sigma)) for g in group_means(new)])
    out = sc.update("2024-02-01", new)
    assert out.score.score == pytest.approx(want, rel=1e-9)


def test_threshold_override_and_thresholds_file(tmp_path: Path) -> None:
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=3), threshold=1e9)
    for d, e in zip(days(3), errors(3), strict=True):
        sc.update(d, e)
    assert sc.threshold == 1e9 and not sc.calibrating  # a given τ skips the threshold phase
    assert sc.update("2024-02-01", errors(1)[0] * 50).anomaly is None
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"p1": 2.5, "p2": 3}))
    assert load_thresholds(f) == {"p1": 2.5, "p2": 3.0}
    with pytest.raises(UserError, match="not found"):
        load_thresholds(tmp_path / "missing.json")
    f.write_text("{nope")
    with pytest.raises(UserError, match="not valid JSON"):
        load_thresholds(f)
    f.write_text(json.dumps({"p1": "high"}))
    with pytest.raises(UserError, match="participant"):
        load_thresholds(f)


def test_days_without_enough_data_are_not_scored_or_learned() -> None:
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=3, threshold_days=0,
                                                            min_observed=0.75))
    E = errors(6)
    ds = days(6)
    assert sc.update(ds[0], E[0], observed=0.5).score.score is None
    assert sc.update(ds[1], None).score.score is None
    bad = E[2].copy()
    bad[0] = np.nan
    assert sc.update(ds[2], bad).score.score is None
    assert sc.calibrating and len(sc.calibration_rows) == 0
    for d, e in zip(ds[3:], E[3:], strict=True):
        sc.update(d, e, observed=0.8)
    assert not sc.calibrating


def test_pickle_round_trip_continues_identically_and_is_small() -> None:
    sc = ParticipantScorer("p1", space("pickle@1"), CalibrationConfig(calibration_days=14))
    E = errors(50, seed=3)
    E[36:] *= 3  # a deterioration, so anomalies and passive step-ups happen
    ds = days(50)
    for d, e in zip(ds[:8], E[:8], strict=True):
        sc.update(d, e)
    clone = pickle.loads(pickle.dumps(sc))  # mid-calibration
    a = [sc.update(d, e) for d, e in zip(ds[8:], E[8:], strict=True)]
    b = [clone.update(d, e) for d, e in zip(ds[8:], E[8:], strict=True)]
    assert a == b
    assert any(o.anomaly for o in a) and any(o.stepup for o in a)
    blob = pickle.dumps(sc)
    assert NAMES[0].encode() not in blob  # feature names live in the shared ErrorSpace
    assert len(blob) < 8_000
    restored = pickle.loads(blob)
    assert restored.update("2024-03-01", E[45]) == sc.update("2024-03-01", E[45])


def test_restored_scorer_needs_its_model_loaded() -> None:
    sc = ParticipantScorer("p1", space("gone@1"), CalibrationConfig(calibration_days=3, threshold_days=0))
    blob = pickle.dumps(sc)
    scoring._SPACES.pop("gone@1")
    restored = pickle.loads(blob)
    with pytest.raises(UserError, match="not loaded"):
        restored.update(days(1)[0], errors(1)[0])


def test_precomputed_group_errors_give_the_same_outcomes() -> None:
    a = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=5, threshold_days=3))
    b = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=5, threshold_days=3))
    E = errors(12, seed=4)
    E[9:] *= 4
    G = space().reduce(E)  # batch-wise, as OnnxScorer.day_errors does
    for d, e, g in zip(days(12), E, G, strict=True):
        assert a.update(d, e) == b.update(d, e, grouped=g)


def test_replayed_day_is_not_learned_twice() -> None:
    sc, E = calibrated(n_cal=3)
    first = sc.update("2024-02-01", E[0] * 10)
    again = sc.update("2024-02-01", E[0] * 10)
    assert first.score == again.score and first.anomaly == again.anomaly
    assert again.stepup is None
    assert len(sc.risk._days) == 1


def test_warmup_days_are_neither_learned_nor_scored() -> None:
    sc = ParticipantScorer("p1", space(), CalibrationConfig(calibration_days=3, threshold_days=0,
                                                            warmup_days=4))
    E = errors(9, seed=6)
    ds = days(9)
    del ds[1]  # a day without any record still counts as a calendar day of the warm-up
    outs = [sc.update(d, e) for d, e in zip(ds, E, strict=False)]
    # 2024-01-01, -03, -04 fall in the 4-day warm-up; -05, -06, -07 are the fit days
    assert all(o.score.score is None and o.score.calibrating for o in outs[:6])
    assert not sc.calibrating and outs[6].score.score is not None
    mu, sigma = shrunk_sigma(group_means(E[3:6]))
    assert np.allclose(sc.covariance, sigma, rtol=1e-8)
    # a snapshot taken before state versions (and the warm-up) existed is refused, not patched up
    state = sc.__getstate__()
    state.pop("first_day")
    state.pop("_state_version")
    fresh = ParticipantScorer.__new__(ParticipantScorer)
    with pytest.raises(StateVersionError, match="ParticipantScorer has state version 0"):
        fresh.__setstate__(state)


def test_threshold_factor_from_config_or_from_the_model() -> None:
    E = errors(20, seed=7)
    want_q = None
    taus = {}
    for label, sp, cfg in (
        ("plain", space(), {}),
        ("config", space(), {"threshold_factor": 1.5}),
        ("model", ErrorSpace("k@1", NAMES, np.arange(P) // GROUP, tuple(f"g{g}" for g in range(10)),
                             threshold_factor=1.3,
                             factor_setup=CalibrationConfig(calibration_days=6,
                                                            threshold_days=9).setup()), {}),
        ("model, other settings", ErrorSpace("k@2", NAMES, np.arange(P) // GROUP,
                                             tuple(f"g{g}" for g in range(10)), threshold_factor=1.3,
                                             factor_setup=CalibrationConfig().setup()), {}),
    ):
        sc = ParticipantScorer("p1", sp, CalibrationConfig(calibration_days=6, threshold_days=9, **cfg))
        for d, e in zip(days(20), E, strict=True):
            sc.update(d, e)
        q = float(np.quantile(sc.calibration_scores, 0.9, method="weibull"))
        want_q = q if want_q is None else want_q
        assert q == pytest.approx(want_q, rel=1e-12)  # same scores whatever κ
        taus[label] = sc.threshold
    assert taus["plain"] == pytest.approx(want_q, rel=1e-12)
    assert taus["config"] == pytest.approx(1.5 * want_q, rel=1e-12)
    assert taus["model"] == pytest.approx(1.3 * want_q, rel=1e-12)
    assert taus["model, other settings"] == pytest.approx(want_q, rel=1e-12)  # κ not valid there
    with pytest.raises(ValueError):
        CalibrationConfig(threshold_factor=0.0)
    with pytest.raises(ValueError):
        CalibrationConfig(warmup_days=-1)


def test_estimate_threshold_factor_matches_an_independent_computation() -> None:
    from phenoflow.operators.scoring.calibration import estimate_threshold_factor
    from phenoflow.operators.scoring.reconstruction import DayErrors

    cfg = CalibrationConfig(calibration_days=6, threshold_days=5, quantile=0.8)
    n_days = {"a": 30, "b": 22, "c": 40, "d": 16}  # d: only 5 days after calibration → left out
    sick = {("c", days(40)[20]), ("c", days(40)[21])}  # excluded by `healthy`
    recs, ratios = [], []
    for j, (pid, n) in enumerate(n_days.items()):
        E = errors(n, seed=10 + j) * (1 + j)  # participants with different error levels
        E[-3:] *= 1.6  # a few clearly worse days
        keep = [i for i in range(n) if (pid, days(n)[i]) not in sick]
        recs += [DayErrors(pid, days(n)[i], None, E[i], 1.0) for i in keep]
        G = group_means(E[keep])
        mu, sigma = shrunk_sigma(G[:6])
        s = np.array([mahalanobis(g, mu, np.linalg.inv(sigma)) for g in G[6:]])
        tau = np.quantile(s[:5], 0.8, method="weibull")
        if len(s) - 5 >= 7:
            ratios.append(s[5:] / tau)
    # the smallest κ such that the participants' mean share of days with r > κ is ≤ 1 − q
    cands = np.sort(np.concatenate(ratios))
    want = next(k for k in cands if np.mean([np.mean(r > k) for r in ratios]) <= 0.2 + 1e-12)
    got = estimate_threshold_factor(reversed(recs), space(), cfg,  # order does not matter
                                    healthy=lambda pid, day: (pid, day) not in sick)
    assert got is not None and got[1] == 3
    assert got[0] == pytest.approx(want, rel=1e-9)
    assert estimate_threshold_factor(recs, space(), cfg, min_participants=4) is None
