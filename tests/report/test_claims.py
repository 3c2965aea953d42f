"""The claim studies: grids, final probes (inference, invariance), folding, `bnlab fold`,
`bnlab study all`."""

import re

import pytest
import torch

from bnlab import api, studies
from bnlab.cli import main
from bnlab.config import RunSpec
from bnlab.core import final_probes as measure
from bnlab.core import model as M
from bnlab.core import norms
from bnlab.errors import ConfigError
from bnlab.run.jobs import plan_stacks
from bnlab.store import Store
from bnlab.studydata import StudyData

# runs per study at its default seeds: the grid product, less 'none' specs that differ only in placement
EXPECTED_RUNS = {
    "seed": 2 * 4 * 5,
    "lr": 2 * 9 * 2 * 3,
    "init": 5 * 2 * 3,
    "convergence": 2 * 5,
    "regularization": 2 * 3,
    "small-batch": 6 * 6 * 3 + 3 * 6 * 3,  # + precise BN for the 3 norms with running statistics
    "placement": 3 * 3,
    "overhead": 3 * 3,
    "invariance": 3 * 3,
    "activations": 2 * 3,
    "ioffe-mnist": 2 * 3,
    "ics": 3 * 3,
    "smoothness": 3 * 3,  # none, BN after, BN before
    "noisy-bn": 3 * 3,
    "depth": 3 * 4 * 5,  # none, BN after and BN before the ReLU × 2, 4, 8, 16 hidden layers
    "width": 2 * 3 * 5,  # none/batch × widths (128, 64) × 0.25, 1, 4
    "transfer": 2 * 2 * 4 * 5,  # mnist/fashion-mnist × none/batch × batch sizes 16-128
}
TINY = dict(epochs=1, seeds=2, train_limit=256, test_limit=200)


def test_every_study_is_listed_with_its_exact_grid():
    assert set(studies.STUDIES) == set(EXPECTED_RUNS)
    for name, n in EXPECTED_RUNS.items():
        specs = studies.STUDIES[name].specs()
        assert len(specs) == n, name
        assert len({(s.config_hash(), s.seed) for s in specs}) == n, name


def test_overrides_reach_every_study_and_keep_study_settings():
    sb = studies.STUDIES["small-batch"].specs(**{**TINY, "seeds": 1})
    assert {s.batch_size for s in sb} == {2, 4, 8, 16, 32, 128} and {s.train_limit for s in sb} == {256}
    conv = studies.STUDIES["convergence"].specs(epochs=2)
    assert {(s.epochs, s.eval_every) for s in conv} == {(2, 100)}
    assert {s.final_probes for s in studies.STUDIES["overhead"].specs()} == {("inference",)}


def test_final_probes_are_validated_and_do_not_change_old_hashes():
    assert "final_probes" not in RunSpec().config_dict()
    assert RunSpec(final_probes=("inference",)).config_hash() != RunSpec().config_hash()
    with pytest.raises(
        ConfigError, match="final_probes = 'speed' is not allowed; choose one of: inference, invariance"
    ):
        RunSpec(final_probes=("speed",))
    with pytest.raises(ConfigError, match="norm = 'layer' has nothing to fold"):
        RunSpec(norm="layer", final_probes=("inference",))


def test_mix_none_false_gives_models_without_a_norm_stacks_of_their_own():
    specs = studies.STUDIES["overhead"].specs(seeds=2)
    mixed = plan_stacks(specs, 16, mix_none=True)
    alone = plan_stacks(specs, 16, mix_none=False)

    def kinds(stacks):
        return sorted(tuple(sorted({s.norm for s in st})) for st in stacks)

    assert kinds(mixed) == [("batch",), ("batch", "none")]
    assert kinds(alone) == [("batch",), ("batch",), ("none",)]
    assert [len(s) for s in plan_stacks(specs, 1, mix_none=False)] == [1] * 6


def test_bn_output_is_invariant_to_scaling_the_preceding_weights():
    """Training-mode BN(x·cW) = BN(x·W) for every c > 0 exactly when ε = 0 (up to float64 rounding)."""
    g = torch.Generator().manual_seed(0)
    x, W = (
        torch.randn(3, 64, 20, generator=g, dtype=torch.float64),
        torch.randn(3, 20, 8, generator=g, dtype=torch.float64),
    )
    gamma, beta = (
        torch.rand(3, 1, 8, generator=g, dtype=torch.float64) + 0.5,
        torch.randn(3, 1, 8, generator=g, dtype=torch.float64),
    )
    cfg = norms.BNConfig(eps=0.0)
    st = (torch.zeros(3, 1, 8, dtype=torch.float64), torch.ones(3, 1, 8, dtype=torch.float64))
    y1 = norms.batch(x @ W, gamma, beta, st, norms.NormArgs(cfg), training=True)[0]
    for c in (1e-3, 0.5, 7.0, 1e3):
        yc = norms.batch(x @ (c * W), gamma, beta, st, norms.NormArgs(cfg), training=True)[0]
        assert torch.allclose(yc, y1, atol=1e-9, rtol=0), c
    # with Keras's ε = 1e-3 it holds only approximately, and breaks down when c·σ shrinks towards √ε
    keras = norms.BNConfig()
    big = (
        (norms.batch(x @ (10 * W), gamma, beta, st, norms.NormArgs(keras), training=True)[0] - y1).abs().max()
    )
    tiny = (
        (norms.batch(x @ (1e-3 * W), gamma, beta, st, norms.NormArgs(keras), training=True)[0] - y1)
        .abs()
        .max()
    )
    assert big < 1e-4 < 0.1 < tiny


def _random_member(placement: str, seed: int = 0) -> tuple[dict, dict, M.StackConfig]:
    spec = RunSpec(norm="batch", placement=placement)
    cfg = M.StackConfig.from_specs([spec], 784, 10)
    g = torch.Generator().manual_seed(seed)
    flat = M.init_params([spec], cfg)
    p = M.Layout.of(cfg).views(flat)
    for n in p:
        if n.startswith(("gamma", "beta", "b")):
            p[n].copy_(torch.rand(p[n].shape, generator=g) + (0.5 if n.startswith("gamma") else -0.5))
    st = {
        n: (torch.rand(v.shape, generator=g) * (2 if n.startswith("var") else 1) + 0.1)
        for n, v in M.init_state(cfg, 1).items()
    }
    return p, st, cfg


@pytest.mark.parametrize("placement", ["after", "before"])
def test_module_matches_the_stacked_model_and_folding_is_exact(placement):
    p, st, cfg = _random_member(placement)
    x = torch.rand(500, 784, generator=torch.Generator().manual_seed(1))
    stacked, _, _ = M.forward(p, st, x, cfg, training=False)
    m = measure.member_model(p, st, 0, with_norm=True)
    unfolded = measure.to_module(m, placement, cfg.bn.eps)
    folded_m = measure.fold(m, placement, cfg.bn.eps)
    folded = measure.to_module(folded_m, placement, cfg.bn.eps)
    assert not any(isinstance(mod, torch.nn.BatchNorm1d) for mod in folded)
    assert sorted(folded_m) == ["W0", "W1", "W2", "b0", "b1", "b2"]
    with torch.inference_mode():
        assert (unfolded(x) - stacked[0]).abs().max() < 1e-5
        assert (folded(x) - unfolded(x)).abs().max() < 1e-5


def test_inference_probe_values():
    p, st, cfg = _random_member("after")
    m = measure.member_model(p, st, 0, with_norm=True)
    v = measure.inference(m, "after", cfg.bn.eps, torch.rand(1000, 784))
    assert v["param_bytes"] == 4 * (784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10 + 2 * (128 + 64))
    assert v["state_bytes"] == 4 * 2 * (128 + 64)
    assert v["folded_bytes"] == v["param_bytes"] - 4 * 2 * (128 + 64)
    assert v["fold_max_abs_err"] < 1e-5
    assert all(v[f"latency_b{b}{f}_us"] > 0 for b in (1, 1000) for f in ("", "_folded"))


@pytest.fixture(scope="module")
def tiny_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("all")
    res = api.run_study("all", out=out, **TINY)
    return out, res


def test_study_all_runs_every_study_and_writes_the_summary(tiny_all):
    out, res = tiny_all
    n_tiny = {k: len(s.specs(**TINY)) for k, s in studies.STUDIES.items()}
    assert res.counts["total"] == sum(n_tiny.values())
    summary = (out / "summary.md").read_text()
    for name in studies.STUDIES:
        st = Store(out / name / "bnlab.sqlite")
        assert len(st.runs(name)) == n_tiny[name], name
        st.close()
        assert f"[{name}]({name}/report.html)" in summary
        assert (out / name / "report.html").is_file()
    table = [ln for ln in summary.splitlines() if ln.startswith("| [")]
    # seed 6, lr 2, init 1, convergence 2, regularization 1, small-batch 2, placement 1, overhead 3,
    # invariance 1, activations 1, ioffe-mnist 2, ics 1, smoothness 1, noisy-bn 1, depth 3, width 1,
    # transfer 3
    assert len(table) == 32
    assert all(re.search(r"\*\*(supported|contradicted|inconclusive)\*\*", ln) for ln in table)
    html = (out / "summary.html").read_text()
    assert '<a href="lr/report.html">lr</a>' in html and '<a href="lr/lr_sweep.png">figure</a>' in html


@pytest.mark.parametrize(
    "study, figures, sections",
    [
        ("lr", ["lr_sweep.png"], ["Learning-rate limits", "(lr-adam)", "(lr-sgd)"]),
        ("init", ["init_sweep.png"], ["(init)"]),
        ("convergence", ["convergence.png"], ["(conv-97)", "(conv-98)"]),
        ("regularization", ["gap_over_time.png"], ["(reg)"]),
        ("small-batch", ["small_batch.png"], ["Wu & He 2018, Table 2 style", "(sb-bn)", "(sb-alt)"]),
        ("placement", ["final_accuracy.png"], ["(place)"]),
        ("overhead", ["costs.png"], ["Cost, measured", "(ovh-train)", "(ovh-infer-b1)", "(ovh-infer-b1000)"]),
        ("invariance", ["invariance.png"], ["(inv)"]),
        ("activations", ["activations.png"], ["(act)"]),
        ("ioffe-mnist", ["activations.png"], ["(act)", "(acc)"]),
        ("ics", ["ics.png"], ["(ics)"]),
        ("smoothness", ["smoothness.png"], ["(smooth)"]),
        ("noisy-bn", ["activations.png"], ["(noisy)"]),
        ("depth", ["depth_gain.png"], ["(depth-final)", "(depth-epoch1)", "(depth-deep)"]),
        ("width", ["final_accuracy.png"], ["(width)"]),
    ],
)
def test_each_study_report_has_its_figures_tables_and_findings(tiny_all, study, figures, sections):
    out, _ = tiny_all
    md = (out / study / "report.md").read_text()
    for f in figures:
        assert (out / study / f).stat().st_size > 10_000
        assert f"]({f})" in md
    for s in sections:
        assert s in md, s


def test_seconds_are_compared_only_where_each_norm_was_timed_in_its_own_stacks(tiny_all):
    """seed mixes none and batch in one stack (shared time per step): no seconds row, a note instead;
    convergence trains them apart (mix_none False): its findings compare seconds."""
    out, _ = tiny_all
    seed, conv = (out / "seed" / "report.md").read_text(), (out / "convergence" / "report.md").read_text()
    assert "seconds to 97%: batch − none" not in seed and "No seconds are compared" in seed
    assert "seconds to 97%: batch − none" in conv and "No seconds are compared" not in conv


def test_final_probes_are_stored_per_run(tiny_all):
    out, _ = tiny_all
    st = Store(out / "invariance" / "bnlab.sqlite")
    d = StudyData.load(st, "invariance")
    assert all(len([k for k in r.probes if k.startswith("inv:")]) == 2 * 5 * 3 for r in d.runs)
    st = Store(out / "overhead" / "bnlab.sqlite")
    d = StudyData.load(st, "overhead")
    assert len(st.models()) == len(d.runs) == 6
    assert all(r.probes["fold_max_abs_err"] < 1e-5 for r in d.runs)
    # each overhead model trained alone: its training time is its own, not a stack's share
    assert len({r.m["wall_s"][-1] for r in d.runs}) == 6


def test_fold_command_exports_a_plain_mlp_equal_to_the_bn_model(tiny_all, tmp_path, capsys):
    out, _ = tiny_all
    store = out / "overhead" / "bnlab.sqlite"
    st = Store(store)
    rid = next(r for r in st.models() if "_batch_" in r)
    spec, m = st.model(rid)
    st.close()
    assert main(["fold", rid, "--store", str(store), "--out", str(tmp_path / "f.pt")]) == 0
    assert "max |folded − unfolded| test logit" in capsys.readouterr().out
    blob = torch.load(tmp_path / "f.pt")
    assert blob["dims"] == [784, 128, 64, 10] and blob["run_id"] == rid and blob["max_abs_err"] < 1e-5
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    net.load_state_dict(blob["state_dict"])
    x = torch.rand(100, 784)
    with torch.inference_mode():
        ref = measure.to_module(m, spec.placement, 1e-3)(x)
        assert (net(x) - ref).abs().max() < 1e-5


def test_fold_errors_are_one_line(tiny_all, tmp_path, capsys):
    out, _ = tiny_all
    assert main(["fold", "nope", "--store", str(out / "overhead" / "bnlab.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run 'nope' has no stored parameters; runs with parameters: mnist_" in err
    assert main(["fold", "x", "--store", str(tmp_path / "missing.sqlite")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()


def test_rerunning_all_trains_nothing(tiny_all):
    out, res = tiny_all
    again = api.run_study("all", out=out, report=False, **TINY)
    assert again.counts["trained"] == 0 and again.counts["skipped"] == res.counts["total"]
