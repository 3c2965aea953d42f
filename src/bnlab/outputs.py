"""Writing what bnlab produces without ever leaving a half-written file or losing the previous good one.

Every output (reports, figures, results.csv, runs.json, summaries, benchmark JSON, folded models)
goes to a temporary file in the target's folder, is flushed to disk, then renamed over the
target: a reader (or a crash, a SIGKILL, a full disk) sees the old file or the new one, never a
mix. Text is always UTF-8, whatever the locale.

bnlab replaces only files it wrote. Each folder it writes into keeps a manifest (WRITTEN: each file's
name, size and SHA-256 as bnlab wrote it); a target that exists and is not in its folder's manifest with
that size and hash (a file of the user's, or one of bnlab's edited since) is refused in one line before
anything replaces it. A folder that a bnlab from before the manifest marked (STUDY_MARK, no manifest)
counts as bnlab's.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from . import reading
from .errors import ConfigError

WRITTEN = ".bnlab-written"  # the manifest of the files bnlab wrote into a folder
STUDY_MARK = ".bnlab-study"  # names the study whose outputs a folder holds (see folders.claim_folder)
MANIFEST_MAX_BYTES = 16 << 20


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it replaces `path` atomically, on an
    error it is removed and `path` is left as it was. An OSError becomes one ConfigError line."""
    path = Path(path)
    check_ours(path)
    _sweep(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise ConfigError(
            f"cannot write {path} ({e.strerror}); check the folder or pass another output"
        ) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _record(path)
    except OSError as e:
        raise ConfigError(
            f"cannot write {path} ({e.strerror}); the previous file, if any, is unchanged"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def _fingerprint(path: Path) -> list:
    """[size, SHA-256] of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return [path.stat().st_size, h.hexdigest()]


def _manifest(folder: Path) -> dict:
    """The folder's manifest, {} when it has none or it cannot be read as one."""
    try:
        data = json.loads(reading.read_text(folder / WRITTEN, MANIFEST_MAX_BYTES, reading.Unreadable))
    except (reading.Unreadable, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def ours(path: Path) -> bool:
    """Whether bnlab may replace `path`: it does not exist, or bnlab wrote it as it is now."""
    if not path.exists() and not path.is_symlink():
        return True
    if path.is_symlink() or not path.is_file():
        return False
    entry = _manifest(path.parent).get(path.name)
    if entry is None:
        return (path.parent / STUDY_MARK).is_file() and not (path.parent / WRITTEN).exists()
    try:
        return (
            isinstance(entry, list)
            and len(entry) == 2
            and entry[0] == path.stat().st_size
            and entry == _fingerprint(path)
        )
    except OSError:
        return False


def check_ours(path: Path) -> None:
    """Refuse, in one line, to replace a file bnlab did not write."""
    if not ours(path):
        raise ConfigError(
            f"{path} exists and was not written by bnlab (or was changed since); bnlab replaces only its "
            "own files: move it away or pass another output path"
        )


def _record(path: Path) -> None:
    """Add `path` as it is now to its folder's manifest (written atomically)."""
    folder = path.parent
    m = _manifest(folder)
    m[path.name] = _fingerprint(path)
    _sweep(folder / WRITTEN)
    fd, tmp = tempfile.mkstemp(prefix=f".{WRITTEN}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(m, f, indent=0, sort_keys=True)
        os.replace(tmp, folder / WRITTEN)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _sweep(path: Path) -> None:
    """Remove temporary files beside `path` left by writers that died mid-write (their pid is gone)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and not alive(int(pid)):
            tmp.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether process `pid` exists (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text(path: str | Path, text: str) -> None:
    """`text` as UTF-8 into `path`, atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a non-UTF-8 path stays readable


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """`writer(tmp)` fills a temporary file that then replaces `path` atomically (figures, torch.save)."""
    with replacing(path) as tmp:
        writer(tmp)


def check_target(path: str | Path, what: str) -> Path:
    """Refuse, before any work, an output file that cannot be written: a folder of that name, a missing
    or read-only parent folder, a file bnlab did not write. `what` names the option (e.g. '--json')."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file path such as {path / 'out'}")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: folder {parent} does not exist; create it or pass another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{what} {path} is not writable; pass another path")
    check_ours(path)
    return path
