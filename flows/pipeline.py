"""The phenoflow Bytewax dataflow: raw topics → hourly → rhythm → score.

Entry point for ``python -m bytewax.run``::

    python -m bytewax.run "phenoflow.flows.pipeline:get_flow('hourly,rhythm,score', True)" -w 2

With recovery, name the directory to the factory as well, so it is checked before
Bytewax restores from it::

    python -m bytewax.run "phenoflow.flows.pipeline:get_flow('hourly,rhythm,score', False, '/data/recovery')" \
        -r /data/recovery -s 30 -b 0

Settings come from ``PHENOFLOW_*`` environment variables or ``PHENOFLOW_CONFIG``
(see :mod:`phenoflow.core.config`), so every process of a cluster builds the same
flow. Any contiguous run of stages can run in one dataflow; the first stage
reads its input topic, every stage also writes its own output topic, so the
stages can equally run as separate processes connected by Kafka.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from phenoflow.connectors.kafka.sink import DeliveringKafkaSink
from phenoflow.connectors.kafka.source import PartitionGroupSource
from phenoflow.core import telemetry as metrics
from phenoflow.core.config import Settings, load_settings
from phenoflow.core.contract import (
    DeadLetter,
    HourlyFeatures,
    RhythmDaily,
    Survey,
)
from phenoflow.core.errors import UserError
from phenoflow.flows import stages as st
from phenoflow.flows.score_stage import load_scorer, score_streams
from phenoflow.flows.wiring import decoder, to_sink

__all__ = ["STAGES", "STAGE_INPUTS", "parse_stages", "input_topics", "build_flow", "tune_gc", "get_flow"]

STAGES: tuple[str, ...] = ("hourly", "rhythm", "score")

#: Topics a stage reads when it is the first stage of the dataflow.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "hourly": ("raw.accelerometer", "raw.screen", "raw.call", "raw.sms", "raw.location", "raw.ambient"),
    "rhythm": ("features.hourly",),
    "score": ("rhythm.daily",),
}


def parse_stages(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a stage list: known names, contiguous (``hourly,score`` lacks ``rhythm``)."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise UserError(f"unknown stage(s) {', '.join(unknown) or '(none)'} — choose from {','.join(STAGES)}")
    idx = sorted(STAGES.index(s) for s in set(names))
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise UserError(f"stages {','.join(names)} skip one — run a contiguous set such as hourly,rhythm,score "
                        "(or run the stages as separate processes)")
    return tuple(STAGES[i] for i in idx)


def input_topics(stages: tuple[str, ...], score_input: str = "rhythm.daily") -> tuple[str, ...]:
    """Topics the first stage reads; a score stage of an hourly model reads features.hourly."""
    first = STAGE_INPUTS[stages[0]] if stages != ("score",) else (score_input,)
    topics = list(first)
    if "score" in stages:
        topics.append("raw.survey")
    return tuple(topics)


def build_flow(settings: Settings, stages: tuple[str, ...], *, until_end: bool = False,
               flow_id: str = "phenoflow") -> Dataflow:
    """Wire the operators of ``stages`` between Kafka topics."""
    flow = Dataflow(flow_id)
    scorer = None
    score_input = "rhythm.daily"
    if "score" in stages:
        scorer = load_scorer(settings)  # fail fast on a missing or bad model, before any I/O
        score_input = "features.hourly" if scorer.input_kind == "hourly" else "rhythm.daily"
    topics = [settings.topic(t) for t in input_topics(stages, score_input)]
    if settings.source == "radar":
        from phenoflow.connectors.radar.live import radar_topics

        if stages[0] != "hourly":
            raise UserError("source radar feeds the hourly stage — run --stages starting with hourly")
        topics = radar_topics(settings)
    source = PartitionGroupSource(
        settings.bootstrap,
        topics,
        tail=not until_end,
        batch_size=st.SOURCE_BATCH,
        config={k: v for k, v in settings.kafka_config().items() if k != "bootstrap.servers"},
    )
    # Decoded items are (participant, event) pairs, so the stateful steps need no key step.
    if settings.source == "radar":
        from phenoflow.flows.radar_input import radar_events

        decoded = radar_events(op.input("in", flow, source), settings)
    else:
        decoded = op.flat_map_batch("decode", op.input("in", flow, source), decoder(settings))
    split = op.branch("dead_or_event", decoded, lambda kv: isinstance(kv[1], DeadLetter))
    dead, events = split.trues, split.falses
    to_dead = to_sink(settings, "deadletter")
    outputs: list[Stream] = [op.map("dl_sink", dead, lambda kv: to_dead(kv[1]))]

    def only(step_id: str, cls: type) -> Stream:
        """The un-keyed input events of one type."""
        return op.filter_map(step_id, events, lambda kv: kv[1] if isinstance(kv[1], cls) else None)

    hourly: Stream | None = None
    rhythm: Stream | None = None
    if "hourly" in stages:
        raw = op.filter("raw", events, lambda kv: not isinstance(kv[1], Survey)) if "score" in stages else events
        hourly, late = st.hourly_stage(raw, settings)
        outputs.append(op.map("hourly_sink", hourly, to_sink(settings, "features.hourly")))
        outputs.append(op.map("late_sink", late, to_sink(settings, "deadletter")))
    if "rhythm" in stages:
        if hourly is None:
            hourly = only("hourly_in", HourlyFeatures)
        rhythm = st.rhythm_stage(hourly, settings)
        outputs.append(op.map("rhythm_sink", rhythm, to_sink(settings, "rhythm.daily")))
    if "score" in stages:
        if score_input == "features.hourly":
            days = hourly if hourly is not None else only("hourly_for_score", HourlyFeatures)
        else:
            days = rhythm if rhythm is not None else only("rhythm_in", RhythmDaily)
        surveys = only("surveys", Survey)
        for short, stream in score_streams(days, surveys, settings, scorer).items():
            outputs.append(op.map(f"{short.replace('.', '_')}_sink", stream, to_sink(settings, short)))

    merged = op.merge("outputs", *outputs)
    op.output("out", merged, DeliveringKafkaSink(settings.kafka_config()))
    return flow


def tune_gc() -> None:
    """Process-wide GC setting of a flow process (get_flow applies it; benchmarks too).

    Streaming allocates many short-lived objects while the per-participant state
    is large and long-lived; fewer gen-0 collections cost ≈ 15–20 % less CPU here.
    """
    gc.set_threshold(100_000, 50, 1000)


def get_flow(stages: str = ",".join(STAGES), until_end: bool = False, recovery_dir: str = "") -> Dataflow:
    """Factory for ``python -m bytewax.run``; settings from the environment.

    ``recovery_dir``: the directory passed to ``bytewax.run -r``. Its snapshots are
    checked first (state versions; GPS state under another study key), as
    ``phenoflow run`` does, so a flow started without the CLI (the Kubernetes
    manifests) stops with the same one line instead of a traceback inside Bytewax.
    """
    settings = load_settings()
    chosen = parse_stages(stages)
    if recovery_dir and Path(recovery_dir).is_dir():
        from phenoflow.core.pseudonym import study_secret
        from phenoflow.flows.recovery import check_state_versions

        try:
            check_state_versions(Path(recovery_dir),
                                 frame_key=study_secret(settings)[0] if "hourly" in chosen else None)
        except UserError as exc:
            # SystemExit passes through bytewax.run without a traceback.
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
    tune_gc()
    flow = build_flow(settings, chosen, until_end=until_end)
    metrics.serve(settings.metrics_port)
    return flow
