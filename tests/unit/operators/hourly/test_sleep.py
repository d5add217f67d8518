"""Sleep: rest-slot states, the day's longest rest episode, and a constructed night end to end."""

from __future__ import annotations

import numpy as np
import pytest

from phenoflow.core.contract import Accelerometer, Ambient, HourlyFeatures, Screen
from phenoflow.operators.hourly.aggregator import HourlyAggregator
from phenoflow.operators.hourly.sleep import (
    ACTIVE,
    REST,
    UNKNOWN,
    longest_rest_episode,
    rest_states,
)

DAY = 19_723  # 2024-01-01 as days since 1970-01-01
MID = DAY * 86400.0
SLOT = 600.0


def episode(states: str, start_h: float = -6.0, **kw: float):
    """States as a string (A active, R rest, . unknown) from local ``start_h`` of DAY, offset 0."""
    st = np.array([{"A": ACTIVE, "R": REST, ".": UNKNOWN}[c] for c in states], np.int8)
    t = MID + start_h * 3600.0 + SLOT * np.arange(st.size)
    return longest_rest_episode(t, t, st, day=DAY, slot_s=SLOT, **kw)


def test_rest_states_each_veto_and_evidence() -> None:
    z = np.zeros(6, np.int64)
    f = np.zeros(6)
    st = rest_states(
        screen_active=np.array([0, 1, 0, 0, 0, 0], bool),
        accel_n=np.array([5, 5, 5, 0, 0, 0]), accel_sd=np.array([0.01, 0.01, 0.5, 0, 0, 0]),
        light_n=np.array([0, 0, 0, 2, 0, 0]), light_mean=np.array([0, 0, 0, 50.0, 0, 0]),
        sound_n=np.array([0, 0, 0, 0, 1, 0]), sound_mean=np.array([0, 0, 0, 0, 30.0, 0]),
        still_sd=0.2, dark_lux=10.0, quiet_db=40.0,
    )
    assert st.tolist() == [REST, ACTIVE, ACTIVE, ACTIVE, REST, UNKNOWN]
    loud = rest_states(screen_active=np.zeros(6, bool), accel_n=z, accel_sd=f, light_n=z, light_mean=f,
                       sound_n=np.ones(6, np.int64), sound_mean=np.full(6, 55.0),
                       still_sd=0.2, dark_lux=10.0, quiet_db=40.0)
    assert (loud == ACTIVE).all()


def test_longest_episode_in_the_window() -> None:
    # -6 h … : 5 h active, 8 h rest (onset -1 h, wake 7 h), then active.
    ep = episode("A" * 30 + "R" * 48 + "A" * 66)
    assert (ep.onset_h, ep.wake_h, ep.duration_h) == (-1.0, 7.0, 8.0)


def test_unknown_ends_trimmed_inside_kept() -> None:
    ep = episode("A" * 30 + "...RRRR......RRRR..." + "A" * 30)
    # Rest starts at slot 33 (-6 h + 5.5 h = -0.5 h), ends after slot 46 (+1.83 h).
    assert ep.onset_h == pytest.approx(-0.5) and ep.wake_h == pytest.approx(-6 + 47 / 6)
    assert ep.duration_h == pytest.approx(14 / 6)


def test_short_interruptions_bridged_long_ones_split() -> None:
    bridged = episode("A" * 30 + "R" * 20 + "AA" + "R" * 26 + "A" * 66)  # 20-min wake-up
    assert bridged.duration_h == pytest.approx(8.0) and bridged.onset_h == pytest.approx(-1.0)
    split = episode("A" * 30 + "R" * 20 + "AAA" + "R" * 25 + "A" * 66)  # 30 min: two episodes
    assert split.duration_h == pytest.approx(25 / 6) and split.onset_h == pytest.approx(-1 + 23 / 6)
    assert episode("A" * 30 + "R" * 20 + "AA" + "R" * 26, max_interruption_s=0).duration_h == pytest.approx(26 / 6)


def test_ties_go_to_the_later_episode_and_short_rest_is_no_sleep() -> None:
    ep = episode("A" * 6 + "R" * 12 + "A" * 30 + "R" * 12 + "A" * 6)
    assert ep.onset_h == pytest.approx(-6 + 48 / 6) and ep.duration_h == pytest.approx(2.0)
    assert episode("A" * 10 + "R" * 5 + "A" * 10) is None  # 50 min < 1 h
    assert episode("A" * 10 + "R" * 5 + "A" * 10, min_s=3000) is not None
    assert episode("." * 144) is None


def test_window_excludes_the_evening_of_the_day_itself() -> None:
    # Rest from 19:00 on the day (after the 18:00 window end) belongs to the next day.
    ep = episode("A" * 144 + "R" * 30, start_h=-6.0)
    assert ep is None


def test_time_gap_breaks_a_run() -> None:
    st = np.array([REST] * 12, np.int8)
    t = MID + SLOT * np.r_[np.arange(6), np.arange(8, 14)]  # two slots missing in the series
    ep = longest_rest_episode(t, t, st, day=DAY, slot_s=SLOT)
    assert ep.duration_h == pytest.approx(1.0) and ep.onset_h == pytest.approx(8 * SLOT / 3600)


def night_events(offset: int) -> list[object]:
    """Local d−1 20:00 → d 12:00: active evening, still/dark/quiet 23:00–07:00 (a 3:02 glance), active morning."""
    p = "s1"
    local0 = MID - 4 * 3600.0  # d−1 20:00 local
    utc0 = local0 - offset * 60
    ev: list[object] = []
    for k in range(16 * 6):  # every 10 min for 16 h
        t = utc0 + SLOT * k + 30.0
        local_h = -4.0 + k / 6
        asleep = -1.0 <= local_h < 7.0
        z = [9.81] * 10 if asleep else [9.81 + (2.0 if i % 2 else -2.0) for i in range(10)]
        ev.append(Accelerometer(participant=p, utc_offset_min=offset, ts=[t + i for i in range(10)],
                                x=[0.0] * 10, y=[0.0] * 10, z=z))
        ev.append(Ambient(participant=p, utc_offset_min=offset, ts=t + 20,
                          light_lux=0.5 if asleep else 200.0, sound_db=30.0 if asleep else 55.0))
    glance = utc0 + (3 + 4 + 2 / 60) * 3600.0  # 03:02 local
    ev += [Screen(participant=p, utc_offset_min=offset, ts=glance, state="on"),
           Screen(participant=p, utc_offset_min=offset, ts=glance + 60, state="off")]
    return sorted(ev, key=lambda e: e.ts[0] if isinstance(e, Accelerometer) else e.ts)


@pytest.mark.parametrize("offset", [0, 120, -300])
def test_constructed_night_through_the_aggregator(offset: int) -> None:
    agg = HourlyAggregator()
    recs: list[HourlyFeatures] = []
    for e in night_events(offset):
        recs += agg.update(e).records
    recs += agg.flush()
    day_of = {r.hour_start: int((r.hour_start + r.utc_offset_min * 60) // 86400) for r in recs}
    today = [r for r in recs if day_of[r.hour_start] == DAY]
    before = [r for r in recs if day_of[r.hour_start] == DAY - 1]
    assert len(today) == 12 and len(before) == 4  # d 00:00–11:00 and d−1 20:00–23:00
    for r in today:  # replicated over the day's hours, all observed
        f = r.features
        assert (f["sleep_onset_h"], f["sleep_wake_h"], f["sleep_duration_h"]) == (-1.0, 7.0, 8.0)
        assert r.filled < 1.0
    for r in before:  # no rest in d−1's window: 0-filled and counted as imputed
        assert r.features["sleep_duration_h"] == 0.0
        assert r.filled >= 3 / 31
