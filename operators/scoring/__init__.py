"""Anomaly scoring: ONNX reconstruction errors, per-participant Mahalanobis calibration and thresholds."""

__all__: list[str] = []
