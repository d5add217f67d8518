"""`phenoflow demo`: the whole pipeline on a simulated cohort in one command."""
