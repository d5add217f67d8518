"""RADAR-base input: Avro schemas by id (``schemas``), the Confluent wire format (``wire``), the pure
RADAR → contract mapping (``mapping``, shared with ``phenoflow import radar``) and the live decoder
with per-participant local time (``live``). Mapping tables: docs/real-data.md."""

__all__ = []
