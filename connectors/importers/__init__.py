"""Study exports (RADAR-base, AWARE, Beiwe) → replay-format cohorts with a mapping report."""
