"""The benchmark's arithmetic and tables, on a small generated dataset (timings themselves are not
asserted)."""

import numpy as np
import pytest
import torch

from bnlab import bench, bench_cli, bench_gemm
from bnlab.config import RunSpec
from bnlab.data import Dataset


def test_flops_per_image_by_hand():
    fwd = 2 * (784 * 128 + 128 * 64 + 64 * 10)  # 218,368
    assert bench.flops_per_image() == 3 * fwd - 2 * 784 * 128  # backward 2× forward, no input grad at layer 1
    assert bench.flops_per_image() * 60000 / 1e9 == 27.264


def test_steady_state_skips_the_first_epoch():
    assert bench.steady([9.0, 2.0, 4.0]) == 3.0


@pytest.fixture(scope="module")
def result():
    g = np.random.default_rng(0)
    ds = Dataset(
        "mnist",
        g.random((800, 784), np.float32),
        g.integers(0, 10, 800),
        g.random((200, 784), np.float32),
        g.integers(0, 10, 200),
        "generated",
    )
    return bench.run(
        (32,),
        (1, 2),
        epochs=3,
        n_train=256,
        n_test=100,
        study_seeds=1,
        study_epochs=1,
        data=ds,
        log=lambda m: None,
    )


def test_rows_ratios_and_table(result):
    res = result
    (row,) = res["rows"]
    assert set(row["bnlab"]) == {1, 2} and not res["full"] and res["n_train"] == 256
    for k in ("loader", "resident", "K=1", "K=2"):
        assert len(row["epochs"][k]) == 3  # every epoch kept
    assert row["loader"] == bench.steady(row["epochs"]["loader"])  # the steady state: epochs 2..n
    assert row["bnlab"][1] == bench.steady(row["epochs"]["K=1"])
    side = row["side_by_side"]
    assert (side is None) == (torch.get_num_threads() < 2) and (side is None or side > 0)
    # a job this small trains one stack at a time; K=16 was not timed, so the choice falls back to the best K
    assert row["choice_plan"].startswith("one stack") and row["choice"] is None
    best = min(row["bnlab"].values())
    assert row["speedup_vs_loader"] == row["loader"] / best
    assert row["frac_peak"] == res["gflop_per_model_epoch"] / best / res["sgemm_gflops"]
    # × floor: the time ÷ (its FLOPs ÷ the peak measured in the same run), from the JSON's own fields
    assert row["x_floor"] == best / (res["gflop_per_model_epoch"] / res["sgemm_gflops"])
    assert res["gflop_per_model_epoch"] == bench.flops_per_image() * 256 / 1e9
    t = bench_cli.table(res)
    assert [c.header for c in t.columns][4:7] == [
        "bnlab K=1",
        "bnlab K=2",
        f"{res['threads']}×K=16 side by side",
    ]
    assert [c.header for c in t.columns][8:10] == ["× floor", "× DataLoader"]
    assert "QUICK LOOK on a 256-image slice" in t.title


def test_study_row(result):
    s = result["study"]
    assert s["runs"] == 8 and s["model_epochs"] == 8 and sum(s["stacks"]) == 8  # 8 configurations × 1 × 1
    plain = result["plain"]
    assert set(plain) == {f"bs{b} {n}" for b in (16, 32, 64, 128) for n in ("none", "batch")}
    assert s["loader_s"] == pytest.approx(sum(v[0] for v in plain.values()))  # × 1 seed × 1 epoch
    assert s["speedup_vs_loader"] == s["loader_s"] / s["wall_s"]
    assert s["gflop"] == s["model_epochs"] * result["gflop_per_model_epoch"]
    assert s["floor_s"] == s["gflop"] / result["sgemm_gflops"]
    assert s["x_floor"] == s["wall_s"] / (
        s["model_epochs"] * result["gflop_per_model_epoch"] / result["sgemm_gflops"]
    )
    assert set(s["test_acc"]) == {f"{n} bs{b}" for b in (16, 32, 64, 128) for n in ("batch", "none")}
    assert result["peak_rss_mb"]["this_process"] > 0
    t = bench_cli.study_table(result)
    assert "8 model-epochs" in t.title and "QUICK LOOK" in t.title
    assert "× floor" in [c.header for c in t.columns]


def test_step_beside_its_gemms_alone(result):
    sg = result["step_vs_gemms"]
    assert (sg["K"], sg["batch_size"], sg["threads"]) == (*bench.STEP_SHAPE, 1)
    assert len(sg["epochs"]) == 3 and sg["step_s"] > 0 and sg["gemms_s"] > 0
    steps = -(-256 // sg["batch_size"])  # the 256-image slice
    assert sg["step_s"] == bench.steady(sg["epochs"]) * sg["K"] / steps
    assert sg["ratio"] == sg["step_s"] / sg["gemms_s"]
    assert sg["gemm_gflops"] == sg["K"] * sg["batch_size"] * bench.flops_per_image() / sg["gemms_s"] / 1e9
    assert sg["gemms_adam_ratio"] == (sg["gemms_s"] + sg["adam_s"]) / sg["gemms_s"] > 1
    assert sg["adam_gbs"] > 0 and sg["stream_gbs"] > 0
    assert "GEMMs alone" in bench_cli.step_table(result).title


def test_step_gemms_are_the_steps_products(monkeypatch):
    """The isolated products: 3 forward baddbmm, 3 weight gradients and 2 input gradients (none for layer
    1) as bmm, their FLOPs those of bench.flops_per_image for K·B images."""
    calls = []
    for name in ("bmm", "baddbmm"):
        real = getattr(torch, name)

        def rec(*args, real=real, name=name, **kw):
            a, b = args[-2:]
            calls.append((name, 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]))
            return real(*args, **kw)

        monkeypatch.setattr(torch, name, rec)
    for op in bench_gemm._products(3, 5, bench.DIMS):
        op()
    assert [n for n, _ in calls].count("baddbmm") == 3 and [n for n, _ in calls].count("bmm") == 5
    assert sum(f for _, f in calls) == 3 * 5 * bench.flops_per_image()


def test_step_adam_times_training_s_optimizer_over_the_stack_s_whole_buffer(monkeypatch):
    """Adam alone is StackedOptimizer.step over a K-member BN stack's flat buffer, all members active; its
    bytes are 7 × that buffer (parameters, gradients, two moments read; three written)."""
    from bnlab.core import model as M
    from bnlab.core.optim import StackedOptimizer

    seen = []
    real = StackedOptimizer.step

    def rec(self, params, grads, active):
        seen.append((sum(t.numel() for t in params.values()), active))
        return real(self, params, grads, active)

    monkeypatch.setattr(StackedOptimizer, "step", rec)
    s, nbytes = bench_gemm.step_adam(3, bench.DIMS, steps=2, repeats=1)
    cfg = M.StackConfig.from_specs([RunSpec(norm="batch")] * 3, 784, 10)
    floats = 3 * M.Layout.of(cfg).size
    assert s > 0 and nbytes == 7 * 4 * floats
    assert set(map(repr, seen)) == {repr((floats, [0, 1, 2]))} and len(seen) == 22  # 20 warm-up, 2 timed


def test_epochs_below_three_are_refused():
    with pytest.raises(ValueError, match="epochs must be >= 3"):
        bench.run(epochs=2, data=object())
