"""Rolling 2–14-day rhythm statistics (Tseng et al. 2020): IS, IV, M10/L5/RA, sample entropy, periodogram."""

__all__: list[str] = []
