"""Datasets: registry, locating files, IDX / Keras npz readers, MD5 checks, preprocessing.

Search order for a dataset (first hit wins): the `data_dir` argument
(--data-dir) → $BNLAB_DATA_DIR → caches (~/.cache/bnlab, torchvision, Keras) →
system paths (/usr/share/datasets) → download into ~/.cache/bnlab (unless
BNLAB_OFFLINE=1). Every problem is a one-line DataError naming the file and the fix.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

FIX = "set BNLAB_DATA_DIR or pass --data-dir to a folder with valid files"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    md5: dict            # file name (uncompressed) -> MD5 of its uncompressed bytes
    mirrors: tuple[str, ...]
    torchvision: str     # torchvision's folder name
    system: tuple[str, ...]
    keras_npz: str | None = None


DATASETS = {
    "mnist": DatasetInfo(
        "mnist",
        {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
         "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
         "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
         "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        "MNIST", ("/usr/share/datasets/mnist",), "mnist.npz"),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        {"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
         "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
         "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
         "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"},
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "FashionMNIST", ("/usr/share/datasets/fashion-mnist",)),
}
N_TRAIN, N_TEST, SIDE, CLASSES = 60000, 10000, 28, 10


@dataclass(frozen=True)
class Dataset:
    """Preprocessed arrays: images float32 in [0, 1] flattened to 784, labels int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    n_classes: int = CLASSES

    @property
    def in_dim(self) -> int:
        return self.x_train.shape[1]


# ---------------------------------------------------------------- readers

def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip ({e}); delete it and re-download, or {FIX}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror}); {FIX}") from None


def _parse_idx(buf: bytes, path) -> np.ndarray:
    if len(buf) < 4:
        raise DataError(f"{path}: truncated IDX header; delete it and re-download, or {FIX}")
    zero, dtype, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path}: wrong IDX magic {buf[:4].hex()} (want 00000801 or 00000803, unsigned bytes); "
                        f"delete it and re-download, or {FIX}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path}: truncated IDX header; delete it and re-download, or {FIX}")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    if len(buf) - header != int(np.prod(dims)):
        raise DataError(f"{path}: IDX body has {len(buf) - header} bytes, dims {list(dims)} need {int(np.prod(dims))}; "
                        f"delete it and re-download, or {FIX}")
    return np.frombuffer(buf, np.uint8, offset=header).reshape(dims)


def read_idx(path) -> np.ndarray:
    """An IDX file (gzipped or raw) as a uint8 array."""
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    buf = struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    Path(path).write_bytes(gzip.compress(buf, compresslevel=1) if str(path).endswith(".gz") else buf)


def read_keras_npz(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras's mnist.npz: (x_train, y_train, x_test, y_test) as uint8."""
    path = Path(path)
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{path}: not a Keras MNIST npz (missing keys {missing}, has {z.files}); {FIX}")
            return tuple(z[k] for k in keys)
    except DataError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError: all mean an unreadable file
        raise DataError(f"{path}: unreadable npz ({e}); delete it and re-download, or {FIX}") from None


# ---------------------------------------------------------------- checks

def _check(name: str, arrays: tuple, where: str) -> None:
    x_tr, y_tr, x_te, y_te = arrays
    for label, x, y, n in (("train", x_tr, y_tr, N_TRAIN), ("test", x_te, y_te, N_TEST)):
        if x.shape != (n, SIDE, SIDE) or y.shape != (n,):
            raise DataError(f"{where}: {name} {label} images {x.shape} / labels {y.shape}, expected "
                            f"({n}, {SIDE}, {SIDE}) / ({n},); delete the files and re-download, or {FIX}")
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{where}: {name} {label} arrays must be uint8, got {x.dtype}/{y.dtype}; {FIX}")
        if y.max() >= CLASSES:
            raise DataError(f"{where}: {name} {label} labels go up to {int(y.max())}, expected 0..{CLASSES - 1}; "
                            f"delete the files and re-download, or {FIX}")


def _find_file(folder: Path, base: str) -> Path | None:
    for cand in (folder / base, folder / f"{base}.gz"):
        if cand.is_file():
            return cand
    return None


def _read_idx_set(info: DatasetInfo, folder: Path) -> tuple:
    out = []
    for base in FILES:
        path = _find_file(folder, base)
        buf = _read_bytes(path)
        digest = hashlib.md5(buf).hexdigest()
        if digest != info.md5[base]:
            raise DataError(f"{path}: MD5 {digest} does not match the canonical {info.md5[base]}; delete the corrupt "
                            f"file and re-download it, or {FIX}")
        out.append(_parse_idx(buf, path))
    return tuple(out)


# ---------------------------------------------------------------- locating

def _candidates(info: DatasetInfo, root: Path) -> list[Path]:
    """Places under one root where the dataset may live: ROOT/name, ROOT itself, torchvision's ROOT/X/raw."""
    return [root / info.name, root, root / info.torchvision / "raw"]


def _has_idx(folder: Path) -> bool:
    return all(_find_file(folder, b) for b in FILES)


def _search(info: DatasetInfo) -> tuple[str, Path] | None:
    """('idx', folder) or ('npz', file) for the first hit, or None."""
    roots = []
    if os.environ.get("BNLAB_DATA_DIR"):
        roots.append(Path(os.environ["BNLAB_DATA_DIR"]).expanduser())
    home = Path.home()
    roots += [home / ".cache" / "bnlab", home / ".cache" / "torchvision"]
    for root in roots:
        for folder in _candidates(info, root):
            if _has_idx(folder):
                return "idx", folder
    keras = home / ".keras" / "datasets"
    if info.keras_npz and (keras / info.keras_npz).is_file():
        return "npz", keras / info.keras_npz
    for folder in [keras / info.name, *map(Path, info.system)]:
        if _has_idx(folder):
            return "idx", folder
    return None


def _download(info: DatasetInfo, progress: bool) -> Path:
    """Fetch the four gz files into ~/.cache/bnlab/NAME, each via a temp file renamed when complete."""
    dest = Path.home() / ".cache" / "bnlab" / info.name
    dest.mkdir(parents=True, exist_ok=True)
    errors = []
    for base in FILES:
        if _find_file(dest, base):
            continue
        for mirror in info.mirrors:
            try:
                with urllib.request.urlopen(mirror + base + ".gz", timeout=15) as r:
                    blob = _fetch(r, f"{info.name} {base}", progress)
                if hashlib.md5(gzip.decompress(blob)).hexdigest() != info.md5[base]:
                    raise ValueError("MD5 mismatch")
                fd, tmp = tempfile.mkstemp(dir=dest, suffix=".part")
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, dest / f"{base}.gz")
                break
            except Exception as e:  # network, HTTP, gzip, MD5: try the next mirror
                errors.append(f"{mirror}: {e}")
        else:
            raise DataError(f"could not download {info.name} {base} ({'; '.join(errors)}); {FIX}")
    return dest


def _fetch(response, label: str, progress: bool) -> bytes:
    total = int(response.headers.get("Content-Length") or 0) or None
    if not progress:
        return response.read()
    from rich.progress import Progress

    chunks = []
    with Progress(transient=True) as bar:
        task = bar.add_task(f"download {label}", total=total)
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            bar.advance(task, len(chunk))
    return b"".join(chunks)


def _preprocess(name: str, arrays: tuple, source: str) -> Dataset:
    x_tr, y_tr, x_te, y_te = arrays
    f = lambda x: (x.reshape(len(x), -1).astype(np.float32) / 255.0)
    ds = Dataset(name, f(x_tr), y_tr.astype(np.int64), f(x_te), y_te.astype(np.int64), source)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        a.flags.writeable = False
    return ds


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, kind: str, path: str) -> Dataset:
    info = DATASETS[name]
    arrays = read_keras_npz(path) if kind == "npz" else _read_idx_set(info, Path(path))
    _check(name, arrays, path)
    return _preprocess(name, arrays, path)


def locate(name: str, data_dir=None, *, download: bool | None = None, progress: bool = True) -> tuple[str, Path]:
    """Where `name` is: ('idx', folder) or ('npz', file); downloads if allowed and nowhere found."""
    if name not in DATASETS:
        raise ConfigError(f"dataset = {name!r} is not allowed; choose one of: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"--data-dir {root} does not exist; pass an existing folder holding {name}/")
        for folder in _candidates(info, root):
            if _has_idx(folder):
                return "idx", folder
        if info.keras_npz and (root / info.keras_npz).is_file():
            return "npz", root / info.keras_npz
        raise DataError(f"--data-dir {root} has no {name} files ({root / name}/{FILES[0]}[.gz] and the other three); "
                        f"put them there or pass another --data-dir")
    found = _search(info)
    if found:
        return found
    if download is None:
        download = os.environ.get("BNLAB_OFFLINE", "") not in ("1", "true", "yes")
    looked = "$BNLAB_DATA_DIR, ~/.cache/bnlab, ~/.cache/torchvision, ~/.keras/datasets, " + ", ".join(info.system)
    if not download:
        raise DataError(f"{name} not found (looked in {looked}; download disabled by BNLAB_OFFLINE); {FIX}")
    try:
        return "idx", _download(info, progress)
    except DataError as e:
        raise DataError(f"{name} not found (looked in {looked}) and {e}") from None


def load(name: str = "mnist", data_dir=None, *, download: bool | None = None, progress: bool = True) -> Dataset:
    """The preprocessed dataset, cached in-process (arrays are read-only)."""
    kind, path = locate(name, data_dir, download=download, progress=progress)
    return _load_cached(name, kind, str(path.resolve()))
