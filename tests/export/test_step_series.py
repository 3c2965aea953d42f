"""What runs record between epochs (evaluations every N steps, probes) reaches TensorBoard and MLflow at its
steps: real stacked training on small generated data, a real store, the exporters' files read back."""

import numpy as np
import pytest
import torch

from bnlab.cli import main
from bnlab.config import RunSpec
from bnlab.core.train import DeviceData, train_stack
from bnlab.export.source import step_series, wall_at
from bnlab.store import Store
from report.test_report import VERSIONS


def test_wall_at_is_linear_between_marks_and_beyond_the_last():
    marks = [(0, 0.0), (10, 2.0), (20, 3.0)]
    assert [wall_at(s, marks) for s in (0, 5, 10, 15, 20, 30)] == [0.0, 1.0, 2.0, 2.5, 3.0, 4.0]
    assert wall_at(7, [(0, 0.0)]) == 0.0  # no epoch finished: no time to spread


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Two BN runs (10 steps each): evaluations every 5 steps, ics and activation probes every 4; stored."""
    tmp = tmp_path_factory.mktemp("steps")
    g = torch.Generator().manual_seed(0)
    data = DeviceData(
        torch.rand(320, 784, generator=g),
        torch.randint(0, 10, (320,), generator=g),
        torch.rand(100, 784, generator=g),
        torch.randint(0, 10, (100,), generator=g),
        10,
    )
    specs = [
        RunSpec(
            norm="batch",
            batch_size=32,
            epochs=1,
            seed=s,
            eval_every=5,
            probes=("ics", "activations"),
            probe_every=4,
        )
        for s in (0, 1)
    ]
    with Store(tmp / "out" / "bnlab.sqlite") as st:
        st.begin_study("probed", "q", {}, "cmd")
        for r in train_stack(specs, data):
            st.save("probed", r, VERSIONS)
        series = step_series(st, "probed", {r["run_id"]: [r] for r in st.results("probed")})
        return tmp, st.results("probed"), st.evals("probed"), st.probes("probed"), series


def test_step_series_names_every_eval_and_probe_once(probed):
    _, rows, evals, probes, series = probed
    for r in rows:
        pts = series[r["run_id"]]
        assert len(pts) == 2 * len(evals[r["run_id"]]) + len(probes[r["run_id"]])
        assert sorted({s for t, s, _, _ in pts if t.startswith("probe/")}) == [0, 4, 8]
        assert {t for t, *_ in pts if t.startswith("eval/")} == {"eval/test_loss", "eval/test_acc"}
        assert "probe/ics_l2/layer1" in {t for t, *_ in pts} and "probe/act_p50/layer0" in {
            t for t, *_ in pts
        }
        walls = {s: w for t, s, w, _ in pts if t == "probe/ics_l2/layer1"}
        assert walls[0] == 0.0 and walls[8] == pytest.approx(r["wall_s"] * 8 / r["steps"])


def test_tensorboard_has_the_step_series(probed, tmp_path):
    pytest.importorskip(
        "tensorboard", reason="tensorboard is not installed: pip install 'bnlab[tensorboard]'"
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, rows, _, probes, series = probed
    assert main(["export", str(tmp / "out"), "--tensorboard", str(tmp_path / "tb")]) == 0
    rid = rows[0]["run_id"]
    acc = EventAccumulator(str(tmp_path / "tb" / "probed" / rid), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags >= {t for t, *_ in series[rid]} and "test_acc" in tags
    ics = [(p["step"], p["value"]) for p in probes[rid] if p["name"] == "ics_cos" and p["layer"] == 2]
    got = acc.Scalars("probe/ics_cos/layer2")
    assert [e.step for e in got] == [s for s, _ in ics]
    np.testing.assert_array_equal([e.value for e in got], np.float32([v for _, v in ics]))


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")  # MLflow's own
def test_mlflow_has_the_step_series(probed, tmp_path):
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'bnlab[mlflow]'")
    pytest.importorskip("sqlalchemy", reason="sqlalchemy is not installed: pip install 'bnlab[mlflow]'")
    from mlflow.tracking import MlflowClient

    tmp, rows, evals, _, _ = probed
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["export", str(tmp / "out"), "--mlflow", uri]) == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("probed")
    run = next(
        r for r in client.search_runs([exp.experiment_id]) if r.data.tags["bnlab.run_id"] == rows[0]["run_id"]
    )
    hist = client.get_metric_history(run.info.run_id, "eval/test_acc")
    mine = evals[rows[0]["run_id"]]
    assert [m.step for m in hist] == [e["step"] for e in mine]
    assert [m.value for m in hist] == pytest.approx([e["test_acc"] for e in mine])
    assert {m.step for m in client.get_metric_history(run.info.run_id, "probe/ics_l2/layer1")} == {0, 4, 8}
