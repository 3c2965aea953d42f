"""Bad input fails early with one line: field types, numbers as their declared type, bounds, resource
caps, study names, gzip bombs, download deadline, data availability. Small generated data only."""

import http.server
import threading
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import test_data as T
from bnlab import config as C
from bnlab import data as D
from bnlab import datafiles as F
from bnlab import studies
from bnlab.config import BOUNDS, Grid, RunSpec, check_bound, parse_seeds
from bnlab.errors import ConfigError, DataError
from bnlab.study import Study, dedupe


def one_line(exc) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    return msg


def study(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return lambda: studies.get(str(p))


# ---------------------------------------------------------------- every field's type, from its annotation

WRONG = {  # per declared scalar type: values of another type
    bool: [0.5, "false", 1, None],
    int: [True, 2.5, "3", None, 1e9],
    float: [True, "0.1", None, [1.0], float("nan")],
    str: [3, None, True, ["batch"]],
}


def wrong_values():
    for name, (kind, optional, many) in C.RULES.items():
        values = [v for v in WRONG[kind] if not (optional and v is None)]
        if many:  # a tuple of `kind`: a bare value, or a list holding a wrong element
            values = ["x", 3, *([v] for v in values if v is not None)]
        for v in values:
            yield pytest.param(name, v, id=f"{name}={v!r}")


@pytest.mark.parametrize("name, value", list(wrong_values()))
def test_every_field_refuses_a_wrong_type(name, value):
    with pytest.raises(ConfigError) as e:
        RunSpec(**{name: value})
    assert one_line(e).startswith(name), str(e.value)


def test_every_field_has_a_rule():
    """Numbers have BOUNDS of their annotation's kind, strings their CHOICES: a new field cannot slip
    through."""
    for name, (kind, _, _) in C.RULES.items():
        if kind in (int, float):
            assert BOUNDS[name].integer == (kind is int), name
        elif kind is str:
            assert name in C.CHOICES, name
        else:
            assert kind is bool, name


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[base]\nnorm = "batch"\nnoise = 0.5\n', "noise must be true or false, got 0.5"),
        ('[base]\nnorm = "batch"\nnoise = "false"\n', "noise must be true or false, got 'false'"),
        ('[grid]\nnorm = ["none", "batch"]\nnoise = [0, 1]\n', "noise must be true or false, got 0"),
        ("[base]\nepochs = 2.0\n", "epochs must be an integer"),
        ("[base]\nhidden = [128, 64.5]\n", r"hidden must be an integer >= 1, got 64.5"),
        ('[base]\nfinal_probes = "inference"\n', "final_probes must be a list"),
        ('[base]\nprobes = ["ics", "colour"]\nprobe_every = 5\n', r"probes = 'colour' is not allowed"),
        ("[base]\ntrain_limit = true\n", "train_limit must be an integer"),
    ],
)
def test_study_file_types(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        study(tmp_path, 'name = "mine"\n' + text)()
    assert one_line(e).startswith(str(tmp_path / "s.toml"))


# ---------------------------------------------------------------- one value, one spec


@pytest.mark.parametrize(
    "a, b",
    [
        (dict(init_scale=1), dict(init_scale=1.0)),
        (dict(lr=1), dict(lr=1.0)),
        (dict(optimizer="sgd", momentum=0), dict(optimizer="sgd", momentum=0.0)),
        (dict(batch_size=np.int64(16), lr=np.float32(0.5)), dict(batch_size=16, lr=0.5)),
        (dict(hidden=[100, 100]), dict(hidden=(100, 100))),
    ],
)
def test_numbers_are_stored_as_their_declared_type(a, b):
    x, y = RunSpec(**a), RunSpec(**b)
    assert x == y and x.config_hash() == y.config_hash() and x.run_id == y.run_id
    assert all(type(getattr(x, k)) is type(getattr(y, k)) for k in a)


def test_int_and_float_study_files_train_the_same_runs(tmp_path):
    ints = study(tmp_path, 'name = "a"\nseeds = 2\n[grid]\ninit_scale = [1, 3]\nlr = [1]\n')().specs()
    floats = Study("b", "", axes={"init_scale": (1.0, 3.0), "lr": (1.0,)}, seeds=2).specs()
    assert [(s.config_hash(), s.seed, s.run_id) for s in ints] == [
        (s.config_hash(), s.seed, s.run_id) for s in floats
    ]
    assert dedupe(ints + floats) == ints  # a store keyed on (config_hash, seed) trains them once
    with pytest.raises(ConfigError, match="repeats a value"):
        Grid({"init_scale": (1, 1.0)}).expand()


# ---------------------------------------------------------------- bounds, written once


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_bound_admits_its_edges_and_refuses_beyond(name):
    b = BOUNDS[name]
    step = 1 if b.integer else 1e-9
    lo = b.lo + step if b.lo_open else b.lo
    assert check_bound(name, lo) == lo and type(check_bound(name, lo)) is (int if b.integer else float)
    with pytest.raises(ConfigError, match=f"^{name}"):
        check_bound(name, lo - step)
    if b.hi is not None:
        hi = b.hi - step if b.hi_open else b.hi
        assert check_bound(name, hi) == hi
        with pytest.raises(ConfigError, match=f"^{name}"):
            check_bound(name, hi + step)


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("max_stack", -1, r"^--max-stack = -1 is out of range; it must be >= 1 and <= 1024"),
        ("max_stack", 0, r"^--max-stack = 0 is out of range"),
        ("max_stack", 2.0, r"^--max-stack must be an integer >= 1 and <= 1024, got 2.0"),
        ("max_stack", "4", r"^--max-stack must be an integer"),
        ("cpus_per_group", 0, r"^--cpus-per-group = 0 is out of range; it must be >= 1"),
        ("repeats", 0, r"^--repeats = 0 is out of range"),
        ("seeds", 10_001, r"^--seeds = 10001 is out of range; it must be >= 1 and <= 10000"),
        ("batch_size", True, r"^--batch-size must be an integer >= 1, got True"),
        ("lr", float("inf"), r"^--lr must be a finite number > 0, got inf"),
        ("lr", 10**400, r"^--lr must be a finite number > 0, got 1000.*…0+$"),  # shortened to one short line
    ],
)
def test_check_bound_names_the_option(name, value, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        check_bound(name, value, "--" + name.replace("_", "-"))
    assert len(one_line(e)) < 200


@pytest.mark.parametrize("value", ["-1", "0", "2000", "1.5", "true"])
def test_study_file_max_stack_uses_the_bound(tmp_path, value):
    with pytest.raises(ConfigError, match="max_stack") as e:
        study(tmp_path, f'name = "mine"\nmax_stack = {value}\n')()
    assert one_line(e).startswith(str(tmp_path / "s.toml"))


# ---------------------------------------------------------- resources, refused before they are allocated


def test_seed_counts_are_capped_before_anything_grows():
    t = time.perf_counter()
    for bad in ("2147483648", 10**9, 10_001, list(range(10_001))):
        with pytest.raises(ConfigError, match="10,?000") as e:
            parse_seeds(bad)
        one_line(e)
    assert time.perf_counter() - t < 0.5
    assert len(parse_seeds(10_000)) == 10_000


def test_study_file_seed_count(tmp_path):
    with pytest.raises(ConfigError, match="seeds = 1000000000 is out of range; it must be >= 1 and <= 10000"):
        study(tmp_path, 'name = "mine"\nseeds = 1000000000\n')()


def test_wide_layers_are_refused_with_the_estimate(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^hidden = \[3000000\] with batch_size = 32 needs about 39.7 GB"
    ) as e:
        RunSpec(hidden=(3_000_000,))
    assert "the limit is 8 GB" in one_line(e) and "2,385,000,010 parameters" in str(e.value)
    with pytest.raises(ConfigError, match=r"hidden = \[3000000\] .* the limit is 8 GB"):
        study(tmp_path, 'name = "mine"\n[base]\nhidden = [3000000]\n')()
    assert 1.5e6 < C.memory_bytes(RunSpec()) < 2.5e6  # 109,386 parameters × 4 copies × 4 bytes, plus a batch
    assert C.memory_bytes(RunSpec(optimizer="sgd")) < C.memory_bytes(RunSpec(optimizer="sgd", momentum=0.9))


def test_a_stack_of_wide_models_is_refused_naming_max_stack(tmp_path):
    wide = RunSpec(hidden=(100_000,))  # about 1.3 GB to train alone: fine
    C.check_memory(wide, 4)
    with pytest.raises(
        ConfigError, match=r"^a stack of 16 models with hidden = \[100000\] .*lower max_stack to 6 "
    ):
        C.check_memory(wide, 16)
    assert study(tmp_path, 'name = "mine"\nmax_stack = 4\n[base]\nhidden = [100000]\n')().max_stack == 4
    with pytest.raises(ConfigError, match="a stack of 16 models"):
        study(tmp_path, 'name = "mine"\nmax_stack = 16\n[base]\nhidden = [100000]\n')()


def test_huge_grid_is_refused_by_its_size_before_expanding(tmp_path):
    g = Grid({"lr": tuple(range(1, 1001)), "batch_size": tuple(range(1, 1001))}, {}, parse_seeds(10))
    t = time.perf_counter()
    with pytest.raises(
        ConfigError,
        match=r"^the grid has 10,000,000 runs \(1000 lr × 1000 batch_size × 10 seeds\); "
        r"the limit is 100,000 runs",
    ):
        g.expand()
    assert time.perf_counter() - t < 0.1 and g.size() == 10_000_000
    axis = ", ".join(map(str, range(1, 401)))
    with pytest.raises(ConfigError, match="the grid has 1,600,000 runs"):
        study(tmp_path, f'name = "mine"\nseeds = 10\n[grid]\nlr = [{axis}]\nbatch_size = [{axis}]\n')()


def test_20000_run_grid_expands_and_dedupes_in_well_under_a_second():
    lrs = tuple(round(1e-4 * k, 6) for k in range(1, 51))
    s = Study(
        "big",
        "",
        axes={
            "norm": ("none", "batch"),
            "lr": lrs,
            "batch_size": tuple(range(8, 28)),
            "placement": ("after", "before"),
        },
        base={"epochs": 1},
        seeds=5,
    )
    t = time.perf_counter()
    specs = s.specs()
    dt = time.perf_counter() - t
    assert s.grid().size() == 20_000 and len(specs) == 15_000  # none × before is none × after
    assert len({(x.config_hash(), x.seed) for x in specs}) == len(specs)
    assert dt < 1.0, f"{dt:.2f} s"
    t = time.perf_counter()
    assert len(dedupe(specs + specs)) == len(specs)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize(
    "grid, needle",
    [
        (Grid({"norm": "batch"}), r"grid.norm must be a non-empty list of values, got 'batch'"),
        (Grid({"norm": ()}), r"grid.norm must be a non-empty list"),
        (Grid({"norm": ("batch",)}, seeds=()), r"grid seeds must be a non-empty list"),
        (Grid({"hidden": ([128], {"a": 1})}), r"hidden must be a list, got \{'a': 1\}"),
    ],
)
def test_grid_shapes(grid, needle):
    with pytest.raises(ConfigError, match=needle):
        grid.expand()


# ---------------------------------------------------------------- study names


@pytest.mark.parametrize("name", [*studies.STUDIES, studies.ALL])
def test_a_study_file_cannot_take_a_built_in_name(tmp_path, name):
    with pytest.raises(ConfigError, match=f"name = '{name}' is taken by a built-in study") as e:
        study(tmp_path, f'name = "{name}"\n[grid]\nnorm = ["none", "batch"]\n')()
    assert one_line(e).startswith(str(tmp_path / "s.toml"))


# ---------------------------------------------------------------- dataset files: bounded reads


@pytest.fixture
def tiny(tmp_path, offline_data):
    """A registered 30 + 10 image mnist in tmp_path/data/mnist; returns that folder."""
    folder = tmp_path / "data" / "mnist"
    T.register(md5=T.fake_set(folder))
    return folder


def gzip_bomb(path, n_bytes: int) -> None:
    """A gzip file of n_bytes zeros, written in pieces (small in memory and on disk)."""
    z, zero = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    with open(path, "wb") as f:
        for _ in range(n_bytes >> 20):
            f.write(z.compress(zero))
        f.write(z.flush())


def test_gzip_bomb_is_refused_without_decompressing_it(tmp_path, tiny):
    bomb = tiny / "train-images-idx3-ubyte.gz"
    gzip_bomb(bomb, 256 << 20)  # 256 MB of zeros in about 250 KB
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="decompresses to more than 89,072 bytes") as e:
            D.load("mnist", tmp_path / "data")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(bomb) in one_line(e) and "gzip bomb" in str(e.value) and "fix:" in str(e.value)
    assert peak < 8 << 20, f"peak {peak / 1e6:.0f} MB"  # 16 + 30·784 + SIZE_MARGIN bytes read, no more


def test_oversized_raw_file_and_npz(tmp_path, tiny, monkeypatch):
    raw = tiny / "t10k-labels-idx1-ubyte"
    (tiny / "t10k-labels-idx1-ubyte.gz").unlink()
    raw.write_bytes(bytes(D.SIZE_MARGIN + 100))
    with pytest.raises(DataError, match="holds more than 65,554 bytes") as e:
        D.load("mnist", tmp_path / "data")
    assert str(raw) in one_line(e)
    monkeypatch.setattr(F, "MAX_FILE_BYTES", 1 << 20)
    npz = tmp_path / "big.npz"
    a = list(T.arrays(n_train=2000).values())  # 1.6 MB of images
    np.savez_compressed(npz, x_train=a[0], y_train=a[1], x_test=a[2], y_test=a[3])
    with pytest.raises(DataError, match=r"arrays of [\d,]+ bytes, more than the 1,048,576"):
        F.read_keras_npz(npz)
    big = tmp_path / "big.gz"
    gzip_bomb(big, 2 << 20)
    with pytest.raises(DataError, match="decompresses to more than 1,048,576 bytes"):
        F.read_idx(big)


# ---------------------------------------------------------------- downloads: a size cap and a deadline


class Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 1 MB, then sends a byte every 0.1 s, 100 bytes at most (ends by itself within 10 s)."""

    requests = 0

    def do_GET(self):
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """Start a handler class on 127.0.0.1; yields its base URL."""
    started = []

    def start(handler):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_download_stops_at_its_deadline(tmp_path, offline_data, server, monkeypatch):
    T.register(mirrors=(server(Trickle),))
    monkeypatch.setattr(D, "DOWNLOAD_DEADLINE_S", 1.0)
    t = time.perf_counter()
    with pytest.raises(DataError, match=r"not done within the download's time limit of 1 s") as e:
        D.load("mnist", download=True, progress=False)
    assert time.perf_counter() - t < 4
    assert "train-images-idx3-ubyte.gz" in one_line(e)
    assert not any((tmp_path / "home" / ".cache" / "bnlab" / "mnist").iterdir())  # no .part left


def test_download_refuses_a_bomb_and_an_endless_file(tmp_path, offline_data, server):
    served = tmp_path / "served"
    served.mkdir()
    gzip_bomb(served / "train-images-idx3-ubyte.gz", 64 << 20)

    class Serve(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args):
            pass

    class Endless(Trickle):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(64):  # 4 MB, far more than a 30-image file
                    self.wfile.write(bytes(1 << 16))
            except OSError:
                pass

    T.register(mirrors=(server(Serve), server(Endless)))
    with pytest.raises(DataError) as e:
        D.load("mnist", download=True, progress=False)
    msg = one_line(e)
    assert "decompresses to more than 89,072 bytes" in msg and "the server sent more than 89,072 bytes" in msg


# ---------------------------------------------------------------- is the data there, without downloading?


def test_available_never_downloads(tmp_path, offline_data, server, monkeypatch):
    Trickle.requests = 0
    T.register(mirrors=(server(Trickle),))
    monkeypatch.delenv("BNLAB_OFFLINE")  # downloads allowed: available must still not
    assert not D.available("mnist") and not D.available("mnist", tmp_path / "nowhere")
    assert Trickle.requests == 0
    T.fake_set(tmp_path / "env" / "mnist")
    monkeypatch.setenv("BNLAB_DATA_DIR", str(tmp_path / "env"))
    assert D.available("mnist") and D.available("mnist", tmp_path / "env")
    assert not D.available("fashion-mnist", tmp_path / "env")  # the mnist folder is not fashion-mnist
    with pytest.raises(ConfigError, match="dataset = 'cifar' is not known"):
        D.available("cifar")
