"""`phenoflow demo`: the whole pipeline on a simulated cohort in one command."""

__all__: list[str] = []
