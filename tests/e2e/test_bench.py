"""The benchmark's arithmetic and table, on a small generated dataset (timings themselves are not asserted)."""
import numpy as np
import torch

from bnlab import bench
from bnlab.data import Dataset


def test_flops_per_image_by_hand():
    fwd = 2 * (784 * 128 + 128 * 64 + 64 * 10)                 # 218,368
    assert bench.flops_per_image() == 3 * fwd - 2 * 784 * 128   # backward 2× forward, no input grad at layer 1
    assert bench.flops_per_image() * 60000 / 1e9 == 27.264


def test_run_rows_ratios_and_table():
    g = np.random.default_rng(0)
    ds = Dataset("mnist", g.random((800, 784), np.float32), g.integers(0, 10, 800), g.random((200, 784), np.float32),
                 g.integers(0, 10, 200), "generated")
    res = bench.run((32,), (1, 2), n_train=256, steps=5, repeats=1, bn_options=(True,), data=ds, log=lambda m: None)
    (row,) = res["rows"]
    assert set(row["bnlab"]) == {1, 2} and row["bnlab"][row["best_K"]] == min(row["bnlab"].values())
    side = row["side_by_side"]
    assert (side is None) == (torch.get_num_threads() < 2) and (side is None or side > 0)
    best = min(row["bnlab"][row["best_K"]], side or float("inf"))      # the fastest way bnlab trains
    assert row["speedup_vs_loader"] == row["loader"] / best
    assert row["frac_peak"] == res["gflop_per_model_epoch"] / best / res["sgemm_gflops"]
    assert [c.header for c in bench.table(res).columns][4:7] == [
        "bnlab K=1", "bnlab K=2", f"bnlab {res['threads']}×K=16 side by side (auto)"]
