"""The depth and width studies (issue 26): their grids, their claims on generated stores where the answer is
known, and a tiny depth study end to end."""

import numpy as np
import pytest

from bnlab import api, studies
from bnlab.claims import registry
from bnlab.config import RunSpec
from bnlab.records import RunResult
from bnlab.store import Store
from bnlab.studydata import StudyData
from helpers import VERSIONS

DEPTH_STACKS = {
    2: (128, 64),
    4: (128, 64, 64, 64),
    8: (128,) + (64,) * 7,
    16: (128,) + (64,) * 15,
}


def test_depth_grid_is_none_and_bn_after_and_before_the_relu_by_four_depths_of_128_then_64():
    specs = studies.STUDIES["depth"].specs()
    assert len(specs) == 3 * 4 * 5 and len({(s.config_hash(), s.seed) for s in specs}) == 60
    norms = (("none", "after"), ("batch", "after"), ("batch", "before"))
    assert {(s.norm, s.placement, s.hidden) for s in specs} == {
        (n, p, h) for n, p in norms for h in DEPTH_STACKS.values()
    }
    assert {len(s.hidden) for s in specs} == set(DEPTH_STACKS)
    assert {(s.epochs, s.batch_size, s.lr, s.optimizer, s.profile) for s in specs} == {
        (10, 32, 1e-3, "adam", "keras")
    }
    assert {s.seed for s in specs} == set(range(5))


def test_width_grid_scales_the_seed_widths():
    specs = studies.STUDIES["width"].specs()
    assert len(specs) == 2 * 3 * 5
    assert {s.hidden for s in specs} == {(32, 16), (128, 64), (512, 256)}


def _store(path, study, acc, epoch1=None, diverged=(), before=None):
    """A store of `study` over DEPTH_STACKS: acc(norm, depth, seed) is the final test accuracy, epoch1(...)
    that after epoch 1 (default acc); (norm, depth, seed) in `diverged` diverged in epoch 2; `before`(depth,
    seed), if given, the final (and epoch-1) accuracy of BN before the ReLU."""
    st = Store(path)
    axes = {"hidden": [list(h) for h in DEPTH_STACKS.values()], "norm": ["none", "batch"]}
    st.begin_study(study, "q", {"name": study, "axes": axes, "seeds": 5}, "cmd")
    cells = [("none", "after"), ("batch", "after")] + ([("batch", "before")] if before else [])
    for norm, placement in cells:
        for depth, hidden in DEPTH_STACKS.items():
            for seed in range(5):
                r = RunResult(RunSpec(norm=norm, hidden=hidden, seed=seed, epochs=2, placement=placement))
                if placement == "before":
                    a1 = a2 = before(depth, seed)
                else:
                    a1, a2 = (epoch1 or acc)(norm, depth, seed), acc(norm, depth, seed)
                div = (norm, depth, seed) in diverged
                for e, a in ((1, a1), (2, float("nan") if div else a2)):
                    loss = float("nan") if np.isnan(a) else 0.1
                    r.epochs.append(
                        dict(
                            epoch=e,
                            steps=100 * e,
                            train_loss=loss,
                            train_acc=a,
                            test_loss=loss,
                            test_acc=a,
                            wall_s=e,
                        )
                    )
                r.diverged_epoch = 2 if div else None
                st.save(study, r, VERSIONS)
    return StudyData.load(st, study)


NOISE = np.random.default_rng(0).normal(0, 0.001, (2, 17, 5))


def _acc(gain):
    return lambda norm, depth, seed: (
        0.97 + (gain(depth) if norm == "batch" else 0) + NOISE[int(norm == "batch"), depth, seed]
    )


def _verdicts(d):
    return {f.key: f.verdict for f in registry.analyse(d)}


def test_depth_claims_are_supported_when_the_gain_grows_with_depth(tmp_path):
    d = _store(tmp_path / "s.sqlite", "depth", _acc(lambda L: 0.002 * np.log2(L)))
    assert _verdicts(d) == {
        "depth-final": "supported",
        "depth-epoch1": "supported",
        "depth-deep": "supported",
    }
    f = {f.key: f for f in registry.analyse(d)}
    assert f["depth-epoch1"].effect == pytest.approx(0.2, abs=0.05)  # pp per doubling of depth
    assert [r.label for r in f["depth-final"].rows][:4] == [
        f"{L} hidden layers: batch − none" for L in DEPTH_STACKS
    ]


def test_bn_before_the_relu_is_a_row_at_each_depth_and_leaves_the_claims_on_bn_after_it(tmp_path):
    grows = _acc(lambda L: 0.002 * np.log2(L))
    plain = {f.key: f for f in registry.analyse(_store(tmp_path / "a.sqlite", "depth", grows))}
    both = _store(tmp_path / "b.sqlite", "depth", grows, before=lambda L, s: 0.9 + NOISE[0, L, s])
    f = {f.key: f for f in registry.analyse(both)}
    for k in plain:
        assert (f[k].verdict, f[k].effect, f[k].p_value) == (
            plain[k].verdict,
            plain[k].effect,
            plain[k].p_value,
        )
    rows = {r.label: r for r in f["depth-final"].rows}
    for L in DEPTH_STACKS:
        assert rows[f"{L} hidden layers: batch before the ReLU − none"].effect == pytest.approx(-7, abs=0.2)
    deep = [r.label for r in f["depth-deep"].rows]
    assert "16 hidden layers: batch before the ReLU − none" in deep and len(deep) == 3
    assert "batch before the ReLU 16 layers 0/5" in " ".join(f["depth-deep"].notes)


def test_diverged_runs_count_at_chance_and_are_counted_in_the_notes(tmp_path):
    div = {("none", 16, s) for s in range(3)}
    d = _store(tmp_path / "s.sqlite", "depth", _acc(lambda L: 0.0015), diverged=div)
    f = {f.key: f for f in registry.analyse(d)}["depth-deep"]
    assert f.effect == pytest.approx(3 / 5 * (0.97 - 0.1) * 100, abs=0.5)  # chance is 10%
    assert "none 16 layers 3/5" in " ".join(f.notes) and "none 8 layers 0/5" in " ".join(f.notes)


def test_depth_claims_are_not_supported_when_the_gain_is_the_same_at_every_depth(tmp_path):
    d = _store(tmp_path / "s.sqlite", "depth", _acc(lambda L: 0.0015))
    v = _verdicts(d)
    assert v["depth-final"] != "supported" and v["depth-epoch1"] != "supported"
    assert v["depth-deep"] == "supported"  # BN's constant +0.15 pp at 16 layers


def test_a_shrinking_gain_contradicts_and_epoch1_is_read_from_the_first_epoch(tmp_path):
    shrinks = _acc(lambda L: 0.01 / L)
    d = _store(tmp_path / "s.sqlite", "depth", shrinks, epoch1=_acc(lambda L: 0.002 * np.log2(L)))
    v = _verdicts(d)
    assert v["depth-final"] == "contradicted" and v["depth-epoch1"] == "supported"


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory):
    out = tmp_path_factory.mktemp("depth")
    res = api.run_study("depth", seeds=2, epochs=1, train_limit=256, test_limit=200, out=out)
    return out, res


def test_a_tiny_depth_study_writes_its_report_with_its_claims_and_figure(tiny_depth):
    out, res = tiny_depth
    assert res.counts["total"] == 3 * 4 * 2
    md = (out / "report.md").read_text()
    for key in ("(depth-final)", "(depth-epoch1)", "(depth-deep)", "16 hidden layers: batch − none"):
        assert key in md, key
    assert (out / "depth_gain.png").stat().st_size > 10_000 and "](depth_gain.png)" in md
    st = Store(out / "bnlab.sqlite")
    d = StudyData.load(st, "depth")
    assert sorted(len(c.spec.hidden) for c in d.configs) == [2, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16]
    assert all(len(r.m["test_acc"]) == 1 for r in d.runs)


@pytest.mark.parametrize("name", list(studies.STUDIES))
def test_the_dataset_override_reaches_every_run_of_every_study(name):
    specs = studies.STUDIES[name].specs(seeds=1, dataset="fashion-mnist")
    assert specs and {s.dataset for s in specs} == {"fashion-mnist"}


def test_a_study_on_fashion_mnist_runs_from_the_command_line_into_its_own_folder(tmp_path, monkeypatch):
    from bnlab import data
    from bnlab.cli import main
    from bnlab.errors import BnlabError

    try:
        data.load("fashion-mnist", None)
    except BnlabError as e:  # not installed here (Debian: dataset-fashion-mnist)
        pytest.skip(f"Fashion-MNIST not found: {e}")
    monkeypatch.chdir(tmp_path)
    args = ["study", "width", "--dataset", "fashion-mnist", "--seeds", "1", "--epochs", "1"]
    assert main([*args, "--train-limit", "256", "--test-limit", "200", "--quiet"]) == 0
    st = Store(tmp_path / "bnlab-out-fashion-mnist" / "width" / "bnlab.sqlite")
    d = StudyData.load(st, "width")
    assert len(d.runs) == 6 and {r.spec.dataset for r in d.runs} == {"fashion-mnist"}
    assert d.threshold == 0.85 and not (tmp_path / "bnlab-out").exists()


def _width_store(path, acc):
    st = Store(path)
    widths = [(32, 16), (128, 64), (512, 256)]
    st.begin_study(
        "width", "q", {"name": "width", "axes": {"hidden": [list(w) for w in widths]}, "seeds": 5}, "c"
    )
    for norm in ("none", "batch"):
        for w in widths:
            for seed in range(5):
                r = RunResult(RunSpec(norm=norm, hidden=w, seed=seed, epochs=1))
                a = acc(norm, w[0], seed)
                r.epochs.append(
                    dict(epoch=1, steps=100, train_loss=0.1, train_acc=a, test_loss=0.1, test_acc=a, wall_s=1)
                )
                st.save("width", r, VERSIONS)
    return StudyData.load(st, "width")


def test_the_width_claim_is_supported_only_where_bn_flattens_the_width_profile(tmp_path):
    noise = np.random.default_rng(1).normal(0, 0.0005, (2, 513, 5))

    def acc(flat):
        def f(norm, w, seed):
            slope = 0.0 if (norm == "batch" and flat) else 0.01 * np.log2(w / 32)
            return 0.95 + slope + noise[int(norm == "batch"), w, seed]

        return f

    assert _verdicts(_width_store(tmp_path / "a.sqlite", acc(True))) == {"width": "supported"}
    assert _verdicts(_width_store(tmp_path / "b.sqlite", acc(False)))["width"] != "supported"


def test_the_gain_figure_draws_each_depth_at_its_log2_tick_with_its_gain(tmp_path, monkeypatch):
    from bnlab.report import depth_figures

    figs = []
    monkeypatch.setattr(depth_figures, "save", lambda fig, path: figs.append(fig))
    d = _store(tmp_path / "s.sqlite", "depth", _acc(lambda L: 0.002 * np.log2(L)))
    assert depth_figures.gain_vs_depth(d, tmp_path / "g.png") == []
    (fig,) = figs
    for ax in fig.axes:
        (line,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
        x, y = line.get_data()
        assert list(x) == [1.0, 2.0, 3.0, 4.0]  # log2 of 2, 4, 8, 16 hidden layers
        assert list(ax.get_xticks()) == [1.0, 2.0, 3.0, 4.0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16"]
        assert y == pytest.approx([0.2 * k for k in (1, 2, 3, 4)], abs=0.25)  # the gain in pp (SE 0.06)
        assert ax.get_xlim()[0] < 1.0 and ax.get_xlim()[1] > 4.0  # every point inside the axes


def test_an_inconclusive_claim_says_which_until_decided_command_decides_it(tmp_path):
    from bnlab.planning.costs import plan_claims
    from bnlab.report.study_report import write_report

    d = _store(tmp_path / "s.sqlite", "depth", _acc(lambda L: 0.0015))
    plans = {p.finding.key: p for p in plan_claims(d)}
    with Store(tmp_path / "s.sqlite") as st:
        write_report(st, "depth", tmp_path / "r", command="bnlab study depth --fresh --seeds 5")
    md = (tmp_path / "r" / "report.md").read_text()
    v = _verdicts(d)
    hints = [line for line in md.splitlines() if line.startswith("**To decide it:**")]
    assert len(hints) == sum(x == "inconclusive" for x in v.values()) >= 1
    for key in (k for k, x in v.items() if x == "inconclusive"):
        cmd = f"`bnlab study depth --seeds 5 --until-decided --max-seeds {plans[key].max_seeds}`"
        assert any(cmd in h for h in hints), (key, hints)
    assert "--fresh" not in " ".join(hints) and "min of training on this machine" in hints[0]
