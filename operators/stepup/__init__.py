"""Step-up (deterioration) events: WHO-5 levels (Buda et al. 2022) and passive risk tiers."""

__all__: list[str] = []
