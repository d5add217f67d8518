"""Study exports (RADAR-base, AWARE, Beiwe) → replay-format cohorts with a mapping report."""

__all__: list[str] = []
