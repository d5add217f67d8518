"""Model feature names → behaviour words (phenoflow/dashboard/words.py)."""

from __future__ import annotations

import pytest

from phenoflow.dashboard.words import describe, family, modality
from phenoflow.operators.hourly.schema import FEATURE_NAMES
from phenoflow.operators.rhythm.statistics import feature_names


@pytest.mark.parametrize(("name", "delta", "words"), [
    ("call_n", -2.0, "fewer calls"),
    ("call_n", 1.0, "more calls"),
    ("sleep_onset_h", 1.5, "sleep onset later"),
    ("sleep_wake_h", -0.5, "wake-up time earlier"),
    ("sleep_duration_h", -1.0, "sleep shorter"),
    ("screen_on_s", 10.0, "more screen time"),
    ("place_primary_s", -3600.0, "less time at home"),
    ("call_missed_n", 2.0, "more missed calls"),
    ("call_n", None, "calls unusual"),
    ("call_n.m10.w14", -1.0, "calls in the busiest 10 h of the day: less (14-day window)"),
    ("accel_mean.is.w6", -0.1, "day-to-day regularity of phone movement: less regular (6-day window)"),
    ("accel_mean.sampen.tau3.w6", 0.2, "irregularity of phone movement (scale 3 h): more irregular (6-day window)"),
    ("sound_db_mean.power.p24.w14", 5.0, "24-hour rhythm in ambient noise: stronger (14-day window)"),
    ("distance_m.dev.prev.w2", None, "deviation of distance travelled from the usual pattern the day before: unusual (2-day window)"),
])
def test_known_names_read_as_behaviour_with_direction(name: str, delta: float | None, words: str) -> None:
    assert describe(name, delta) == words


def test_every_pipeline_feature_name_has_behaviour_words() -> None:
    # The fallback keeps underscores and says "higher/lower"; no real name may hit it.
    for name in FEATURE_NAMES:
        text = describe(name, 1.0)
        assert "_" not in text and not text.startswith("higher"), name
    rhythm = feature_names()
    assert len(rhythm) > 1000
    for name in rhythm:
        text = describe(name, -1.0)
        assert "_" not in text and "window)" in text, name


def test_unknown_names_stay_readable_and_families_group_modalities() -> None:
    assert describe("heart_rate", 1.0) == "higher heart rate"
    assert modality("call_n.m10.w14") == "call_n"
    assert family("sleep_onset_h") == "sleep" and family("call_n.ra.w2") == "social"
    assert family("distance_m") == "mobility" and family("screen_on_s.l5.w4") == "phone use"
