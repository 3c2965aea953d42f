"""The Python API: run a study or a grid, get rows back. The CLI is a thin layer on top.

    >>> import bnlab
    >>> res = bnlab.run_study("seed", seeds=5)          # trains what the store lacks, writes the report
    >>> res.rows[0]["test_acc"], res.report["html"]

Where and how a study runs is one `Options`, built once (by the CLI or the caller) and passed whole;
`run_study` and `run_grid` also take its fields as keywords.

This process alone writes the store (run_specs): runs there, keyed by (config_hash, seed), are skipped unless
`fresh`; a backend (run.local here, run.ray_backend on a cluster, imported when asked for) hands back each
finished group, its runs committed one transaction each: an interrupted study loses only groups in flight.
"""

from __future__ import annotations

import dataclasses
import json
import time

from . import data, studies
from .config import Grid, RunSpec, check_memory, parse_seeds
from .errors import ConfigError, StoreError, StoreLocked
from .export.frames import load
from .fold import fold_run
from .folders import claim_folder, default_out, prepare_out
from .options import Options
from .outputs import write_text
from .result import StudyResult
from .results_csv import write_results_csv
from .run.backends import open_backend
from .run.jobs import Progress, check_against_data, plan_stacks, steps_of
from .store import Store
from .study import dedupe
from .studydata import check_one_dataset

__all__ = ["Options", "StudyResult", "fold_run", "load", "run_grid", "run_study"]


def run_study(
    name_or_path: str,
    *,
    seeds=None,
    epochs: int | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    dataset: str | None = None,
    report: bool = True,
    command: str = "",
    until_decided: bool = False,
    max_seeds: int | None = None,
    round_seeds: int | None = None,
    futility: float | None = None,
    on_round=None,
    options: Options | None = None,
    **option_fields,
) -> StudyResult:
    """Run a named study (bnlab.studies.STUDIES) or a TOML study file, resuming from the store.
    'all' runs every named study (each in OUT/<study>/, OUT default bnlab-out) and writes OUT/summary.html.
    dataset: every run's dataset (default the study's; OUT then defaults to bnlab-out-DATASET/<study>).

    until_decided: train in rounds (`seeds` first, then `round_seeds` more, up to `max_seeds` per
    configuration) until a group-sequential test decides every claim (bnlab.until_decided), a claim whose
    conditional power falls below `futility` (default stats.FUTILITY; 0: never) stopping early;
    `on_round(k, history)` after each round; the result's `sequential` holds the rounds.

    `options` (or its fields as keywords: out, store, device, data_dir, backend, ray_address,
    cpus_per_group, max_stack, fresh, progress) say where and how; backend "ray" trains the groups
    as Ray tasks (bnlab.run.ray_backend)."""
    opts = Options.of(options, **option_fields)
    if name_or_path == studies.ALL:
        if until_decided:
            raise ConfigError("--until-decided runs one study at a time; name the study")
        return run_all(
            seeds=seeds,
            epochs=epochs,
            train_limit=train_limit,
            test_limit=test_limit,
            dataset=dataset,
            report=report,
            command=command,
            options=opts,
        )
    study = studies.get(name_or_path)
    if not until_decided and (max_seeds is not None or round_seeds is not None or futility is not None):
        raise ConfigError("max-seeds, round (rounds of seeds) and futility need until-decided")
    if until_decided:
        return _until_decided(
            study,
            seeds,
            (max_seeds, round_seeds, futility),
            on_round,
            opts,
            report=report,
            command=command,
            epochs=epochs,
            train_limit=train_limit,
            test_limit=test_limit,
            dataset=dataset,
        )
    specs = study.specs(seeds, epochs=epochs, train_limit=train_limit, test_limit=test_limit, dataset=dataset)
    opts = dataclasses.replace(
        opts, out=opts.out or default_out(study.name, dataset), max_stack=study.max_stack or opts.max_stack
    )
    return _run(
        study.name,
        study.question,
        study.to_json(),
        specs,
        opts,
        report=report,
        command=command,
        mix_none=study.mix_none,
    )


def _until_decided(
    study, seeds, rounds: tuple, on_round, opts: Options, *, report: bool, command: str, **overrides
) -> StudyResult:
    """run_study(until_decided=True): rounds of seeds until every claim is decided (bnlab.until_decided)."""
    from .planning import until_decided as U

    if opts.fresh:
        raise ConfigError(
            "--fresh cannot be combined with --until-decided: each round reuses the runs of the "
            "rounds before it; pass another --out or --store to start afresh"
        )
    plan = U.make_plan(study, seeds, *rounds)
    opts = dataclasses.replace(
        opts,
        out=opts.out or default_out(study.name, overrides.get("dataset")),
        max_stack=study.max_stack or opts.max_stack,
    )
    res, hist = U.run_rounds(
        study,
        plan,
        specs_for=lambda s: study.specs(s, **overrides),
        on_round=on_round,
        train=lambda specs, rep: _run(
            study.name,
            study.question,
            U.spec_json(study, plan),
            specs,
            opts,
            report=rep and report,
            command=command,
            mix_none=study.mix_none,
        ),
    )
    res.sequential = hist
    return res


def run_all(*, options: Options, report: bool = True, command: str = "", **study_kw) -> StudyResult:
    """Every named study in turn (each resumes from its store, in OUT/<study>/), then the summary page."""
    from .report.summary import write_summary

    for name in sorted(
        {s.dataset for st in studies.STUDIES.values() for s in st.specs(1, dataset=study_kw.get("dataset"))}
    ):
        data.load(name, options.data_dir)  # a dataset missing for a later study fails now, not after hours
    out, _ = prepare_out(options.out or default_out("", study_kw.get("dataset")), None)
    claim_folder(out, studies.ALL, None, ("summary.md", "summary.html"))
    results = [
        run_study(
            name,
            report=report,
            command=command,
            options=dataclasses.replace(options, out=out / name),
            **study_kw,
        )
        for name in studies.STUDIES
    ]
    entries = [
        (r.study, r.store, r.out, {k: v for k, v in r.report.items() if k not in ("md", "html", "csv")})
        for r in results
    ]
    paths = write_summary(entries, out, command=command) if report else {}
    counts = {k: sum(r.counts[k] for r in results) for k in ("total", "trained", "skipped", "wall_s")}
    return StudyResult(
        studies.ALL,
        [row for r in results for row in r.rows],
        out,
        results[0].store,
        paths,
        {**counts, "device": results[0].counts["device"]},
    )


def run_grid(
    axes: dict,
    base: dict,
    seeds,
    *,
    name: str = "run",
    command: str = "",
    options: Options | None = None,
    **option_fields,
) -> StudyResult:
    """Train the cartesian product of `axes` × seeds with `base` fixed; no report, results.csv and runs.json.
    Options as for run_study (out defaults to bnlab-out/run)."""
    opts = Options.of(options, **option_fields)
    opts = dataclasses.replace(opts, out=opts.out or "bnlab-out/run")
    specs = dedupe(Grid(axes, base, parse_seeds(seeds)).expand())
    res = _run(
        name,
        "ad-hoc grid (bnlab run)",
        dict(axes=axes, base=base),
        specs,
        opts,
        report=False,
        command=command,
    )
    write_results_csv(res.rows, res.out / "results.csv")
    write_text(res.out / "runs.json", json.dumps([s.to_json() for s in specs], indent=1))
    return res


def _run(
    name: str,
    question: str,
    spec: dict,
    specs: list[RunSpec],
    opts: Options,
    *,
    report: bool,
    command: str,
    mix_none: bool = True,
) -> StudyResult:
    """Load and check the data once, open the backend, train what the store lacks, write the report."""
    # bad data, a grid the data cannot serve or a backend that cannot start fails here, before any file
    # is written
    datasets = {n: data.load(n, opts.data_dir) for n in sorted({s.dataset for s in specs})}
    check_against_data(specs, datasets)
    with open_backend(
        opts.backend,
        opts.device,
        ray_address=opts.ray_address,
        cpus_per_group=opts.cpus_per_group,
        retune=opts.retune,
    ) as be:
        assert opts.out is not None  # every caller defaults the output folder
        out, store_path = prepare_out(opts.out, opts.store)
        claim_folder(
            out,
            name,
            store_path,
            ("results.csv", "report.md", "report.html") if report else ("results.csv", "runs.json"),
        )
        with Store(store_path) as st:
            stored = {r["spec"].dataset for r in st.runs(name)}
            check_one_dataset(name, spec.get("axes") or {}, stored | set(datasets), store_path)
            if not st.read_only:  # a read-only store that holds the whole study still yields its report
                st.begin_study(name, question, spec, command)
            counts = run_specs(
                specs,
                st,
                name,
                datasets,
                backend=be,
                fresh=opts.fresh,
                progress=opts.progress,
                max_stack=opts.max_stack,
                mix_none=mix_none,
            )
            wanted = {s.run_id for s in specs}
            rows = [r for r in st.results(name) if r["run_id"] in wanted]
            paths = {}
            if report:
                from .report.study_report import write_report

                paths = write_report(st, name, out, command=command, wall_s=counts["wall_s"])
            return StudyResult(name, rows, out, store_path, paths, counts)


def run_specs(
    specs: list[RunSpec],
    store: Store,
    study: str,
    datasets: dict,
    *,
    backend,
    fresh: bool,
    max_stack: int,
    progress: Progress | None,
    mix_none: bool,
) -> dict:
    """Train what is not yet in the store on an entered `backend`, committing
    each group's runs as the group finishes; returns counts and the training wall time.
    `datasets`: name → data.Dataset for every spec's dataset, loaded and checked by the caller
    (jobs.check_against_data)."""
    progress = progress or Progress()
    done = store.done()
    todo: list[RunSpec] = []
    stored: list[RunSpec] = []
    for s in specs:
        key = (s.config_hash(), s.seed)
        (stored if key in done and not fresh else todo).append(s)
    if store.read_only:
        if todo:
            raise StoreError(
                f"the store {store.path} is read-only and lacks {len(todo)} of the {len(specs)} runs; "
                "make it writable or pass another --store"
            )
    else:
        store.link(study, [done[(s.config_hash(), s.seed)] for s in stored])
    groups = plan_stacks(todo, max_stack, mix_none)
    for g in groups:  # before any training: a stack too large for memory says which max_stack fits
        check_memory(g[0], len(g))
    total_steps = sum(steps_of(s, len(datasets[s.dataset].y_train)) for s in todo)
    progress.start(total_steps, len(todo), len(groups))
    t0 = time.perf_counter()
    pending: list[tuple] = []
    for results, vers in backend.run(groups, datasets, progress, exclusive=not mix_none):
        pending = _commit(store, study, pending + [(r, vers) for r in results], final=False)
        progress.group_done(len(results))
    _commit(store, study, pending, final=True)
    return dict(
        total=len(specs),
        trained=len(todo),
        skipped=len(stored),
        wall_s=time.perf_counter() - t0,
        device=str(backend.device),
        backend=backend.name,
    )


def _commit(store: Store, study: str, pending: list[tuple], *, final: bool) -> list[tuple]:
    """Save finished runs in order; runs a locked store refused stay pending (kept in memory) and are
    tried again after the next group, and once more at the end, where a refusal is final."""
    for i, (result, vers) in enumerate(pending):
        try:
            store.save(study, result, vers)
        except StoreLocked:
            if final:
                raise
            return pending[i:]
    return []
