"""The `bnlab` command (and `python -m bnlab`): a signal that arrives while the command line is still
importing exits as cli.main's own handlers do (143 for SIGTERM, 130 for Ctrl-C), in one line, since
nothing can have been saved yet; from then on cli.main handles them."""

import os
import signal
import sys


def _before_start(signum, frame):
    sys.stderr.write("\nbnlab: stopped before it started; nothing was saved.\n")
    os._exit(143 if signum == signal.SIGTERM else 130)  # nothing was opened: no clean-up to run


def run() -> int:
    """Install the early handlers, import the command line (a moment), then hand the signals to it."""
    signal.signal(signal.SIGTERM, _before_start)
    signal.signal(signal.SIGINT, _before_start)
    from .cli import main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # cli.main sets SIGTERM's own
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
