"""The `phenoflow run` progress line, read from a real prometheus-client endpoint."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, start_http_server

from phenoflow.cli.progress import describe, scrape
from phenoflow.connectors.broker import free_port


def test_scrape_and_describe_sum_counters_by_topic() -> None:
    reg = CollectorRegistry()
    m_in = Counter("phenoflow_messages_in", "in", ["topic"], registry=reg)
    m_out = Counter("phenoflow_messages_out", "out", ["topic"], registry=reg)
    dead = Counter("phenoflow_dead_letters", "dl", ["topic", "reason"], registry=reg)
    m_in.labels(topic="raw.screen").inc(1200)
    m_in.labels(topic="raw.call").inc(34)
    m_out.labels(topic="features.hourly").inc(48)
    m_out.labels(topic="deadletter").inc(3)
    dead.labels(topic="raw.screen", reason="contract").inc(2)
    dead.labels(topic="raw.screen", reason="late").inc(1)
    port = free_port()
    start_http_server(port, registry=reg)
    counters = scrape(port)
    assert counters is not None
    assert describe(counters) == "1,234 messages in → features.hourly 48; 3 dead letters"
    assert scrape(free_port()) is None and describe(None).startswith("starting")
