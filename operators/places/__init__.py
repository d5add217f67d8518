"""Significant places per participant: DBSCAN over the location history, place time and distance."""

__all__: list[str] = []
