"""Batch computation without Kafka: hourly features from a cohort directory, rhythm statistics from a CSV."""

__all__: list[str] = []
