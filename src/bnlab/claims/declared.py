"""Claims a study file declares (`[[claims]]`): a comparison of two configurations on a statistic from a
fixed list, checked when the file is read and turned into `Claim`s for the report.

    [[claims]]
    key = "bs128"                               # letters, digits, - and _; unique in the file
    title = "BN helps at batch size 128"        # optional
    a = { norm = "none", batch_size = 128 }     # the reference configuration: RunSpec fields
    b = { norm = "batch", batch_size = 128 }    # the one compared with it
    statistic = "final_test_acc"                # one of STATISTICS
    direction = "higher"                        # what the claim predicts for b − a: higher or lower
    margin = 0.2                                # optional: equivalence margin in the statistic's unit

The primary test is the one the named studies use for such a statistic: Welch's t with a permutation test
(TOST within the margin) for a final value, Mann–Whitney with censored runs ranked last for steps to the
threshold. The claims of one file are one Holm family.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import stats
from ..config import RunSpec
from ..errors import ConfigError
from ..studydata import Config, StudyData
from .claim import Claim
from .finding import MARGIN, Finding
from .findings import censored_finding, compare_finding, diverged_notes


@dataclass(frozen=True)
class Statistic:
    """A per-run value a declared claim may compare: its unit, the scale from data to unit, its default
    margin, what it is in words, and how each run of a configuration gives it."""

    unit: str
    scale: float
    margin: float
    name: str  # short, for a title: 'the generalization gap'
    words: str
    per_run: Callable[[Config], np.ndarray] | None  # None: steps to the threshold, a censored statistic


def _epoch1(c: Config) -> np.ndarray:
    return np.array([float(r.m["test_acc"][0]) if len(r.m["test_acc"]) else math.nan for r in c.runs])


STATISTICS = {
    "final_test_acc": Statistic(
        "pp", 100, MARGIN["pp"], "final test accuracy", "final test accuracy", lambda c: c.finals()
    ),
    "final_test_loss": Statistic(
        "nats", 1, math.nan, "final test loss", "final test loss", lambda c: c.finals("test_loss")
    ),
    "generalization_gap": Statistic(
        "pp",
        100,
        MARGIN["pp"],
        "generalization gap",
        "train − test accuracy at the last epoch (eval mode)",
        lambda c: c.gaps(),
    ),
    "epoch1_test_acc": Statistic(
        "pp", 100, MARGIN["pp"], "test accuracy after epoch 1", "test accuracy after the first epoch", _epoch1
    ),
    "steps_to_threshold": Statistic(
        "steps",
        1,
        math.nan,
        "steps to the threshold",
        "optimizer steps until test accuracy first reaches the threshold",
        None,
    ),
}
KEYS = ("key", "title", "a", "b", "statistic", "direction", "margin")
DIRECTIONS = {"higher": +1, "lower": -1}


def check_claims(raw, specs: Sequence[RunSpec]) -> tuple[dict, ...]:
    """The `[[claims]]` of a study file, checked against its runs: each a table with the keys above, `a` and
    `b` naming RunSpec fields whose values pick at least one of the study's configurations each, and
    different ones. Returns them as plain dicts (stored with the study's spec); a problem is one
    ConfigError naming the claim and the fix."""
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise ConfigError("claims must be an array of tables ([[claims]]), one per claim")
    fields = {f.name for f in dataclasses.fields(RunSpec)} - {"seed"}
    out, seen = [], set()
    for i, c in enumerate(raw):
        where = f"claims[{i}]"
        if unknown := [k for k in c if k not in KEYS]:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(KEYS)}")
        key = c.get("key")
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key):
            raise ConfigError(f"{where}: key must be 1-32 letters, digits, '-' or '_', got {key!r}")
        if key in seen:
            raise ConfigError(f"claims: key {key!r} is declared twice; give each claim its own key")
        seen.add(key)
        where = f"claim {key!r}"
        title = c.get("title", "")
        if not isinstance(title, str) or len(title) > 200:
            raise ConfigError(f"{where}: title must be a string of at most 200 characters")
        if not isinstance(c.get("statistic"), str) or c["statistic"] not in STATISTICS:
            raise ConfigError(
                f"{where}: statistic must be one of {', '.join(STATISTICS)}, got {c.get('statistic')!r}"
            )
        if not isinstance(c.get("direction"), str) or c["direction"] not in DIRECTIONS:
            raise ConfigError(f"{where}: direction must be 'higher' or 'lower', got {c.get('direction')!r}")
        margin = c.get("margin")
        if margin is not None and (
            isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < math.inf
        ):
            raise ConfigError(
                f"{where}: margin must be a positive number in the statistic's unit, got {margin!r}"
            )
        picks = []
        for side in ("a", "b"):
            sel = c.get(side)
            if not isinstance(sel, dict) or not sel:
                raise ConfigError(
                    f'{where}: {side} must be a table of RunSpec fields, e.g. {{ norm = "none" }}'
                )
            if bad := [f for f in sel if f not in fields]:
                raise ConfigError(f"{where}: {side}.{bad[0]} is not a RunSpec field; see bnlab run --help")
            hit = {s.config_hash() for s in specs if all(getattr(s, f) == v for f, v in sel.items())}
            if not hit:
                raise ConfigError(f"{where}: {side} = {sel} matches no configuration of the study's grid")
            picks.append(hit)
        if picks[0] == picks[1]:
            raise ConfigError(f"{where}: a and b pick the same configurations; make them differ")
        out.append(dict(c, margin=None if margin is None else float(margin)))
    return tuple(out)


def _pick(d: StudyData, sel: dict) -> Config | None:
    """The first configuration whose spec has the fields of `sel` (configurations are ordered)."""
    return next((c for c in d.configs if all(getattr(c.spec, f) == v for f, v in sel.items())), None)


def _test(spec: dict) -> Callable[[Claim, StudyData], Finding]:
    st, sign = STATISTICS[spec["statistic"]], DIRECTIONS[spec["direction"]]
    la, lb, at = sides(spec["a"], spec["b"])

    def test(claim: Claim, d: StudyData) -> Finding:
        a, b = _pick(d, spec["a"]), _pick(d, spec["b"])
        if spec["statistic"] == "steps_to_threshold":
            sa, sb = (c.to_threshold(d.threshold)[0] if c else np.array([]) for c in (a, b))
            return censored_finding(
                claim,
                f"Optimizer steps until test accuracy first reaches {d.threshold:.0%}: {lb} against {la}"
                + (f" at {at}." if at else "."),
                stats.censored_compare(sa, np.isfinite(sa), sb, np.isfinite(sb)),
                labels=(la, lb),
                notes=diverged_notes(a, b),
            )
        assert st.per_run is not None  # every statistic but steps_to_threshold has one
        va, vb = (st.per_run(c) if c else np.array([]) for c in (a, b))
        va, vb = va[np.isfinite(va)], vb[np.isfinite(vb)]
        return compare_finding(
            claim,
            f"{st.words[0].upper()}{st.words[1:]}: {lb} minus {la}{' at ' + at if at else ''} (declared in "
            f"the study file; the claim predicts {spec['direction']}).",
            stats.compare(va, vb, label_a=la, label_b=lb),
            unit=st.unit,
            scale=st.scale,
            sign=sign,
            margin=st.margin if spec["margin"] is None else spec["margin"],
            notes=diverged_notes(a, b),
        )

    return test


def from_file(declared: Sequence[dict]) -> tuple[Claim, ...]:
    """The Claims of a study file's checked `[[claims]]`."""
    return tuple(
        Claim(
            key=c["key"],
            title=c.get("title") or _title(c),
            quote=c.get("title") or _title(c),
            test=_test(c),
            uses=_either(c["a"], c["b"]),
        )
        for c in declared
    )


def sides(a: dict, b: dict) -> tuple[str, str, str]:
    """(a's label, b's label, what they share): 'norm none', 'norm batch', 'batch_size 128'."""
    same = {f for f in a if f in b and a[f] == b[f]}

    def text(sel: dict) -> str:
        return ", ".join(f"{f} {v}" for f, v in sel.items() if f not in same)

    return text(a), text(b), ", ".join(f"{f} {a[f]}" for f in a if f in same)


def _title(c: dict) -> str:
    """'norm batch has lower generalization gap than norm none at batch_size 32'."""
    la, lb, at = sides(c["a"], c["b"])
    name = STATISTICS[c["statistic"]].name
    return f"{lb} has {c['direction']} {name} than {la}" + (f" at {at}" if at else "")


def _either(a: dict, b: dict) -> dict[str, tuple]:
    """What `Claim.uses` can say of "the configurations of a or of b": each field both name, with both
    values (a superset where they name different fields; then every configuration)."""
    return {f: tuple(dict.fromkeys((a[f], b[f]))) for f in a if f in b} if a.keys() == b.keys() else {}
