"""`bnlab study all`'s front page: one row per finding of every study, linked to its report and figure.

Read from each study's store, like every report; written as summary.md and summary.html next to the
studies' folders (OUT/summary.html, studies in OUT/<study>/).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..claims import finding as F
from ..claims.registry import analyse
from ..outputs import write_text
from ..store import Store
from ..studydata import StudyData
from .document import Block, Bullets, Code, Heading, Para, Table, to_html, to_markdown


def write_summary(
    entries: list[tuple[str, Path, Path, dict]], out_dir: Path, *, command: str = ""
) -> dict[str, Path]:
    """entries: (study, store path, study folder, {figure name: png path}) per study, in order."""
    out = Path(out_dir)
    rows, walls = [], []
    for study, store_path, folder, figs in entries:
        with Store(store_path) as st:
            d = StudyData.load(st, study)
        link = Path(os.path.relpath(folder / "report.html", out)).as_posix()
        fig = next(iter(figs.values()), None)
        fig_link = f"[figure]({Path(os.path.relpath(fig, out)).as_posix()})" if fig else "—"
        train_s = sum(float(r.m["wall_s"][-1]) for r in d.runs if len(r.m["wall_s"]))
        walls.append(
            f"[{study}]({link}): {len(d.runs)} runs, {d.epochs}, {train_s / 60:.1f} min of training "
            "(summed over models)"
        )
        for f in analyse(d):
            p = f.p_holm if np.isfinite(f.p_holm) else f.p_value
            rows.append(
                [f"[{study}]({link})", f.title, f"[[{f.verdict}]]", f.effect_text(), F.fmt_p(p), fig_link]
            )
    blocks: list[Block] = [
        Heading(1, "bnlab: every claim, measured"),
        Para(
            "One row per finding: the claim as its study declares it (the original discussion's claims, then "
            "the sentences the later studies test), the verdict from this run's "
            f"data (α = {F.ALPHA}, p Holm-adjusted across each study's own claims, as its report says; "
            "supported / contradicted need p < α and a CI on one side of 0, equivalent a TOST within the "
            "claim's declared margin), the key number with its 95% CI, and links to the study's report and "
            "main figure. Studies that use fewer seeds or epochs than the original say so in their reports."
        ),
        Table(["study", "claim", "verdict", "key number [95% CI]", "p", "figure"], rows),
        Heading(2, "Studies"),
        Bullets(walls),
    ]
    if command:
        blocks += [Para("Produced by (rerun to resume; finished runs are skipped):"), Code(command)]
    paths = {"md": out / "summary.md", "html": out / "summary.html"}
    write_text(paths["md"], to_markdown(blocks))
    write_text(paths["html"], to_html(blocks, "bnlab: summary of all studies"))
    return paths
