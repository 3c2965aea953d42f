"""The Python API: run a study or a grid, get rows back. The CLI is a thin layer on top.

    >>> import bnlab
    >>> res = bnlab.run_study("seed", seeds=5)          # trains what the store lacks, writes the report
    >>> res.rows[0]["test_acc"], res.report["html"]
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import studies
from .config import Grid, RunSpec
from .errors import ConfigError
from .execute import DEFAULT_MAX_STACK, Progress, check_against_data, open_backend, run_specs
from .store import Store, write_results_csv


@dataclass
class StudyResult:
    """What a study produced: one row per run and epoch (the results.csv columns), and paths."""

    study: str
    rows: list[dict]
    out: Path
    store: Path
    report: dict[str, Path] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    def final(self) -> list[dict]:
        """The last epoch row of each run."""
        last: dict[str, dict] = {}
        for r in self.rows:
            last[r["run_id"]] = r
        return list(last.values())


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


def run_study(name_or_path: str, *, seeds=None, epochs: int | None = None, out: str | Path | None = None,
              store: str | Path | None = None, device: str = "auto", data_dir=None, fresh: bool = False,
              train_limit: int | None = None, test_limit: int | None = None, report: bool = True,
              command: str = "", progress: Progress | None = None, max_stack: int = DEFAULT_MAX_STACK,
              backend: str = "local", ray_address: str | None = None, cpus_per_group: int | None = None) -> StudyResult:
    """Run a named study (bnlab.studies.STUDIES) or a TOML study file, resuming from the store.
    'all' runs every named study (each in OUT/<study>/, OUT default bnlab-out) and writes OUT/summary.html.

    backend "ray" trains the groups as Ray tasks on the cluster at `ray_address` (default
    $RAY_ADDRESS, else a local Ray started for the call); see bnlab.raybackend."""
    kw = dict(seeds=seeds, epochs=epochs, store=store, device=device, data_dir=data_dir, fresh=fresh,
              train_limit=train_limit, test_limit=test_limit, report=report, command=command, progress=progress,
              max_stack=max_stack, backend=backend, ray_address=ray_address, cpus_per_group=cpus_per_group)
    if name_or_path == studies.ALL:
        return run_all(Path(out or "bnlab-out"), **kw)
    study = studies.get(name_or_path)
    specs = study.specs(seeds, epochs=epochs, train_limit=train_limit, test_limit=test_limit)
    return _run(study.name, study.question, study.to_json(), specs, out or Path("bnlab-out") / study.name, store,
                device=device, data_dir=data_dir, fresh=fresh, report=report, command=command, progress=progress,
                max_stack=study.max_stack or max_stack, mix_none=study.mix_none, backend=backend,
                ray_address=ray_address, cpus_per_group=cpus_per_group)


def run_all(out: Path, **kw) -> StudyResult:
    """Every named study in turn (each resumes from its store), then the summary page."""
    from .summary import write_summary

    results = [run_study(name, out=out / name, **kw) for name in studies.STUDIES]
    entries = [(r.study, r.store, r.out, {k: v for k, v in r.report.items() if k not in ("md", "html", "csv")})
               for r in results]
    out, _ = prepare_out(out, None)
    paths = write_summary(entries, out, command=kw.get("command", "")) if kw.get("report", True) else {}
    counts = {k: sum(r.counts[k] for r in results) for k in ("total", "trained", "skipped", "wall_s")}
    return StudyResult(studies.ALL, [row for r in results for row in r.rows], out, results[0].store, paths,
                       {**counts, "device": results[0].counts["device"]})


def run_grid(axes: dict, base: dict, seeds, *, out: str | Path = "bnlab-out/run", store=None, device="auto",
             data_dir=None, fresh=False, command="", progress: Progress | None = None, name: str = "run",
             max_stack: int = DEFAULT_MAX_STACK, backend: str = "local", ray_address: str | None = None,
             cpus_per_group: int | None = None) -> StudyResult:
    """Train the cartesian product of `axes` × seeds with `base` fixed; no report, results.csv and runs.json.
    backend, ray_address, cpus_per_group: as for run_study."""
    from .config import parse_seeds

    specs = studies._dedupe(Grid(axes, base, parse_seeds(seeds)).expand())
    res = _run(name, "ad-hoc grid (bnlab run)", dict(axes=axes, base=base), specs, out, store, device=device,
               data_dir=data_dir, fresh=fresh, report=False, command=command, progress=progress, max_stack=max_stack,
               backend=backend, ray_address=ray_address, cpus_per_group=cpus_per_group)
    write_results_csv(res.rows, res.out / "results.csv")
    (res.out / "runs.json").write_text(json.dumps([s.to_json() for s in specs], indent=1))
    return res


def _run(name: str, question: str, spec: dict, specs: list[RunSpec], out, store, *, device, data_dir, fresh, report,
         command, progress, max_stack, backend, ray_address, cpus_per_group, mix_none: bool = True) -> StudyResult:
    from . import data

    # bad data, a grid the data cannot serve or a backend that cannot start fails here, before any file is written
    check_against_data(specs, {name: data.load(name, data_dir) for name in {s.dataset for s in specs}})
    with open_backend(backend, device, ray_address=ray_address, cpus_per_group=cpus_per_group) as be:
        out, store_path = prepare_out(out, store)
        st = Store(store_path)
        try:
            st.begin_study(name, question, spec, command)
            counts = run_specs(specs, st, name, backend=be, data_dir=data_dir, fresh=fresh, progress=progress,
                               max_stack=max_stack, mix_none=mix_none)
            wanted = {s.run_id for s in specs}
            rows = [r for r in st.results(name) if r["run_id"] in wanted]
            paths = {}
            if report:
                from .report import write_report

                paths = write_report(st, name, out, command=command, wall_s=counts["wall_s"])
            return StudyResult(name, rows, out, store_path, paths, counts)
        finally:
            st.close()


def fold_run(store: str | Path, run_id: str | None, out: str | Path, data_dir=None) -> dict:
    """Export a stored BN run folded into a plain MLP (Linear/ReLU only) as a torch file holding
    `state_dict` (for nn.Sequential(Linear, ReLU, ..., Linear)), `dims`, `run_id`, `spec` and the
    largest |folded − unfolded| logit on the test set. Runs keep parameters with final probe 'inference'."""
    import torch

    from . import data, measure
    from .config import PROFILE

    st = Store(_existing_store(store))
    try:
        if run_id is None or st.model(run_id) is None:
            have = st.models()
            what = f"run {run_id!r} has no stored parameters" if run_id else "give a RUN_ID"
            raise ConfigError(f"{what}; runs with parameters: {', '.join(have[:5]) or 'none'}"
                              f"{' …' if len(have) > 5 else ''} (bnlab study overhead keeps them)")
        spec, m = st.model(run_id)
    finally:
        st.close()
    eps = PROFILE[spec.profile].bn_eps
    x = torch.tensor(data.load(spec.dataset, data_dir).x_test[:spec.test_limit])
    plain, folded = measure.to_module(m, spec.placement, eps), measure.to_module(
        measure.fold(m, spec.placement, eps), spec.placement, eps)
    with torch.inference_mode():
        err = float((plain(x) - folded(x)).abs().max())
    dims = [m["W0"].shape[0]] + [m[f"W{i}"].shape[1] for i in range(sum(k.startswith("W") for k in m))]
    blob = dict(state_dict=folded.state_dict(), dims=dims, run_id=run_id, spec=spec.to_json(), max_abs_err=err)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, out)
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror}); pass another --out") from None
    return dict(path=out, max_abs_err=err, dims=dims, spec=spec)


def _existing_store(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no store at {p}; run a study first or pass --store")
    return p

