"""What every layer shares: the event contract, settings, errors, telemetry, time base, ids."""

__all__: list[str] = []
