"""Reading a file, bounded: the one rule every reader of a file in bnlab follows.

    check_file(path, limit, fail)   a regular file of at most `limit` bytes (for a library that opens the
                                    path itself: numpy, pandas); its os.stat_result
    read_bytes(path, limit, fail)   its bytes, at most `limit` (gunzipped first with gunzip=True: reading
                                    stops at `limit`, so a gzip bomb is never decompressed whole)
    read_text(path, limit, fail)    its text, UTF-8

A folder, a device or pipe, a missing or unreadable file, one over its cap, a truncated or corrupt gzip
stream, bytes that are not UTF-8 and a file that changes while it is read are each one problem, a phrase
("holds more than 1,048,576 bytes (3,000,000)"); `fail(problem)` makes it the caller's one-line error
(a ConfigError or DataError naming the file and the fix), which is raised. Nothing here writes.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Fail = Callable[[str], Exception]  # a problem (a phrase) -> the caller's one-line error
GZIP_MAGIC = b"\x1f\x8b"


class Unreadable(Exception):
    """`fail` for a reader to which a file it cannot read counts as absent (a manifest, a mark)."""


def content(f: BinaryIO, limit: int, gunzip: bool = True) -> bytes:
    """An open file's bytes, gunzipped when they are gzip (by content, whatever the name) and `gunzip`.
    ValueError when there are more than `limit`: reading stops there. A broken gzip stream raises
    EOFError (truncated), OSError (bad CRC, not gzip) or zlib.error."""
    gz = gunzip and f.read(2) == GZIP_MAGIC
    f.seek(0)
    data = (gzip.GzipFile(fileobj=f) if gz else f).read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{'decompresses to' if gz else 'holds'} more than {limit:,} bytes")
    return data


def _regular(st: os.stat_result, limit: int | None, fail: Fail) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise fail("is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise fail("is not a regular file (a device, pipe or socket)")
    if limit is not None and st.st_size > limit:
        raise fail(f"holds more than {limit:,} bytes ({st.st_size:,})")


def check_file(path: str | Path, limit: int | None, fail: Fail) -> os.stat_result:
    """The stat of `path` when it is a regular file of at most `limit` bytes (None: any size);
    fail(problem) otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise fail("does not exist") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise fail(f"cannot be read ({getattr(e, 'strerror', None) or e})") from None
    _regular(st, limit, fail)
    return st


def read_bytes(path: str | Path, limit: int, fail: Fail, gunzip: bool = False) -> bytes:
    """The file's bytes (gunzipped when they are gzip and `gunzip`), at most `limit`; fail(problem) for a
    file that is not a regular one, is over `limit`, cannot be read, is a broken gzip stream or changed
    (size or modification time) while it was read."""
    cap = None if gunzip else limit  # a gzip file is capped as it decompresses: it says what it holds
    check_file(path, cap, fail)  # before open: opening a pipe would block
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            _regular(before, cap, fail)  # the file opened, should it have been replaced meanwhile
            data = content(f, limit, gunzip)
            after = os.fstat(f.fileno())
    except ValueError as e:
        raise fail(str(e)) from None
    except EOFError as e:
        raise fail(f"is a truncated gzip file ({e})") from None
    except (OSError, zlib.error) as e:
        raise fail(f"is unreadable or corrupt ({getattr(e, 'strerror', None) or e})") from None
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise fail("changed while bnlab read it; read it again once nothing writes to it")
    return data


def read_text(path: str | Path, limit: int, fail: Fail) -> str:
    """The file's text (UTF-8, an optional BOM dropped), at most `limit` bytes; fail(problem) as read_bytes,
    and for bytes that are not UTF-8 (the problem names the first bad byte's offset)."""
    raw = read_bytes(path, limit, fail)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise fail(f"is not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x})") from None
