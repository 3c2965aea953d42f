"""A report as a list of blocks, rendered twice: Markdown, and one self-contained HTML page.

Blocks: ("h1"|"h2"|"h3", text), ("p", text), ("list", [text]), ("table", header, rows),
("fig", path, caption), ("eq", text), ("pre", text). Markdown links figures as relative PNG
paths; HTML inlines them as base64 PNG and loads nothing from the network (math as Unicode).
Inline markup in block text: **bold**, `code`, [[verdict]], [link](href). A number without a finite
value, as Python formats it (nan, inf), is written n/a or ∞ in every text, table and caption.
"""

from __future__ import annotations

import base64
import html
import re


def _finite_text(t: str) -> str:
    """'nan' → 'n/a', 'inf' → '∞', '-inf' → '−∞' where they stand as words (not in `code` or names)."""
    t = re.sub(r"(?<![\w.`/-])nan(?![\w`/-])", "n/a", t)
    return re.sub(r"(?<![\w.`/])(-?)inf(?![\w`/-])", lambda m: ("−" if m[1] else "") + "∞", t)


def _md_inline(t: str) -> str:
    t = _finite_text(str(t))
    return re.sub(r"\[\[(\w+)\]\]", r"**\1**", t)  # [text](href) links are Markdown already


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *a in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + a[0])
        elif kind == "p":
            out.append(_md_inline(a[0]))
        elif kind == "list":
            out.append("\n".join(f"- {_md_inline(t)}" for t in a[0]))
        elif kind in ("pre", "eq"):
            out.append(f"```{'text' if kind == 'eq' else 'sh'}\n{a[0]}\n```")
        elif kind == "table":

            def cell(t) -> str:
                return _md_inline(str(t)).replace("|", "\\|")

            lines = ["| " + " | ".join(map(cell, a[0])) + " |", "|" + "---|" * len(a[0])]
            out.append("\n".join(lines + ["| " + " | ".join(map(cell, r)) + " |" for r in a[1]]))
        elif kind == "fig":
            out.append(f"![{a[1]}]({a[0].name})\n\n*{a[1]}*")
    return "\n\n".join(out) + "\n"


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
.contradicted{background:#f8d7da;color:#842029}.inconclusive,.undecided{background:#e9ecef;color:#495057}
.equivalent{background:#dbe8f7;color:#0b4a8b}
"""


def to_html(blocks: list[tuple], title: str) -> str:
    body = []
    for kind, *a in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_html_inline(a[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_html_inline(a[0])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_html_inline(t)}</li>" for t in a[0]) + "</ul>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(a[0])}</pre>")
        elif kind == "eq":
            body.append(f'<div class="eq">{_html_eq(a[0])}</div>')
        elif kind == "table":
            head = "".join(f"<th>{_html_inline(h)}</th>" for h in a[0])
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in r) + "</tr>" for r in a[1])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "fig":
            data = base64.b64encode(a[0].read_bytes()).decode()
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(a[1])}">'
                f"<figcaption>{_html_inline(a[1])}</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f"<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
