"""`bnlab export --mlflow`: a real local MLflow tracking store (SQLite under tmp_path), read back with
MlflowClient."""

import importlib
import math
import sys

import pytest

from bnlab.cli import main
from bnlab.export.mlflow import TAG, params
from bnlab.store import Store
from report.test_report import VERSIONS, make_store

pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'bnlab[mlflow]'")
pytest.importorskip("sqlalchemy", reason="sqlalchemy is not installed: pip install 'bnlab[mlflow]'")
MlflowClient = importlib.import_module("mlflow.tracking").MlflowClient  # only once the skips let it

METRICS = ["train_loss", "train_acc", "test_loss", "test_acc", "epoch"]
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy:DeprecationWarning"
)  # MLflow's own


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One store holding two studies ('seed': 8 runs × 3 epochs, one diverging at epoch 2; 'mine': 4 runs × 2
    epochs), exported once into one MLflow SQLite store (creating it costs MLflow several seconds)."""
    tmp = tmp_path_factory.mktemp("ml")
    store = tmp / "out" / "bnlab.sqlite"
    make_store(store, seeds=2, batch_sizes=(32, 64), diverge=[("batch", 32, 1)]).close()
    make_store(store, study="mine", seeds=2, batch_sizes=(16,), epochs=2, lrs=(3e-3,)).close()
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    assert main(["export", str(tmp / "out"), "--mlflow", uri]) == 0
    return store, uri, MlflowClient(tracking_uri=uri)


def _runs(client, study):
    exp = client.get_experiment_by_name(study)
    return {r.data.tags[TAG]: r for r in client.search_runs([exp.experiment_id], max_results=1000)}


def test_one_mlflow_run_per_bnlab_run_with_params_tags_and_metrics_per_epoch(tracked):
    store, uri, client = tracked
    with Store(store) as st:
        for study, n_runs in (("seed", 8), ("mine", 4)):
            rows, runs = st.results(study), st.runs(study)
            got = _runs(client, study)
            assert len(client.search_runs([client.get_experiment_by_name(study).experiment_id])) == n_runs
            assert set(got) == {r["run_id"] for r in runs} and len(runs) == n_runs
            for r in runs:
                m = got[r["run_id"]]
                spec = r["spec"]
                assert m.info.status == "FINISHED" and m.info.run_name == r["run_id"]
                assert m.data.params == params(spec) and m.data.params["hidden"] == "128-64"
                assert m.data.params["seed"] == str(spec.seed) and m.data.params["norm"] == spec.norm
                tags = {k: v for k, v in m.data.tags.items() if k.startswith("bnlab.")}
                want = {
                    TAG: r["run_id"],
                    "bnlab.study": study,
                    "bnlab.seed": str(spec.seed),
                    "bnlab.version": VERSIONS["bnlab"],
                    "bnlab.config_hash": spec.config_hash(),
                    "bnlab.device": r["device"],
                }
                if r["diverged_epoch"] is not None:
                    want["bnlab.diverged_epoch"] = str(r["diverged_epoch"])
                assert tags == want
                mine = [x for x in rows if x["run_id"] == r["run_id"]]
                for key in METRICS:
                    hist = sorted(client.get_metric_history(m.info.run_id, key), key=lambda h: h.step)
                    assert [h.step for h in hist] == [x["steps"] for x in mine]
                    for h, x in zip(hist, mine):
                        assert (math.isnan(h.value) and math.isnan(x[key])) or h.value == x[key], (key, h, x)
    assert sum("bnlab.diverged_epoch" in r.data.tags for r in _runs(client, "seed").values()) == 1


def test_exporting_again_duplicates_nothing(tracked, capsys):
    store, uri, client = tracked
    before = {s: {k: r.info.run_id for k, r in _runs(client, s).items()} for s in ("seed", "mine")}
    assert main(["export", str(store), "--mlflow", uri]) == 0
    out = capsys.readouterr().out
    assert (
        "mlflow: 0 runs of seed logged, 8 already there" in out
        and "mlflow: 0 runs of mine logged, 4 already" in out
    )
    assert {s: {k: r.info.run_id for k, r in _runs(client, s).items()} for s in ("seed", "mine")} == before


def test_an_interrupted_export_is_finished_duplicates_go_and_only_missing_runs_are_logged(tracked, capsys):
    store, uri, client = tracked
    runs = _runs(client, "mine")
    gone, half, twice = sorted(runs)[:3]
    client.delete_run(runs[gone].info.run_id)  # deleted by the user: logged again
    exp = client.get_experiment_by_name("mine").experiment_id
    client.delete_run(runs[half].info.run_id)  # and as an export killed mid-run leaves it:
    partial = client.create_run(exp, tags={TAG: half}, run_name=half)  # RUNNING, one value of three
    client.log_metric(partial.info.run_id, "test_acc", 0.5, step=1)
    copy = client.create_run(exp, tags={TAG: twice}, run_name=twice)  # a second copy (two exports at once)
    client.set_terminated(copy.info.run_id)
    assert main(["export", str(store), "--mlflow", uri, "--study", "mine"]) == 0
    assert "mlflow: 2 runs of mine logged, 2 already there" in capsys.readouterr().out
    active = client.search_runs([exp], max_results=1000)
    assert sorted(r.data.tags[TAG] for r in active) == sorted(runs) and len(active) == 4  # one each
    assert all(r.info.status == "FINISHED" for r in active)
    assert partial.info.run_id not in {r.info.run_id for r in active}
    assert len(client.get_metric_history(_runs(client, "mine")[half].info.run_id, "test_acc")) == 2


def test_bad_targets_and_a_missing_extra_are_one_line(tracked, tmp_path, monkeypatch, capsys):
    store, _, _ = tracked
    assert main(["export", str(store), "--mlflow", str(tmp_path / "no" / "such" / "mlflow.db")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("bnlab: error: --mlflow sqlite:///")
        and "does not exist" in err
        and err.count("\n") == 1
    )
    assert main(["export", str(store), "--mlflow", f"sqlite:///{tmp_path / 'x.db'}", "--study", "lr"]) == 2
    assert (
        capsys.readouterr().err == f"bnlab: error: study 'lr' is not in {store}; stored studies: seed, mine\n"
    )
    assert not (tmp_path / "x.db").exists()  # nothing written before the checks pass
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if mlflow were not installed
    assert main(["export", str(store), "--mlflow", f"sqlite:///{tmp_path / 'y.db'}"]) == 2
    assert capsys.readouterr().err == "bnlab: error: mlflow is not installed; pip install 'bnlab[mlflow]'\n"
    assert not (tmp_path / "y.db").exists()
