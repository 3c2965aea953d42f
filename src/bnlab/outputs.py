"""Writing what bnlab produces without ever leaving a half-written file or losing the previous good one.

Every output (reports, figures, results.csv, runs.json, summaries, benchmark JSON, folded models)
goes to a temporary file in the target's folder, is flushed to disk, then renamed over the
target: a reader (or a crash, a SIGKILL, a full disk) sees the old file or the new one, never a
mix. Text is always UTF-8, whatever the locale.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ConfigError


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it replaces `path` atomically, on an
    error it is removed and `path` is left as it was. An OSError becomes one ConfigError line."""
    path = Path(path)
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
    except OSError as e:
        raise ConfigError(
            f"cannot write {path} ({e.strerror}); the previous file, if any, is unchanged"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


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
    or read-only parent folder. `what` names the option (e.g. '--json')."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file path such as {path / 'out'}")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: folder {parent} does not exist; create it or pass another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{what} {path} is not writable; pass another path")
    return path
