"""Terminal output: a rich progress bar for a study, summary tables, the study list."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from . import studies
from .run.jobs import Progress as Callbacks
from .stats import summarize

out = Console(width=None if sys.stdout.isatty() else 150)
# results.csv columns that describe a configuration (the rest are the seed, metrics and bookkeeping)
CONFIG_FIELDS = (
    "dataset",
    "norm",
    "placement",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "init",
    "init_scale",
    "profile",
    "epochs",
    "hidden",
    "activation",
    "train_limit",
    "test_limit",
    "noise",
)


def say(msg: str) -> None:
    out.print(msg)


def list_studies() -> None:
    t = Table(title="bnlab studies", show_lines=True)
    t.add_column("study", style="bold")
    t.add_column("question")
    t.add_column("grid × seeds")
    for s in studies.STUDIES.values():
        grid = " × ".join(f"{k} {{{', '.join(map(str, v))}}}" for k, v in s.axes.items())
        t.add_row(s.name, s.question, f"{grid} × {s.seeds} seeds")
    out.print(t)


def progress_display(quiet: bool):
    """A rich Progress bar and the run.jobs.Progress callbacks that drive it."""
    if quiet:
        return None, Callbacks()
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs {task.fields[runs]} · stacks {task.fields[groups]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    )
    state: dict[str, int] = {}  # counts so far, and the bar's task id

    def start(total_steps, total_runs, total_groups):
        if not total_runs:  # all in the store: no bar
            return
        state.update(runs=0, groups=0, total=total_runs, total_groups=total_groups)
        state["task"] = bar.add_task(
            "model-steps", total=max(total_steps, 1), runs=f"0/{total_runs}", groups=f"0/{total_groups}"
        )

    def group_done(n):
        state["runs"] += n
        state["groups"] += 1
        bar.update(
            TaskID(state["task"]),
            runs=f"{state['runs']}/{state['total']}",
            groups=f"{state['groups']}/{state['total_groups']}",
        )

    return bar, Callbacks(
        start=start, advance=lambda n: bar.advance(TaskID(state["task"]), n), group_done=group_done
    )


@contextlib.contextmanager
def progress_bar(quiet: bool = False):
    """The CLI's progress bar for the Python API, in a terminal or a Jupyter cell (there rich draws it in
    an ipywidgets Output, so it needs ipywidgets: bnlab[notebook]); yields the callbacks to pass on:

        with progress_bar() as progress:
            res = bnlab.run_study("seed", progress=progress)
    """
    bar, callbacks = progress_display(quiet)
    if bar:
        bar.start()
    try:
        yield callbacks
    finally:
        if bar:
            bar.stop()


def summary_table(rows: list[dict], title: str) -> Table:
    """Final test accuracy mean ± sd (n) per configuration (config_hash), labelled by the fields that vary;
    configurations that the shown fields do not tell apart get their config_hash too."""
    final: dict[str, dict] = {}
    for r in rows:
        final[r["run_id"]] = r
    fields = [f for f in CONFIG_FIELDS if len({r.get(f) for r in final.values()}) > 1] or ["norm"]
    groups: dict[str, list[dict]] = {}
    for r in final.values():
        groups.setdefault(r["config_hash"], []).append(r)
    if len({tuple(g[0][f] for f in fields) for g in groups.values()}) < len(groups):
        fields.append("config_hash")
    t = Table(title=title)
    for f in fields:
        t.add_column(f)
    t.add_column("final test acc (mean ± sd)", justify="right")
    t.add_column("n", justify="right")
    t.add_column("diverged", justify="right")

    def key(g: list[dict]) -> tuple:
        return tuple(
            (isinstance(v, str), v if not isinstance(v, str) else 0, str(v))
            for v in (g[0][f] for f in fields)
        )

    for g in sorted(groups.values(), key=key):
        ok = [r["test_acc"] for r in g if not r["diverged_epoch"]]
        s = summarize(ok) if ok else None
        acc = f"{s.mean:.4f} ± {s.sd:.4f}" if s and s.n > 1 else (f"{s.mean:.4f}" if s else "—")
        t.add_row(*(str(g[0][f]) for f in fields), acc, str(len(g)), str(len(g) - len(ok)))
    return t


def study_done(res) -> None:
    """What a finished `bnlab run`/`bnlab study` prints: the summary table and where its files are."""
    c = res.counts
    if res.study == studies.ALL:
        out.print(
            f"all studies: {c['trained']} runs trained, {c['skipped']} from the stores, {c['wall_s']:.1f} s "
            f"on {c['device']}\nsummary: {res.report.get('html', '(no report)')}"
        )
        return
    out.print(
        summary_table(
            res.rows,
            f"{res.study}: {c['trained']} trained, {c['skipped']} from the store, "
            f"{c['wall_s']:.1f} s on {c['device']} ({c['backend']})",
        )
    )
    out.print(f"results: {Path(res.out) / 'results.csv'}")
    if res.report:
        out.print(f"report:  {res.report['html']}")
    if res.sequential:
        from .planning.until_decided import verdict_lines

        out.print("sequential verdicts:\n" + verdict_lines(res.sequential), markup=False, highlight=False)


def plain(text: str) -> None:
    """`text` as it is: no markup, no highlighting, no wrapping."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
