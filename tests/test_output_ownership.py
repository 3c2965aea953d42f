"""bnlab replaces only files it wrote (bnlab.outputs: each folder's manifest of what bnlab wrote there):
a file of the user's, or one of bnlab's changed since, is refused in one line (exit 2) and left as it
was, by every command that writes outputs; bnlab's own outputs are replaced as before."""

import json
import sqlite3

import pytest

from bnlab import outputs
from bnlab.cli import main
from bnlab.errors import ConfigError
from helpers import needs_mnist
from report.test_report import make_store

RUN = ["run", "--norm", "batch", "--epochs", "1", "--train-limit", "500", "--test-limit", "200", "--quiet"]
ONE = ["--seeds", "1"]
STUDY = ["study", "seed", "--epochs", "1", "--train-limit", "500", "--test-limit", "200", "--quiet"]
MINE = b"my own notes, not bnlab's\n"


def _one_line(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert needle in err and "was not written by bnlab" in err and "move it away" in err, err
    return err


def _runs(db) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        con.close()


@needs_mnist
def test_run_refuses_a_user_file_where_it_would_write_before_training(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.csv").write_bytes(MINE)
    assert main([*RUN, *ONE, "--out", str(out)]) == 2
    _one_line(capsys, str(out / "results.csv"))
    assert (out / "results.csv").read_bytes() == MINE
    assert not (out / "bnlab.sqlite").exists()  # refused before the store was made


@needs_mnist
def test_own_outputs_are_replaced_changed_ones_are_not_and_nothing_trained_is_lost(tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*STUDY, *ONE, "--out", str(out)]) == 0
    assert main([*STUDY, *ONE, "--out", str(out)]) == 0  # its own files: replaced
    written = json.loads((out / outputs.WRITTEN).read_text())
    figures = sorted(n for n in written if n.endswith(".png"))
    assert {"results.csv", "report.md", "report.html", outputs.STUDY_MARK} <= set(written) and figures
    capsys.readouterr()

    (out / "report.md").write_text((out / "report.md").read_text() + "\nmy note\n")  # edited since
    assert main([*STUDY, *ONE, "--out", str(out)]) == 2
    _one_line(capsys, str(out / "report.md"))
    assert (out / "report.md").read_text().endswith("my note\n")
    (out / "report.md").unlink()

    figure = out / figures[0]  # a figure is not known before training: refused where it is written
    figure.write_bytes(MINE)
    assert main([*STUDY, "--out", str(out), "--seeds", "2"]) == 2
    _one_line(capsys, str(figure))
    assert figure.read_bytes() == MINE and _runs(out / "bnlab.sqlite") == 16  # the new seed's runs kept
    figure.unlink()
    assert main([*STUDY, "--out", str(out), "--seeds", "2"]) == 0  # resumed: nothing trained again
    assert _runs(out / "bnlab.sqlite") == 16 and figure.read_bytes().startswith(b"\x89PNG")


def test_report_refuses_a_user_file(tmp_path, capsys):
    store = tmp_path / "bnlab.sqlite"
    make_store(store).close()
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.html").write_bytes(MINE)
    assert main(["report", "seed", "--store", str(store), "--out", str(out)]) == 2
    _one_line(capsys, str(out / "report.html"))
    assert (out / "report.html").read_bytes() == MINE and not (out / "report.md").exists()


def test_bench_refuses_a_user_file_before_benchmarking(tmp_path, capsys):
    target = tmp_path / "numbers.json"
    target.write_bytes(MINE)
    assert main(["bench", "--json", str(target)]) == 2
    _one_line(capsys, str(target))
    assert target.read_bytes() == MINE


def test_export_refuses_a_user_file_in_the_log_folder(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from bnlab.export.tensorboard import EVENT_FILE

    store = tmp_path / "bnlab.sqlite"
    make_store(store, seeds=1, batch_sizes=(32,), epochs=1).close()
    logdir = tmp_path / "tb"
    (logdir / "seed").mkdir(parents=True)
    (logdir / "seed" / EVENT_FILE).write_bytes(MINE)
    assert main(["export", str(store), "--tensorboard", str(logdir)]) == 2
    _one_line(capsys, EVENT_FILE)
    assert (logdir / "seed" / EVENT_FILE).read_bytes() == MINE


def test_the_rule(tmp_path):
    f = tmp_path / "a.md"
    assert outputs.ours(f)  # nothing there yet
    outputs.write_text(f, "one")
    assert outputs.ours(f)
    f.write_text("two")  # same name, changed since bnlab wrote it
    assert not outputs.ours(f)
    (tmp_path / "mine.txt").write_text("x")
    link = tmp_path / "b.md"
    link.symlink_to(tmp_path / "mine.txt")
    assert not outputs.ours(link)  # never write through a link
    with pytest.raises(ConfigError, match="is a folder"):
        outputs.check_target(tmp_path, "--json")
    (tmp_path / outputs.WRITTEN).write_text("[not json")  # an unreadable manifest vouches for nothing
    outputs_written = tmp_path / "c.md"
    outputs_written.write_text("x")
    assert not outputs.ours(outputs_written)


def test_a_folder_of_an_older_bnlab_counts_as_bnlab_s(tmp_path):
    """bnlab 0.1.0 marked its output folders (STUDY_MARK) but kept no manifest: its files are its own."""
    (tmp_path / outputs.STUDY_MARK).write_text("seed\n")
    (tmp_path / "results.csv").write_text("old")
    outputs.write_text(tmp_path / "results.csv", "new")
    assert (tmp_path / "results.csv").read_text() == "new" and (tmp_path / outputs.WRITTEN).is_file()
    (tmp_path / "report.md").write_text("someone's, after the manifest began")
    with pytest.raises(ConfigError, match="was not written by bnlab"):
        outputs.write_text(tmp_path / "report.md", "bnlab's")
