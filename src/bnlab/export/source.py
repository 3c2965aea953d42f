"""What a PATH given to bnlab.load or `bnlab export` holds: a store, a results.csv, or study folders.

PATH may be an output folder (holding bnlab.sqlite, or results.csv alone), a store file, a
results.csv file, or (for export) the folder of `bnlab study all` (one study folder each with its
own store). Anything else is one ConfigError line saying what was found.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..store import Store

STORE_FILE, CSV_FILE = "bnlab.sqlite", "results.csv"
SQLITE_MAGIC = b"SQLite format 3\x00"
STORE_TABLES = {"studies", "runs", "study_runs", "epochs"}


@dataclass(frozen=True)
class Source:
    """One readable thing: a bnlab store, or a results.csv alone (then `store` is None)."""

    store: Path | None = None
    csv: Path | None = None


def find(path: str | Path) -> Source:
    """The store or results.csv at `path` (a folder holding one, or the file itself)."""
    p = Path(path)
    if p.is_dir():
        if (p / STORE_FILE).is_file():
            return Source(store=check_store(p / STORE_FILE))
        if (p / CSV_FILE).is_file():
            return Source(csv=p / CSV_FILE)
        subs = study_folders(p)
        shown = ", ".join(str(s) for s in subs[:4]) + (" …" if len(subs) > 4 else "")
        hint = f"; its study folders do ({shown}): pass one of them" if subs else ""
        raise ConfigError(f"{p} holds no {STORE_FILE} or {CSV_FILE}{hint}")
    if p.is_file():
        try:
            with p.open("rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as e:
            raise ConfigError(f"cannot read {p} ({e.strerror})") from None
        if head == SQLITE_MAGIC:
            return Source(store=check_store(p))
        if p.suffix.lower() == ".csv":
            return Source(csv=p)
        raise ConfigError(f"{p} is neither a bnlab store (SQLite) nor a results.csv")
    raise ConfigError(f"no such file or folder: {p}")


def study_folders(p: Path) -> list[Path]:
    """Subfolders of `p` that hold a store (the layout of `bnlab study all`), sorted."""
    return sorted(q.parent for q in p.glob(f"*/{STORE_FILE}") if q.is_file())


def check_store(p: Path) -> Path:
    """`p` if it is a bnlab store; a ConfigError for another SQLite file (opened read-only, never changed)."""
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error as e:
        raise ConfigError(f"cannot read {p} as SQLite ({e})") from None
    if not STORE_TABLES <= tables:
        raise ConfigError(
            f"{p} is a SQLite file but not a bnlab store (it lacks the tables "
            f"{', '.join(sorted(STORE_TABLES - tables))})"
        )
    return p


def stored_studies(store: Path) -> list[str]:
    with Store(store) as st:
        return st.studies()


def pick_study(store: Path, study: str | None, how: str = "study=NAME") -> str:
    """`study` if the store holds it; without one, the store's only study. Otherwise one line
    listing the stored studies; `how` says how to pick one (study=NAME, --study NAME)."""
    names = stored_studies(store)
    if study is not None:
        if study not in names:
            raise ConfigError(
                f"study {study!r} is not in {store}; stored studies: {', '.join(names) or 'none'}"
            )
        return study
    if len(names) == 1:
        return names[0]
    if not names:
        raise ConfigError(f"{store} holds no study yet; run one first")
    raise ConfigError(f"{store} holds {len(names)} studies ({', '.join(names)}); pick one with {how}")


def export_sources(path: str | Path, studies: list[str] | None = None) -> list[tuple[Path, list[str]]]:
    """(store, its studies to export) for `path`: one store, or every study folder's store under a
    `bnlab study all` folder. `studies` keeps only those names (each must be found somewhere)."""
    p = Path(path)
    if p.is_dir() and not (p / STORE_FILE).is_file() and study_folders(p):
        stores = [check_store(q / STORE_FILE) for q in study_folders(p)]
    else:
        src = find(p)
        if src.store is None:
            raise ConfigError(
                f"{src.csv} is a results.csv alone; export reads the store ({STORE_FILE}) beside it, "
                "which holds every run's configuration"
            )
        stores = [src.store]
    found = [(s, stored_studies(s)) for s in stores]
    everything = [n for _, names in found for n in names]
    if studies:
        if missing := [n for n in studies if n not in everything]:
            raise ConfigError(
                f"study {missing[0]!r} is not in {path}; stored studies: {', '.join(everything) or 'none'}"
            )
        found = [(s, [n for n in names if n in studies]) for s, names in found]
    found = [(s, names) for s, names in found if names]
    if not found:
        raise ConfigError(f"{path} holds no study yet; run one first")
    return found


METRICS = (
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "train_loss_eval",
    "train_acc_eval",
    "train_loss_noise",
)


def epoch_metrics(rows: list[dict]) -> list[str]:
    """The per-epoch metrics the rows hold a value of (eval-mode train figures and loss noise only where
    they were measured: runs of older bnlab versions lack them)."""
    return [m for m in METRICS if any(r.get(m) is not None for r in rows)]


def step_series(
    store, study: str, epochs: dict[str, list[dict]]
) -> dict[str, list[tuple[str, int, float, float]]]:
    """run_id → (tag, step, wall_s, value) for what a run recorded between epochs: the test evaluations of
    `eval_every` ("eval/test_loss", "eval/test_acc", their own training seconds) and the probes of `probes`
    ("probe/NAME/layerL", or "probe/NAME" for whole-model values; training seconds interpolated from the
    run's epochs, `epochs[run_id]` = its results rows)."""
    out: dict[str, list] = {}
    for rid, evs in store.evals(study).items():
        out.setdefault(rid, []).extend(
            (f"eval/{m}", int(e["step"]), float(e["wall_s"]), float(e[m]))
            for e in evs
            for m in ("test_loss", "test_acc")
        )
    for rid, ps in store.probes(study).items():
        marks = [(0, 0.0)] + [(int(e["steps"]), float(e["wall_s"])) for e in epochs.get(rid, [])]
        out.setdefault(rid, []).extend(
            (
                f"probe/{p['name']}" + (f"/layer{p['layer']}" if p["layer"] >= 0 else ""),
                int(p["step"]),
                wall_at(int(p["step"]), marks),
                float(p["value"]),
            )
            for p in ps
        )
    return out


def wall_at(step: int, marks: list[tuple[int, float]]) -> float:
    """Training seconds at `step`, linear between the (step, seconds) marks (the last mark's slope beyond
    it)."""
    (s0, w0), (s1, w1) = marks[0], marks[-1]
    for a, b in zip(marks, marks[1:]):
        (s0, w0), (s1, w1) = a, b
        if step <= b[0]:
            break
    return w0 if s1 == s0 else w0 + (w1 - w0) * (step - s0) / (s1 - s0)
