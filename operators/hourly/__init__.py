"""Hourly behaviour features per participant (Adler et al. 2020): aggregation, imputation, sleep."""

__all__: list[str] = []
