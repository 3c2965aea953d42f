"""The environment variables bnlab reads: one table, each parsed and bounded in one place.

    VARIABLES[name]   what the variable means, its parser and its default
    read(name)        the variable's value, parsed; its default when unset or empty; one ConfigError
                      (exit 2 from the CLI) naming the variable and its allowed values otherwise
    check_all()       every BNLAB_* variable read once: the CLI calls it before it does anything
    data_dir(), offline(), lock_wait_s(), tuning_cache(), ray_address()
                      the typed reads the rest of bnlab uses

A variable is read where it is used, never at import, so the Python API refuses a bad value with one
line when it needs it; the CLI checks every BNLAB_* variable first, so a bad one stops a command before
it creates or trains anything. Ray's RAY_ADDRESS is checked only where --backend ray uses it. Torch-free:
the store and the data layer read it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from .errors import ConfigError

MAX_LOCK_WAIT_S = 7 * 24 * 3600.0  # a week: longer is a typo, not a wait


@dataclass(frozen=True)
class Variable:
    """One variable: `parse(text)` gives its value or raises ValueError; `allowed` is said on refusal."""

    means: str
    parse: Callable[[str], object]
    allowed: str
    default: object = None


def _switch(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError
    return text == "1"


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= MAX_LOCK_WAIT_S or math.isnan(value):
        raise ValueError
    return value


def _folder(text: str) -> Path:
    if "\x00" in text:
        raise ValueError
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~user of no such user
        raise ValueError from None


def _cache_file(text: str) -> Path | None:
    return None if text == "off" else _folder(text)


def _address(text: str) -> str:
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError
    return text


VARIABLES: dict[str, Variable] = {
    "BNLAB_DATA_DIR": Variable("dataset root (one subfolder per dataset)", _folder, "a folder path"),
    "BNLAB_OFFLINE": Variable("1: never download a dataset", _switch, "0 or 1", False),
    "BNLAB_LOCK_WAIT_S": Variable(
        "seconds a store write waits for another writer",
        _seconds,
        f"seconds from 0 to {MAX_LOCK_WAIT_S:.0f}",
        600.0,
    ),
    "BNLAB_TUNING_CACHE": Variable(
        "the file of this machine's tuning measurements",
        _cache_file,
        "a file path, or off (measure in every process, keep nothing)",
        Path("~/.cache/bnlab/tuning.json"),
    ),
    "RAY_ADDRESS": Variable(
        "the Ray cluster for --backend ray", _address, "a Ray address such as ray://host:10001 or auto"
    ),
}


def read(name: str, environ: dict[str, str] | None = None) -> object:
    """VARIABLES[name] parsed from `environ` (default os.environ); its default when unset or empty."""
    var = VARIABLES[name]
    text = (os.environ if environ is None else environ).get(name, "")
    if text == "":
        return var.default
    try:
        return var.parse(text)
    except (ValueError, OverflowError):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ConfigError(
            f"{name}={shown!r} is not valid ({var.means}); set it to {var.allowed}, or unset it"
        ) from None


def check_all(environ: dict[str, str] | None = None) -> None:
    """Every BNLAB_* variable in VARIABLES read (and so checked) once; the first bad one raises."""
    for name in VARIABLES:
        if name.startswith("BNLAB_"):
            read(name, environ)


def data_dir() -> Path | None:
    """$BNLAB_DATA_DIR, the dataset root; None when unset."""
    return cast("Path | None", read("BNLAB_DATA_DIR"))


def offline() -> bool:
    """$BNLAB_OFFLINE = 1: never download a dataset."""
    return cast(bool, read("BNLAB_OFFLINE"))


def lock_wait_s() -> float:
    """$BNLAB_LOCK_WAIT_S: seconds a store write waits for another writer (default 600)."""
    return cast(float, read("BNLAB_LOCK_WAIT_S"))


def tuning_cache() -> Path | None:
    """$BNLAB_TUNING_CACHE: the tuning measurements' file (default ~/.cache/bnlab/tuning.json, read when
    asked for, so HOME then); None: off."""
    value = cast("Path | None", read("BNLAB_TUNING_CACHE"))
    return value.expanduser() if value is not None else None


def ray_address() -> str | None:
    """$RAY_ADDRESS: the Ray cluster to join; None when unset."""
    return cast("str | None", read("RAY_ADDRESS"))
