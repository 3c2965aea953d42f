"""TOML text to a dict, bounded: every failure of the TOML reader is one ConfigError line.

tomllib raises TOMLDecodeError for text that is not TOML and RecursionError for arrays or inline tables
nested a few hundred deep; a dotted key or table header of many parts (`a.a.a… = 1`) costs it memory
and time that grow with the square of the parts (a 1 MiB file of them takes gigabytes), so keys of
more than MAX_KEY_PARTS parts are refused before it reads the text. A study file needs three.
"""

from __future__ import annotations

import re
import sys

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_KEY_PARTS = 16
# strings (multi-line first) and comments, which may hold dots that are not keys
_STRING_OR_COMMENT = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|(#[^\n]*)'
)
# a run of more than MAX_KEY_PARTS dotted parts, starting at a word's start (so no backtracking into it)
_DEEP_KEY = re.compile(r"(?<![\w-])[\w-]+(?:[ \t]*\.[ \t]*[\w-]+){" + str(MAX_KEY_PARTS) + ",}")


def _blank(m: re.Match) -> str:
    return "" if m.group(1) is not None else "q"


def parse(text: str, where: str) -> dict:
    """The TOML document `text` (from `where`, a file's name) as a dict; one ConfigError naming `where`,
    the problem and the fix otherwise."""
    if (deep := _DEEP_KEY.search(_STRING_OR_COMMENT.sub(_blank, text))) is not None:
        parts = deep.group().count(".") + 1
        raise ConfigError(
            f"{where} is not a study file: a dotted key of {parts} parts (at most {MAX_KEY_PARTS}); "
            "use a table header and short keys"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML ({' '.join(str(e).split())}); correct it") from None
    except RecursionError:
        raise ConfigError(
            f"{where} is not a study file: arrays or tables nested too deep "
            "(tomllib: maximum recursion); flatten it"
        ) from None
