"""`Options`: where and how runs train and land, one dataclass that is also the CLI's flags.

Each field's metadata holds its flag's help (and `type` where the default does not say it);
`add_flags` adds one argparse flag per field and `from_args` builds the Options from the parsed
flags, so a field, its flag, its help and its default are written once, here.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .limits import check_bound, choice
from .run.jobs import DEFAULT_MAX_STACK, Progress

BACKENDS = ("local", "ray")


def _flag(default: Any, help: str, **argparse_kw: Any) -> Any:
    """A field with a command-line flag: its default, its help, and argparse keywords (e.g. type)."""
    return field(default=default, metadata={"help": help, **argparse_kw})


@dataclass(frozen=True, kw_only=True)
class Options:
    """Where and how runs train and land; one per call, passed whole."""

    out: str | Path | None = _flag(None, "output folder (default bnlab-out/STUDY)")
    store: str | Path | None = _flag(
        None, "SQLite store to use (default OUT/bnlab.sqlite); share one across studies"
    )
    device: str = _flag("auto", "auto (cuda if available), cpu or cuda (default auto)")
    data_dir: str | Path | None = _flag(
        None, "dataset root (one subfolder per dataset); default $BNLAB_DATA_DIR, caches"
    )
    fresh: bool = _flag(False, "retrain runs already in the store")
    max_stack: int = _flag(
        DEFAULT_MAX_STACK, f"most models trained at once in one stack (default {DEFAULT_MAX_STACK})"
    )
    backend: str = _flag("local", "local (this process) or ray (a Ray cluster) (default local)")
    ray_address: str | None = _flag(
        None, "Ray cluster to use (default $RAY_ADDRESS, else a local Ray for the run)"
    )
    cpus_per_group: int | None = _flag(
        None,
        "CPUs (torch threads) per stack; stacks run side by side in worker processes "
        "(default: CPUs / stacks, at least 1; local: only for jobs of 50k+ model-steps)",
        type=int,
    )
    retune: bool = _flag(
        False,
        "measure again whether stacks train faster side by side here, replacing the measurement kept in "
        "$BNLAB_TUNING_CACHE (local backend only)",
    )
    quiet: bool = _flag(False, "no progress bar or tables")
    progress: Progress | None = None  # callbacks for a progress display (the API's; no flag)

    def __post_init__(self) -> None:
        choice("backend", self.backend, BACKENDS)
        check_bound("max_stack", self.max_stack)
        if self.cpus_per_group is not None:
            check_bound("cpus_per_group", self.cpus_per_group)

    @classmethod
    def of(cls, options: Options | None, **fields: Any) -> Options:
        """`options` (default Options()) with `fields` replaced; an unknown field is a ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(fields) - known):
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        return dataclasses.replace(options or cls(), **fields)


def add_flags(p: argparse.ArgumentParser, **help_for: str) -> None:
    """One flag per Options field that has help (--max-stack for max_stack), its default the field's;
    `help_for` replaces a field's help for this subcommand (e.g. out=...)."""
    for f in dataclasses.fields(Options):
        if "help" not in f.metadata:
            continue
        kw = {k: v for k, v in f.metadata.items() if k != "help"}
        if isinstance(f.default, bool):
            kw["action"] = "store_true"
        elif isinstance(f.default, int):
            kw.setdefault("type", int)
        if not isinstance(f.default, bool):
            kw["default"] = f.default
        p.add_argument("--" + f.name.replace("_", "-"), help=help_for.get(f.name, f.metadata["help"]), **kw)


def from_args(args: argparse.Namespace, **fields: Any) -> Options:
    """The Options of parsed flags (those add_flags added), with `fields` replaced."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Options) if hasattr(args, f.name)}
    return Options(**{**given, **fields})
