"""Dataset file readers and checks: IDX files (gzipped or raw), Keras .npz files, MD5 of contents.

Reading stops at the size a file can have (MAX_FILE_BYTES unless the caller gives a tighter
limit), so a gzip bomb fails as fast as a good file loads. Every failure is one DataError naming
the file and the fix (bnlab.data finds the files and calls these readers).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_FILE_BYTES = 100_000_000  # most bytes read, or decompressed, from a file of unknown expected size
FIX = (
    "delete the file and re-download it, or set BNLAB_DATA_DIR / pass --data-dir to a folder with good copies"
)


def bad_file(path, problem: str) -> DataError:
    """One DataError line: the file, its problem (whitespace collapsed) and the fix."""
    return DataError(f"{path}: {' '.join(str(problem).split())}; fix: {FIX}")


def content(f, limit: int) -> bytes:
    """An open file's bytes, gunzipped when they are gzip (by content, whatever the name). ValueError
    when there are more than `limit`: reading stops there, so a gzip bomb is never decompressed whole."""
    gz = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    data = (gzip.GzipFile(fileobj=f) if gz else f).read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{'decompresses to' if gz else 'holds'} more than {limit:,} bytes")
    return data


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's content (see content), at most `limit` bytes (default MAX_FILE_BYTES); DataError
    otherwise."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        with open(path, "rb") as f:
            return content(f, limit)
    except ValueError as e:
        raise bad_file(path, f"{e}, more than this file can hold (a damaged file or a gzip bomb)") from None
    except EOFError as e:
        raise bad_file(path, f"truncated gzip file ({e})") from None
    except (OSError, zlib.error) as e:
        raise bad_file(path, f"unreadable or corrupt file ({e})") from None


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
    if len(raw) - head != int(np.prod(dims)):
        raise bad_file(
            path, f"IDX dims {dims} need {int(np.prod(dims))} bytes of data, found {len(raw) - head}"
        )
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
    try:
        with np.load(path, allow_pickle=False) as z:
            if sorted(z.files) != sorted(NPZ_KEYS):
                raise bad_file(path, f"npz keys are {sorted(z.files)}, expected {list(NPZ_KEYS)}")
            size = sum(i.file_size for i in z.zip.infolist())
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
