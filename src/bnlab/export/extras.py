"""Optional extras: import a tool's module, or fail with one line that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ConfigError


def need(module: str, extra: str) -> ModuleType:
    """`module` imported; if it (or its package) is not installed, a ConfigError
    "PACKAGE is not installed; pip install 'bnlab[EXTRA]'"."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] == package or e.name == module:
            raise ConfigError(f"{package} is not installed; pip install 'bnlab[{extra}]'") from None
        raise ConfigError(
            f"{package} is installed but cannot import {e.name}; pip install 'bnlab[{extra}]' again"
        ) from None
