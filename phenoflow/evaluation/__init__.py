"""Evaluation of emitted events against labels: protocol, detection metrics, model comparison, explanations, fairness audit."""

__all__: list[str] = []
