"""Evaluation of emitted events against labels: protocol, detection metrics, model comparison, explanations, fairness audit."""
