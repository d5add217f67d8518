"""Self-contained HTML, Markdown and CSV reports of evaluations and audits."""

__all__: list[str] = []
