"""Environment variables are input: each is parsed and bounded in bnlab.environment, and a bad value is one
line naming the variable and its allowed values (exit 2), never a traceback."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlab import environment
from bnlab.errors import ConfigError

SRC = Path(environment.__file__).parent

GOOD = {
    "BNLAB_DATA_DIR": ("/tmp/x", Path("/tmp/x")),
    "BNLAB_OFFLINE": ("1", True),
    "BNLAB_LOCK_WAIT_S": ("2.5", 2.5),
    "BNLAB_TUNING_CACHE": ("/tmp/t.json", Path("/tmp/t.json")),
    "RAY_ADDRESS": ("ray://head:10001", "ray://head:10001"),
}
BAD = {
    "BNLAB_OFFLINE": ("yes", "true", "2", " 1"),
    "BNLAB_LOCK_WAIT_S": ("abc", "-1", "nan", "inf", "1e9", "1e400"),
    "RAY_ADDRESS": ("head 10001", "a\tb"),
    "BNLAB_DATA_DIR": ("a\x00b", "~no_such_user_bnlab/data"),
    "BNLAB_TUNING_CACHE": ("a\x00b", "~no_such_user_bnlab/t.json"),
}


def test_every_variable_has_a_good_and_a_bad_case_here():
    assert set(GOOD) == set(environment.VARIABLES) and set(BAD) <= set(environment.VARIABLES)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_good_value_parses_and_unset_or_empty_gives_the_default(name):
    text, value = GOOD[name]
    assert environment.read(name, {name: text}) == value
    assert (
        environment.read(name, {})
        == environment.read(name, {name: ""})
        == environment.VARIABLES[name].default
    )


@pytest.mark.parametrize("name,text", [(n, t) for n, ts in BAD.items() for t in ts])
def test_a_bad_value_is_one_line_naming_the_variable_and_the_fix(name, text):
    with pytest.raises(ConfigError) as e:
        environment.read(name, {name: text})
    msg = str(e.value)
    assert msg.startswith(f"{name}=") and "\n" not in msg
    assert f"set it to {environment.VARIABLES[name].allowed}, or unset it" in msg


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(environment.VARIABLES)), text=st.text(max_size=60))
def test_any_text_gives_a_value_or_one_line(name, text):
    try:
        environment.read(name, {name: text})
    except ConfigError as e:
        assert str(e).startswith(f"{name}=") and "\n" not in str(e) and len(str(e)) < 300


def _reads_environ(tree: ast.AST) -> list[int]:
    """Lines that touch os.environ or os.getenv, less those that only set a default for another tool."""
    writes = {
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "setdefault"
    }
    return sorted(
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv") and n.lineno not in writes
    )


def test_only_the_environment_module_reads_the_environment():
    readers = {
        str(p.relative_to(SRC)): lines
        for p in SRC.rglob("*.py")
        if p.name != "environment.py" and (lines := _reads_environ(ast.parse(p.read_text())))
    }
    assert readers == {}


def test_the_reader_finder_sees_a_read_and_not_a_write():
    assert _reads_environ(
        ast.parse("import os\nx = os.environ.get('A')\nos.environ.setdefault('B', '1')\n")
    ) == [2]


STUDY = ["study", "seed", "--seeds", "1", "--epochs", "1", "--train-limit", "500"]


@pytest.mark.parametrize("name,text", [("BNLAB_LOCK_WAIT_S", "ten"), ("BNLAB_OFFLINE", "yes")])
@pytest.mark.parametrize("args", [STUDY, ["report", "seed"], ["plan", "seed"]])
def test_the_cli_refuses_a_bad_variable_in_one_line_and_creates_nothing(tmp_path, name, text, args):
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "bnlab", *args, "--out", str(out)],
        env={**os.environ, name: text},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"bnlab: {name}=") or f" {name}=" in lines[0]
    assert not out.exists()


def test_check_all_reads_every_bnlab_variable():
    env = {n: GOOD[n][0] for n in environment.VARIABLES}
    environment.check_all(env)
    for name in (n for n in BAD if n.startswith("BNLAB_")):
        with pytest.raises(ConfigError, match=name):
            environment.check_all({**env, name: BAD[name][0]})
    environment.check_all({**env, "RAY_ADDRESS": BAD["RAY_ADDRESS"][0]})  # Ray's own: checked where used


def test_a_data_dir_flag_with_an_unknown_user_s_home_is_one_line(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "bnlab",
            "study",
            "seed",
            "--data-dir",
            "~no_such_user_bnlab/x",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "no such user's home folder" in lines[0], p.stderr
