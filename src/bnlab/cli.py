"""Command line: argument parsing and wiring only.

Typed errors (BnlabError) become one line on stderr and exit code 2 (a
traceback only with --debug); Ctrl-C exits 130 after saying what was saved.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .errors import BnlabError

EXIT_USAGE, EXIT_INTERRUPT = 2, 130


def _common(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--out", help=out_help)
    p.add_argument("--store", help="SQLite store to use (default OUT/bnlab.sqlite); share one across studies")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda (default auto)")
    p.add_argument("--data-dir", help="dataset root (one subfolder per dataset); default $BNLAB_DATA_DIR, caches")
    p.add_argument("--fresh", action="store_true", help="retrain runs already in the store")
    p.add_argument("--train-limit", type=int, help="use only the first N training images (quick looks, tests)")
    p.add_argument("--test-limit", type=int, help="use only the first N test images")
    p.add_argument("--max-stack", type=int, default=16, help="most models trained at once in one stack (default 16)")
    p.add_argument("--backend", default="local", help="local (this process) or ray (a Ray cluster) (default local)")
    p.add_argument("--ray-address", help="Ray cluster to use (default $RAY_ADDRESS, else a local Ray for the run)")
    p.add_argument("--cpus-per-group", type=int,
                   help="CPUs (torch threads) per stack; stacks run side by side in worker processes "
                        "(default: CPUs / stacks, at least 1; local: only for jobs of 50k+ model-steps)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bnlab", description="Does Batch Normalization help? Measured, with seeds.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="train a grid given on the command line (cartesian product × seeds)")
    r.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (default mnist)")
    r.add_argument("--norm", nargs="+", default=["none"], help="none batch layer group batch-renorm ghost-batch")
    r.add_argument("--placement", nargs="+", default=["after"], help="after (Dense→ReLU→BN) or before (Dense→BN→ReLU)")
    r.add_argument("--batch-size", nargs="+", type=int, default=[32])
    r.add_argument("--lr", nargs="+", type=float, default=[1e-3])
    r.add_argument("--optimizer", nargs="+", default=["adam"], help="adam or sgd")
    r.add_argument("--init", nargs="+", default=["default"], help="default glorot_uniform torch_default he_normal")
    r.add_argument("--init-scale", nargs="+", type=float, default=[1.0])
    r.add_argument("--profile", default="keras", help="keras (default) or torch framework defaults")
    r.add_argument("--epochs", type=int, default=10)
    r.add_argument("--seeds", default="1", help="a count (5 → seeds 0..4) or a list (3,7,11)")
    _common(r, "output folder (default bnlab-out/run)")

    s = sub.add_parser("study", help="run a named study or a TOML study file, then write its report")
    s.add_argument("study", nargs="?", help="study name (see --list) or path/to/study.toml")
    s.add_argument("--list", action="store_true", help="list the named studies and their questions")
    s.add_argument("--seeds", help="a count or a list (default: the study's)")
    s.add_argument("--epochs", type=int, help="override the study's epochs")
    _common(s, "output folder (default bnlab-out/STUDY)")

    p = sub.add_parser("report", help="rewrite a study's report from the store, without training")
    p.add_argument("study", help="study name as stored")
    p.add_argument("--out", help="output folder (default bnlab-out/STUDY)")
    p.add_argument("--store", help="SQLite store (default OUT/bnlab.sqlite)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")

    f = sub.add_parser("fold", help="export a stored BN run with BN folded into its Linear layers (inference)")
    f.add_argument("run_id", nargs="?", help="run id (see results.csv; runs of bnlab study overhead keep parameters)")
    f.add_argument("--store", default="bnlab-out/overhead/bnlab.sqlite", help="SQLite store (default "
                   "bnlab-out/overhead/bnlab.sqlite)")
    f.add_argument("--out", help="output file (default RUN_ID.folded.pt)")
    f.add_argument("--data-dir", help="dataset root, to check the folded model on the test set")
    f.add_argument("--debug", action="store_true", help="show tracebacks")

    b = sub.add_parser("bench", help="seconds per model-epoch: bnlab vs plain PyTorch loops, in one run")
    b.add_argument("--batch-size", nargs="+", type=int, default=[16, 32, 64, 128])
    b.add_argument("--stack", nargs="+", type=int, default=[1, 16],
                   help="stack sizes K to time in this process (default 1 16; 16 is bnlab's own choice, --max-stack)")
    b.add_argument("--no-bn-too", action="store_true", help="also time the nets without BN")
    b.add_argument("--epochs", type=int, default=3, help="epochs per timing; epochs 2.. are timed (default 3, >= 3)")
    b.add_argument("--quick", action="store_true", help="a 4,096-image slice and a 2-seed, 3-epoch study row "
                   "(for CI; the table says so)")
    b.add_argument("--repeats", type=int, default=1, help="median of this many timings (default 1)")
    b.add_argument("--json", default="bench.json", help="write the numbers here (default bench.json)")
    b.add_argument("--data-dir", help="dataset root (see bnlab run)")
    b.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        return _dispatch(args, "bnlab " + shlex.join(argv))
    except BnlabError as e:
        if getattr(args, "debug", False):
            raise
        print(f"bnlab: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        out = getattr(args, "out", None) or "the output folder"
        print(f"\nbnlab: interrupted; every finished run is saved in the store under {out}. "
              f"Run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPT


def _dispatch(args, command: str) -> int:
    from . import console

    if args.cmd == "study" and args.list:
        console.list_studies()
        return 0
    if args.cmd == "study" and not args.study:
        raise _usage("bnlab study needs a study name or a .toml file; see bnlab study --list")
    if args.cmd == "report":
        from . import api
        from .store import Store

        out = Path(args.out or Path("bnlab-out") / args.study)
        store = Path(args.store or out / "bnlab.sqlite")
        if not store.exists():
            raise _usage(f"no store at {store}; run the study first or pass --store")
        out, store = api.prepare_out(out, store)
        from .report.study_report import write_report

        with Store(store) as st:
            if st.study(args.study) is None:
                raise _usage(f"study {args.study!r} is not in {store}; stored studies: "
                             f"{', '.join(st.studies()) or 'none'}")
            paths = write_report(st, args.study, out)
        console.say(f"report: {paths['html']}")
        return 0
    if args.cmd == "fold":
        from . import api

        r = api.fold_run(args.store, args.run_id, args.out or f"{args.run_id}.folded.pt", args.data_dir)
        console.say(f"folded {args.run_id} ({r['spec'].norm}, placement {r['spec'].placement}) into a plain "
                    f"{'-'.join(map(str, r['dims']))} MLP: {r['path']}; max |folded − unfolded| test logit "
                    f"{r['max_abs_err']:.2e}")
        return 0
    if args.cmd == "bench":
        from . import bench, data
        from .limits import check_bound
        from .outputs import check_target

        for name, label, values in (("repeats", "--repeats", [args.repeats]), ("max_stack", "--stack", args.stack),
                                    ("batch_size", "--batch-size", args.batch_size), ("epochs", "--epochs",
                                                                                        [args.epochs])):
            for v in values:
                check_bound(name, v, label)
        if args.epochs < 3:
            raise _usage("--epochs must be at least 3: epoch 1 is warm-up, the steady state needs two more")
        check_target(args.json, "--json")
        quick = {**bench.QUICK, "epochs": args.epochs} if args.quick else {"epochs": args.epochs}
        res = bench.run(args.batch_size, args.stack, repeats=args.repeats,
                        bn_options=(True, False) if args.no_bn_too else (True,), data=data.load("mnist", args.data_dir),
                        log=console.say, **quick)
        console.out.print(bench.table(res))
        if res.get("study"):
            console.out.print(bench.study_table(res))
        bench.save(res, args.json)
        console.say(f"numbers: {args.json}")
        return 0
    return console.train(args, command)


def _usage(msg: str) -> BnlabError:
    from .errors import ConfigError

    return ConfigError(msg)
