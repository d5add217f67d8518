"""Prometheus metrics (prometheus-client's default registry; Bytewax serves it too)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "MESSAGES_IN", "MESSAGES_OUT", "DEAD_LETTERS", "KAFKA_ERRORS", "LATE_EVENTS", "EVENT_TIME_LAG",
    "CONSUMER_LAG", "SCORING_LATENCY", "CALIBRATING", "serve"
]

MESSAGES_IN = Counter("phenoflow_messages_in", "Messages read, per short topic", ["topic"])
MESSAGES_OUT = Counter("phenoflow_messages_out", "Messages written, per short topic", ["topic"])
DEAD_LETTERS = Counter("phenoflow_dead_letters", "Messages sent to the dead-letter topic", ["topic", "reason"])
KAFKA_ERRORS = Counter("phenoflow_kafka_errors", "Consumer errors (no message lost: reconnects)", ["topic", "code"])
LATE_EVENTS = Counter("phenoflow_late_events", "Events that arrived after their window closed", ["topic"])
EVENT_TIME_LAG = Gauge("phenoflow_event_time_lag_seconds", "Wall clock minus the end of the period of the latest output, per output topic", ["stage"])
CONSUMER_LAG = Gauge("phenoflow_consumer_lag", "Messages on the broker not yet read, per input topic (full name) and partition", ["topic", "partition"])
SCORING_LATENCY = Histogram("phenoflow_scoring_latency_seconds", "Model inference time per batch")
CALIBRATING = Gauge("phenoflow_participants_calibrating", "Participants still in calibration")


def serve(port: int) -> None:
    """Serve /metrics on ``port`` (0 = off)."""
    if port:
        start_http_server(port)
