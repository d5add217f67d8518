"""RADAR-base in: the shared 50-Hz recording end to end, beside plain baselines in the same run.

1. ``import radar`` of the shared RADAR-base export (``../shared/data/radar-mockdata``,
   ≈ 3.9 M acceleration rows at ≈ 50 Hz plus the small topics): rows/s, CPU s.
2. Decode cost per record, in process, no broker: the live path (Confluent
   wire → fastavro → mapping → pseudonym → local time → contract Struct) against
   the JSON contract path (``flows/wiring.decoder``) on the same records as
   one-sample contract messages, and on the import's chunked messages (per sample).
3. On the embedded broker: ``replay`` of the imported cohort (msgs/s, samples/s);
   the hourly+rhythm flow to the end (msgs/s, samples/s, CPU s per
   participant-day); the plain confluent-kafka + numpy loop of
   ``bench_hourly_peers.py`` on the same topics (CPU ratio).

Run: ``.venv/bin/python benchmarks/bench_radar.py [--export DIR] [--hours N] [--records N]``
(``--hours N``: only the first N acceleration hour files, for a quick run).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench_hourly_peers import run_plain  # noqa: E402 (benchmarks/ is on sys.path)

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.importers.run import run_import
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.connectors.radar import mapping as m
from phenoflow.connectors.radar.live import LocalTimeState, radar_decoder
from phenoflow.connectors.radar.schemas import SchemaStore
from phenoflow.connectors.radar.wire import encode
from phenoflow.core.config import load_settings
from phenoflow.core.contract import ALL_TOPICS
from phenoflow.core.pseudonym import pseudonymize
from phenoflow.flows.pipeline import build_flow, tune_gc
from phenoflow.flows.wiring import decoder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SECRET = b"bench-secret"


def _subset(export: Path, hours: int, tmp: Path) -> Path:
    """A copy of ``export`` (symlinks) with only the first ``hours`` acceleration files."""
    out = tmp / "export"
    for user in (p for p in export.iterdir() if p.is_dir()):
        for topic in (p for p in user.iterdir() if p.is_dir()):
            files = sorted(topic.glob("*.csv.gz"))
            if topic.name == "android_phone_acceleration":
                files = files[:hours]
            (out / user.name / topic.name).mkdir(parents=True, exist_ok=True)
            for f in files:
                os.symlink(f, out / user.name / topic.name / f.name)
    return out


def _avro_records(export: Path, store: SchemaStore, limit: int) -> list[tuple[str, bytes, bytes, int, int]]:
    """Up to ``limit`` RADAR records (acceleration, light, user interaction) as Confluent-framed Avro."""
    key_s, key_id = store.schema(m.OBSERVATION_KEY), store.id_of(m.OBSERVATION_KEY)
    kinds = {"android_phone_acceleration": (m.ACCELERATION, ("x", "y", "z")),
             "android_phone_light": (m.LIGHT, ("light",)),
             "android_phone_user_interaction": (m.USER_INTERACTION, ())}
    out: list[tuple[str, bytes, bytes, int, int]] = []
    for user in sorted(p for p in export.iterdir() if p.is_dir()):
        for topic, (name, floats) in kinds.items():
            share = limit * 8 // 10 if topic == "android_phone_acceleration" else limit // 10
            n = 0
            for f in sorted((user / topic).glob("*.csv.gz")):
                with gzip.open(f, "rt", newline="") as fh:
                    for r in csv.DictReader(fh):
                        key = encode(key_id, key_s, {"projectId": r["key.projectId"], "userId": r["key.userId"],
                                                     "sourceId": r["key.sourceId"]})
                        value = {"time": float(r["value.time"]), "timeReceived": float(r["value.timeReceived"]),
                                 **{c: float(r[f"value.{c}"]) for c in floats}}
                        if name == m.USER_INTERACTION:
                            value["interactionState"] = r["value.interactionState"]
                        out.append((topic, key, encode(store.id_of(name), store.schema(name), value), 0, len(out)))
                        n += 1
                        if n >= share:
                            break
                if n >= share:
                    break
    return out


def decode_cost(export: Path, schemas: Path, limit: int) -> tuple[list, list]:
    store = SchemaStore.from_dir(schemas)
    msgs = _avro_records(export, store, limit)
    settings = load_settings(pseudonym_secret=SECRET.decode(), topic_prefix="")
    dec = radar_decoder(settings, store, lambda p, u: pseudonymize(p, u, SECRET))
    states: dict[str, LocalTimeState] = {}
    events: list = []
    c0 = time.process_time()
    for i in range(0, len(msgs), 1000):
        by_pid: dict[str, list] = {}
        for pid, payload in dec(msgs[i:i + 1000]):
            by_pid.setdefault(pid, []).append(payload)
        for pid, payloads in by_pid.items():
            events += states.setdefault(pid, LocalTimeState()).update_batch(payloads)
    avro_cpu = time.process_time() - c0
    samples = sum(len(e.ts) if isinstance(e.ts, list) else 1 for e in events if hasattr(e, "ts"))
    # The same records as one-sample contract JSON messages, and as the import's 2,500-sample chunks.
    from phenoflow.core.contract import DeadLetter
    from phenoflow.core.contract import encode as cenc

    single = []
    for e in (e for e in events if not isinstance(e, DeadLetter)):  # BOOTED interactions are dropped
        if isinstance(getattr(e, "ts", None), list):
            for j in range(len(e.ts)):
                single.append(("raw.accelerometer", cenc(type(e)(participant=e.participant, ts=[e.ts[j]],
                                                             x=[e.x[j]], y=[e.y[j]], z=[e.z[j]]))))
        else:
            single.append((f"raw.{type(e).__name__.lower()}", cenc(e)))
    jdec = decoder(settings)
    items = [(t, None, v, 0, k) for k, (t, v) in enumerate(single)]
    c0 = time.process_time()
    for i in range(0, len(items), 1000):
        jdec(items[i:i + 1000])
    json_cpu = time.process_time() - c0
    n = len(msgs)
    print(f"\n== decode cost per record ({n:,} RADAR records: 80 % acceleration, 10 % light, 10 % user interaction; "
          f"{samples:,} samples and events out)")
    print(f"  live RADAR path (wire+fastavro+map+pseudonym+local time+Struct): {avro_cpu / n * 1e6:7.2f} µs CPU/record")
    print(f"  JSON contract path, same records as 1-sample messages:             {json_cpu / len(items) * 1e6:7.2f} µs CPU/record")
    print(f"  ratio live RADAR / JSON contract:                                    {avro_cpu / n / (json_cpu / len(items)):7.2f}×")
    return msgs, single


def live_flows(b: EmbeddedBroker, schemas: Path, msgs: list, single: list) -> None:
    """The hourly flow on the broker: RADAR Avro topics (``source=radar``) vs the same records as contract JSON."""
    from bytewax.testing import run_main
    from confluent_kafka.admin import NewTopic

    prefix = f"l{uuid.uuid4().hex[:6]}."
    radar_names = sorted({t for t, *_ in msgs})
    base = load_settings(bootstrap=b.bootstrap, topic_prefix=prefix, pseudonym_secret=SECRET.decode())
    kafka_io.ensure_topics(base, ALL_TOPICS)
    client = kafka_io.admin(base)  # must outlive the futures
    futures = client.create_topics([NewTopic(prefix + t, num_partitions=4, replication_factor=1)
                                                 for t in radar_names])
    for fut in futures.values():
        fut.result(10)
    prod = kafka_io.producer(base)
    for topic, key, value, _, _ in msgs:
        while True:
            try:
                prod.produce(prefix + topic, value=value, key=key)
                break
            except BufferError:
                prod.poll(0.05)
    for topic, value in single:
        pid = value[value.index(b'"participant":"') + 15:].split(b'"', 1)[0]
        while True:
            try:
                prod.produce(base.topic(topic), value=value, key=pid)
                break
            except BufferError:
                prod.poll(0.05)
    prod.flush()
    import dataclasses

    radar = dataclasses.replace(base, source="radar", radar_schemas_dir=str(schemas),
                                radar_topics=",".join(prefix + t for t in radar_names))
    rows = []
    for name, settings, n in (("live --source radar (Avro)", radar, len(msgs)),
                              ("contract JSON, 1-sample messages", base, len(single))):
        flow = build_flow(settings, ("hourly",), until_end=True, flow_id=f"live_{uuid.uuid4().hex[:6]}")
        w0, c0 = time.perf_counter(), time.process_time()
        run_main(flow)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        rows.append((name, n, wall, cpu))
    print(f"\n== hourly flow on the broker, same {len(msgs):,} records")
    for name, n, wall, cpu in rows:
        print(f"  {name:<34} {wall:6.1f} s wall {cpu:6.1f} s CPU  {n / wall:>9,.0f} records/s  {cpu / n * 1e6:6.2f} µs CPU/record")
    print(f"  CPU ratio radar / JSON: {rows[0][3] / rows[1][3]:.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--export", type=Path, default=SHARED / "radar-mockdata")
    ap.add_argument("--schemas", type=Path, default=SHARED / "radar-schemas" / "commons")
    ap.add_argument("--hours", type=int, default=0, help="only the first N acceleration hour files (0 = all)")
    ap.add_argument("--records", type=int, default=200_000, help="records for the decode-cost comparison")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-radar-"))
    export = _subset(args.export, args.hours, tmp) if args.hours else args.export
    settings0 = load_settings(pseudonym_secret=SECRET.decode())

    # 1. import
    w0, c0 = time.perf_counter(), time.process_time()
    res = run_import("radar", export, tmp / "cohort", settings0, timezone="Europe/London")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rows = sum(s.read for s in res.report.streams.values())
    acc = res.report.streams["android_phone_acceleration"].read
    print(f"== import radar: {rows:,} rows ({acc:,} acceleration) in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"→ {rows / wall:,.0f} rows/s wall, {rows / cpu:,.0f} rows/s CPU; peak RSS {_max_rss_mb():,.0f} MB")

    # 2. decode cost
    msgs, single = decode_cost(export, args.schemas, args.records)

    # 3. replay, flow, plain loop
    with EmbeddedBroker(port=0) as b:
        settings = load_settings(bootstrap=b.bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:6]}.")
        kafka_io.ensure_topics(settings, ALL_TOPICS)
        from phenoflow.connectors.replay import replay

        rep = replay(tmp / "cohort", settings)
        print(f"\n== replay: {rep.total:,} messages, {rep.accelerometer_samples:,} samples in {rep.seconds:.1f} s → "
              f"{rep.rate:,.0f} msgs/s, {rep.accelerometer_samples / rep.seconds:,.0f} samples/s")
        import gc

        from bytewax.testing import run_main

        flow = build_flow(settings, ("hourly", "rhythm"), until_end=True, flow_id=f"radar_{uuid.uuid4().hex[:6]}")
        old = gc.get_threshold()
        tune_gc()
        w0, c0 = time.perf_counter(), time.process_time()
        run_main(flow)
        fwall, fcpu = time.perf_counter() - w0, time.process_time() - c0
        gc.set_threshold(*old)
        days = rep_days(tmp / "cohort")
        print(f"== hourly+rhythm flow: {fwall:.1f} s wall, {fcpu:.1f} s CPU → {rep.total / fwall:,.0f} msgs/s, "
              f"{rep.accelerometer_samples / fwall:,.0f} samples/s wall; {fcpu / days:.2f} CPU s per participant-day "
              f"({days:.2f} participant-days)")
        plain = run_plain(settings)
        print(f"== plain confluent+numpy loop (same topics): {plain.seconds:.1f} s wall, {plain.cpu:.1f} s CPU")
        print(f"   phenoflow / plain by CPU: {plain.cpu / fcpu:.2f}× the plain loop's speed (goal ≥ 0.5×)")
        live_flows(b, args.schemas, msgs, single)


def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rep_days(cohort: Path) -> float:
    """Participant-days covered by the cohort's events (first to last event per participant)."""
    import json

    span: dict[str, list[float]] = {}
    for f in cohort.glob("*.jsonl*"):
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt") as fh:  # type: ignore[operator]
            for line in fh:
                d = json.loads(line)
                t = d["ts"][0] if isinstance(d["ts"], list) else d["ts"]
                lo_hi = span.setdefault(d["participant"], [t, t])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], t), max(lo_hi[1], t)
    return sum((hi - lo) / 86400.0 for lo, hi in span.values())


if __name__ == "__main__":
    main()
