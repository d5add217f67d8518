"""Names and settings of the hourly stage.

Kept apart from the aggregator (:mod:`phenoflow.operators.hourly.aggregator`) so other
stages (rhythm, scoring, docs) can use the feature names without importing the
streaming machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from phenoflow.core.errors import UserError

__all__ = ["CALL_DIRECTIONS", "SCREEN_STATES", "FEATURE_GROUPS", "FEATURE_NAMES", "GROUP_SLICES", "HourlyConfig"]

CALL_DIRECTIONS: tuple[str, ...] = ("incoming", "outgoing", "missed", "rejected", "blocked")
SCREEN_STATES: tuple[str, ...] = ("on", "unlock", "off")  # also the tie order at equal ts

#: Features by the sensor that must be seen in an hour for them to count as observed.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "accel": ("accel_mean", "accel_sd"),
    "screen": ("screen_unlocks", "screen_on_s", "screen_sessions"),
    "call": tuple(f"call_{d}_{k}" for d in CALL_DIRECTIONS for k in ("n", "s")) + ("call_n", "call_s"),
    "sms": ("sms_incoming_n", "sms_outgoing_n", "sms_n"),
    "location": ("place_primary_s", "place_secondary_s", "place_other_s", "distance_m"),
    "light": ("light_lux_mean",),
    "sound": ("sound_db_mean",),
    "voice": ("conversation_n", "conversation_s"),
    "sleep": ("sleep_onset_h", "sleep_wake_h", "sleep_duration_h"),
}
#: Groups whose sensor is an event log (it reports only when something happens): their
#: silence is a measured 0 while the log is observably running (``log_running_s``).
EVENT_LOG_GROUPS: tuple[str, ...] = ("screen", "call", "sms")
#: Every feature of a features.hourly record, in a fixed order.
FEATURE_NAMES: list[str] = [name for group in FEATURE_GROUPS.values() for name in group]
_ENDS = list(accumulate(len(g) for g in FEATURE_GROUPS.values()))
GROUP_SLICES: dict[str, slice] = {g: slice(e - len(FEATURE_GROUPS[g]), e) for g, e in zip(FEATURE_GROUPS, _ENDS, strict=True)}


@dataclass(frozen=True)
class HourlyConfig:
    """Tunables of the hourly stage (defaults as documented in docs/hourly.md)."""

    allowed_lateness_s: float = 2 * 3600.0  #: watermark slack behind the slowest active stream
    idle_timeout_s: float = 48 * 3600.0  #: a stream this far behind the newest one stops holding days open
    idle_wall_s: float = 120.0  #: …unless it delivered within this many wall-clock seconds (flows pass `now`)
    place_eps_m: float = 1000.0  #: DBSCAN ε (Adler et al. seed value)
    place_min_samples: int = 10  #: DBSCAN min_samples (seed value)
    place_history_days: float = 14.0  #: rolling location history for DBSCAN
    place_history_bin_s: float = 300.0  #: history keeps the earliest fix per bin
    place_refit_days: int = 1  #: refit DBSCAN every this many day closes
    place_swap_margin: float = 1.2  #: size ratio needed to swap primary/secondary roles
    place_carry_max_s: float = 12 * 3600.0  #: "stay at last known place" for at most this long
    distance_jitter_m: float = 50.0  #: moves shorter than this from the anchor are GPS noise
    screen_session_max_s: float = 4 * 3600.0  #: a session without "off" ends after this long
    log_running_s: float = 48 * 3600.0  #: an event log that reported this recently (or later that day) is running
    conversation_gap_s: float = 600.0  #: voice=true readings further apart start a new conversation
    sleep_slot_s: int = 600  #: rest-state grid; must divide 3600
    sleep_still_sd: float = 0.2  #: m/s², SD of ‖a‖ in a slot above which the phone moved
    sleep_dark_lux: float = 10.0  #: mean lux above which a slot is lit
    sleep_quiet_db: float = 40.0  #: mean dB above which a slot is noisy
    sleep_min_s: float = 3600.0  #: shorter rest episodes are not sleep
    sleep_max_interruption_s: float = 1200.0  #: active gaps this short do not end a rest episode
    sleep_window_start_h: float = -6.0  #: day d's sleep window starts at d 00:00 + this (local)

    def __post_init__(self) -> None:
        if self.sleep_slot_s <= 0 or 3600 % self.sleep_slot_s:
            raise UserError(f"sleep_slot_s={self.sleep_slot_s} must divide 3600 — use e.g. 300 or 600")
        for name in ("allowed_lateness_s", "idle_timeout_s", "idle_wall_s", "place_eps_m", "place_carry_max_s",
                     "screen_session_max_s", "conversation_gap_s", "distance_jitter_m", "log_running_s"):
            if getattr(self, name) < 0:
                raise UserError(f"{name}={getattr(self, name)} is negative — use a value ≥ 0")
        if self.place_min_samples < 1 or self.place_refit_days < 1:
            raise UserError("place_min_samples and place_refit_days must be ≥ 1 — fix the config")
