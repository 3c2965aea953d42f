"""Dataset files: IDX round trips, every corruption a one-line DataError naming the file, search order."""
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from bnlab import data as D
from bnlab.errors import DataError

SHAPES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
          "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real caches, env or network: HOME is empty, BNLAB_DATA_DIR unset, downloads off."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BNLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("BNLAB_OFFLINE", "1")
    monkeypatch.setattr(D, "DATASETS", {**D.DATASETS, "mnist": D.DatasetInfo(
        "mnist", D.DATASETS["mnist"].md5, (), "MNIST", (str(tmp_path / "nowhere"),), "mnist.npz")})
    D._load_cached.cache_clear()


def fake_set(folder: Path, gz=True, labels_max=9, seed=0):
    """Four well-formed IDX files of the real sizes; registers their MD5s as canonical."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    md5 = {}
    for name, shape in SHAPES.items():
        a = np.zeros(shape, np.uint8)                  # mostly zeros: quick to compress
        a[:50] = rng.integers(0, labels_max + 1 if "labels" in name else 256, a[:50].shape, dtype=np.uint8)
        D.write_idx(folder / (name + (".gz" if gz else "")), a)
        md5[name] = hashlib.md5(D._read_bytes(folder / (name + (".gz" if gz else "")))).hexdigest()
    return md5


def use_md5(monkeypatch, md5):
    info = D.DATASETS["mnist"]
    monkeypatch.setitem(D.DATASETS, "mnist", D.DatasetInfo(info.name, md5, info.mirrors, info.torchvision,
                                                           info.system, info.keras_npz))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    D.write_idx(tmp_path / f"x{suffix}", a)
    assert np.array_equal(D.read_idx(tmp_path / f"x{suffix}"), a)


def test_truncated_and_corrupt_gz(tmp_path):
    D.write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    blob = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "c.gz").write_bytes(blob[:10] + b"garbage!" * 20)
    for name in ("t.gz", "c.gz"):
        with pytest.raises(DataError, match=f"{tmp_path / name}: corrupt or truncated gzip.*delete it and re-download"):
            D.read_idx(tmp_path / name)


def test_wrong_magic_and_wrong_size(tmp_path):
    (tmp_path / "m").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match=f"{tmp_path / 'm'}: wrong IDX magic 00000d03"):
        D.read_idx(tmp_path / "m")
    D.write_idx(tmp_path / "s", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "s").write_bytes((tmp_path / "s").read_bytes()[:-5])
    with pytest.raises(DataError, match="IDX body has 3131 bytes, dims \\[4, 28, 28\\] need 3136"):
        D.read_idx(tmp_path / "s")


def test_wrong_md5_names_the_file(tmp_path):
    fake_set(tmp_path / "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: MD5 [0-9a-f]+ does not match the canonical "
                                        r"6bbc9ace.*delete the corrupt file and re-download"):
        D.load("mnist", tmp_path)


def test_labels_out_of_range_and_wrong_dims(tmp_path, monkeypatch):
    use_md5(monkeypatch, fake_set(tmp_path / "mnist", labels_max=10))
    with pytest.raises(DataError, match="labels go up to 10, expected 0..9"):
        D.load("mnist", tmp_path)
    D._load_cached.cache_clear()
    bad = tmp_path / "dims" / "mnist"
    md5 = fake_set(bad)
    D.write_idx(bad / "t10k-images-idx3-ubyte.gz", np.zeros((10000, 28, 27), np.uint8))
    md5["t10k-images-idx3-ubyte"] = hashlib.md5(D._read_bytes(bad / "t10k-images-idx3-ubyte.gz")).hexdigest()
    use_md5(monkeypatch, md5)
    with pytest.raises(DataError, match=r"mnist test images \(10000, 28, 27\)"):
        D.load("mnist", tmp_path / "dims")


def test_keras_npz(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((60000, 28, 28), np.uint8), y_train=np.zeros(60000, np.uint8),
             x_test=np.zeros((10000, 28, 28), np.uint8), y_test=np.ones(10000, np.uint8))
    ds = D.load("mnist", tmp_path)
    assert ds.x_test.shape == (10000, 784) and ds.y_test[0] == 1 and ds.source.endswith("mnist.npz")
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(DataError, match=r"bad.npz: not a Keras MNIST npz \(missing keys"):
        D.read_keras_npz(tmp_path / "bad.npz")


def test_search_order(tmp_path, monkeypatch):
    md5 = fake_set(tmp_path / "explicit" / "mnist", seed=1)
    md5_env = fake_set(tmp_path / "env" / "MNIST" / "raw", gz=False, seed=1)   # torchvision layout, raw files
    assert md5 == md5_env
    use_md5(monkeypatch, md5)
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "env"))
    assert D.load("mnist", tmp_path / "explicit").source == str((tmp_path / "explicit" / "mnist").resolve())
    assert D.load("mnist").source == str((tmp_path / "env" / "MNIST" / "raw").resolve())
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "empty"))              # lacks mnist: falls through
    with pytest.raises(DataError, match="mnist not found \\(looked in .*download disabled"):
        D.load("mnist")
    fake_set(Path(os.environ["HOME"]) / ".cache" / "bnlab" / "mnist", seed=1)
    assert ".cache/bnlab/mnist" in D.load("mnist").source
    with pytest.raises(DataError, match=f"--data-dir {tmp_path / 'empty'} does not exist"):
        D.load("mnist", tmp_path / "empty")                                   # explicit: never falls through


def test_download_from_local_mirror(tmp_path, monkeypatch):
    served = tmp_path / "served"
    md5 = fake_set(served, seed=2)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        info = D.DATASETS["mnist"]
        monkeypatch.setitem(D.DATASETS, "mnist", D.DatasetInfo(
            "mnist", md5, ("http://127.0.0.1:1/nothing/", f"http://127.0.0.1:{httpd.server_port}/"), "MNIST",
            info.system))
        ds = D.load("mnist", download=True, progress=False)
        assert ds.x_train.shape == (60000, 784)
        assert ds.source == str(Path(os.environ["HOME"], ".cache", "bnlab", "mnist").resolve())
        assert not list(Path(ds.source).glob("*.part"))
    finally:
        httpd.shutdown()
    D._load_cached.cache_clear()
    monkeypatch.setitem(D.DATASETS, "fashion-mnist", D.DatasetInfo(
        "fashion-mnist", md5, ("http://127.0.0.1:1/",), "FashionMNIST", ()))
    with pytest.raises(DataError, match="fashion-mnist not found .* could not download"):
        D.load("fashion-mnist", download=True, progress=False)


REAL = os.environ.get("BNLAB_DATA_DIR", "")


@pytest.mark.skipif(not Path(REAL, "mnist").is_dir(), reason="real MNIST not found: set BNLAB_DATA_DIR")
def test_real_mnist(monkeypatch):
    monkeypatch.undo()
    D._load_cached.cache_clear()
    ds = D.load("mnist", REAL)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train)[0] == 5923 and set(np.unique(ds.y_test)) == set(range(10))
    assert not ds.x_train.flags.writeable


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.undo()
    D._load_cached.cache_clear()
    ds = D.load("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and np.bincount(ds.y_train).tolist() == [6000] * 10
