"""Self-contained HTML, Markdown and CSV reports of evaluations and audits."""
