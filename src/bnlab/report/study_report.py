"""The study report, regenerated from the store alone: report.md, report.html, results.csv and figures.

The common sections (summary, reproduce, figures, configurations, findings, chance, theory) are
assembled here as document blocks; what is particular to a study comes from its
registry.StudyReport.
"""

from __future__ import annotations

import datetime
import math
import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import stats
from ..claims import finding as F
from ..claims.registry import analyse
from ..data import DATASETS
from ..outputs import check_ours, write_text
from ..planning.costs import decide_hints
from ..results_csv import write_results_csv
from ..store import Store
from ..studydata import StudyData
from .document import Block, Bullets, Code, Figure, Heading, Para, Table, to_html, to_markdown
from .figures import write_generic
from .registry import StudyReport, report_for
from .sequential_report import replay, summary_verdicts
from .sequential_report import section as sequential_section
from .theory import THEORY


def write_report(
    store: Store, study: str, out_dir: Path, *, command: str = "", wall_s: float | None = None
) -> dict[str, Path]:
    """Write OUT/report.md, OUT/report.html, OUT/results.csv and OUT/*.png; their paths by name
    (md, html, csv, and one per figure: accuracy, loss, final, threshold)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = StudyData.load(store, study)
    paths = {"md": out / "report.md", "html": out / "report.html", "csv": out / "results.csv"}
    for p in paths.values():  # refuse a file bnlab did not write before writing any
        check_ours(p)
    write_results_csv(store.results(study), paths["csv"])
    figs = write_figures(d, out, report_for(study))
    regen = f"bnlab report {shlex.quote(study)} --out {shlex.quote(str(out))}"
    if store.path.resolve() != (out / "bnlab.sqlite").resolve():
        regen += f" --store {shlex.quote(str(store.path))}"
    plan, h = replay(d)
    blocks = _document(
        d,
        figs,
        command or d.meta.get("command") or "",
        wall_s,
        regen,
        sequential_section(d, out, plan, h),
        summary_verdicts(h),
    )
    write_text(paths["md"], to_markdown(blocks))
    write_text(paths["html"], to_html(blocks, f"bnlab report: {study}"))
    return {**paths, **{k: p for k, (p, _, _) in figs.items()}}


def write_figures(d: StudyData, out: Path, rep: StudyReport) -> dict[str, tuple[Path, str, list[str]]]:
    """The study's own figures, then the generic ones it keeps; name → (path, caption, notes of what could
    not be drawn). None without runs."""
    if not d.configs:
        return {}
    own = {f.name: (out / f.file, f.caption, f.draw(d, out / f.file)) for f in rep.figures}
    return {**own, **write_generic(d, out, rep.generic, rep.originals)}


def _figure(d: StudyData, path: Path, caption: str, notes: list[str]) -> list[Block]:
    """A figure block, and under it a visible note of what the figure could not draw."""
    if not notes:
        return [Figure(path, caption)]
    div = sum(r.diverged_epoch is not None for r in d.runs)
    why = f" ({div} of {len(d.runs)} runs diverged: non-finite loss)" if div else ""
    return [Figure(path, caption), Para(f"**Not drawn in {path.name}{why}:** {'; '.join(notes)}.")]


def _one_seed_note(d: StudyData) -> list[Block]:
    """One visible note when configurations have a single run: they have no confidence interval, so
    their curves have no band and their means no ±."""
    single = sum(len(c.runs) == 1 for c in d.configs)
    if not single:
        return []
    which = (
        "One seed per configuration"
        if single == len(d.configs)
        else (f"One seed in {single} of {len(d.configs)} configurations")
    )
    return [
        Para(
            f"**{which}: no confidence intervals.** A curve of one run has no band and its mean no ±; "
            "run the study with `--seeds 2` or more for them."
        )
    ]


def _pm(s: stats.Summary, digits: int, scale: float = 1.0) -> str:
    """mean ± half-width of the 95% t-interval (n)."""
    if s.n == 0:
        return "—"
    half = f" ± {(s.ci_high - s.mean) * scale:.{digits}f}" if np.isfinite(s.ci_high) else ""
    return f"{s.mean * scale:.{digits}f}{half} ({s.n})"


def _num(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3g}"


def _p(p: float) -> str:
    return F.fmt_p(p) if np.isfinite(p) else "—"


def _utc(t: float | None) -> str:
    utc = datetime.timezone.utc
    return "—" if t is None else datetime.datetime.fromtimestamp(t, utc).strftime("%Y-%m-%d %H:%M UTC")


def _document(
    d: StudyData,
    figs: dict,
    command: str,
    wall_s: float | None,
    regen: str,
    sequential: Sequence[Block] = (),
    seq_verdicts: dict[str, str] | None = None,
) -> list[Block]:
    b: list[Block] = [Heading(1, f"bnlab report: {d.name}")]
    if d.meta.get("question"):
        b.append(Para(f"**Question.** {d.meta['question']}"))
    if not d.configs:
        b += [
            Para(
                f"This study has no runs in the store yet; run it (`{command or 'bnlab study ' + d.name}`) "
                f"and regenerate this report with `{regen}`."
            )
        ]
        return b + THEORY
    rep = report_for(d.name)
    fs = analyse(d)
    b += _summary(fs, seq_verdicts or {}) + list(sequential) + _reproduce(d, command, wall_s, regen)
    b += [Heading(2, "Figures"), *_one_seed_note(d)]
    b += [blk for path, caption, notes in figs.values() for blk in _figure(d, path, caption, notes)]
    b += _config_table(d)
    b += rep.tables(d)
    b.append(Heading(2, "Findings, one per claim"))
    hints = {} if seq_verdicts else decide_hints(d, fs, command)
    for f in fs:
        b += _finding(f, hints.get(f.key))
    b += [Heading(2, "How large is chance?"), Bullets(_chance(d))]
    return b + THEORY


def summary_table(fs: list[F.Finding], sequential: dict[str, str] | None = None) -> Table:
    """The verdict table block: one row per headline finding; `sequential` (claim key → its sequential
    verdict, for a study run until decided) adds that column, the valid verdict of such a study."""
    seq = sequential or {}
    rows = [
        [
            f"({f.key}) {f.title}",
            f.effect_text(),
            F.fmt_p(f.p_holm if np.isfinite(f.p_holm) else f.p_value),
            ", ".join(f"{v} {k}" for k, v in f.n.items()),
            "—" if not np.isfinite(f.margin) else f"±{F.fmt(f.margin, f.unit).lstrip('+')}",
            "—" if not np.isfinite(f.mde) else F.fmt(f.mde, f.unit).lstrip("+"),
            f"[[{f.verdict}]]",
        ]
        + ([seq.get(f.key, "—")] if seq else [])
        for f in fs
    ]
    head = ["claim", "effect [95% CI]", "p (Holm)", "n", "margin", "detectable", "verdict"]
    return Table(head + (["sequential verdict"] if seq else []), rows)


def _summary(fs: list[F.Finding], sequential: dict[str, str]) -> list[Block]:
    seq = (
        ""
        if not sequential
        else " This study added seeds until each claim was decided: its valid verdicts are "
        "the 'sequential verdict' column (group-sequential tests, see Seeds until decided below); the "
        "p-values "
        "and verdicts beside it treat the seeds as fixed in advance, which overstates the evidence of seeds "
        "added after a look."
    )
    return [
        Heading(2, "Summary"),
        Para(
            f"Each claim of this study, tested on every seed with one primary test (α = "
            f"{F.ALPHA}; p Holm-adjusted across this study's {len(fs)} claims). Verdicts: supported or "
            "contradicted (p < α, the CI on one side of 0), equivalent (TOST: the difference lies within the "
            "margin declared before the data), or inconclusive. 'Detectable' is the smallest effect the "
            "design "
            f"finds with {F.POWER:.0%} power. Details, definitions and tests are in Findings below." + seq
        ),
        summary_table(fs, sequential),
    ]


def _reproduce(d: StudyData, command: str, wall_s: float | None, regen: str) -> list[Block]:
    combos: dict[tuple, int] = {}
    for r in d.runs:
        v = r.versions
        key = (
            v.get("bnlab", "?"),
            v.get("torch", "?"),
            v.get("python", "?"),
            f"{r.device} ({v.get('device', '?')})",
            str(v.get("threads", "?")),
        )
        combos[key] = combos.get(key, 0) + 1
    seeds = sorted({r.spec.seed for r in d.runs})
    per = sorted({len(c.runs) for c in d.configs})
    train_s = sum(float(r.m["wall_s"][-1]) for r in d.runs if len(r.m["wall_s"]))
    spec = d.configs[0].spec.to_json()
    fixed = ", ".join(f"{k} = {v}" for k, v in spec.items() if k not in d.varying and k != "seed")
    notes = (d.meta.get("spec") or {}).get("notes")
    items = [
        f"Study recorded {_utc(d.meta.get('created'))} (last started {_utc(d.meta.get('updated'))}); "
        f"report written {_utc(datetime.datetime.now().timestamp())}.",
        f"{len(d.runs)} runs in {len(d.configs)} configurations; seeds {_seeds(seeds)} "
        f"({'/'.join(map(str, per))} per configuration).",
        f"Training time in the store: {train_s:.0f} s summed over runs (each run's share of its stack's "
        "training time, evaluation excluded)"
        + (f"; this invocation trained for {wall_s:.0f} s of wall time." if wall_s is not None else "."),
        f"Varying: {', '.join(d.varying) or 'nothing'}. Fixed: {fixed}.",
    ]
    return [
        Heading(2, "Reproduce"),
        Para("Command that produced these runs (rerunning it resumes: runs already stored are skipped):"),
        Code(command or "(not recorded)"),
        Para("Regenerate this report from the store, without training:"),
        Code(regen),
        Table(
            ["runs", "bnlab", "torch", "Python", "device", "threads"],
            [[str(n), *k] for k, n in combos.items()],
        ),
        Bullets(items + ([f"Study notes: {notes}"] if notes else [])),
    ]


def _seeds(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}–{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        else ", ".join(map(str, seeds))
    )


def _config_table(d: StudyData) -> list[Block]:
    thr = d.threshold
    rows: list[list[str]] = []
    for c in d.configs:
        steps = c.to_threshold(thr)[0]
        rows.append(
            [
                c.label,
                f"{len(c.runs)} ({c.n_diverged})",
                _pm(stats.summarize(c.finals()), 4),
                _pm(stats.summarize(c.finals("train_acc_eval")), 4),
                _pm(stats.summarize(c.gaps()), 2, 100),
                _pm(stats.summarize(steps), 0),
                _pm(stats.summarize(c.sec_per_epoch()), 2),
            ]
        )
    div = [
        f"`{r.run_id}` diverged (non-finite loss) at epoch {r.diverged_epoch}; it has no final value."
        for r in d.runs
        if r.diverged_epoch is not None
    ]
    blocks: list[Block] = [
        Heading(2, "Results per configuration"),
        Para(
            "Mean ± half-width of the 95% t-interval over seeds (n runs with a value), at the last epoch. "
            "Train accuracy is the trained network's in eval mode on the whole training set (as it is "
            "tested; "
            "results.csv's train_acc_eval), not Keras's running training-mode mean (train_acc). "
            "Diverged runs are counted in the runs column and have no final value. Steps to "
            f"{thr:.0%}: the first evaluation at or above it; n counts the runs that reached it. Seconds "
            "per epoch: each run's training seconds / its epochs. " + _evaluated(d)
        ),
        Table(
            [
                "configuration",
                "runs (diverged)",
                "final test acc",
                "final train acc (eval mode)",
                "train − test gap (pp)",
                f"steps to {thr:.0%}",
                "s / epoch",
            ],
            rows,
        ),
    ]
    return blocks + ([Bullets(div)] if div else [])


def _evaluated(d: StudyData) -> str:
    """Which epochs were evaluated, from the runs' specs (RunSpec.train_eval, eval_every)."""
    every = {c.spec.train_eval == "every" for c in d.configs}
    train = (
        "after every epoch"
        if every == {True}
        else "after the last epoch only (train_eval = last; per-epoch curves need train_eval = every)"
        if every == {False}
        else "after every epoch in the configurations with train_eval = every, else after the last only"
    )
    steps = sorted({c.spec.eval_every for c in d.configs if c.spec.eval_every})
    extra = f", and every {', '.join(map(str, steps))} steps" if steps else ""
    return f"Evaluated: the test set after every epoch{extra}; the training set in eval mode {train}."


def _chance(d: StudyData) -> list[str]:
    """How much one accuracy moves by chance: the seed-to-seed sd of final test accuracy, the binomial
    standard error √(p(1−p)/n_test) of one accuracy and, for the seed study, the original's differences."""
    sds = [s.sd for c in d.configs for s in [stats.summarize(c.finals())] if s.n > 1]
    finals = [v for r in d.runs if np.isfinite(v := r.final("test_acc"))]
    acc = float(np.mean(finals)) if finals else math.nan
    spec = d.configs[0].spec
    n_test = spec.test_limit or DATASETS[spec.dataset].n_test
    se = math.sqrt(acc * (1 - acc) / n_test) if np.isfinite(acc) else math.nan
    sd = float(np.median(sds)) if sds else math.nan
    out = [
        f"Seed-to-seed sd of final test accuracy: median {sd * 100:.3f} pp over {len(sds)} configurations "
        f"(range {min(sds) * 100:.3f}–{max(sds) * 100:.3f} pp)."
        if sds
        else "Seed-to-seed sd of final test accuracy: n/a, not enough finite runs (no configuration has "
        "two runs with a finite final value).",
        f"Binomial standard error of one accuracy of {acc:.4f} on {n_test} test images: √(p(1−p)/n) = "
        f"{se * 100:.3f} pp. Two models scored on the same {n_test} images are not independent: the standard "
        "error of their difference is McNemar's √((d − Δ²)/n), d the share of images exactly one of them "
        "gets "
        f"right (bnlab does not store per-image predictions); √2·SE = {se * math.sqrt(2) * 100:.3f} pp is "
        "the "
        "figure for two independent test sets and an upper bound when the models agree on most images."
        if finals
        else "Binomial standard error of one accuracy: n/a, not enough finite runs (no run has a finite "
        "final test accuracy).",
    ]
    out += report_for(d.name).chance_notes(se * math.sqrt(2), sd * math.sqrt(2))
    return out


def _finding(f: F.Finding, hint: str | None = None) -> list[Block]:
    b: list[Block] = [
        Heading(3, f"({f.key}) {f.title}"),
        Para(f"**Claim.** {f.claim}"),
        Para(f"**Measure.** {f.measure}"),
        Para(f"**Test.** {f.test}."),
        Para(f"**Verdict:** [[{f.verdict}]]. {f.sentence()}"),
        *([Para(hint)] if hint else []),
    ]
    if f.rows:
        b.append(
            Table(
                ["also tested (exploratory)", "value [95% CI]", "p", "Holm p (these rows)", "verdict"],
                [
                    [
                        r.label,
                        f"{_num(r.effect)} [{_num(r.ci[0])}, {_num(r.ci[1])}]",
                        _p(r.p_value),
                        _p(r.p_holm),
                        f"[[{r.verdict}]]" if r.verdict else "—",
                    ]
                    for r in f.rows
                ],
            )
        )
    return b + ([Bullets(list(f.notes))] if f.notes else [])
