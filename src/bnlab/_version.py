"""The package version, apart from `__init__` so that modules inside bnlab never import the package itself."""

__version__ = "0.1.0"
