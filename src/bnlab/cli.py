"""Command line: argument parsing and wiring only.

Typed errors (BnlabError) become one line on stderr and exit code 2 (a
traceback only with --debug); Ctrl-C exits 130 and SIGTERM 143, after saying what
was saved; a second signal during that clean-up changes nothing.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from . import environment
from .errors import BnlabError, ConfigError
from .options import add_flags, from_args

EXIT_USAGE, EXIT_INTERRUPT, EXIT_TERMINATED = 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: workers stopped, finished runs kept, exit 143."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _common(p: argparse.ArgumentParser, out_help: str) -> None:
    """The Options flags (bnlab.options.add_flags), the data limits and --debug."""
    add_flags(p, out=out_help)
    p.add_argument(
        "--train-limit", type=int, help="use only the first N training images (quick looks, tests)"
    )
    p.add_argument("--test-limit", type=int, help="use only the first N test images")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bnlab", description="Does Batch Normalization help? Measured, with seeds."
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="train a grid given on the command line (cartesian product × seeds)")
    r.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (default mnist)")
    r.add_argument(
        "--norm", nargs="+", default=["none"], help="none batch layer group batch-renorm ghost-batch"
    )
    r.add_argument(
        "--placement", nargs="+", default=["after"], help="after (Dense→ReLU→BN) or before (Dense→BN→ReLU)"
    )
    r.add_argument("--batch-size", nargs="+", type=int, default=[32])
    r.add_argument("--lr", nargs="+", type=float, default=[1e-3])
    r.add_argument("--optimizer", nargs="+", default=["adam"], help="adam or sgd")
    r.add_argument(
        "--init", nargs="+", default=["default"], help="default glorot_uniform torch_default he_normal"
    )
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
    s.add_argument("--dataset", help="every run's dataset, mnist or fashion-mnist (default: the study's)")
    s.add_argument(
        "--until-decided",
        action="store_true",
        help="train in rounds of seeds until a group-sequential test decides every claim (README)",
    )
    for flag, kind, text in (
        ("--max-seeds", int, "most seeds per configuration (default 4 × the first round's)"),
        ("--round", int, "seeds added per round (default: the first round's count)"),
        ("--futility", float, "stop a claim whose conditional power drops below this (0.1; 0: never)"),
    ):
        s.add_argument(flag, type=kind, help=f"with --until-decided: {text}")
    _common(s, "output folder (default bnlab-out/STUDY)")

    pl = sub.add_parser(
        "plan",
        help="seeds (and time) each claim of a study needs, from stored runs or a pilot",
        description="Reads the study's runs from the store; without them, trains a pilot (--pilot-seeds "
        "seeds on the first --train-limit images, default 6000; times scaled to the full "
        "training set) into OUT/pilot; with --store named, only when --pilot is given.",
    )
    pl.add_argument("study", help="study name (see bnlab study --list)")
    pl.add_argument(
        "--effect",
        type=float,
        help="effect to detect, in pp, for the claims measured in pp "
        "(default: the claim's margin, else its observed effect)",
    )
    pl.add_argument("--power", type=float, default=0.8, help="power to detect it (default 0.8)")
    pl.add_argument(
        "--round", type=int, help="seeds per round of a sequential study (default: the first round's)"
    )
    pl.add_argument(
        "--pilot-seeds",
        type=int,
        default=3,
        help="seeds of the pilot run when the store has no runs of the study (default 3)",
    )
    pl.add_argument("--epochs", type=int, help="override the study's epochs (pilot and plan)")
    pl.add_argument(
        "--pilot",
        action="store_true",
        help="train a pilot when the store lacks the study's runs "
        "(the default only when no --store is named)",
    )
    _common(pl, "output folder whose store is read (default bnlab-out/STUDY); a pilot goes to OUT/pilot")

    p = sub.add_parser("report", help="rewrite a study's report from the store, without training")
    p.add_argument("study", help="study name as stored")
    p.add_argument("--out", help="output folder (default bnlab-out/STUDY)")
    p.add_argument("--store", help="SQLite store (default OUT/bnlab.sqlite)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")

    f = sub.add_parser(
        "fold", help="export a stored BN run with BN folded into its Linear layers (inference)"
    )
    f.add_argument(
        "run_id", nargs="?", help="run id (see results.csv; runs of bnlab study overhead keep parameters)"
    )
    f.add_argument(
        "--store",
        default="bnlab-out/overhead/bnlab.sqlite",
        help="SQLite store (default bnlab-out/overhead/bnlab.sqlite)",
    )
    f.add_argument("--out", help="output file (default RUN_ID.folded.pt)")
    f.add_argument("--data-dir", help="dataset root, to check the folded model on the test set")
    f.add_argument("--debug", action="store_true", help="show tracebacks")

    x = sub.add_parser(
        "export", help="export stored runs to TensorBoard event files and/or an MLflow tracking store"
    )
    x.add_argument(
        "path",
        help="an output folder (holding bnlab.sqlite), a store file, or the folder of "
        "bnlab study all (every study folder in it)",
    )
    x.add_argument(
        "--study", action="append", help="export only this study (repeatable; default: every stored study)"
    )
    x.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write one TensorBoard run per bnlab run under DIR/STUDY/ (needs bnlab[tensorboard])",
    )
    x.add_argument(
        "--mlflow",
        metavar="URI",
        help="log one MLflow run per bnlab run into the experiment STUDY at this "
        "tracking URI, e.g. sqlite:///mlflow.db (needs bnlab[mlflow]); runs already there are skipped",
    )
    x.add_argument("--debug", action="store_true", help="show tracebacks")

    b = sub.add_parser("bench", help="seconds per model-epoch: bnlab vs plain PyTorch loops, in one run")
    b.add_argument("--batch-size", nargs="+", type=int, default=[16, 32, 64, 128])
    b.add_argument(
        "--stack",
        nargs="+",
        type=int,
        default=[1, 16],
        help="stack sizes K to time in this process (default 1 16; 16 is bnlab's own choice, --max-stack)",
    )
    b.add_argument("--no-bn-too", action="store_true", help="also time the nets without BN")
    b.add_argument(
        "--epochs", type=int, default=3, help="epochs per timing; epochs 2.. are timed (default 3, >= 3)"
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help="a 4,096-image slice and a 2-seed, 3-epoch study row (for CI; the table says so)",
    )
    b.add_argument("--repeats", type=int, default=1, help="median of this many timings (default 1)")
    b.add_argument("--json", default="bench.json", help="write the numbers here (default bench.json)")
    b.add_argument("--data-dir", help="dataset root (see bnlab run)")
    b.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    previous = (
        signal.signal(signal.SIGTERM, _on_sigterm)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    command = (
        ("bnlab " + shlex.join(argv)).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    )
    try:
        environment.check_all()
        return _dispatch(args, command)
    except BnlabError as e:
        if getattr(args, "debug", False):
            raise
        _err(f"bnlab: error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we clean up changes nothing
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _err(f"\nbnlab: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; {_saved(args)}")
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPT
    except OSError as e:  # stdout on a full disk, a closed pipe, a path refused
        if getattr(args, "debug", False):
            raise
        where = f" {e.filename}" if e.filename else " output"
        _err(f"bnlab: error: cannot write{where} ({e.strerror or e}); finished runs are in the store")
        return EXIT_USAGE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _saved(args) -> str:
    """What an interrupted command kept: runs in a store that exists, or nothing."""
    if getattr(args, "cmd", None) not in ("run", "study"):
        return "nothing was written."
    out = Path(
        getattr(args, "out", None)
        or (Path("bnlab-out") / (args.study or "") if args.cmd == "study" else "bnlab-out/run")
    )
    if args.cmd == "study" and args.study == "all" and not getattr(args, "store", None):
        stores = sorted(out.glob("*/bnlab.sqlite"))
        if not stores:
            return "no run had finished, so nothing was saved."
        return (
            f"every finished run is saved in the studies' stores ({out}/STUDY/bnlab.sqlite). Run the same "
            "command again to resume."
        )
    store = Path(getattr(args, "store", None) or out / "bnlab.sqlite")
    if not store.exists():
        return "no run had finished, so nothing was saved."
    return f"every finished run is saved in the store ({store}). Run the same command again to resume."


def _err(msg: str) -> None:
    try:
        print(msg, file=sys.stderr)
    except OSError:
        pass


def _dispatch(args, command: str) -> int:
    from . import console

    if args.cmd == "study" and args.list:
        console.list_studies()
        return 0
    if args.cmd == "study" and not args.study:
        raise ConfigError("bnlab study needs a study name or a .toml file; see bnlab study --list")
    if args.cmd in ("run", "study"):
        return _train(args, command)
    if args.cmd == "report":
        from .report.study_report import write_report

        out = Path(args.out or Path("bnlab-out") / args.study)
        store = _existing(args.store or out / "bnlab.sqlite", "run the study first or pass --store")
        from .folders import prepare_out
        from .store import Store

        out, store = prepare_out(out, store)
        with Store(store) as st:
            if st.study(args.study) is None:
                raise ConfigError(
                    f"study {args.study!r} is not in {store}; stored studies: "
                    f"{', '.join(st.studies()) or 'none'}"
                )
            paths = write_report(st, args.study, out)
        console.say(f"report: {paths['html']}")
        return 0
    if args.cmd == "fold":
        from .fold import fold_run

        _existing(args.store, "run bnlab study overhead first or pass --store")
        r = fold_run(args.store, args.run_id, args.out or f"{args.run_id}.folded.pt", args.data_dir)
        console.say(
            f"folded {args.run_id} ({r['spec'].norm}, placement {r['spec'].placement}) into a plain "
            f"{'-'.join(map(str, r['dims']))} MLP: {r['path']}; max |folded − unfolded| test logit "
            f"{r['max_abs_err']:.2e}"
        )
        return 0
    if args.cmd == "export":
        from .export.command import export

        _existing(args.path, "pass a study's output folder (holding bnlab.sqlite) or a store file")
        for line in export(args.path, studies=args.study, tensorboard=args.tensorboard, mlflow=args.mlflow):
            console.say(line)
        return 0
    if args.cmd == "plan":
        from . import plan

        if args.store and not args.pilot:
            _existing(args.store, "check the path, or pass --pilot without --store to train a pilot")
        text = plan.plan_study(
            args.study,
            effect=args.effect,
            power=args.power,
            round_seeds=args.round,
            pilot_seeds=args.pilot_seeds,
            pilot=args.pilot or not args.store,
            train_limit=args.train_limit,
            epochs=args.epochs,
            test_limit=args.test_limit,
            on_pilot=console.say,
            options=from_args(args, quiet=True),
        )
        console.plain(text)
        return 0
    from . import bench_cli

    return bench_cli.command(args, console)


def _existing(path: str | Path, fix: str) -> Path:
    """`path` if it exists; else a ConfigError naming it and the fix (a read-only command creates nothing)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no store at {p}: the path does not exist; {fix}")
    return p


def _train(args, command: str) -> int:
    """bnlab run / bnlab study: the Options from the flags, the progress bar, then api.run_grid/run_study."""
    from . import api, console

    bar, progress = console.progress_display(args.quiet)
    opts = from_args(args, progress=progress)
    if bar:
        bar.start()
    try:
        if args.cmd == "run":
            axes = {k: tuple(getattr(args, k)) for k in GRID_AXES}
            base = {
                k: getattr(args, k) for k in ("dataset", "profile", "epochs", "train_limit", "test_limit")
            }
            res = api.run_grid(axes, base, args.seeds, command=command, options=opts)
        else:
            res = api.run_study(
                args.study,
                seeds=args.seeds,
                epochs=args.epochs,
                train_limit=args.train_limit,
                test_limit=args.test_limit,
                dataset=args.dataset,
                command=command,
                options=opts,
                **_sequential(args),
            )
    finally:
        if bar:
            bar.stop()
    if not args.quiet:
        console.study_done(res)
    return 0


GRID_AXES = ("norm", "placement", "batch_size", "lr", "optimizer", "init", "init_scale")  # bnlab run's


def _sequential(args) -> dict:
    """bnlab study --until-decided [--max-seeds N] [--round K] [--futility P]: api.run_study's keywords, a
    line per round."""
    keys = ("until_decided", "max_seeds", "round", "futility")
    if not any(getattr(args, k, None) not in (None, False) for k in keys):
        return {}
    import time

    from . import console
    from .planning.until_decided import round_line

    t0 = time.perf_counter()

    def say(k, h):
        if not args.quiet:
            console.out.print(round_line(k, h, time.perf_counter() - t0), markup=False)

    return dict(
        until_decided=args.until_decided,
        max_seeds=args.max_seeds,
        round_seeds=args.round,
        futility=args.futility,
        on_round=say,
    )
