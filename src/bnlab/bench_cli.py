"""`bnlab bench` from the command line: its flags checked, bench.run, the numbers as tables and JSON."""

from __future__ import annotations

import argparse

from . import bench, data
from .errors import ConfigError
from .limits import check_bound
from .outputs import check_target
from .run.jobs import DEFAULT_MAX_STACK


def command(args: argparse.Namespace, console) -> int:
    """bnlab bench: check the flags (before any timing), run, print the tables, save the JSON."""
    for name, label, values in (
        ("repeats", "--repeats", [args.repeats]),
        ("max_stack", "--stack", args.stack),
        ("batch_size", "--batch-size", args.batch_size),
        ("epochs", "--epochs", [args.epochs]),
    ):
        for v in values:
            check_bound(name, v, label)
    if args.epochs < 3:
        raise ConfigError("--epochs must be at least 3: epoch 1 is warm-up, the steady state needs two more")
    check_target(args.json, "--json")
    quick = {**bench.QUICK, "epochs": args.epochs} if args.quick else {"epochs": args.epochs}
    res = bench.run(
        args.batch_size,
        args.stack,
        repeats=args.repeats,
        bn_options=(True, False) if args.no_bn_too else (True,),
        data=data.load("mnist", args.data_dir),
        log=console.say,
        **quick,
    )
    console.out.print(table(res))
    console.out.print(step_table(res))
    if res.get("study"):
        console.out.print(study_table(res))
    bench.save(res, args.json)
    console.say(f"numbers: {args.json}")
    return 0


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _slice(result: dict) -> str:
    return (
        f"full training set, {result['n_train']:,} images"
        if result["full"]
        else f"QUICK LOOK on a {result['n_train']:,}-image slice, not the full measurement"
    )


def table(result: dict):
    """A rich table of a run() result's rows."""
    from rich.table import Table

    Ks = list(result["rows"][0]["bnlab"]) if result["rows"] else []
    t = Table(
        title=f"seconds per model-epoch, steady state (epochs 2-{result['epochs']}), {_slice(result)}; "
        f"{result['cpu']}, {result['threads']} threads, torch {result['torch']}, "
        f"sgemm peak {result['sgemm_gflops']:.0f} GFLOP/s"
    )
    side = f"{result['threads']}×K={DEFAULT_MAX_STACK} side by side"
    for c in [
        "bs",
        "BN",
        "DataLoader",
        "resident",
        *[f"bnlab K={k}" for k in Ks],
        side,
        "bnlab's choice",
        "× floor",
        "× DataLoader",
        "× resident",
        "% of peak",
    ]:
        t.add_column(c, justify="right")
    for r in result["rows"]:
        which = "side by side" if r["choice_plan"].startswith("side") else "one stack"
        t.add_row(
            str(r["batch_size"]),
            "yes" if r["bn"] else "no",
            _num(r["loader"]),
            _num(r["resident"]),
            *[_num(r["bnlab"][k]) for k in Ks],
            _num(r["side_by_side"]),
            f"{_num(r['choice'])} ({which})",
            f"{r['x_floor']:.1f}",
            f"{r['speedup_vs_loader']:.1f}",
            f"{r['speedup_vs_resident']:.1f}",
            f"{100 * r['frac_peak']:.0f}%",
        )
    return t


def study_table(result: dict):
    """The study row as a rich table (None when the run had none)."""
    from rich.table import Table

    s = result.get("study")
    if not s:
        return None
    t = Table(
        title=f"the seed study's training, {s['model_epochs']} model-epochs ({s['runs']} runs in stacks of "
        f"{s['stacks']}), {_slice(result)}; plain loops: measured s per model-epoch × epochs, "
        f"summed over runs"
    )
    for c in [
        "bnlab wall (s)",
        "bnlab's plan",
        "FLOP floor (s)",
        "× floor",
        "plain DataLoader (s)",
        "×",
        "plain resident (s)",
        "×",
        "peak RSS (MB): process / largest worker",
    ]:
        t.add_column(c, justify="right")
    rss = result["peak_rss_mb"]
    t.add_row(
        f"{s['wall_s']:.1f}",
        s["plan"],
        f"{s['floor_s']:.1f}",
        f"{s['x_floor']:.1f}",
        f"{s['loader_s']:.0f}",
        f"{s['speedup_vs_loader']:.1f}",
        f"{s['resident_s']:.0f}",
        f"{s['speedup_vs_resident']:.1f}",
        f"{rss['this_process']:.0f} / {rss['largest_worker']:.0f}",
    )
    return t


def step_table(result: dict):
    """The training step beside its GEMMs alone, as a rich table."""
    from rich.table import Table

    sg = result["step_vs_gemms"]
    t = Table(
        title=f"one training step, K = {sg['K']}, batch size {sg['batch_size']}, BN, {sg['threads']} thread, "
        f"{_slice(result)}: in training (steady state) vs the same step's GEMMs alone (same shapes, "
        f"preallocated random data) and its Adam alone (the stack's flat buffer), in this run"
    )
    for c in [
        "in training (ms)",
        "GEMMs alone (ms)",
        "GEMMs' GFLOP/s",
        "× GEMMs alone",
        "Adam alone (ms)",
        "Adam's GB/s",
        "in-place scale's GB/s",
        "GEMMs + Adam alone, × GEMMs",
    ]:
        t.add_column(c, justify="right")
    t.add_row(
        f"{1e3 * sg['step_s']:.3f}",
        f"{1e3 * sg['gemms_s']:.3f}",
        f"{sg['gemm_gflops']:.0f}",
        f"{sg['ratio']:.2f}",
        f"{1e3 * sg['adam_s']:.3f}",
        f"{sg['adam_gbs']:.0f}",
        f"{sg['stream_gbs']:.0f}",
        f"{sg['gemms_adam_ratio']:.2f}",
    )
    return t
