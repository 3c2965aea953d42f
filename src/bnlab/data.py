"""Datasets: registry, file location, download, preprocessing (the file readers: bnlab.datafiles).

Where a dataset is looked for, first hit wins:
  1. `data_dir` (the CLI's --data-dir); if given and the dataset is not there: DataError
  2. $BNLAB_DATA_DIR (falls through when the dataset is absent)
  3. caches: ~/.cache/bnlab/<name>/, ~/.cache/torchvision/<TV>/raw/, ~/.keras/datasets/
  4. system folders (Debian: /usr/share/datasets/<name>)
  5. download into ~/.cache/bnlab/<name>/ (unless download=False or BNLAB_OFFLINE=1)
A root folder (1, 2) may hold `<name>/`, a torchvision `<TV>/raw/`, or the four files directly.
Every file is checked: MD5 of its decompressed bytes, IDX header, shapes, counts, label range.
Reading stops at the size a file can have (a registered IDX file: its expected size + SIZE_MARGIN;
any other: datafiles.MAX_FILE_BYTES), so a gzip bomb fails as fast as a good file loads. A download stops
at DOWNLOAD_DEADLINE_S for all its files together. `available(name)` says whether load would find
the files without downloading (for tests that need real data).
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import environment
from .datafiles import bad_file, check_md5, parse_idx, read_bytes, read_keras_npz
from .errors import ConfigError, DataError
from .reading import content

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TIMEOUT_S = 15  # one connection or read
DOWNLOAD_DEADLINE_S = 600  # a whole download: every file, every mirror
SIZE_MARGIN = 1 << 16  # bytes a registered IDX file may exceed its expected size by before reading stops


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives and what its files must be."""

    name: str
    md5: dict[str, str]  # file name in FILES -> MD5 of its decompressed bytes
    mirrors: tuple[str, ...]  # base URLs serving FILES + ".gz"
    torchvision: str  # torchvision's folder name (<root>/<torchvision>/raw/)
    system_dirs: tuple[str, ...] = ()  # read-only folders a package manager installs
    keras_npz: str | None = None  # file name under ~/.keras/datasets/
    keras_md5: str | None = None
    n_train: int = 60000
    n_test: int = 10000
    n_classes: int = 10


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        dict(
            zip(
                FILES,
                (
                    "6bbc9ace898e44ae57da46a324031adb",
                    "a25bea736e30d166cdddb491f175f624",
                    "2646ac647ad5339dbf082846283269ea",
                    "27ae3e4e09519cfbb04c329615203637",
                ),
            )
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        "MNIST",
        ("/usr/share/datasets/mnist",),
        "mnist.npz",
        "8a61469f7ea1b51cbae51d4f78837e45",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        dict(
            zip(
                FILES,
                (
                    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    "9018921c3c673c538a1fc5bad174d6f9",
                    "8181f5470baa50b63fa0f6fddb340f0a",
                    "15d484375f8d13e6eb1aabb0c3f46965",
                ),
            )
        ),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "FashionMNIST",
        ("/usr/share/datasets/fashion-mnist",),
    ),
}


@dataclass(frozen=True)
class Dataset:
    """Preprocessed arrays (read-only): x float32 [N, 784] in [0, 1], y int64 [N]."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    n_classes: int = 10

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first n_train / n_test rows (None = all)."""
        for field, n, avail in (
            ("train_limit", n_train, len(self.y_train)),
            ("test_limit", n_test, len(self.y_test)),
        ):
            if n is not None and (
                isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= avail
            ):
                raise ConfigError(
                    f"{field} = {n!r} is out of range for {self.name}: choose 1..{avail}, "
                    "or leave it unset for all"
                )
        return replace(
            self,
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )


def _expected_size(info: DatasetInfo, base: str) -> int:
    """Bytes of the IDX file `base` of `info`: its header and n images of 28 × 28, or n labels."""
    n = info.n_train if base.startswith("train") else info.n_test
    return 16 + n * 28 * 28 if "images" in base else 8 + n


def _check_split(info: DatasetInfo, x, y, x_path, y_path, n: int) -> None:
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise bad_file(x_path, f"images have shape {x.shape}, expected (N, 28, 28)")
    if y.ndim != 1:
        raise bad_file(y_path, f"labels have shape {y.shape}, expected (N,)")
    if len(x) != n or len(y) != n:
        raise bad_file(x_path, f"{len(x)} images and {len(y)} labels (in {y_path}), expected {n} of each")
    if len(y) and (y.min() < 0 or y.max() >= info.n_classes):
        raise bad_file(
            y_path, f"labels must be in 0..{info.n_classes - 1}, found {int(y.min())}..{int(y.max())}"
        )


def _prepare(a: np.ndarray, images: bool) -> np.ndarray:
    """As the original Keras study: images flattened, float32 / 255; labels int64. Read-only."""
    a = a.reshape(len(a), -1).astype(np.float32) / 255 if images else a.astype(np.int64)
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=4)
def _read(name: str, source: str) -> Dataset:
    """Read and check dataset `name` at `source` (a folder of IDX files, or a .npz file)."""
    info, src = DATASETS[name], Path(source)
    arrays: tuple[np.ndarray, ...]
    paths: tuple[Path, ...]
    if src.suffix == ".npz":
        check_md5(src, read_bytes(src), info.keras_md5)
        arrays, paths = read_keras_npz(src), (src,) * 4
    else:
        paths = tuple(_find(src, f) or src / f for f in FILES)  # the caller found them all
        idx = []
        for p, base in zip(paths, FILES):
            raw = read_bytes(p, _expected_size(info, base) + SIZE_MARGIN)
            check_md5(p, raw, info.md5[base])
            idx.append(parse_idx(raw, p))
        arrays = tuple(idx)
    _check_split(info, arrays[0], arrays[1], paths[0], paths[1], info.n_train)
    _check_split(info, arrays[2], arrays[3], paths[2], paths[3], info.n_test)
    xtr, ytr, xte, yte = (_prepare(a, i % 2 == 0) for i, a in enumerate(arrays))
    return Dataset(info.name, xtr, ytr, xte, yte, source, info.n_classes)


def _find(folder: Path, base: str) -> Path | None:
    """folder/base, else folder/base.gz, else None."""
    for p in (folder / base, folder / f"{base}.gz"):
        if p.is_file():
            return p
    return None


def _has_files(folder: Path) -> bool:
    return all(_find(folder, f) for f in FILES)


def _holds_other(folder: Path, info: DatasetInfo) -> bool:
    """True when folder's train labels are another registered dataset's (a dataset folder given as root)."""
    limit = max(_expected_size(o, FILES[1]) for o in DATASETS.values()) + SIZE_MARGIN
    try:
        labels = _find(folder, FILES[1]) or folder / FILES[1]  # the caller found it
        got = hashlib.md5(read_bytes(labels, limit)).hexdigest()
    except DataError:
        return False
    return any(got == o.md5[FILES[1]] for o in DATASETS.values() if o.name != info.name)


def _in_root(root: Path, info: DatasetInfo, searched: list[str]) -> Path | None:
    """The dataset folder inside a root: <name>/, <TV>/raw/, or the root itself."""
    for d in (root / info.name, root / info.torchvision / "raw", root):
        searched.append(str(d))
        if _has_files(d) and not (d == root and _holds_other(d, info)):
            return d
    return None


def _cached(info: DatasetInfo, searched: list[str]) -> Path | None:
    """Known caches and system folders."""
    home = Path.home()
    places = [
        home / ".cache" / "bnlab" / info.name,
        home / ".cache" / "torchvision" / info.torchvision / "raw",
    ]
    if info.keras_npz:
        places.append(home / ".keras" / "datasets" / info.keras_npz)
    places += [home / ".keras" / "datasets" / info.name, *map(Path, info.system_dirs)]
    for p in places:
        searched.append(str(p))
        if (p.suffix == ".npz" and p.is_file()) or (p.suffix != ".npz" and _has_files(p)):
            return p
    return None


class _Deadline(Exception):
    """The download ran past DOWNLOAD_DEADLINE_S."""


def _fetch(url: str, dest: Path, want_md5: str, limit: int, deadline: float, bar, task) -> None:
    """Download url to dest via a temp file; dest appears only when whole, at most `limit` bytes
    (compressed and decompressed) and MD5-verified; _Deadline past `deadline` (time.monotonic())."""
    late = _Deadline(
        f"not done within the download's time limit of {DOWNLOAD_DEADLINE_S:g} s "
        "(bnlab.data.DOWNLOAD_DEADLINE_S)"
    )
    if time.monotonic() > deadline:
        raise late
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        timeout = min(TIMEOUT_S, deadline - time.monotonic())
        with os.fdopen(fd, "w+b") as f, urllib.request.urlopen(url, timeout=max(timeout, 0.1)) as r:
            bar.update(task, total=int(r.headers.get("Content-Length") or 0) or None, completed=0)
            while chunk := r.read1(
                1 << 16
            ):  # what has arrived: a trickle cannot hold a read past the deadline
                if time.monotonic() > deadline:
                    raise late
                if f.tell() + len(chunk) > limit:
                    raise ValueError(f"the server sent more than {limit:,} bytes")
                f.write(chunk)
                bar.advance(task, len(chunk))
            f.seek(0)
            try:
                got = hashlib.md5(content(f, limit)).hexdigest()
            except (EOFError, OSError, zlib.error) as e:
                raise ValueError(f"not a valid gzip file ({e})") from None
        if got != want_md5:
            raise ValueError(f"MD5 of the content is {got}, expected {want_md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _download(info: DatasetInfo, progress: bool) -> tuple[Path | None, list[str]]:
    """Fetch the missing files into ~/.cache/bnlab/<name>/ within DOWNLOAD_DEADLINE_S; (folder or
    None, errors)."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    dest = Path.home() / ".cache" / "bnlab" / info.name
    errors: list[str] = []
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return None, [f"cannot create {dest} ({e})"]
    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not progress) as bar:
        for base in FILES:
            if _find(dest, base):
                continue
            task = bar.add_task(f"{info.name} {base}", total=None)
            for mirror in info.mirrors:
                url = f"{mirror}{base}.gz"
                try:
                    _fetch(
                        url,
                        dest / f"{base}.gz",
                        info.md5[base],
                        _expected_size(info, base) + SIZE_MARGIN,
                        deadline,
                        bar,
                        task,
                    )
                    break
                except _Deadline as e:
                    return None, [*errors, f"{url}: {e}"]
                except (OSError, ValueError, http.client.HTTPException) as e:
                    errors.append(f"{url}: {' '.join(str(e).split())}")
            else:
                return None, errors
    return dest, errors


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"dataset = {name!r} is not known; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def _locate(info: DatasetInfo, data_dir, searched: list[str]) -> Path | None:
    """The dataset's folder (or .npz) in data_dir if given, else in $BNLAB_DATA_DIR or the caches;
    None if absent."""
    try:
        if data_dir is not None:
            return _in_root(Path(data_dir).expanduser(), info, searched)
        env = environment.data_dir()
        return (_in_root(env, info, searched) if env else None) or _cached(info, searched)
    except OSError as e:  # a name too long, a folder we may not read
        raise DataError(
            f"cannot look for {info.name} in {e.filename or data_dir} ({e.strerror}); pass a --data-dir "
            "or BNLAB_DATA_DIR that is a readable folder"
        ) from None
    except RuntimeError:  # ~user of no such user
        raise DataError(
            f"--data-dir {data_dir}: no such user's home folder to expand; pass a folder path"
        ) from None


def available(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> bool:
    """True when load(name, data_dir) would find the files without downloading (their content is
    checked by load, not here). Tests that need real data skip on False."""
    return _locate(_info(name), data_dir, []) is not None


def load(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
    progress: bool = True,
) -> Dataset:
    """Find, check and preprocess a dataset (cached in-process; arrays are read-only).

    download=None downloads unless BNLAB_OFFLINE=1.
    """
    info = _info(name)
    searched: list[str] = []
    fix = (
        f"set BNLAB_DATA_DIR or pass --data-dir to a folder holding {name}/ with the files "
        f"{', '.join(FILES)} (.gz or raw)"
    )
    found = _locate(info, data_dir, searched)
    if found is None and data_dir is not None:
        missing = "" if Path(data_dir).expanduser().is_dir() else ": the folder does not exist"
        raise DataError(
            f"--data-dir {data_dir} has no {name} files{missing} (looked in {', '.join(searched)}); "
            f"fix: put the files in {Path(data_dir) / name}/ or pass a --data-dir that has them"
        )
    if found is None:
        if download is None:
            download = not environment.offline()
        if not download:
            raise DataError(
                f"{name} not found and downloads are off (download=False or BNLAB_OFFLINE=1); "
                f"looked in: {', '.join(searched)}; fix: {fix}"
            )
        found, errors = _download(info, progress)
        if found is None:
            raise DataError(
                f"{name} not found and the download failed ({'; '.join(errors)}); "
                f"looked in: {', '.join(searched)}; fix: {fix}"
            )
    return _read(name, str(found.resolve()))
