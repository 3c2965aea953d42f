"""Dataset file readers and checks: IDX files (gzipped or raw), Keras .npz files, MD5 of contents.

Reading stops at the size a file can have (MAX_FILE_BYTES unless the caller gives a tighter
limit), so a gzip bomb fails as fast as a good file loads. Every failure is one DataError naming
the file and the fix (bnlab.data finds the files and calls these readers).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import reading
from .errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_FILE_BYTES = 100_000_000  # most bytes read, or decompressed, from a file of unknown expected size
FIX = (
    "delete the file and re-download it, or set BNLAB_DATA_DIR / pass --data-dir to a folder with good copies"
)


def bad_file(path, problem: str) -> DataError:
    """One DataError line: the file, its problem (whitespace collapsed) and the fix."""
    return DataError(f"{path}: {' '.join(str(problem).split())}; fix: {FIX}")


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's content, gunzipped when it is gzip (reading.read_bytes), at most `limit` bytes (default
    MAX_FILE_BYTES); one DataError naming the file and the fix otherwise."""
    limit = MAX_FILE_BYTES if limit is None else limit
    return reading.read_bytes(path, limit, functools.partial(_problem, path), gunzip=True)


def _problem(path, problem: str) -> DataError:
    if "more than" in problem:
        problem += ", more than this file can hold (a damaged file or a gzip bomb)"
    return bad_file(path, problem)


def check_md5(path, raw: bytes, want: str | None) -> None:
    got = hashlib.md5(raw).hexdigest()
    if want is not None and got != want:
        raise bad_file(
            path, f"MD5 of the content is {got}, expected {want} (corrupt or not the canonical file)"
        )


def parse_idx(raw: bytes, path) -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise bad_file(path, f"not a uint8 IDX file (magic {raw[:4].hex() or 'empty'}, expected 0000080N)")
    ndim, head = raw[3], 4 + 4 * raw[3]
    if len(raw) < head:
        raise bad_file(path, "IDX header is cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    if len(raw) - head != math.prod(dims):  # a Python int: absurd dims cannot overflow into a match
        raise bad_file(path, f"IDX dims {dims} need {math.prod(dims)} bytes of data, found {len(raw) - head}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(dims)


def read_idx(path) -> np.ndarray:
    """A uint8 IDX file (gzipped or raw, at most MAX_FILE_BYTES) as an array; DataError when malformed."""
    return parse_idx(read_bytes(Path(path)), path)


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when the name ends with .gz."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 4:
        raise ValueError(f"write_idx needs a uint8 array of 1..4 dims, got {array.dtype} {array.shape}")
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def read_keras_npz(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from a Keras mnist.npz; checks keys, sizes (at most MAX_FILE_BYTES
    decompressed, read from the zip's table before any array), shapes and dtypes."""
    reading.check_file(path, None, functools.partial(_problem, path))  # capped below, by its zip table
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a .npy array (or a pickle, refused above)
            raise bad_file(path, "not an npz archive (a single .npy array)")
        with z:
            if sorted(z.files) != sorted(NPZ_KEYS):
                raise bad_file(path, f"npz keys are {sorted(z.files)}, expected {list(NPZ_KEYS)}")
            size: int = sum(i.file_size for i in z.zip.infolist()) if z.zip else 0
            if size > MAX_FILE_BYTES:
                raise bad_file(
                    path, f"arrays of {size:,} bytes, more than the {MAX_FILE_BYTES:,} a dataset can hold"
                )
            x_train, y_train, x_test, y_test = (z[k] for k in NPZ_KEYS)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise bad_file(path, f"unreadable or corrupt npz file ({e})") from None
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.dtype != np.uint8 or x.ndim != 3 or y.ndim != 1 or y.dtype.kind not in "iu" or len(x) != len(y):
            raise bad_file(
                path,
                f"{split} arrays are x {x.dtype} {x.shape}, y {y.dtype} {y.shape}; "
                "expected x uint8 (N, 28, 28) and integer y (N,)",
            )
    return x_train, y_train, x_test, y_test
