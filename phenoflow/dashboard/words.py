"""Model feature names → behaviour words a clinician reads ("sleep onset later", "fewer calls").

Two name families reach the dashboard as anomaly contributors:

* hourly feature names (``operators/hourly_schema.FEATURE_NAMES``, e.g. ``call_n``,
  ``sleep_onset_h``) when the model scores ``features.hourly``;
* rhythm names ``<modality>.<metric>[.<param>].w<days>`` (``operators/rhythm/statistics.py``,
  e.g. ``call_n.m10.w14``, ``accel_mean.sampen.tau3.w6``) when it scores ``rhythm.daily``.

A contributor's ``z`` in ``events.anomaly`` is the standardised *reconstruction error*
((ē − μ_f)/σ_f, operators/scoring/calibration.py) and is positive by construction: it says
that a feature was unusual, not in which direction. The direction therefore comes
from the feature's own value that day against the participant's earlier days
(``delta`` = value − baseline; the view computes it). ``delta`` None → no direction.
"""

from __future__ import annotations

import re

__all__ = ["FAMILY", "family", "describe", "modality"]

#: Behaviour noun of each hourly feature / rhythm modality, and the words for
#: "the value went up" / "went down".
_NOUNS: dict[str, tuple[str, str, str]] = {
    "accel_mean": ("phone movement", "more", "less"),
    "accel_sd": ("physical activity", "more", "less"),
    "screen_unlocks": ("phone unlocks", "more", "fewer"),
    "screen_on_s": ("screen time", "more", "less"),
    "screen_sessions": ("phone sessions", "more", "fewer"),
    "call_n": ("calls", "more", "fewer"),
    "call_s": ("time on calls", "more", "less"),
    "sms_n": ("text messages", "more", "fewer"),
    "sms_incoming_n": ("texts received", "more", "fewer"),
    "sms_outgoing_n": ("texts sent", "more", "fewer"),
    "place_primary_s": ("time at home", "more", "less"),
    "place_secondary_s": ("time at the second usual place", "more", "less"),
    "place_other_s": ("time away from usual places", "more", "less"),
    "distance_m": ("distance travelled", "more", "less"),
    "light_lux_mean": ("light exposure", "more", "less"),
    "sound_db_mean": ("ambient noise", "more", "less"),
    "conversation_n": ("conversations", "more", "fewer"),
    "conversation_s": ("time in conversation", "more", "less"),
    "sleep_onset_h": ("sleep onset", "later", "earlier"),
    "sleep_wake_h": ("wake-up time", "later", "earlier"),
    "sleep_duration_h": ("sleep", "longer", "shorter"),
}
_CALL_DIRS = {"incoming": "incoming calls", "outgoing": "outgoing calls", "missed": "missed calls",
              "rejected": "rejected calls", "blocked": "blocked calls"}

#: Behaviour family of a modality, for grouping in the page.
FAMILY: dict[str, str] = {
    "sleep": "sleep", "accel": "activity", "distance": "mobility", "place": "mobility",
    "screen": "phone use", "call": "social", "sms": "social", "conversation": "social",
    "light": "environment", "sound": "environment",
}

#: Rhythm metric → (phrase template with {noun}, word for up, word for down).
_METRICS: dict[str, tuple[str, str, str]] = {
    "m10": ("{noun} in the busiest 10 h of the day", "more", "less"),
    "l5": ("{noun} in the quietest 5 h of the day", "more", "less"),
    "ra": ("day–night contrast of {noun}", "stronger", "weaker"),
    "is": ("day-to-day regularity of {noun}", "more regular", "less regular"),
    "iv": ("fragmentation of {noun} within the day", "more fragmented", "less fragmented"),
    "dev.mean": ("deviation of {noun} from the usual daily pattern", "larger", "smaller"),
    "dev.median": ("deviation of {noun} from the usual daily pattern", "larger", "smaller"),
    "dev.sd": ("day-to-day variation of the deviation of {noun}", "larger", "smaller"),
    "dev.prev": ("deviation of {noun} from the usual pattern the day before", "larger", "smaller"),
    "sampen": ("irregularity of {noun}", "more irregular", "more predictable"),
    "power": ("{period} rhythm in {noun}", "stronger", "weaker"),
}
_RHYTHM = re.compile(r"^(?P<mod>[a-z_]+)\.(?P<metric>m10|l5|ra|is|iv|dev\.(?:mean|median|sd|prev)|sampen|power)"
                     r"(?:\.(?P<param>tau\d+|p\d+))?\.w(?P<days>\d+)$")


def _noun(modality: str) -> tuple[str, str, str]:
    if modality in _NOUNS:
        return _NOUNS[modality]
    m = re.fullmatch(r"call_(\w+?)_(n|s)", modality)
    if m and m.group(1) in _CALL_DIRS:
        noun = _CALL_DIRS[m.group(1)]
        return (noun, "more", "fewer") if m.group(2) == "n" else (f"time on {noun}", "more", "less")
    return (modality.replace("_", " "), "higher", "lower")


def family(feature: str) -> str:
    """Behaviour family (sleep, activity, mobility, phone use, social, environment) of a feature name."""
    head = feature.split(".", 1)[0]
    for prefix, fam in FAMILY.items():
        if head.startswith(prefix):
            return fam
    return "other"


def describe(feature: str, delta: float | None = None) -> str:
    """Plain words for a model feature, with a direction when ``delta`` (value − baseline) is known.

    ``describe("call_n", -2.0)`` → ``"fewer calls"``;
    ``describe("sleep_onset_h", 1.5)`` → ``"sleep onset later"``;
    ``describe("call_n.m10.w14", -1)`` → ``"calls in the busiest 10 h of the day: less (14-day window)"``.
    Unknown names are returned readable (underscores → spaces), never dropped.
    """
    m = _RHYTHM.match(feature)
    if m is None:
        noun, up, down = _noun(feature)
        if delta is None or delta == 0:
            return f"{noun} unusual"
        word = up if delta > 0 else down
        # "fewer calls" reads better than "calls fewer"; times and durations read "sleep onset later".
        return f"{noun} {word}" if word in ("later", "earlier", "longer", "shorter") else f"{word} {noun}"
    noun = _noun(m.group("mod"))[0]
    metric, param = m.group("metric"), m.group("param")
    template, up, down = _METRICS[metric]
    period = f"{param[1:]}-hour" if param and param.startswith("p") else ""
    phrase = template.format(noun=noun, period=period)
    if metric == "sampen" and param:
        phrase += f" (scale {param[3:]} h)"
    window = f"{m.group('days')}-day window"
    if delta is None or delta == 0:
        return f"{phrase}: unusual ({window})"
    return f"{phrase}: {up if delta > 0 else down} ({window})"


def modality(feature: str) -> str:
    """The hourly feature a name is built on (``call_n.m10.w14`` → ``call_n``)."""
    return feature.split(".", 1)[0]
