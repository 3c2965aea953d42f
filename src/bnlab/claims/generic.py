"""A study that declares no claims: BN vs none on final test accuracy at every setting with both norms."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .. import stats
from ..studydata import Config, StudyData
from .claim import Claim
from .finding import Finding
from .findings import compare_finding, diverged_notes, finals

GENERIC_QUOTE = (
    '"the model with batch normalization achieves higher accuracy" — the original, one run each at bs 32: '
    "no BN 0.9770, BN 0.9781."
)


def _pairs(d: StudyData) -> list[tuple[Config, Config]]:
    """(none, batch) configurations that differ only in the norm."""
    pairs = []
    for b in d.configs:
        if b.spec.norm == "batch":
            ref = dataclasses.replace(b.spec, norm="none", placement="after", noise=False).config_hash()
            n = next((c for c in d.configs if c.spec.config_hash() == ref), None)
            if n:
                pairs.append((n, b))
    return pairs


def generic_claims(d: StudyData) -> tuple[Claim, ...]:
    """A study without declared claims: BN vs none on final test accuracy for every setting that has both,
    one claim per setting (its configurations: that setting of the study's varying fields), Holm-corrected
    across them like any study's claims."""
    pairs = _pairs(d)
    out = []
    for i, (n, b) in enumerate(pairs):
        where = d.label(b, exclude=("norm",)).replace("all runs", f"bs {b.spec.batch_size}")
        uses = {f: (getattr(b.spec, f),) for f in d.varying if f not in ("norm", "placement", "noise")}

        test = _pair_test(where, len(pairs), (n.spec.config_hash(), b.spec.config_hash()))
        out.append(
            Claim(
                key=f"bn{i + 1}",
                title=f"BN vs none at {where}",
                quote=GENERIC_QUOTE,
                test=test,
                uses={**uses, "norm": ("none", "batch")},
            )
        )
    return tuple(out)


def _pair_test(where: str, n_pairs: int, ids: tuple[str, str]) -> Callable[[Claim, StudyData], Finding]:
    """A generic claim's test: BN vs none on final test accuracy, for the pair of configurations `ids`."""

    def test(claim: Claim, d: StudyData) -> Finding:
        n, b = (next((c for c in d.configs if c.spec.config_hash() == h), None) for h in ids)
        return compare_finding(
            claim,
            f"Final test accuracy after the last epoch at {where}; p-values Holm-corrected over the "
            f"{n_pairs} setting(s) with both norms.",
            stats.compare(finals(n), finals(b), label_a="none", label_b="batch"),
            unit="pp",
            scale=100,
            sign=+1,
            notes=diverged_notes(n, b),
        )

    return test
