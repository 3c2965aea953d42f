"""Shared fixtures."""

import os

import pytest

from bnlab import data as D


@pytest.fixture
def offline_data(tmp_path, monkeypatch):
    """No real caches, env or network: empty HOME, BNLAB_DATA_DIR unset, downloads off, a private
    copy of the dataset registry (tests may patch it), the in-process cache cleared."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BNLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("BNLAB_OFFLINE", "1")
    monkeypatch.setattr(D, "DATASETS", dict(D.DATASETS))
    D._read.cache_clear()
    yield D
    D._read.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def _tuning_cache(tmp_path_factory):
    """One tuning file for the session (and the CLI processes it starts), never the user's."""
    os.environ["BNLAB_TUNING_CACHE"] = str(tmp_path_factory.mktemp("tuning") / "tuning.json")
