"""Every reader of a file (study files, dataset files, store rows, manifests, marks, pages, results.csv)
is bounded, and each failure of its library is one line naming the file and the fix (exit 2 from the
CLI, no traceback); nothing already computed is changed. Random study files and environments: a study
or one line, never another exception."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import string
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_data as T
from bnlab import datafiles as F
from bnlab import environment, outputs, reading, studies
from bnlab.cli import main
from bnlab.config import RULES, RunSpec
from bnlab.errors import ConfigError, DataError, StoreError
from bnlab.export.frames import read_results_csv
from bnlab.export.notebook import report_body
from bnlab.folders import claim_folder
from bnlab.records import NUMERICS, RunResult
from bnlab.store import Store
from helpers import bnlab


def one_line(e, *names) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    for n in names:
        assert str(n) in msg, (n, msg)
    return msg


def cli_error(capsys, argv, *names) -> str:
    """main(argv) exits 2 with one line on stderr naming `names`."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in names:
        assert str(n) in err, (n, err)
    return err


# ---------------------------------------------------------------- study files


def _write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


STUDY_FILES = {
    "not TOML": ('name = "a"\n[base\n', "not valid TOML"),
    "arrays nested deep": (
        "x = " + "[" * 1000 + "]" * 1000 + "\n",
        "nested too deep (tomllib: maximum recursion)",
    ),
    "tables nested deep": ("x = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n", "flatten it"),
    "a dotted key of many parts": (
        ".".join("a" * 100_000) + " = 1\n",
        "a dotted key of 100000 parts (at most 16)",
    ),
    "a deep table header": ("[" + ".".join("b" * 5000) + "]\n", "a dotted key of 5000 parts"),
    "a deep inline key": ("x = {" + ".".join("c" * 40) + " = 1}\n", "a dotted key of 40 parts"),
    "too big": ("# " + "x" * (1 << 20) + "\n", "holds more than 1,048,576 bytes"),
    "not UTF-8": (b'name = "caf\xe9"\n', "is not UTF-8 text (byte 11 is 0xe9); save it as UTF-8"),
    "NUL byte": ('name = "a"\x00\n', "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(STUDY_FILES))
def test_a_bad_study_file_is_one_config_error_naming_it(tmp_path, capsys, case):
    text, needle = STUDY_FILES[case]
    p = _write(tmp_path / "s.toml", text)
    with pytest.raises(ConfigError) as e:
        studies.get(str(p))
    assert needle in one_line(e, p) and len(str(e.value)) < 400
    cli_error(capsys, ["study", str(p), "--out", str(tmp_path / "o")], p, needle)
    assert not (tmp_path / "o").exists()


def test_a_folder_a_device_a_pipe_or_no_file_as_a_study_file(tmp_path):
    (tmp_path / "d.toml").mkdir()
    os.mkfifo(tmp_path / "p.toml")  # opening it to read would block: it is refused first
    for path, needle in [
        (tmp_path / "d.toml", "is a folder, not a file"),
        ("/dev/zero", "is not a regular file"),
        (tmp_path / "p.toml", "is not a regular file"),
        (tmp_path / "none.toml", "does not exist; check the path"),
    ]:
        with pytest.raises(ConfigError) as e:
            studies.load_toml(path)
        assert needle in one_line(e, path)


def test_a_study_file_that_changes_while_read_is_refused(tmp_path, monkeypatch):
    p = _write(tmp_path / "s.toml", 'name = "a"\n')
    real = reading.content

    def growing(f, limit, gunzip=True):
        data = real(f, limit, gunzip)
        with open(p, "a") as g:
            g.write("# appended by another writer\n")
        return data

    monkeypatch.setattr(reading, "content", growing)
    with pytest.raises(ConfigError) as e:
        studies.load_toml(p)
    assert "changed while bnlab read it" in one_line(e, p)


def test_a_bad_study_file_from_a_subprocess_exits_2_without_a_traceback(tmp_path):
    p = _write(tmp_path / "s.toml", "x = " + "[" * 2000 + "]" * 2000)
    r = bnlab("study", str(p), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and str(p) in r.stderr


# ---------------------------------------------------------------- dataset files


def _idx(dims, data=b"") -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + data


def _bad_gzip(blob: bytes, how: str) -> bytes:
    if how == "truncated":
        return blob[: len(blob) // 2]
    if how == "crc":
        return blob[:-8] + bytes(4) + blob[-4:]  # the CRC-32 of the trailer zeroed
    return blob[:10] + b"\xff" * 8 + blob[18:]  # a broken deflate stream: zlib.error


IDX_FILES = {
    "absurd dims": (_idx((2**32 - 1,) * 4, bytes(16)), "need 340282366604025813516997721482669850625 bytes"),
    "dims that overflow int64": (_idx((2**16, 2**16, 2**16, 2**16)), "need 18446744073709551616 bytes"),
    "header cut short": (bytes([0, 0, 8, 3, 0, 0]), "IDX header is cut short"),
    "not IDX": (b"PK\x03\x04 a zip", "not a uint8 IDX file"),
    "empty": (b"", "magic empty"),
    "truncated gzip": (_bad_gzip(gzip.compress(_idx((4,), bytes(4)) * 500), "truncated"), "truncated gzip"),
    "gzip CRC": (_bad_gzip(gzip.compress(_idx((4,), bytes(4))), "crc"), "is unreadable or corrupt"),
    "deflate stream": (_bad_gzip(gzip.compress(_idx((40,), bytes(40))), "zlib"), "is unreadable or corrupt"),
}


@pytest.mark.parametrize("case", sorted(IDX_FILES))
def test_a_bad_idx_file_is_one_data_error_naming_it_and_the_fix(tmp_path, case):
    blob, needle = IDX_FILES[case]
    p = _write(tmp_path / "f-idx1-ubyte.gz", blob)
    with pytest.raises(DataError) as e:
        F.read_idx(p)
    assert needle in one_line(e, p, "fix: delete the file and re-download it")


def test_a_folder_in_place_of_an_idx_file(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(DataError) as e:
        F.read_idx(tmp_path / "f")
    assert "is a folder, not a file" in one_line(e, tmp_path / "f")


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def npz_cases(tmp_path):
    good = list(T.arrays().values())
    keys = dict(zip(F.NPZ_KEYS, good))
    np.save(tmp_path / "one.npy", good[0])
    return {
        "not a zip": (_write(tmp_path / "a.npz", b"not a zip file at all"), "unreadable or corrupt npz file"),
        "a .npy": ((tmp_path / "one.npy").rename(tmp_path / "b.npz"), "not an npz archive"),
        "a truncated zip": (
            _write(tmp_path / "c.npz", _npz(tmp_path / "c0.npz", **keys).read_bytes()[:-300]),
            "unreadable or corrupt npz file",
        ),
        "wrong keys": (_npz(tmp_path / "d.npz", x=good[0]), "npz keys are ['x']"),
        "object arrays": (
            _npz(tmp_path / "e.npz", **{**keys, "y_train": np.array([{}] * len(good[1]), dtype=object)}),
            "unreadable or corrupt npz file",
        ),
        "wrong dtype": (
            _npz(tmp_path / "f.npz", **{**keys, "x_train": good[0].astype(np.float32)}),
            "x float32",
        ),
        "wrong shape": (_npz(tmp_path / "g.npz", **{**keys, "y_test": good[3][:, None]}), "y uint8 (10, 1)"),
    }


def test_a_bad_npz_file_is_one_data_error_naming_it(tmp_path):
    for case, (p, needle) in npz_cases(tmp_path).items():
        with pytest.raises(DataError) as e:
            F.read_keras_npz(p)
        assert needle in one_line(e, p, "fix:"), case


def test_a_bad_dataset_file_from_the_cli_exits_2_and_writes_nothing(tmp_path, capsys, offline_data):
    folder = tmp_path / "data" / "mnist"
    T.register(md5=T.fake_set(folder))
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(_bad_gzip(target.read_bytes(), "crc"))
    out = tmp_path / "o"
    cli_error(
        capsys, ["run", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--epochs", "1"], target
    )
    assert not (out / "bnlab.sqlite").exists()


# ---------------------------------------------------------------- store rows

VERSIONS = {"bnlab": "test", "numerics": NUMERICS}


def _store(path):
    with Store(path) as st:
        st.begin_study("s", "q", {}, "cmd")
        r = RunResult(RunSpec(seed=0, epochs=1))
        r.epochs.append(
            dict(epoch=1, steps=10, train_loss=0.5, train_acc=0.9, test_loss=0.4, test_acc=0.9, wall_s=1)
        )
        r.model = {"w": np.ones((2, 2), np.float32)}
        st.save("s", r, VERSIONS)
        return r.spec.run_id


BAD_ROWS = {
    "spec not JSON": ("UPDATE runs SET spec_json = '{not json'", "spec_json is not JSON"),
    "spec a JSON list": (
        "UPDATE runs SET spec_json = '[1, 2]'",
        "spec_json holds a JSON list, not an object",
    ),
    "spec refused": (
        "UPDATE runs SET spec_json = '{\"lr\": -1}'",
        "spec_json is not a valid run (lr must be",
    ),
    "spec deeply nested": (
        "UPDATE runs SET spec_json = '" + "[" * 100_000 + "]" * 100_000 + "'",
        "spec_json is not JSON (RecursionError",
    ),
    "versions not JSON": ("UPDATE runs SET versions = 'x'", "versions is not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_corrupt_run_row_is_one_store_error_naming_the_store_and_run(tmp_path, capsys, case):
    sql, needle = BAD_ROWS[case]
    db = tmp_path / "o" / "bnlab.sqlite"
    rid = _store(db)
    with sqlite3.connect(db) as con:
        con.execute(sql)
    con.close()
    before = db.read_bytes()
    with Store(db) as st, pytest.raises(StoreError) as e:
        st.runs("s")
    assert needle in one_line(e, db, f"run {rid}", "restore it from a backup or pass another --store")
    cli_error(capsys, ["report", "s", "--out", str(tmp_path / "o")], db, needle)
    assert db.read_bytes() == before  # nothing computed is lost


BAD_MODELS = {
    "text": ("'/etc/passwd'", "its parameters are a str, not an npz blob"),
    "garbage": ("x'00112233'", "its parameters are corrupt"),
    "a zip prefix": ("x'504b0304ffff'", "its parameters are corrupt"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_corrupt_stored_parameters_are_one_store_error(tmp_path, case):
    value, needle = BAD_MODELS[case]
    db = tmp_path / "s.sqlite"
    rid = _store(db)
    with sqlite3.connect(db) as con:
        con.execute(f"UPDATE models SET npz = {value}")
    con.close()
    with Store(db) as st, pytest.raises(StoreError) as e:
        st.model(rid)
    assert needle in one_line(e, db, f"run {rid}")


def test_stored_parameters_that_are_an_npy_or_object_arrays(tmp_path):
    db = tmp_path / "s.sqlite"
    rid = _store(db)
    for blob_of, needle in [
        (lambda f: np.save(f, np.ones(3)), "not an npz archive"),
        (lambda f: np.savez(f, w=np.array([None], dtype=object)), "its parameters are corrupt"),
        (lambda f: np.savez(f, w=np.array(["a"])), "its parameter 'w' is not numeric"),
    ]:
        blob_of(tmp_path / "blob")
        blob = next(tmp_path.glob("blob*")).read_bytes()
        for q in tmp_path.glob("blob*"):
            q.unlink()
        with sqlite3.connect(db) as con:
            con.execute("UPDATE models SET npz = ?", (blob,))
        con.close()
        with Store(db) as st, pytest.raises(StoreError) as e:
            st.model(rid)
        assert needle in one_line(e, db, f"run {rid}")


# ---------------------------------------------------------------- manifests, marks, pages, results.csv


@pytest.mark.parametrize(
    "manifest",
    [b"[not json", b"\xff\xfe", b'{"r.md": []}', b'{"r.md": [1]}', b'{"r.md": "x"}', b"[" * 100_000, None],
)
def test_an_unreadable_manifest_vouches_for_nothing(tmp_path, manifest):
    target = tmp_path / "r.md"
    target.write_text("mine")
    m = tmp_path / outputs.WRITTEN
    if manifest is None:
        os.mkfifo(m)  # a pipe: it would block a reader that opened it
    else:
        m.write_bytes(manifest)
    assert not outputs.ours(target)
    with pytest.raises(ConfigError) as e:
        outputs.check_ours(target)
    one_line(e, target)
    assert target.read_text() == "mine"


def test_a_study_mark_that_is_not_bnlabs_is_one_line(tmp_path):
    for content, needle in [(b"\xff\xfe", "is not UTF-8 text"), (b"x" * 5000, "holds more than 4,096 bytes")]:
        (tmp_path / outputs.STUDY_MARK).write_bytes(content)
        with pytest.raises(ConfigError) as e:
            claim_folder(tmp_path, "s", None, ())
        assert needle in one_line(e, tmp_path / outputs.STUDY_MARK, "remove it if the folder is yours")


def test_a_report_md_that_is_not_utf8_names_no_owner(tmp_path):
    (tmp_path / "report.md").write_bytes(b"# bnlab report: \xff\n")
    claim_folder(tmp_path, "s", None, ())  # no owner read, and report.md is not listed to replace
    assert (tmp_path / outputs.STUDY_MARK).read_text() == "s\n"
    assert (tmp_path / "report.md").read_bytes() == b"# bnlab report: \xff\n"


def test_a_summary_page_and_a_results_csv_that_cannot_be_read(tmp_path):
    page = _write(tmp_path / "summary.html", b"<body>\n\xff\n</body>")
    with pytest.raises(ConfigError) as e:
        report_body(page)
    assert "is not UTF-8 text" in one_line(e, page, "bnlab study all")
    (tmp_path / "results.csv").mkdir()
    with pytest.raises(ConfigError) as e:
        read_results_csv(tmp_path / "results.csv")
    assert "is a folder, not a file" in one_line(e, tmp_path / "results.csv")


# ---------------------------------------------------------------- random study files and environments

FIELDS = sorted(RULES)
KEYS = st.one_of(
    st.sampled_from(["name", "question", "seeds", "base", "grid", "notes", "mix_none", "max_stack", *FIELDS]),
    st.text(max_size=8),
)
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["none", "batch", "layer", "group", "adam", "sgd", "relu", "mnist", "a" * 200]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


def _str(text: str) -> str:
    """A TOML basic string: JSON's escapes, which TOML shares, less the surrogate pairs TOML refuses."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(value) -> str:
    """A value as inline TOML (a basic string in JSON's escapes, which TOML shares; floats as TOML spells
    them). Every document it writes is TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_str(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _document(doc: dict) -> str:
    """Scalars and arrays first, then each table under its own [header]."""
    plain = [f"{_str(k)} = {_toml(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f"[{_str(k)}]\n" + "".join(f"{_str(kk)} = {_toml(vv)}\n" for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(plain) + "\n" + "".join(tables)


STUDY_DOCS = st.fixed_dictionaries(
    {"name": st.one_of(st.just("h"), st.just("h-2"), SCALARS)},
    optional={
        "seeds": st.one_of(st.integers(-2, 6), st.lists(st.integers(-2, 6), max_size=4), VALUES),
        "base": st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3),
        "grid": st.dictionaries(
            st.sampled_from(FIELDS), st.one_of(st.lists(SCALARS, min_size=1, max_size=3), VALUES), max_size=2
        ),
        "mix_none": VALUES,
        "max_stack": VALUES,
        "question": st.one_of(st.text(max_size=20), VALUES),
        "notes": st.text(max_size=20),
        "claims": st.one_of(
            VALUES,
            st.lists(
                st.dictionaries(
                    st.sampled_from(["key", "title", "a", "b", "statistic", "direction", "margin", "x"]),
                    st.one_of(
                        VALUES,
                        st.sampled_from(["c1", "final_test_acc", "steps_to_threshold", "higher", "lower"]),
                        st.dictionaries(st.sampled_from(FIELDS), SCALARS, max_size=2),
                    ),
                    max_size=8,
                ),
                max_size=2,
            ),
        ),
    },
)
TOKENS = st.sampled_from(
    [
        'name = "h"\n',
        "[base]\n",
        "[grid]\n",
        "[[grid]]\n",
        "norm = ",
        "lr = ",
        "seeds = ",
        "batch_size = ",
        '"batch"',
        "'none'",
        '"""',
        "'''",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        "=",
        "\n",
        "#",
        " ",
        "1e400",
        "nan",
        "-inf",
        "0x1F",
        "1_000",
        "1979-05-27T07:32:00Z",
        "true",
        '"\\u0000"',
        '"\\ud800"',
        "\x00",
        "\t",
        "\ufeff",
        "é",
        "a.b.c",
        "3",
        "-1",
        "0.5",
    ]
)
TEXTS = st.one_of(
    st.lists(TOKENS, max_size=40).map("".join),
    st.text(alphabet=string.printable, max_size=200),
    st.binary(max_size=200),
    STUDY_DOCS.map(_document),
)
ENVS = st.dictionaries(
    st.sampled_from(sorted(environment.VARIABLES)),
    st.one_of(st.text(max_size=30), st.sampled_from(["0", "1", "600", "1e308", "-0", "~", "~root/x", "nan"])),
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXTS, env=ENVS)
def test_random_study_files_and_environments_give_a_study_or_one_line(tmp_path, text, env):
    p = _write(tmp_path / "random.toml", text)
    try:
        study = studies.get(str(p))
        specs = study.specs()  # the grid × seeds, every spec checked
        assert specs and all(isinstance(s, RunSpec) for s in specs)
    except (ConfigError, DataError) as e:
        msg = str(e)
        assert msg and "\n" not in msg and str(p) in msg and len(msg) < 1000, msg
    try:
        environment.check_all(env)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("BNLAB_") and len(str(e)) < 300, str(e)
