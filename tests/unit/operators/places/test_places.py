"""Haversine, DBSCAN places (roles, stability, bounded history) and time-at-place attribution."""

from __future__ import annotations

import json
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sklearn.cluster import DBSCAN
from sklearn.neighbors import BallTree

from phenoflow.core.contract import Location
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.places.clusters import (
    GRID_FRACTION,
    OTHER,
    PRIMARY,
    SECONDARY,
    PlaceModel,
    PlaceTracker,
    _cell_keys,
    _cell_radians,
    grid_step_deg,
)
from phenoflow.operators.places.geo import (
    EARTH_RADIUS_M,
    haversine1_m,
    haversine_m,
    metres_to_radians,
    spherical_centroid,
    to_radians,
)
from phenoflow.simulate.simulator import simulate_cohort

HOME, WORK = (52.0, 13.0), (52.05, 13.1)  # ≈ 8.7 km apart


def test_haversine_hand_values() -> None:
    # One degree of latitude = R·π/180 with R = 6371.0088 km.
    assert float(haversine_m(10.0, 20.0, 11.0, 20.0)) == pytest.approx(111_195.08, abs=0.01)
    assert float(haversine_m(0.0, 0.0, 0.0, 1.0)) == pytest.approx(111_195.08, abs=0.01)
    assert float(haversine_m(0.0, 0.0, 0.0, 180.0)) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert float(haversine_m(52.0, 13.0, 52.0, 13.0)) == 0.0
    # Berlin TV tower → Paris Eiffel tower ≈ 878 km (great-circle, spherical Earth).
    assert float(haversine_m(52.5208, 13.4094, 48.8584, 2.2945)) == pytest.approx(878_000, rel=0.005)
    d = haversine_m([0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [0.0, 0.0])
    assert d.shape == (2,) and d[1] == pytest.approx(2 * d[0])


def test_scalar_haversine_matches_the_vectorised_one() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform([-90, -180, -90, -180], [90, 180, 90, 180], (200, 4))
    vec = haversine_m(pts[:, 0], pts[:, 1], pts[:, 2], pts[:, 3])
    one = [haversine1_m(*row) for row in pts.tolist()]
    assert one == pytest.approx(vec.tolist(), rel=1e-12, abs=1e-6)


def test_spherical_centroid_across_the_antimeridian() -> None:
    lat, lon = spherical_centroid([10.0, 10.0], [179.0, -179.0])
    assert abs(abs(lon) - 180.0) < 1e-9 and lat == pytest.approx(10.0, abs=0.01)


def blob(rng: np.random.Generator, centre: tuple[float, float], n: int, sd_deg: float = 3e-4
         ) -> tuple[np.ndarray, np.ndarray]:
    return centre[0] + rng.normal(0, sd_deg, n), centre[1] + rng.normal(0, sd_deg, n)


def fitted_model(rng: np.random.Generator, n_home: int, n_work: int, n_noise: int = 25) -> PlaceModel:
    model = PlaceModel()
    add(model, rng, n_home, n_work, n_noise, t0=0.0)
    model.refit()
    return model


def add(model: PlaceModel, rng: np.random.Generator, n_home: int, n_work: int, n_noise: int, t0: float) -> float:
    lat_h, lon_h = blob(rng, HOME, n_home)
    lat_w, lon_w = blob(rng, WORK, n_work)
    lat_n = 52.0 + rng.uniform(-0.5, 0.5, n_noise)
    lon_n = 13.0 + rng.uniform(-0.5, 0.5, n_noise)
    lat = np.concatenate([lat_h, lat_w, lat_n])
    lon = np.concatenate([lon_h, lon_w, lon_n])
    ts = t0 + 300.0 * np.arange(lat.size)  # one fix per 5-min bin
    model.add(ts, lat, lon, now=float(ts[-1]))
    return float(ts[-1]) + 300.0


def test_two_clusters_and_noise_get_primary_secondary_other() -> None:
    rng = np.random.default_rng(1)
    model = fitted_model(rng, n_home=200, n_work=120)
    lat_h, lon_h = blob(rng, HOME, 50)
    lat_w, lon_w = blob(rng, WORK, 50)
    assert (model.label(lat_h, lon_h) == PRIMARY).all()
    assert (model.label(lat_w, lon_w) == SECONDARY).all()
    far = model.label(np.array([52.4, 51.6, 52.0]), np.array([13.4, 12.6, 13.3]))
    assert (far == OTHER).all()
    # Within ε of a core sample (DBSCAN's border rule) → that place; 3 km away → other.
    near = model.label(np.array([HOME[0] + 500 / 111_195.0]), np.array([HOME[1]]))
    away = model.label(np.array([HOME[0] + 3000 / 111_195.0]), np.array([HOME[1]]))
    assert near[0] == PRIMARY and away[0] == OTHER


def test_labels_stay_stable_across_refits_until_the_margin_is_exceeded() -> None:
    rng = np.random.default_rng(2)
    model = PlaceModel(history_days=365)
    t = add(model, rng, n_home=200, n_work=120, n_noise=10, t0=0.0)
    model.refit()
    probe_h, probe_w = blob(rng, HOME, 5), blob(rng, WORK, 5)
    assert (model.label(*probe_h) == PRIMARY).all()
    # Work grows past home but within the 1.2× margin: the roles are kept.
    t = add(model, rng, n_home=0, n_work=100, n_noise=0, t0=t)  # work 220 vs home 200
    model.refit()
    assert (model.label(*probe_h) == PRIMARY).all() and (model.label(*probe_w) == SECONDARY).all()
    # Past the margin (work 300 > 1.2 × 200): the larger place becomes primary.
    add(model, rng, n_home=0, n_work=80, n_noise=0, t0=t)
    model.refit()
    assert (model.label(*probe_w) == PRIMARY).all() and (model.label(*probe_h) == SECONDARY).all()


def test_without_old_roles_ranking_is_by_size() -> None:
    rng = np.random.default_rng(3)
    model = fitted_model(rng, n_home=150, n_work=220)
    assert (model.label(*blob(rng, WORK, 5)) == PRIMARY).all()


def test_history_is_downsampled_and_bounded() -> None:
    model = PlaceModel(history_days=14, bin_s=300)
    rng = np.random.default_rng(4)
    for day in range(20):
        ts = day * 86400.0 + 60.0 * np.arange(1440)  # a fix every minute
        lat, lon = blob(rng, HOME, ts.size)
        model.add(ts, lat, lon, now=(day + 1) * 86400.0)
        assert model.day_closed()  # refit policy: every day close
    assert len(model) == 14 * 288
    assert model.ts.min() >= 6 * 86400.0 and np.all(np.diff(model.ts) == 300.0)
    assert model.fits == 20


def test_refit_policy_every_k_days() -> None:
    model = PlaceModel(refit_days=3)
    refits = [model.day_closed() for _ in range(7)]
    assert refits == [True, False, False, True, False, False, True]


def test_snapping_moves_a_fix_by_at_most_the_documented_bound() -> None:
    # Module docstring: a fix moves by ≤ half a cell diagonal = GRID_FRACTION·ε/√2 (≈ 2.4 % of ε).
    assert GRID_FRACTION == pytest.approx(1 / 30)
    rng = np.random.default_rng(6)
    lat, lon = rng.uniform(-89.9, 89.9, 20_000), rng.uniform(-180, 180, 20_000)
    for eps_m in (1000.0, 250.0):
        step = grid_step_deg(eps_m)
        assert step * EARTH_RADIUS_M * math.pi / 180 == pytest.approx(eps_m / 30)
        cells = np.degrees(_cell_radians(_cell_keys(lat, lon, step), step))
        moved = haversine_m(lat, lon, cells[:, 0], cells[:, 1])
        bound = GRID_FRACTION * eps_m / math.sqrt(2)
        assert moved.max() <= bound * (1 + 1e-9) and moved.max() > 0.9 * bound


def test_pickle_leaves_out_the_label_tree_and_restores_identical_labels() -> None:
    rng = np.random.default_rng(7)
    model = fitted_model(rng, n_home=200, n_work=120)
    (lat_h, lon_h), (lat_w, lon_w) = blob(rng, HOME, 30, 3e-3), blob(rng, WORK, 30, 3e-3)
    probe = np.concatenate([lat_h, lat_w, [52.4]]), np.concatenate([lon_h, lon_w, [13.4]])
    before = model.label(*probe)
    data = pickle.dumps(model)
    assert b"BallTree" not in data
    # History (3 float64 arrays + int8 roles) plus a small fixed overhead: no tree in the snapshot.
    assert len(data) <= 25 * len(model) + 1500
    clone = pickle.loads(data)
    assert np.array_equal(clone.label(*probe), before)
    assert {PRIMARY, SECONDARY, OTHER} <= set(before.tolist())


def test_labels_follow_expired_core_fixes_between_refits() -> None:
    """With refit_days > 1 the cached tree must not outlive the core fixes it was built from."""
    model = PlaceModel(history_days=1.0, refit_days=3)
    rng = np.random.default_rng(8)
    lat, lon = blob(rng, HOME, 100)
    model.add(300.0 * np.arange(100), lat, lon, now=30_000.0)
    assert model.day_closed()
    assert (model.label(*blob(rng, HOME, 5)) == PRIMARY).all()
    lat, lon = blob(rng, WORK, 100)
    t = 2 * 86400.0 + 300.0 * np.arange(100)
    model.add(t, lat, lon, now=float(t[-1]))  # every home fix leaves the 1-day window
    assert not model.day_closed()
    assert (model.label(*blob(rng, HOME, 5)) == OTHER).all()
    assert np.array_equal(pickle.loads(pickle.dumps(model)).label(*blob(rng, HOME, 5)), np.zeros(5, np.int8))


def exact_labels(lat: np.ndarray, lon: np.ndarray, qlat: np.ndarray, qlon: np.ndarray, eps_m: float,
                 min_samples: int) -> np.ndarray:
    """Independent reference: unsnapped scikit-learn DBSCAN, two largest clusters, nearest-core-within-ε rule."""
    x, eps = to_radians(lat, lon), metres_to_radians(eps_m)
    db = DBSCAN(eps=eps, min_samples=min_samples, metric="haversine").fit(x)
    out = np.zeros(qlat.size, np.int8)
    if db.labels_.max() < 0:
        return out
    sizes = np.bincount(db.labels_[db.labels_ >= 0])
    ranked = sorted(range(sizes.size), key=lambda c: (-sizes[c], c))[:2]
    core = np.zeros(lat.size, bool)
    core[db.core_sample_indices_] = True
    role = np.zeros(lat.size, np.int8)
    for r, c in zip((PRIMARY, SECONDARY), ranked, strict=False):
        role[core & (db.labels_ == c)] = r
    dist, idx = BallTree(x[role > 0], metric="haversine").query(to_radians(qlat, qlon), k=1)
    hit = dist[:, 0] <= eps
    out[hit] = role[role > 0][idx[hit, 0]]
    return out


def simulated_days(directory: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]]:
    """Per participant, per local day: (ts, lat, lon, local day end in UTC) from location.jsonl."""
    rows: dict[str, list[tuple[float, float, float, int]]] = defaultdict(list)
    with open(directory / "location.jsonl", encoding="utf-8") as fh:
        for line in fh:
            v = json.loads(line)
            rows[v["participant"]].append((v["ts"], v["lat"], v["lon"], v.get("utc_offset_min", 0)))
    out = {}
    for p, r in rows.items():
        a = np.array(sorted(r))
        day = np.floor((a[:, 0] + 60.0 * a[:, 3]) / 86400.0)
        out[p] = [(a[day == d, 0], a[day == d, 1], a[day == d, 2], (d + 1) * 86400.0 - 60.0 * a[day == d, 3][0])
                  for d in np.unique(day)]
    return out


def _rotate(lat: np.ndarray, lon: np.ndarray, rotation: Rotation) -> tuple[np.ndarray, np.ndarray]:
    """Fixes rotated on the sphere (as the private frame does), degrees in and out."""
    p, lam = np.radians(lat), np.radians(lon)
    x, y, z = rotation.apply(np.column_stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)])).T
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


@pytest.mark.parametrize("rotated", [False, True], ids=["as recorded", "randomly rotated"])
def test_snapped_labels_agree_with_exact_dbscan_on_simulated_fixes(tmp_path: Path, rotated: bool) -> None:
    """The documented approximation: ≥ 99 % of fixes get the label unsnapped DBSCAN gives them.

    Also in a random frame per participant (scipy's uniform random rotations, independent of
    :mod:`phenoflow.operators.places.frame`), where homes land at any latitude.
    """
    simulate_cohort(tmp_path / "c", participants=10, days=16, seed=1)
    agree = total = 0
    seen: set[int] = set()
    for k, days in enumerate(simulated_days(tmp_path / "c").values()):
        if rotated:
            rot = Rotation.random(random_state=100 + k)
            days = [(ts, *_rotate(la, lo, rot), end) for ts, la, lo, end in days]
        model = PlaceModel()
        for ts, lat, lon, end in days[:14]:  # 14 days of history, then label them and day 15
            model.add(ts, lat, lon, now=end)
        model.refit()
        qlat, qlon = np.concatenate([model.lat, days[14][1]]), np.concatenate([model.lon, days[14][2]])
        ref = exact_labels(model.lat, model.lon, qlat, qlon, model.eps_m, model.min_samples)
        agree += int((model.label(qlat, qlon) == ref).sum())
        total += ref.size
        seen.update(ref.tolist())
    print(f"\nlabels equal to exact DBSCAN: {agree}/{total} = {100 * agree / total:.3f} % of fixes")
    assert seen == {OTHER, PRIMARY, SECONDARY} and total > 10 * 1000
    assert agree >= 0.99 * total


def test_time_at_place_is_carried_and_capped() -> None:
    tr = PlaceTracker()
    h0 = 100
    t = h0 * 3600.0
    ts = np.array([t, t + 1800.0])
    lat, lon = np.array([52.0, 52.1]), np.array([13.0, 13.0])
    place_s, dist = tr.attribute(h0, 3, ts, lat, lon, np.array([PRIMARY, OTHER], np.int8),
                                 carry_max_s=3600.0, jitter_m=50.0)
    # Hour 0: 1800 s primary then 1800 s other; the other fix is carried 3600 s (to t + 5400).
    assert place_s[PRIMARY].tolist() == [1800.0, 0.0, 0.0]
    assert place_s[OTHER].tolist() == [1800.0, 1800.0, 0.0]
    assert dist.tolist() == pytest.approx([0.1 * EARTH_RADIUS_M * math.pi / 180, 0.0, 0.0])
    # The next day has no fixes: the carry already expired.
    place_s, _ = tr.attribute(h0 + 3, 2, np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int8),
                              carry_max_s=3600.0, jitter_m=50.0)
    assert place_s.sum() == 0.0


def test_aggregator_attributes_places_over_two_days() -> None:
    """Home at night, work 09–17 h, one trip to a far place; default DBSCAN settings."""
    rng = np.random.default_rng(5)
    t0 = 1_704_067_200.0
    agg = HourlyAggregator("p", frame_key=b"unit-test-frame-key")
    recs = []
    for k in range(2 * 288):
        t = t0 + 300.0 * k
        hour = (k // 12) % 24
        where = WORK if 9 <= hour < 17 else HOME
        if k == 288 + 20 * 12:  # day 2, 20:00: one fix 40 km away
            where = (52.36, 13.0)
        lat, lon = blob(rng, where, 1, 1e-4)
        recs += agg.update(Location(participant="p", ts=t, lat=float(lat[0]), lon=float(lon[0]))).records
    recs += agg.flush()
    assert len(recs) == 48
    by_hour = {int((r.hour_start - t0) // 3600): r.features for r in recs}
    for h in (2, 22, 26, 46):
        assert by_hour[h]["place_primary_s"] == 3600.0
    for h in (10, 15, 34, 39):
        assert by_hour[h]["place_secondary_s"] == 3600.0
    assert by_hour[44]["place_other_s"] == 300.0 and by_hour[44]["place_primary_s"] == 3300.0
    assert by_hour[44]["distance_m"] > 2 * 39_000  # there and back
    assert sum(f["place_primary_s"] + f["place_secondary_s"] + f["place_other_s"] for f in by_hour.values()) \
        == pytest.approx(48 * 3600.0)
