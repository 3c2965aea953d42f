"""Typed errors that the CLI turns into one-line messages and exit code 2."""


class BnlabError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class DataError(BnlabError):
    """A dataset file is missing, corrupt or malformed."""


class ConfigError(BnlabError):
    """A run or study specification is invalid."""


class StoreError(BnlabError):
    """The SQLite store cannot be opened, read or written (corrupt, locked, read-only, full disk)."""


class StoreLocked(StoreError):
    """Another process held the store's write lock for longer than bnlab waits."""
