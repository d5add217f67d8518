"""Kafka clients: admin and producer helpers, the flows' partition source and delivering sink."""

__all__: list[str] = []
