"""Report pages as blocks: headings, paragraphs, tables, figures and preformatted text, rendered
twice, to Markdown (figures linked beside it) and to self-contained HTML (figures embedded), so the
two never disagree."""

from __future__ import annotations

import base64
import html
import os
from typing import Any, Dict, Sequence

from tfcourse import machine
from tfcourse.rundir import write_text


def machine_description() -> str:
    """The CPU model (``/proc/cpuinfo``) and core count, for a page: timings mean nothing without it."""
    return f"{machine.cpu_model()}, {os.cpu_count()} cores"


def heading(level: int, text: str):
    return ("heading", level, text)


def paragraph(text: str):
    return ("paragraph", text)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = ""):
    """A table block; ``align`` gives the Markdown alignment, one letter per column (``l`` or ``r``; the
    HTML page right-aligns every column but the first)."""
    return ("table", list(header), [list(r) for r in rows], align)


def figure(path: str, caption: str):
    return ("figure", path, caption)


def pre(text: str):
    return ("pre", text)


def link(text: str, href: str, before: str = ""):
    """A paragraph ``before`` followed by a link to ``href`` (a path relative to the page, or a URL)."""
    return ("link", text, href, before)


def _cell(value: Any) -> str:
    if isinstance(value, float):  # fractions to 4 decimals; seconds, rates and sizes less finely
        return f"{value:.4f}" if abs(value) < 1 else (f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}")
    return "" if value is None else str(value)


def _md(text: Any) -> str:
    """Text for Markdown outside code: Markdown renders raw HTML, so ``<``, ``>`` and ``&`` (a class
    folder named ``<img src=x onerror=...>``) are escaped as in the HTML page."""
    return html.escape(str(text), quote=False)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """The one Markdown table of tfcourse (pages, the cost report, the NumPy experiment's results): cells
    formatted as on the HTML page, ``|`` and HTML escaped; ``align`` as ``table``'s."""
    marks = ["---:" if letter == "r" else "---" for letter in align.ljust(len(header), "l")]
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(_md(_cell(v)).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(blocks, base_dir: str) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            out.append(f"{'#' * block[1]} {_md(block[2])}")
        elif kind == "paragraph":
            out.append(_md(block[1]))
        elif kind == "table":
            out.append(markdown_table(block[1], block[2], block[3]))
        elif kind == "figure":
            out.append(f"![{_md(block[2])}]({os.path.relpath(block[1], base_dir)})\n\n*{_md(block[2])}*")
        elif kind == "pre":
            out.append("```\n" + block[1].rstrip() + "\n```")
        elif kind == "link":
            out.append(f"{_md(block[3])}[{_md(block[1])}]({block[2].replace(' ', '%20').replace(')', '%29')})")
        out.append("")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #ddd; } h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; } figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def render_html(blocks, title: str) -> str:
    """A self-contained page: CSS inline, figures as data: URIs, no scripts, nothing fetched."""
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "paragraph":
            body.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in block[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            with open(block[1], "rb") as handle:
                data = base64.b64encode(handle.read()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[2])}">'
                f"<figcaption>{html.escape(block[2])}</figcaption></figure>"
            )
        elif kind == "pre":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "link":
            body.append(f'<p>{html.escape(block[3])}<a href="{html.escape(block[2])}">{html.escape(block[1])}</a></p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'  # no favicon request (it would log an error)
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_pages(blocks, out_dir: str, title: str, html_name: str, md_name: str) -> Dict[str, str]:
    paths = {"html": os.path.join(out_dir, html_name), "markdown": os.path.join(out_dir, md_name)}
    write_text(paths["markdown"], render_markdown(blocks, out_dir))
    write_text(paths["html"], render_html(blocks, title))
    return paths
