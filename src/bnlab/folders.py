"""Output folders: created (or one clear line why not) and claimed by one study before any training."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .outputs import STUDY_MARK, check_target, write_text


def default_out(study: str = "", dataset: str | None = None) -> Path:
    """bnlab-out/STUDY; bnlab-out-DATASET/STUDY for a study run on another dataset than MNIST, so that its
    runs never share a store (and a report) with the same study's MNIST runs."""
    return Path("bnlab-out" + (f"-{dataset}" if dataset not in (None, "mnist") else "")) / study


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


def claim_folder(out: Path, study: str, store: Path | None, files: tuple[str, ...]) -> None:
    """Before any training: the folder holds no other study's outputs (STUDY_MARK, or an older report's
    title), the store is not one of the files written there, and `files` can be replaced."""
    marker = out / STUDY_MARK
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
