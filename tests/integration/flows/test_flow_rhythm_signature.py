"""End to end on the real broker: hourly → rhythm on a simulated cohort with relapses.

Participants with a relapse signature must show the signature's shift in the
matching rhythm statistic in the days before relapse, against their own days
of relative health. The rhythm stage also runs on its own, re-reading a
`features.hourly` dump replayed into a fresh prefix, with identical output.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from bytewax.testing import run_main

from phenoflow.connectors.kafka.clients import ensure_topics
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, load_settings
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.flows.pipeline import build_flow
from phenoflow.simulate.simulator import cohort_truth, simulate_cohort

pytestmark = pytest.mark.integration

PARAMS = dict(participants=4, days=66, seed=21)
#: Simulator signature modality → (rhythm feature, sign of its change before relapse when the
#: signature's direction is +1). Sleep has no rhythm modality of its own and is not checked.
FEATURE = {
    "activity": ("accel_sd.m10.w4", 1),
    "mobility": ("distance_m.m10.w4", 1),
    "night_screen": ("screen_on_s.l5.w4", 1),
    "social": ("call_n.m10.w4", 1),
}


def _dump(settings: Settings, topic: str) -> list[bytes]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.0)
    return buf.getvalue().splitlines()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, broker) -> tuple[Path, list[bytes], list[bytes]]:
    cohort = tmp_path_factory.mktemp("sig") / "cohort"
    simulate_cohort(cohort, relapse_share=1.0, signature_strength=2.0, **PARAMS)
    settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="sig.a.")
    ensure_topics(settings, ALL_TOPICS)
    replay(cohort, settings)
    run_main(build_flow(settings, ("hourly", "rhythm"), until_end=True))
    return cohort, _dump(settings, "features.hourly"), _dump(settings, "rhythm.daily")


def test_relapse_signature_shifts_the_matching_rhythm_statistic(run) -> None:
    cohort, _, rhythm_lines = run
    truths = {t.participant: t for t in cohort_truth(PARAMS["participants"], PARAMS["days"], PARAMS["seed"],
                                                      relapse_share=1.0)}
    rhythm = [json.loads(x) for x in rhythm_lines]
    checked, agree = 0, 0
    for p, truth in truths.items():
        days = {date.fromisoformat(r["day"]): r["features"] for r in rhythm if r["participant"] == p}
        for relapse in truth.relapse_dates:
            near = [days[d] for d in days if relapse - timedelta(days=10) <= d < relapse]
            # Healthy reference: full 4-day windows, before the 30-day ramp, not after any relapse.
            healthy = [days[d] for d in days if d >= min(days) + timedelta(days=4)
                       and d < relapse - timedelta(days=30) and all(d < r for r in truth.relapse_dates)]
            for modality, direction in truth.signature.items():
                if modality not in FEATURE:
                    continue
                name, sign = FEATURE[modality]
                a = [f[name] for f in near if f.get(name) is not None]
                b = [f[name] for f in healthy if f.get(name) is not None]
                if len(a) < 5 or len(b) < 5:
                    continue
                checked += 1
                agree += np.sign(np.mean(a) - np.mean(b)) == sign * direction
    assert checked >= 4
    assert agree / checked >= 0.8, (agree, checked)


def test_rhythm_stage_alone_from_a_replayed_hourly_dump(run, tmp_path: Path, broker) -> None:
    _, hourly_lines, rhythm_lines = run
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "features.hourly.jsonl").write_bytes(b"\n".join(hourly_lines) + b"\n")
    settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="sig.b.")
    ensure_topics(settings, ALL_TOPICS)
    assert replay(folder, settings).sent == {"features.hourly": len(hourly_lines)}
    run_main(build_flow(settings, ("rhythm",), until_end=True))
    assert sorted(_dump(settings, "rhythm.daily")) == sorted(rhythm_lines)
