"""`StudyResult`: what run_study and run_grid give back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import studies


@dataclass
class StudyResult:
    """What a study produced: one row per run and epoch (the results.csv columns), and paths."""

    study: str
    rows: list[dict]
    out: Path
    store: Path
    report: dict[str, Path] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    sequential: object = None  # run_study(until_decided=True): the rounds (bnlab.report.rounds.History)

    def final(self) -> list[dict]:
        """The last epoch row of each run."""
        last: dict[str, dict] = {}
        for r in self.rows:
            last[r["run_id"]] = r
        return list(last.values())

    @property
    def df(self):
        """The rows as a pandas DataFrame, typed as bnlab.load types them (needs bnlab[pandas])."""
        from .export.frames import results_frame

        return results_frame(self.rows)

    def __repr__(self) -> str:
        runs = len({r["run_id"] for r in self.rows})
        return f"StudyResult(study={self.study!r}, runs={runs}, rows={len(self.rows)}, out={str(self.out)!r})"

    def _repr_html_(self) -> str:
        """Jupyter: the verdict summary table and the main figure, self-contained (inline PNG, no network)."""
        from .export.notebook import report_body, study_html

        if self.study == studies.ALL:
            return report_body(self.report.get("html"))
        return study_html(
            self.store, self.study, report=self.report, runs=len({r["run_id"] for r in self.rows})
        )
