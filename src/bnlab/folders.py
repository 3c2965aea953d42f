"""Output folders: created (or one clear line why not) and claimed by one study before any training."""

from __future__ import annotations

from pathlib import Path

from . import reading
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
    owner = _mark(marker) if marker.exists() else _report_title(out / "report.md")
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


MARK_MAX_BYTES = 4096  # a study's name and a newline
REPORT_MAX_BYTES = 64 << 20  # more than any report.md bnlab writes


def _mark(marker: Path) -> str:
    """The study named in a folder's STUDY_MARK; one ConfigError when it is not one bnlab wrote."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(
            f"{marker} {problem}, so it does not say which study owns {marker.parent}; remove it if the "
            "folder is yours, or pass another --out"
        )

    return reading.read_text(marker, MARK_MAX_BYTES, fail).strip()


def _report_title(path: Path) -> str:
    """The study named by an existing report's first line '# bnlab report: NAME', or '' (also when it
    cannot be read: then it is not bnlab's, and check_target refuses to replace it)."""
    try:
        first = reading.read_text(path, REPORT_MAX_BYTES, reading.Unreadable).split("\n", 1)[0]
    except reading.Unreadable:
        return ""
    return first.removeprefix("# bnlab report: ").strip() if first.startswith("# bnlab report: ") else ""
