"""Running on a cluster: workers vs processes, crash recovery, broker pause, metrics.

Every run goes through `phenoflow run` (Bytewax's own runner in a subprocess)
against a real embedded broker.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError

from phenoflow.connectors.broker import EmbeddedBroker, free_port
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.kafka.clients import ensure_topics, producer
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, load_settings, settings_env
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.simulate.simulator import simulate_cohort

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTPUTS = ("features.hourly", "rhythm.daily", "scores.daily", "events.anomaly", "events.stepup", "deadletter")
RUN = [sys.executable, "-m", "phenoflow", "run", "--until-end"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster") / "cohort"
    simulate_cohort(path, participants=6, days=45, seed=8, relapse_share=0.5)
    return path


def _fresh(bootstrap: str, cohort: Path, name: str) -> Settings:
    settings = load_settings(bootstrap=bootstrap, topic_prefix=f"{name}.")
    ensure_topics(settings, ALL_TOPICS)
    replay(cohort, settings)
    return settings


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings_env(settings)}


def _outputs(settings: Settings, dedupe: bool = False) -> dict[str, list[bytes]]:
    out = {}
    for topic in OUTPUTS:
        buf = io.BytesIO()
        subscribe(settings, topic, buf, from_beginning=True, timeout=1.0, dedupe=dedupe)
        out[topic] = sorted(buf.getvalue().splitlines())
    return out


@pytest.fixture(scope="module")
def reference(cohort: Path, broker: EmbeddedBroker) -> dict[str, list[bytes]]:
    """One uninterrupted 1-worker run: its sorted outputs.

    Every run of this cohort must give exactly these records (the flows are
    deterministic and the values hold no topic prefix), so one reference serves
    every test here instead of a fresh run each.
    """
    one = _fresh(broker.bootstrap, cohort, "w1")
    subprocess.run(RUN, env=_env(one), check=True, capture_output=True, timeout=600)
    return _outputs(one)


def test_one_worker_two_workers_two_processes_give_identical_output(
        cohort: Path, broker: EmbeddedBroker, reference: dict[str, list[bytes]]) -> None:
    two = _fresh(broker.bootstrap, cohort, "w2")
    subprocess.run([*RUN, "--workers", "2"], env=_env(two), check=True, capture_output=True, timeout=600)
    procs = _fresh(broker.bootstrap, cohort, "p2")
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    runs = [subprocess.Popen([*RUN, "-i", str(i), "-a", addresses], env=_env(procs),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(2)]
    for p in runs:
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()[-2000:] if p.stderr else ""
    expected = reference
    assert expected["features.hourly"] and expected["scores.daily"]
    assert _outputs(two) == expected
    assert _outputs(procs) == expected


def test_sigkill_and_restart_with_recovery_loses_and_duplicates_nothing(
        cohort: Path, broker: EmbeddedBroker, tmp_path: Path,
        reference: dict[str, list[bytes]]) -> None:
    expected = reference

    crashed = _fresh(broker.bootstrap, cohort, "crash")
    rec = ["--recovery", str(tmp_path / "recovery"), "--snapshot-interval", "1"]
    first = subprocess.Popen([*RUN, *rec], env=_env(crashed), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    # Kill well into the run (snapshots every second): once half of the hourly output is out.
    _wait_for_output(crashed, first, at_least=len(expected["features.hourly"]) // 2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    partial = _outputs(crashed)
    assert len(partial["features.hourly"]) < len(expected["features.hourly"])

    t0 = time.monotonic()
    subprocess.run([*RUN, *rec], env=_env(crashed), check=True, capture_output=True, timeout=600)
    resumed_s = time.monotonic() - t0
    raw = _outputs(crashed)
    after = _outputs(crashed, dedupe=True)
    # No lost record, and after dedup by event id / participant-period no duplicate either.
    assert after == expected
    # Replayed outputs are byte-identical repeats (deterministic), so dedup only removed copies.
    for topic in OUTPUTS:
        assert set(raw[topic]) == set(expected[topic]), topic
    print(f"resume after SIGKILL: {resumed_s:.1f} s to finish")


def _wait_for_output(settings: Settings, proc: subprocess.Popen, at_least: int = 1, limit_s: float = 300.0) -> None:
    """Return once the running flow has written ``at_least`` ``features.hourly`` records (it must still run)."""
    full = settings.topic("features.hourly")
    c = kafka_io.consumer(settings)
    seen = 0
    try:
        kafka_io.assign_all(c, full, kafka_io.topic_partitions(settings, full), OFFSET_BEGINNING)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            seen += sum(m.error() is None for m in c.consume(1000, timeout=0.2))
            if seen >= at_least:
                assert proc.poll() is None, "the run ended before it could be interrupted; make the cohort larger"
                return
            assert proc.poll() is None, f"the run ended with {seen} of {at_least} records seen"
        raise AssertionError(f"{seen} of {at_least} records within the time limit")
    finally:
        c.close()


def _write_times_ms(settings: Settings) -> list[int]:
    """Producer timestamps (CreateTime, ms) of every record on the output topics."""
    c = kafka_io.consumer(settings)
    times: list[int] = []
    try:
        for topic in OUTPUTS:
            full = settings.topic(topic)
            parts = kafka_io.topic_partitions(settings, full)
            kafka_io.assign_all(c, full, parts, OFFSET_BEGINNING)
            eof: set[int] = set()
            while len(eof) < len(parts):
                for m in c.consume(1000, timeout=1.0):
                    if m.error() is None:
                        times.append(m.timestamp()[1])
                    elif m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
    finally:
        c.close()
    return times


def test_broker_pause_mid_run_completes_with_full_output(cohort: Path, tmp_path: Path,
                                                        reference: dict[str, list[bytes]]) -> None:
    expected = reference
    with EmbeddedBroker(port=0, log_file=tmp_path / "broker.log") as own:
        paused = _fresh(own.bootstrap, cohort, "pause")
        log = tmp_path / "run.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(RUN, env=_env(paused), stdout=subprocess.DEVNULL, stderr=err)
            # Freeze the broker only once output is flowing, while the run is still going.
            _wait_for_output(paused, proc)
            own.pause()
            paused_at_ms = time.time() * 1000.0
            assert proc.poll() is None
            time.sleep(20.0)
            own.resume()
            code = proc.wait(timeout=600)
        stderr = log.read_text()
        assert code == 0, stderr[-2000:]
        assert _outputs(paused, dedupe=True) == expected
        # The pause fell inside the output: records were written both before it and after it.
        written = _write_times_ms(paused)
        before = sum(t < paused_at_ms for t in written)
        print(f"broker paused with {before} of {len(written)} output records written")
        assert before > 0
        assert len(written) - before > 0, "all output was written before the pause"
        # The sink noticed the frozen broker and retried with backoff (connectors/kafka/sink.py).
        assert "Kafka broker not accepting writes" in stderr, stderr[-2000:]


def test_metrics_endpoint_counts_what_was_replayed(cohort: Path, broker: EmbeddedBroker) -> None:
    from bytewax.testing import run_main

    from phenoflow.cli.progress import scrape
    from phenoflow.core import telemetry as metrics
    from phenoflow.flows.pipeline import build_flow

    settings = _fresh(broker.bootstrap, cohort, "metrics")
    prod = producer(settings)
    for bad in (b"{not json", b'{"participant": "p001", "ts": 1704100000.0, "state": "dim"}'):
        prod.produce(settings.topic("raw.screen"), bad)
    assert prod.flush(10) == 0
    port = free_port()
    metrics.serve(port)  # the endpoint `phenoflow run --metrics-port` starts, scraped over HTTP
    before = scrape(port)
    run_main(build_flow(settings, ("hourly",), until_end=True))
    after = scrape(port)
    assert before is not None and after is not None
    delta = {(name, t): v - before.get(name, {}).get(t, 0.0)
             for name, per_topic in after.items() for t, v in per_topic.items()
             if v - before.get(name, {}).get(t, 0.0)}
    counts = {t: n for (name, t), n in delta.items() if name == "phenoflow_messages_in_total"}
    sent = {t: float(n) for t, n in replay_counts(cohort).items() if t != "raw.survey"}
    sent["raw.screen"] += 2
    assert counts == sent
    out = _outputs(settings)
    assert delta[("phenoflow_messages_out_total", "features.hourly")] == len(out["features.hourly"])
    assert delta[("phenoflow_dead_letters_total", "raw.screen")] == 2 == len(out["deadletter"])
    # Read to the end: every input partition reports no lag.
    from prometheus_client import REGISTRY

    lags = {(t, p): REGISTRY.get_sample_value("phenoflow_consumer_lag", {"topic": settings.topic(t), "partition": str(p)})
            for t in sent for p in range(settings.partitions)}
    assert lags == {k: 0.0 for k in lags}


def replay_counts(cohort: Path) -> dict[str, int]:
    from phenoflow.connectors.cohort import cohort_files, read_lines

    return {f.topic: sum(1 for _ in read_lines(f)) for f in cohort_files(cohort)}
