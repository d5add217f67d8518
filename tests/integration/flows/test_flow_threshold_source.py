"""The score stage names the source of τ in scores.daily, and evaluate refuses in-sample thresholds.

Real broker, real dataflow (raw → hourly → rhythm → score), then ``evaluate_dir``
on the topic dumps: the thresholds file carries this cohort's labels in its
provenance, so its scores are in-sample.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from bytewax.testing import run_main

from phenoflow.connectors.cohort import read_labels
from phenoflow.connectors.kafka.clients import ensure_topics
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import load_settings
from phenoflow.core.contract import ALL_TOPICS, ScoreDaily, decode
from phenoflow.core.errors import UserError
from phenoflow.evaluation.evaluate import evaluate_dir
from phenoflow.evaluation.provenance import write_thresholds
from phenoflow.flows.pipeline import build_flow
from phenoflow.simulate.simulator import simulate_cohort

pytestmark = pytest.mark.integration


def test_scores_name_the_thresholds_file_and_evaluate_refuses_in_sample(tmp_path: Path, broker) -> None:
    cohort = tmp_path / "cohort"
    simulate_cohort(cohort, participants=3, days=50, seed=5, relapse_share=1.0, signature_strength=2.0)
    labels = read_labels(cohort / "labels.csv")
    thr = tmp_path / "thresholds.json"
    # τ for two of three participants, "fitted" on this very cohort's labels
    digest = write_thresholds(thr, {"p001": 1.0, "p002": 2.0}, labels, {"protocol": "adler", "seed": 0},
                              {p: np.array([], dtype="datetime64[D]") for p in labels}, cohort_dir=cohort)
    settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="src.", thresholds_path=str(thr))
    ensure_topics(settings, ALL_TOPICS)
    replay(cohort, settings)
    run_main(build_flow(settings, ("hourly", "rhythm", "score"), until_end=True))
    (cohort / "outputs").mkdir()
    for topic in ("scores.daily", "events.anomaly"):
        buf = io.BytesIO()
        subscribe(settings, topic, buf, from_beginning=True, timeout=1.0)
        (cohort / "outputs" / f"{topic}.jsonl").write_bytes(buf.getvalue())
    scores = [decode("scores.daily", None, line) for line in (cohort / "outputs" / "scores.daily.jsonl").read_bytes().splitlines()]
    assert scores and all(isinstance(s, ScoreDaily) for s in scores)
    source = {s.participant: s.threshold_source for s in scores}  # type: ignore[union-attr]
    assert source == {"p001": digest, "p002": digest, "p003": "calibration"}
    assert {s.threshold for s in scores if s.participant == "p002" and not s.calibrating} == {2.0}  # type: ignore[union-attr]
    with pytest.raises(UserError, match="fitted on this cohort's own labels"):
        evaluate_dir(cohort, permutations=0)
    r = evaluate_dir(cohort, permutations=50, allow_in_sample=True)
    assert r.in_sample and sorted(r.provenance.participants) == ["p001", "p002"]  # type: ignore[union-attr]
