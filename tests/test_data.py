"""Dataset files: IDX round trips, every corruption a one-line DataError naming the file, search order,
download."""

import dataclasses
import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from bnlab import data as D
from bnlab import datafiles as F
from bnlab.errors import ConfigError, DataError

REAL = os.environ.get("BNLAB_DATA_DIR", "")  # read before the fixture below clears it
FASHION = Path("/usr/share/datasets/fashion-mnist")
N_TRAIN, N_TEST = 30, 10


@pytest.fixture(autouse=True)
def isolated(offline_data):
    """Every test here runs offline, with a private registry (conftest.offline_data)."""


def arrays(seed=0, labels_max=9, n_train=N_TRAIN, n_test=N_TEST):
    """Small uint8 arrays in FILES order."""
    rng = np.random.default_rng(seed)
    return {
        D.FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        D.FILES[1]: rng.integers(0, labels_max + 1, n_train, dtype=np.uint8),
        D.FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        D.FILES[3]: rng.integers(0, labels_max + 1, n_test, dtype=np.uint8),
    }


def fake_set(folder: Path, gz=True, **kw) -> dict:
    """Write four IDX files under their canonical names; returns {file: MD5 of decompressed content}."""
    folder.mkdir(parents=True, exist_ok=True)
    md5 = {}
    for base, a in arrays(**kw).items():
        F.write_idx(folder / (base + (".gz" if gz else "")), a)
        md5[base] = hashlib.md5(F.read_bytes(folder / (base + (".gz" if gz else "")))).hexdigest()
    return md5


def register(name="mnist", **changes):
    """Swap the registry entry for one that accepts the small fake files (no system folders)."""
    D.DATASETS[name] = dataclasses.replace(
        D.DATASETS[name], n_train=N_TRAIN, n_test=N_TEST, system_dirs=(), **changes
    )


def raises_data_error(path, match, fn, *args, **kw):
    with pytest.raises(DataError, match=match) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "fix:" in msg, msg
    return msg


# ---------------------------------------------------------------- readers


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    for a in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.arange(7, dtype=np.uint8)):
        F.write_idx(tmp_path / f"x{suffix}", a)
        b = F.read_idx(tmp_path / f"x{suffix}")
        assert b.dtype == np.uint8 and np.array_equal(b, a)


def test_truncated_and_corrupt_gz(tmp_path):
    F.write_idx(tmp_path / "x.gz", arrays()[D.FILES[0]])
    blob = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "c.gz").write_bytes(blob[:10] + bytes(b ^ 0x5A for b in blob[10:-8]) + blob[-8:])
    raises_data_error(tmp_path / "t.gz", "truncated gzip", F.read_idx, tmp_path / "t.gz")
    raises_data_error(tmp_path / "c.gz", "corrupt", F.read_idx, tmp_path / "c.gz")


def test_wrong_magic_and_size(tmp_path):
    (tmp_path / "m").write_bytes(b"\x00\x00\x0d\x03" + bytes(20))  # dtype code 0x0d (float), not uint8
    raises_data_error(tmp_path / "m", "not a uint8 IDX file", F.read_idx, tmp_path / "m")
    (tmp_path / "p").write_bytes(b"PK\x03\x04" + bytes(20))
    raises_data_error(tmp_path / "p", "magic 504b0304", F.read_idx, tmp_path / "p")
    F.write_idx(tmp_path / "s", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "s").write_bytes((tmp_path / "s").read_bytes()[:-5])
    raises_data_error(tmp_path / "s", r"need 3136 bytes of data, found 3131", F.read_idx, tmp_path / "s")


def test_keras_npz(tmp_path, monkeypatch):
    a = list(arrays().values())
    npz = tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, x_train=a[0], y_train=a[1], x_test=a[2], y_test=a[3])
    register(keras_md5=hashlib.md5(npz.read_bytes()).hexdigest())
    ds = D.load("mnist")
    assert ds.source == str(npz.resolve()) and np.array_equal(ds.y_test, a[3].astype(np.int64))
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=a[0], labels=a[1])
    raises_data_error(bad, r"npz keys are \['images', 'labels'\]", F.read_keras_npz, bad)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    raises_data_error(tmp_path / "junk.npz", "corrupt npz", F.read_keras_npz, tmp_path / "junk.npz")
    np.savez(npz, x_train=a[0], y_train=a[1], x_test=a[2], y_test=a[3] + 1)  # changed: MD5 no longer matches
    D._read.cache_clear()
    raises_data_error(npz, "MD5 of the content", D.load, "mnist")


# ---------------------------------------------------------------- checks in load


def test_wrong_md5_names_the_file(tmp_path):
    fake_set(tmp_path / "mnist")  # well-formed, canonical names, real registry entry
    msg = raises_data_error(
        tmp_path / "mnist" / "train-images-idx3-ubyte.gz", r"expected 6bbc9ace", D.load, "mnist", tmp_path
    )
    assert "re-download" in msg and "BNLAB_DATA_DIR" in msg


def test_checks_after_md5(tmp_path):
    """With the MD5 table set to the fake files' sums, the structural checks still catch bad content."""
    register(md5=fake_set(tmp_path / "labels" / "mnist", labels_max=10, seed=3))
    raises_data_error(
        tmp_path / "labels" / "mnist" / "train-labels-idx1-ubyte.gz",
        r"labels must be in 0\.\.9",
        D.load,
        "mnist",
        tmp_path / "labels",
    )
    folder = tmp_path / "dims" / "mnist"
    md5 = fake_set(folder)
    F.write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((N_TEST, 28, 27), np.uint8))
    md5["t10k-images-idx3-ubyte"] = hashlib.md5(
        F.read_bytes(folder / "t10k-images-idx3-ubyte.gz")
    ).hexdigest()
    register(md5=md5)
    raises_data_error(
        folder / "t10k-images-idx3-ubyte.gz",
        r"shape \(10, 28, 27\), expected \(N, 28, 28\)",
        D.load,
        "mnist",
        tmp_path / "dims",
    )
    register(md5=fake_set(tmp_path / "count" / "mnist", n_test=N_TEST + 1))
    raises_data_error(
        tmp_path / "count" / "mnist" / "t10k-images-idx3-ubyte.gz",
        "11 images and 11 labels",
        D.load,
        "mnist",
        tmp_path / "count",
    )


def test_preprocessing_read_only_cached_and_subset(tmp_path):
    register(md5=fake_set(tmp_path / "mnist", gz=False))
    ds = D.load("mnist", tmp_path)
    a = arrays()
    assert ds.x_train.shape == (N_TRAIN, 784) and ds.x_train.dtype == np.float32 and ds.in_dim == 784
    assert np.array_equal(ds.x_train, a[D.FILES[0]].reshape(N_TRAIN, 784).astype(np.float32) / 255)
    assert ds.y_train.dtype == np.int64 and np.array_equal(ds.y_train, a[D.FILES[1]])
    assert all(not x.flags.writeable for x in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    assert D.load("mnist", tmp_path) is ds
    sub = ds.subset(5)
    assert sub.x_train.shape == (5, 784) and len(sub.y_test) == N_TEST and not sub.x_train.flags.writeable
    with pytest.raises(ConfigError, match=rf"train_limit = 0 .* choose 1\.\.{N_TRAIN}"):
        ds.subset(n_train=0)
    with pytest.raises(ConfigError, match=rf"test_limit = {N_TEST + 1} .* choose 1\.\.{N_TEST}"):
        ds.subset(n_test=N_TEST + 1)
    with pytest.raises(ConfigError, match="dataset = 'cifar'"):
        D.load("cifar")


# ---------------------------------------------------------------- where files are found


def test_search_order(tmp_path, monkeypatch):
    md5 = fake_set(tmp_path / "explicit" / "mnist")
    assert fake_set(tmp_path / "env" / "MNIST" / "raw", gz=False) == md5  # torchvision layout, raw files
    register(md5=md5)
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "env"))
    assert D.load("mnist", tmp_path / "explicit").source == str((tmp_path / "explicit" / "mnist").resolve())
    assert D.load("mnist").source == str((tmp_path / "env" / "MNIST" / "raw").resolve())
    assert D.load("mnist", tmp_path / "explicit" / "mnist").source.endswith(
        "explicit/mnist"
    )  # dataset folder itself
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "empty"))  # lacks mnist: falls through ...
    cache = tmp_path / "home" / ".cache" / "torchvision" / "MNIST" / "raw"
    fake_set(cache)
    assert D.load("mnist").source == str(cache.resolve())  # ... to the caches
    fake_set(tmp_path / "home" / ".cache" / "bnlab" / "mnist")
    assert D.load("mnist").source.endswith(".cache/bnlab/mnist")  # bnlab's cache before torchvision's
    with pytest.raises(DataError, match=r"--data-dir .*empty has no mnist files .*fix:") as e:
        D.load("mnist", tmp_path / "empty")  # explicit: never falls through
    assert "\n" not in str(e.value)


def test_dataset_folder_as_root_is_not_another_dataset(tmp_path):
    """A root that *is* an mnist folder does not pass for fashion-mnist (the file names are the same)."""
    register(md5=fake_set(tmp_path / "mnist"))
    register("fashion-mnist")
    with pytest.raises(DataError, match="has no fashion-mnist files"):
        D.load("fashion-mnist", tmp_path / "mnist")


def test_offline_lists_the_places_searched(tmp_path, monkeypatch):
    register()
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError, match="downloads are off") as e:
        D.load("mnist")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "env" / "mnist") in msg and ".keras/datasets/mnist.npz" in msg
    assert "BNLAB_DATA_DIR" in msg and "--data-dir" in msg


# ---------------------------------------------------------------- download


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served/."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(Quiet, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_from_local_mirror(tmp_path, mirror):
    served, url = mirror
    md5 = fake_set(served)
    register(md5=md5, mirrors=(url + "missing/", url))  # first mirror 404s, second serves
    ds = D.load("mnist", download=True, progress=True)
    cache = tmp_path / "home" / ".cache" / "bnlab" / "mnist"
    assert ds.source == str(cache.resolve()) and ds.x_train.shape == (N_TRAIN, 784)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f + ".gz" for f in D.FILES)  # no .part left


def test_failed_download_leaves_nothing_and_lists_places(tmp_path, mirror, monkeypatch):
    served, url = mirror
    fake_set(served)  # served files do not match the registry's MD5s
    register(mirrors=(url, url + "missing/"))
    monkeypatch.delenv("BNLAB_OFFLINE")  # download=None: allowed when not offline
    with pytest.raises(DataError, match="mnist not found and the download failed") as e:
        D.load("mnist", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "MD5" in msg and "404" in msg and ".cache/torchvision/MNIST/raw" in msg
    assert "BNLAB_DATA_DIR" in msg
    assert not any((tmp_path / "home" / ".cache" / "bnlab" / "mnist").iterdir())


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(
    not (REAL and D._has_files(Path(REAL, "mnist"))),
    reason="real MNIST not found: set BNLAB_DATA_DIR to a folder holding mnist/",
)
def test_real_mnist(monkeypatch):
    monkeypatch.setenv("BNLAB_DATA_DIR", REAL)
    ds = D.load("mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert ds.y_train.dtype == np.int64 and np.bincount(ds.y_train)[0] == 5923
    assert sorted(np.unique(ds.y_test)) == list(range(10))


@pytest.mark.skipif(
    not D._has_files(FASHION), reason=f"Fashion-MNIST not in {FASHION} (Debian dataset-fashion-mnist)"
)
def test_real_fashion_mnist():
    ds = D.load("fashion-mnist", download=False)
    assert ds.source == str(FASHION.resolve())
    assert ds.x_test.shape == (10000, 784) and np.bincount(ds.y_train).tolist() == [6000] * 10
