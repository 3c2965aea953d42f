"""`bnlab export --tensorboard`: real event files read back with TensorBoard's own EventAccumulator, and a
real TensorBoard server (loopback only, bounded, killed at the end) that serves the runs and the HParams
table."""

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from bnlab.cli import main
from bnlab.export.tensorboard import EVENT_FILE, HPARAMS
from bnlab.outputs import WRITTEN
from bnlab.store import Store
from report.test_report import make_store

pytest.importorskip("tensorboard", reason="tensorboard is not installed: pip install 'bnlab[tensorboard]'")
# imported only once the skip lets them
EventAccumulator = importlib.import_module(
    "tensorboard.backend.event_processing.event_accumulator"
).EventAccumulator
api_pb2 = importlib.import_module("tensorboard.plugins.hparams.api_pb2")
metadata = importlib.import_module("tensorboard.plugins.hparams.metadata")

METRICS = ["train_loss", "train_acc", "test_loss", "test_acc"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A store of 8 runs × 3 epochs (one diverges at epoch 2), exported by the CLI; (store, logdir,
    results)."""
    tmp = tmp_path_factory.mktemp("tb")
    make_store(
        tmp / "out" / "bnlab.sqlite", seeds=2, batch_sizes=(32, 64), diverge=[("batch", 32, 1)]
    ).close()
    assert main(["export", str(tmp / "out"), "--tensorboard", str(tmp / "tb")]) == 0
    with Store(tmp / "out" / "bnlab.sqlite") as st:
        return tmp / "out", tmp / "tb", st.results("seed"), st.runs("seed")


def _accumulator(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_one_run_per_bnlab_run_with_every_epoch_at_its_step(exported):
    _, logdir, rows, runs = exported
    folders = sorted(p.name for p in (logdir / "seed").iterdir() if p.is_dir())
    assert folders == sorted(r["run_id"] for r in runs) and len(folders) == 8
    for run in runs:
        files = os.listdir(logdir / "seed" / run["run_id"])
        assert sorted(files) == sorted([EVENT_FILE, WRITTEN])  # the events and bnlab's manifest of them
        acc = _accumulator(logdir / "seed" / run["run_id"])
        assert sorted(acc.Tags()["scalars"]) == sorted(METRICS)
        mine = [r for r in rows if r["run_id"] == run["run_id"]]
        for m in METRICS:
            events = acc.Scalars(m)
            assert [e.step for e in events] == [r["steps"] for r in mine]
            np.testing.assert_array_equal([e.value for e in events], np.float32([r[m] for r in mine]))
        start = metadata.parse_session_start_info_plugin_data(
            acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
        )
        assert set(start.hparams) == set(HPARAMS) and start.group_name == run["spec"].config_hash()
        assert start.hparams["norm"].string_value == run["spec"].norm
        assert start.hparams["batch_size"].number_value == run["spec"].batch_size
        end = metadata.parse_session_end_info_plugin_data(
            acc.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content
        )
        failed = run["diverged_epoch"] is not None
        assert end.status == (api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS)
    assert sum(r["diverged_epoch"] is not None for r in runs) == 1


def test_the_study_folder_holds_the_hparams_experiment(exported):
    _, logdir, _, _ = exported
    acc = _accumulator(logdir / "seed")
    exp = metadata.parse_experiment_plugin_data(
        acc.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
    )
    assert [h.name for h in exp.hparam_infos][:2] == ["norm", "batch_size"]  # what differs comes first
    assert {h.name for h in exp.hparam_infos if h.differs} == {"norm", "batch_size"}
    assert {h.name for h in exp.hparam_infos} == set(HPARAMS)
    bs = next(h for h in exp.hparam_infos if h.name == "batch_size")
    assert list(bs.domain_discrete.values) and [v.number_value for v in bs.domain_discrete.values] == [32, 64]
    assert [m.name.tag for m in exp.metric_infos] == ["test_acc"]


def test_exporting_again_replaces_the_files(exported):
    out, logdir, rows, _ = exported
    before = {p: p.read_bytes() for p in logdir.rglob(EVENT_FILE)}
    assert main(["export", str(out / "bnlab.sqlite"), "--tensorboard", str(logdir)]) == 0
    after = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    events = {p: b for p, b in after.items() if p.name != WRITTEN}
    assert events == before and len(events) == 9  # same files, same bytes, nothing added
    assert len(after) == 18 and all((p.parent / WRITTEN) in after for p in events)  # and one manifest each


def test_eval_mode_train_columns_are_exported_when_the_store_has_them(tmp_path, monkeypatch):
    """train_acc_eval / train_loss_eval (eval-mode figures on the training set) come from the store's rows
    when it has them; this store gets them by a wrapper around Store.results, as a store that records them
    would."""
    make_store(tmp_path / "bnlab.sqlite", seeds=1, batch_sizes=(32,), epochs=2).close()
    plain = Store.results

    def with_eval(self, study):
        return [
            {**r, "train_loss_eval": r["train_loss"] / 2, "train_acc_eval": r["train_acc"] - 0.01}
            for r in plain(self, study)
        ]

    monkeypatch.setattr(Store, "results", with_eval)
    assert main(["export", str(tmp_path), "--tensorboard", str(tmp_path / "tb")]) == 0
    with Store(tmp_path / "bnlab.sqlite") as st:
        rows = st.results("seed")
    run = rows[0]["run_id"]
    acc = _accumulator(tmp_path / "tb" / "seed" / run)
    assert sorted(acc.Tags()["scalars"]) == sorted(METRICS + ["train_loss_eval", "train_acc_eval"])
    np.testing.assert_array_equal(
        [e.value for e in acc.Scalars("train_acc_eval")],
        np.float32([r["train_acc_eval"] for r in rows if r["run_id"] == run]),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def test_tensorboard_serves_the_runs_and_the_hparams_table(exported, tmp_path):
    _, logdir, rows, runs = exported
    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/data/plugin"
    try:
        tags, deadline = {}, time.time() + 60
        while time.time() < deadline and len(tags) < len(runs):
            try:
                tags = _get(f"{base}/scalars/tags")
            except OSError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        assert set(tags) == {f"seed/{r['run_id']}" for r in runs}, (tmp_path / "tensorboard.log").read_text()[
            -2000:
        ]
        assert all(sorted(t) == sorted(METRICS) for t in tags.values())
        run = runs[0]["run_id"]
        points = _get(f"{base}/scalars/scalars?run=seed/{run}&tag=test_acc")
        assert [p[1] for p in points] == [r["steps"] for r in rows if r["run_id"] == run]
        groups = _get(
            f"{base}/hparams/session_groups",
            {
                "experimentName": "",
                "startIndex": 0,
                "sliceSize": 100,
                "aggregationType": "AGGREGATION_AVG",
                "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
                "colParams": [{"metric": {"tag": "test_acc", "group": ""}}],
            },
        )["sessionGroups"]
        assert len(groups) == 4 and all(len(g["sessions"]) == 2 for g in groups)  # configurations × seeds
        finals = {r["run_id"]: r["test_acc"] for r in rows}  # the last row of each run
        for g in groups:
            for s in g["sessions"]:
                assert s["metricValues"][0]["value"] == pytest.approx(
                    finals[s["name"].split("/")[1]], rel=1e-6
                )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_without_tensorboard_one_line_names_the_extra(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if tensorboard were not installed
    assert main(["export", str(exported[0]), "--tensorboard", str(tmp_path / "tb")]) == 2
    assert (
        capsys.readouterr().err
        == "bnlab: error: tensorboard is not installed; pip install 'bnlab[tensorboard]'\n"
    )
    assert not (tmp_path / "tb").exists()
