"""bnlab.export keeps the architecture: no torch (imported or used), nothing above it imported, small modules;
`bnlab export`'s bad input is one line."""

import subprocess
import sys

from bnlab.cli import main
from report.test_report import make_store
from test_architecture import NO_TORCH, import_graph

ABOVE = ("bnlab.api", "bnlab.cli", "bnlab.console", "bnlab.run", "bnlab.core", "bnlab.bench")


def test_export_imports_nothing_above_it():
    g = import_graph()
    mods = [m for m in g if m.startswith("bnlab.export")]
    assert {
        "bnlab.export.frames",
        "bnlab.export.tensorboard",
        "bnlab.export.mlflow",
        "bnlab.export.notebook",
        "bnlab.export.command",
    } <= set(mods)
    assert {m: sorted(d for d in g[m] if d.startswith(ABOVE)) for m in mods} == {m: [] for m in mods}


def test_load_and_export_run_where_torch_cannot_be_imported(tmp_path):
    make_store(tmp_path / "bnlab.sqlite", seeds=1, batch_sizes=(32,), epochs=2).close()
    code = NO_TORCH + (
        "import bnlab, bnlab.export.frames, bnlab.export.tensorboard, bnlab.export.mlflow, "
        "bnlab.export.notebook\n"
        "from bnlab.export.command import export\n"
        "from bnlab.cli import main\n"
        f"print(len(bnlab.load({str(tmp_path)!r})))\n"
        f"assert main(['export', {str(tmp_path)!r}, '--tensorboard', {str(tmp_path / 'tb')!r}]) == 0\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "4" and "tensorboard: 2 runs of seed (16 scalars)" in r.stdout


def test_bad_export_input_is_one_line(tmp_path, capsys):
    make_store(tmp_path / "out" / "bnlab.sqlite", seeds=1, batch_sizes=(32,), epochs=1).close()
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "results.csv").write_text("run_id\n")
    (tmp_path / "file").write_text("")
    cases = [
        ([str(tmp_path / "out")], "bnlab export needs --tensorboard DIR and/or --mlflow URI"),
        ([str(tmp_path / "nope"), "--tensorboard", str(tmp_path / "tb")], "the path does not exist"),
        (
            [str(tmp_path / "csv"), "--tensorboard", str(tmp_path / "tb")],
            "is a results.csv alone; export reads the store (bnlab.sqlite) beside it",
        ),
        ([str(tmp_path / "out"), "--tensorboard", str(tmp_path / "file")], "is a file; pass a folder"),
        (
            [str(tmp_path / "out"), "--study", "lr", "--tensorboard", str(tmp_path / "tb")],
            "study 'lr' is not in",
        ),
    ]
    for args, msg in cases:
        assert main(["export", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("bnlab: error: ") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "tb").exists()


def test_a_study_all_folder_exports_every_study(tmp_path, capsys):
    for study in ("seed", "mine"):
        make_store(
            tmp_path / "all" / study / "bnlab.sqlite", study=study, seeds=1, batch_sizes=(32,), epochs=1
        ).close()
    assert main(["export", str(tmp_path / "all"), "--tensorboard", str(tmp_path / "tb")]) == 0
    out = capsys.readouterr().out
    assert "2 runs of mine" in out and "2 runs of seed" in out
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["mine", "seed"]
