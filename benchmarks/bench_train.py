"""Seconds per model-epoch: bnlab's stacked trainer vs plain PyTorch loops, measured in one run.

python benchmarks/bench_train.py            # same as `bnlab bench --no-bn-too`
python benchmarks/bench_train.py --help
"""

import sys

from bnlab.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    raise SystemExit(main(["bench", *(args or ["--no-bn-too"])]))
