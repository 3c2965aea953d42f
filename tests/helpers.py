"""Helpers shared by test modules in several folders (tests/ is on sys.path through conftest.py)."""
import os
import subprocess
import sys

import pytest

from bnlab import data

needs_mnist = pytest.mark.skipif(
    not data.available("mnist"),
    reason="real MNIST not found: set BNLAB_DATA_DIR to a folder holding mnist/ (CI does)")


def bnlab(*args, env=None):
    """Run the CLI as a user does, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "bnlab", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
