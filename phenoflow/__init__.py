"""phenoflow: streaming passive-sensing features, rhythm statistics and anomaly events."""

__version__ = "0.1.0"

__all__: list[str] = []
