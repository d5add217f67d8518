"""A CrossCheck-style simulated cohort in the replay format (profiles → behaviour timeline → sensors → files)."""

__all__: list[str] = []
