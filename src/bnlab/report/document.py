"""A report as a list of blocks, rendered twice: Markdown, and one self-contained HTML page.

Blocks (frozen records): Heading(level, text), Para(text), Bullets(items), Table(header, rows),
Figure(path, caption), Equation(text), Code(text). Markdown links figures as relative PNG paths; HTML
inlines them as base64 PNG and loads nothing from the network (math as Unicode). Inline markup in block
text: **bold**, `code`, [[verdict]], [link](href). A number without a finite value, as Python formats it
(nan, inf), is written n/a or ∞ in every text, table and caption.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    level: int  # 1, 2 or 3
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence]


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


@dataclass(frozen=True)
class Equation:
    text: str  # Unicode math, one line per row


@dataclass(frozen=True)
class Code:
    text: str  # a shell command, shown verbatim


Block = Heading | Para | Bullets | Table | Figure | Equation | Code


def _finite_text(t: str) -> str:
    """'nan' → 'n/a', 'inf' → '∞', '-inf' → '−∞' where they stand as words (not in `code` or names)."""
    t = re.sub(r"(?<![\w.`/-])nan(?![\w`/-])", "n/a", t)
    return re.sub(r"(?<![\w.`/])(-?)inf(?![\w`/-])", lambda m: ("−" if m[1] else "") + "∞", t)


def _md_inline(t: str) -> str:
    t = _finite_text(str(t))
    return re.sub(r"\[\[(\w+)\]\]", r"**\1**", t)  # [text](href) links are Markdown already


def to_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for blk in blocks:
        match blk:
            case Heading(level, text):
                out.append("#" * level + " " + text)
            case Para(text):
                out.append(_md_inline(text))
            case Bullets(items):
                out.append("\n".join(f"- {_md_inline(t)}" for t in items))
            case Code(text):
                out.append(f"```sh\n{text}\n```")
            case Equation(text):
                out.append(f"```text\n{text}\n```")
            case Table(header, rows):
                lines = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
                out.append("\n".join(lines + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]))
            case Figure(path, caption):
                out.append(f"![{caption}]({path.name})\n\n*{caption}*")
    return "\n\n".join(out) + "\n"


def _md_cell(t) -> str:
    return _md_inline(str(t)).replace("|", "\\|")


def _html_inline(t: str) -> str:
    t = re.sub(r"(?<=[μσ²])_([A-Z])\b", r"<sub>\1</sub>", html.escape(_finite_text(str(t)), quote=False))
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    t = re.sub(r"\[([^\]\[]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', t)
    return re.sub(r"\[\[(\w+)\]\]", r'<span class="v \1">\1</span>', t)


def _html_eq(t: str) -> str:
    t = html.escape(t, quote=False)
    return re.sub(r"_([A-Za-z])", r"<sub>\1</sub>", t).replace("\n", "<br>")


CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;\
max-width:1100px;margin:2em auto;
padding:0 1.2em}
h1{font-size:1.8em;border-bottom:2px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #eee}\
h3{margin-top:1.5em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.35em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;white-space:pre-wrap}\
code{background:#f3f3f3;padding:0 .2em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
.eq{font:1.15em/1.8 "STIX Two Math","Cambria Math","DejaVu Serif",serif;margin:.8em 2em}
.v{padding:.05em .45em;border-radius:.3em;font-weight:600}.supported{background:#d7f0dc;color:#17602a}
.contradicted{background:#f8d7da;color:#842029}.inconclusive,.undecided,.futile{background:#e9ecef;color:#495057}
.equivalent{background:#dbe8f7;color:#0b4a8b}
"""


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = []
    for blk in blocks:
        match blk:
            case Heading(level, text):
                body.append(f"<h{level}>{_html_inline(text)}</h{level}>")
            case Para(text):
                body.append(f"<p>{_html_inline(text)}</p>")
            case Bullets(items):
                body.append("<ul>" + "".join(f"<li>{_html_inline(t)}</li>" for t in items) + "</ul>")
            case Code(text):
                body.append(f"<pre>{html.escape(text)}</pre>")
            case Equation(text):
                body.append(f'<div class="eq">{_html_eq(text)}</div>')
            case Table(header, rows):
                head = "".join(f"<th>{_html_inline(h)}</th>" for h in header)
                cells = "".join(
                    "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in r) + "</tr>" for r in rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            case Figure(path, caption):
                data = base64.b64encode(path.read_bytes()).decode()
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                    f"<figcaption>{_html_inline(caption)}</figcaption></figure>"
                )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f"<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
