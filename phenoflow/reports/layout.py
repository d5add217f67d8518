"""Building blocks of the reports: number formatting, Markdown and HTML tables, the page shell, CSV.

Pages are self-contained (inline CSS and SVG, no script, no network), so a
report can be mailed or archived and opens the same anywhere.
"""

from __future__ import annotations

import csv
import math
from html import escape
from pathlib import Path
from typing import Sequence

from phenoflow.evaluation.detection import Spread

__all__ = ["CSS", "card", "html_table", "md_table", "num", "page", "pval", "report_path", "spread", "write_csv"]



def num(v: float | None, digits: int = 2) -> str:
    """n/a for undefined, ∞ for infinite, else fixed digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def pval(p: float) -> str:
    """A p-value for a table: two significant digits below 0.001, else three decimals; NaN → "n/a"."""
    return "n/a" if p != p else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def spread(s: Spread) -> str:
    """``median [q1–q3]``."""
    if s.median is None:
        return "n/a"
    return f"{num(s.median)} [{num(s.q1)}–{num(s.q3)}]"


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pipes in cells escaped)."""
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, classes: Sequence[str] = ()) -> str:
    """An HTML table; ``classes`` gives optional CSS classes per row."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(str(v))}</td>" for v in r) + "</tr>")
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2937;margin:0;background:#f8fafc;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:34px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h4{margin:16px 0 2px;font-size:14px}.sub{color:#4b5563;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:12px 16px;min-width:190px;flex:1}
.card .v{font-size:28px;font-weight:650}.card .l{color:#4b5563;font-size:13px}.card .d{color:#6b7280;font-size:12px}
.fig{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px;margin:10px 0}
.pair,.grid{display:flex;flex-wrap:wrap;gap:8px}.pair>svg{flex:1;min-width:300px}.grid>svg{flex:1 1 440px}
.tablewrap{overflow-x:auto}table{border-collapse:collapse;font-size:13px;background:#fff;width:100%}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 7px;text-align:right;white-space:nowrap}th{background:#f1f5f9;white-space:normal;vertical-align:bottom}
td:first-child,th:first-child{text-align:left}tr.alert td{background:#fee2e2}tr.watch td{background:#ffedd5}tr.off td{color:#9ca3af}
.note{color:#4b5563;font-size:13px}ul.notes li{margin:3px 0;font-size:13px;color:#374151}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600}
.b-alert{background:#fee2e2;color:#991b1b}.b-ok{background:#dcfce7;color:#166534}.b-watch{background:#ffedd5;color:#9a3412}
"""


def page(title: str, body: str) -> str:
    """A self-contained HTML page (inline CSS, no external assets)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def card(value: str, label: str, detail: str = "") -> str:
    """A headline figure: big value, label, small detail."""
    return f'<div class="card"><div class="v">{escape(value)}</div><div class="l">{escape(label)}</div><div class="d">{escape(detail)}</div></div>'


def report_path(report: Path, stem: str) -> Path:
    """``report`` itself when it names an .html file, else ``report/<stem>.html``; parents created."""
    html = report if report.suffix.lower() in (".html", ".htm") else report / f"{stem}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    return html


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """One CSV table with a header row (UTF-8)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
