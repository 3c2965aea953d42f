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

    backend "ray" trains the groups as Ray tasks on the cluster at `ray_address` (default
    $RAY_ADDRESS, else a local Ray started for the call); see bnlab.raybackend."""
    study = studies.get(name_or_path)
    specs = study.specs(seeds, epochs=epochs, train_limit=train_limit, test_limit=test_limit)
    return _run(study.name, study.question, study.to_json(), specs, out or Path("bnlab-out") / study.name, store,
                device=device, data_dir=data_dir, fresh=fresh, report=report, command=command, progress=progress,
                max_stack=max_stack, backend=backend, ray_address=ray_address, cpus_per_group=cpus_per_group)


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
         command, progress, max_stack, backend, ray_address, cpus_per_group) -> StudyResult:
    from . import data

    # bad data, a grid the data cannot serve or a backend that cannot start fails here, before any file is written
    check_against_data(specs, {name: data.load(name, data_dir) for name in {s.dataset for s in specs}})
    with open_backend(backend, device, ray_address=ray_address, cpus_per_group=cpus_per_group) as be:
        out, store_path = prepare_out(out, store)
        st = Store(store_path)
        try:
            st.begin_study(name, question, spec, command)
            counts = run_specs(specs, st, name, backend=be, data_dir=data_dir, fresh=fresh, progress=progress,
                               max_stack=max_stack)
            wanted = {s.run_id for s in specs}
            rows = [r for r in st.results(name) if r["run_id"] in wanted]
            paths = {}
            if report:
                from .report import write_report

                paths = write_report(st, name, out, command=command, wall_s=counts["wall_s"])
            return StudyResult(name, rows, out, store_path, paths, counts)
        finally:
            st.close()
