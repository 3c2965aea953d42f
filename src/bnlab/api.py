"""The Python API: run a study or a grid, get rows back. The CLI is a thin layer on top.

    >>> import bnlab
    >>> res = bnlab.run_study("seed", seeds=5)          # trains what the store lacks, writes the report
    >>> res.rows[0]["test_acc"], res.report["html"]

Where and how a study runs is one `Options`, built once (by the CLI or the caller) and passed
whole; `run_study` and `run_grid` also take its fields as keywords.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import data, studies
from .config import Grid, RunSpec, parse_seeds
from .errors import ConfigError
from .export.frames import load  # noqa: F401  (bnlab.api.load: a study's rows as a pandas DataFrame)
from .limits import check_bound, choice
from .outputs import check_target, write_text, write_with
from .run.driver import BACKENDS, open_backend, run_specs
from .run.jobs import DEFAULT_MAX_STACK, Progress, check_against_data
from .store import Store, write_results_csv


@dataclass(frozen=True, kw_only=True)
class Options:
    """Where and how runs train and land; one per call, passed whole."""

    out: str | Path | None = None  # output folder (default bnlab-out/STUDY; bnlab-out/run for a grid)
    store: str | Path | None = None  # SQLite store (default OUT/bnlab.sqlite); one can serve many studies
    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:N
    data_dir: str | Path | None = (
        None  # dataset root, one subfolder per dataset (default $BNLAB_DATA_DIR, caches)
    )
    backend: str = "local"  # local (this machine) or ray (a Ray cluster)
    ray_address: str | None = None  # Ray cluster (default $RAY_ADDRESS, else a local Ray for the call)
    cpus_per_group: int | None = None  # torch threads per stack; stacks then train side by side
    max_stack: int = DEFAULT_MAX_STACK  # most models trained at once in one stack
    fresh: bool = False  # retrain runs already in the store
    quiet: bool = False  # no progress bar or tables (the CLI's; the API prints nothing)
    progress: Progress | None = None  # callbacks for a progress display

    def __post_init__(self):
        choice("backend", self.backend, BACKENDS)
        check_bound("max_stack", self.max_stack)
        if self.cpus_per_group is not None:
            check_bound("cpus_per_group", self.cpus_per_group)

    @classmethod
    def of(cls, options: Options | None, **fields) -> Options:
        """`options` (default Options()) with `fields` replaced; an unknown field is a ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(fields) - known):
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        return dataclasses.replace(options or cls(), **fields)


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


def prepare_out(out: str | Path, store: str | Path | None) -> tuple[Path, Path]:
    """Create the output folder (or fail with one clear line) and resolve the store path."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".bnlab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"output folder {out} is not writable ({e.strerror}); pass another --out") from None
    return out, Path(store) if store else out / "bnlab.sqlite"


OUTPUT_SUFFIXES = (".md", ".html", ".csv", ".json", ".png")  # what reports, grids and summaries write
MARKER = ".bnlab-study"  # names the study whose outputs a folder holds


def claim_folder(out: Path, study: str, store: Path | None, files: tuple[str, ...]) -> None:
    """Before any training: the folder holds no other study's outputs (MARKER, or an older report's
    title), the store is not one of the files written there, and `files` can be replaced."""
    marker = out / MARKER
    owner = (
        marker.read_text(encoding="utf-8").strip() if marker.is_file() else _report_title(out / "report.md")
    )
    if owner and owner != study:
        raise ConfigError(
            f"{out} holds the outputs of study {owner!r}; pass another --out for {study!r} "
            f"(e.g. --out {out / study})"
        )
    if store is not None and store.resolve().parent == out.resolve() and store.suffix in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"--store {store} would be overwritten by the outputs written to {out}; name the store "
            "*.sqlite (default OUT/bnlab.sqlite)"
        )
    for f in files:
        check_target(out / f, "output")
    if not owner:
        write_text(marker, study + "\n")


def _report_title(path: Path) -> str:
    """The study named by an existing report's first line '# bnlab report: NAME', or ''."""
    try:
        first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    except OSError:
        return ""
    return first.removeprefix("# bnlab report: ").strip() if first.startswith("# bnlab report: ") else ""


def run_study(
    name_or_path: str,
    *,
    seeds=None,
    epochs: int | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    report: bool = True,
    command: str = "",
    until_decided: bool = False,
    max_seeds: int | None = None,
    round_seeds: int | None = None,
    on_round=None,
    options: Options | None = None,
    **option_fields,
) -> StudyResult:
    """Run a named study (bnlab.studies.STUDIES) or a TOML study file, resuming from the store.
    'all' runs every named study (each in OUT/<study>/, OUT default bnlab-out) and writes OUT/summary.html.

    until_decided: train in rounds (`seeds` first, then `round_seeds` more, up to `max_seeds` per configuration)
    until a group-sequential test decides every claim (bnlab.until_decided); `on_round(k, history)` after each
    round; the result's `sequential` holds the rounds.

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
            report=report,
            command=command,
            options=opts,
        )
    study = studies.get(name_or_path)
    if not until_decided and (max_seeds is not None or round_seeds is not None):
        raise ConfigError("max-seeds and round (rounds of seeds) need until-decided")
    if until_decided:
        return _until_decided(
            study,
            seeds,
            max_seeds,
            round_seeds,
            on_round,
            opts,
            report=report,
            command=command,
            epochs=epochs,
            train_limit=train_limit,
            test_limit=test_limit,
        )
    specs = study.specs(seeds, epochs=epochs, train_limit=train_limit, test_limit=test_limit)
    opts = dataclasses.replace(
        opts, out=opts.out or Path("bnlab-out") / study.name, max_stack=study.max_stack or opts.max_stack
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
    study, seeds, max_seeds, round_seeds, on_round, opts: Options, *, report: bool, command: str, **overrides
) -> StudyResult:
    """run_study(until_decided=True): rounds of seeds until every claim is decided (bnlab.until_decided)."""
    from . import until_decided as U

    if opts.fresh:
        raise ConfigError(
            "--fresh cannot be combined with --until-decided: each round reuses the runs of the "
            "rounds before it; pass another --out or --store to start afresh"
        )
    plan = U.make_plan(study, seeds, max_seeds, round_seeds)
    opts = dataclasses.replace(
        opts, out=opts.out or Path("bnlab-out") / study.name, max_stack=study.max_stack or opts.max_stack
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


def plan_study(
    name: str,
    *,
    effect: float | None = None,
    power: float = 0.8,
    round_seeds: int | None = None,
    pilot_seeds=3,
    train_limit: int | None = None,
    epochs: int | None = None,
    test_limit: int | None = None,
    options: Options | None = None,
    **option_fields,
) -> str:
    """`bnlab plan`: seeds and cost per claim (bnlab.report.planning), from the study's runs in the store (OUT/
    bnlab.sqlite or `store`), or else from a pilot trained now into OUT/pilot: `pilot_seeds` seeds on the first
    `train_limit` (default 6000) training images. Returns the plan as text."""
    from .report.planning import plan_text
    from .report.studydata import StudyData

    opts = Options.of(options, **option_fields)
    study = studies.get(name)
    out = Path(opts.out or Path("bnlab-out") / study.name)
    store = Path(opts.store) if opts.store else out / "bnlab.sqlite"
    d = None
    if store.is_file():
        with Store(store) as st:
            d = StudyData.load(st, study.name) if st.study(study.name) else None
    if d is not None and d.configs and min(len(c.runs) for c in d.configs) >= 2:
        source = f"the {len(d.runs)} runs of {study.name} in {store}"
    else:
        limit = train_limit or 6000
        res = run_study(
            name,
            seeds=pilot_seeds,
            train_limit=limit,
            epochs=epochs,
            test_limit=test_limit,
            report=False,
            options=dataclasses.replace(opts, out=out / "pilot", store=None),
        )
        with Store(res.store) as st:
            d = StudyData.load(st, study.name)
        source = (
            f"a pilot of {len(d.runs)} runs ({pilot_seeds if isinstance(pilot_seeds, int) else 'given'} seeds "
            f"on the first {limit} training images, {res.counts['trained']} trained now) in {res.out}: SDs on "
            "fewer images can differ from the full study's; rerun after a real round for better numbers"
        )
    first = len(parse_seeds(study.seeds))
    return plan_text(d, source, effect=effect, power=power, first=first, round_seeds=round_seeds)


def run_all(*, options: Options, report: bool = True, command: str = "", **study_kw) -> StudyResult:
    """Every named study in turn (each resumes from its store, in OUT/<study>/), then the summary page."""
    from .report.summary import write_summary

    out, _ = prepare_out(options.out or "bnlab-out", None)
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
    specs = studies.dedupe(Grid(axes, base, parse_seeds(seeds)).expand())
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
    # bad data, a grid the data cannot serve or a backend that cannot start fails here, before any file is written
    datasets = {n: data.load(n, opts.data_dir) for n in sorted({s.dataset for s in specs})}
    check_against_data(specs, datasets)
    with open_backend(
        opts.backend, opts.device, ray_address=opts.ray_address, cpus_per_group=opts.cpus_per_group
    ) as be:
        out, store_path = prepare_out(opts.out, opts.store)
        claim_folder(
            out,
            name,
            store_path,
            ("results.csv", "report.md", "report.html") if report else ("results.csv", "runs.json"),
        )
        with Store(store_path) as st:
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


def fold_run(store: str | Path, run_id: str | None, out: str | Path, data_dir=None) -> dict:
    """Export a stored BN run folded into a plain MLP (Linear/ReLU only) as a torch file holding
    `state_dict` (for nn.Sequential(Linear, ReLU, ..., Linear)), `dims`, `run_id`, `spec` and the
    largest |folded − unfolded| logit on the test set. Runs keep parameters with final probe 'inference'."""
    import torch

    from .config import PROFILE
    from .core import final_probes as fp

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the folder of --out {out} ({e.strerror}); pass another --out"
        ) from None
    check_target(out, "--out")
    with Store(_existing_store(store)) as st:
        if run_id is None or st.model(run_id) is None:
            have = st.models()
            what = f"run {run_id!r} has no stored parameters" if run_id else "give a RUN_ID"
            raise ConfigError(
                f"{what}; runs with parameters: {', '.join(have[:5]) or 'none'}"
                f"{' …' if len(have) > 5 else ''} (bnlab study overhead keeps them)"
            )
        spec, m = st.model(run_id)
    eps = PROFILE[spec.profile].bn_eps
    x = torch.tensor(data.load(spec.dataset, data_dir).x_test[: spec.test_limit])
    plain, folded = (
        fp.to_module(m, spec.placement, eps),
        fp.to_module(fp.fold(m, spec.placement, eps), spec.placement, eps),
    )
    with torch.inference_mode():
        err = float((plain(x) - folded(x)).abs().max())
    dims = [m["W0"].shape[0]] + [m[f"W{i}"].shape[1] for i in range(sum(k.startswith("W") for k in m))]
    blob = dict(
        state_dict=folded.state_dict(), dims=dims, run_id=run_id, spec=spec.to_json(), max_abs_err=err
    )
    write_with(out, lambda tmp: torch.save(blob, tmp))
    return dict(path=out, max_abs_err=err, dims=dims, spec=spec)


def _existing_store(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no store at {p}; run a study first or pass --store")
    return p
