"""Jupyter: a study's verdict summary table and its main figure as one self-contained HTML fragment
(StudyResult._repr_html_). The report's own pieces render it: the findings of its StudyReport, the
figure its report draws first, report.document.to_html (figures inlined as base64 PNG; nothing is
loaded from the network), and the report's CSS scoped to the fragment so the notebook keeps its style.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .. import reading
from ..claims import finding as F
from ..claims.registry import analyse
from ..errors import ConfigError
from ..report.document import CSS, Block, Figure, Heading, Para, to_html
from ..report.figures import FIGURES, write_generic
from ..report.registry import report_for
from ..report.study_report import summary_table
from ..store import Store
from ..studydata import StudyData

SCOPE = "bnlab-result"
MAX_PAGE_BYTES = 256 << 20  # a summary page with its figures inlined is a few MB


def study_findings(store: str | Path, study: str) -> list[F.Finding]:
    """The study's findings, as its report states them (one per claim)."""
    with Store(store) as st:
        d = StudyData.load(st, study)
    return analyse(d)


def main_figure(d: StudyData, folder: Path, written: dict | None = None) -> tuple[Path, str] | None:
    """(png, caption) of the figure the study's report shows first: its own first figure, else its first
    generic one. A PNG the report already wrote (in `written`, name → path) is reused; else it is drawn
    into `folder`. None for a study without runs or figures."""
    if not d.configs:
        return None
    rep = report_for(d.name)
    if rep.figures:
        name, file, caption = rep.figures[0].name, rep.figures[0].file, rep.figures[0].caption
    elif rep.generic:
        name, (file, caption) = rep.generic[0], FIGURES[rep.generic[0]]
    else:
        return None
    have = Path((written or {}).get(name, ""))
    if have.name == file and have.is_file():
        return have, caption
    if rep.figures:
        rep.figures[0].draw(d, folder / file)
        return folder / file, caption
    path, caption, _ = write_generic(d, folder, (name,), rep.originals)[name]  # its panels show the notes
    return path, caption


def scoped_css(css: str = CSS, scope: str = SCOPE) -> str:
    """The report's CSS with every selector under .scope (body → .scope itself), so it styles only the
    fragment."""
    rules = []
    for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        sels = [s.strip() for s in sel.split(",")]
        rules.append(
            ",".join(f".{scope}" if s == "body" else f".{scope} {s}" for s in sels) + "{" + body + "}"
        )
    return "".join(rules) + f".{scope}{{margin:0;max-width:none}}"


def fragment(blocks: list[Block], title: str) -> str:
    """`blocks` rendered by the report's to_html, as a <div> with its scoped style (no page around it)."""
    page = to_html(blocks, title)
    body = page.split("<body>\n", 1)[1].rsplit("\n</body>", 1)[0]
    return f'<div class="{SCOPE}"><style>{scoped_css()}</style>\n{body}\n</div>'


def study_html(store: str | Path, study: str, *, report: dict | None = None, runs: int | None = None) -> str:
    """The HTML shown for a StudyResult: the question, the verdict summary table and the main figure.
    `report`: the paths write_report returned (reused when there; else the figure is drawn afresh)."""
    with Store(store) as st:
        d = StudyData.load(st, study)
    blocks: list[Block] = [Heading(3, f"bnlab study {study}")]
    if d.meta.get("question"):
        blocks.append(Para(f"**Question.** {d.meta['question']}"))
    if not d.configs:
        return fragment(blocks + [Para("No runs in the store yet.")], f"bnlab: {study}")
    n = len(d.runs) if runs is None else runs
    blocks.append(
        Para(
            f"{n} runs in {len(d.configs)} configurations; {d.epochs}. Each claim of the original "
            f"discussion, tested on every seed (α = {F.ALPHA})."
        )
    )
    fs = analyse(d)
    if fs:
        blocks.append(summary_table(fs))
    with tempfile.TemporaryDirectory() as tmp:
        fig = main_figure(d, Path(tmp), report)
        if fig:
            blocks.append(Figure(*fig))
        if report and report.get("html"):
            blocks.append(Para(f"Full report: `{report['html']}`"))
        return fragment(blocks, f"bnlab: {study}")


def report_body(html_path: str | Path | None) -> str:
    """A written page (summary.html of `bnlab study all`) as a scoped fragment: its body, its style scoped."""
    if not html_path or not Path(html_path).is_file():
        return f'<div class="{SCOPE}"><p>No summary page was written.</p></div>'

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"the summary page {html_path} {problem}; write it again with bnlab study all")

    page = reading.read_text(html_path, MAX_PAGE_BYTES, fail)
    body = page.split("<body>\n", 1)[-1].rsplit("\n</body>", 1)[0]
    return f'<div class="{SCOPE}"><style>{scoped_css()}</style>\n{body}\n</div>'
