"""bnlab: does Batch Normalization help? The classic MNIST study, run properly.

Importing bnlab is light (no torch); `run_study`, `run_grid` and `load` load the rest on use.
"""

from ._version import __version__

__all__ = ["__version__", "run_study", "run_grid", "load"]


def run_study(*args, **kwargs):
    """See bnlab.api.run_study."""
    from .api import run_study

    return run_study(*args, **kwargs)


def run_grid(*args, **kwargs):
    """See bnlab.api.run_grid."""
    from .api import run_grid

    return run_grid(*args, **kwargs)


def load(*args, **kwargs):
    """See bnlab.export.frames.load: a study's rows as a pandas DataFrame (needs bnlab[pandas])."""
    from .export.frames import load

    return load(*args, **kwargs)
