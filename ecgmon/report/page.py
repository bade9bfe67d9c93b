"""The report as one self-contained HTML page (inline style, pictures as data URIs: it opens from
a file or a mail attachment with no network) and as Prefect markdown (the UI renders
``data:image/png`` pictures in markdown artifacts)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
p.note { color: #555; font-size: 0.9em; } figure { margin: 0.8em 0; }
figcaption { color: #555; font-size: 0.85em; }
"""


@dataclass(frozen=True)
class Picture:
    """A PNG with its alternative text and caption."""

    png: bytes
    alt: str
    caption: str = ""

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Table:
    """Column names and rows of values (numbers are right-aligned)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass
class Section:
    """A heading, notes (plain text paragraphs), pictures and tables, in that order."""

    title: str
    notes: list[str] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="n">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_picture(picture: Picture) -> str:
    caption = f"<figcaption>{html.escape(picture.caption)}</figcaption>" if picture.caption else ""
    alt = html.escape(picture.alt, quote=True)
    return f'<figure><img src="{picture.data_uri()}" alt="{alt}">{caption}</figure>'


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The whole page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
        parts += [_html_picture(p) for p in section.pictures]
        parts += [_html_table(t) for t in section.tables]
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(value: object) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """The same content as markdown, pictures inline as data URIs."""
    lines = [f"# {title}"]
    for section in sections:
        lines += ["", f"## {section.title}"]
        lines += [line for note in section.notes for line in ("", note)]
        for picture in section.pictures:
            lines += ["", f"![{picture.alt}]({picture.data_uri()})"]
            lines += [f"*{picture.caption}*"] if picture.caption else []
        for table in section.tables:
            lines += ["", "| " + " | ".join(_md_cell(c) for c in table.columns) + " |"]
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)
