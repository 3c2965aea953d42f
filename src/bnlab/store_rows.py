"""Decoding what a store holds: a run's spec and versions (JSON) and its parameters (npz), checked.

A row that does not decode (not JSON, not a JSON object, a spec this bnlab refuses, parameters that are
not an npz archive of numeric arrays) is one StoreError naming the store, the run and the fix; nothing
is written, so the store's other runs stay as they were.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .config import RunSpec
from .errors import ConfigError, StoreError

MAX_MODEL_BYTES = 1 << 30  # most bytes one run's stored parameters may decompress to


def bad_row(store: Path, entry: str, problem: str) -> StoreError:
    """One line: the store, the entry ("run ID", "study NAME"), what is wrong with its row and the fix."""
    return StoreError(
        f"the store {store} has an unreadable entry ({entry}: {' '.join(problem.split())}); restore "
        "it from a backup or pass another --store"
    )


def json_object(store: Path, entry: str, column: str, text) -> dict:
    """The JSON object stored in `column`; bad_row when it is not one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError) as e:
        raise bad_row(store, entry, f"{column} is not JSON ({type(e).__name__}: {e})") from None
    if not isinstance(value, dict):
        raise bad_row(store, entry, f"{column} holds a JSON {type(value).__name__}, not an object")
    return value


def spec(store: Path, entry: str, text) -> RunSpec:
    """The RunSpec stored as JSON; bad_row when it does not decode or this bnlab refuses it."""
    fields = json_object(store, entry, "spec_json", text)
    try:
        return RunSpec.from_json(fields)
    except (ConfigError, TypeError, ValueError) as e:
        raise bad_row(store, entry, f"spec_json is not a valid run ({e})") from None


def arrays(store: Path, entry: str, blob) -> dict[str, np.ndarray]:
    """The parameters stored as an npz archive (name → numeric array); bad_row otherwise."""
    if not isinstance(blob, bytes):
        raise bad_row(store, entry, f"its parameters are a {type(blob).__name__}, not an npz blob")
    try:
        z = np.load(io.BytesIO(blob), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise bad_row(store, entry, "its parameters are not an npz archive")
        with z:
            size: int = sum(i.file_size for i in z.zip.infolist()) if z.zip else 0
            if size > MAX_MODEL_BYTES:
                raise bad_row(store, entry, f"its parameters decompress to {size:,} bytes")
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise bad_row(store, entry, f"its parameters are corrupt ({type(e).__name__}: {e})") from None
    if bad := [k for k, a in out.items() if a.dtype.kind not in "fiub"]:
        raise bad_row(store, entry, f"its parameter {bad[0]!r} is not numeric")
    return out
