"""Every study's claims, and the one analysis that turns them into verdicts.

A named study's claims are declared next to their tests (`seed.CLAIMS`, `sweeps.LR`, ...); a study file
declares its own (`[[claims]]`, `from_file`), and a study with none gets `findings.generic_claims`: BN vs none
at every setting with both. Every consumer reads `claims_for`: the findings, the Holm family, the sequential
rounds (`Claim.needs`), `bnlab plan` and the summary.
"""

from __future__ import annotations

from ..studydata import StudyData
from . import depth as D
from . import mechanisms as M
from . import placement as P
from . import seed as S
from . import small_batch as SB
from . import sweeps as W
from . import transfer as TR
from .claim import Claim
from .declared import from_file
from .finding import Finding
from .findings import holm_headlines
from .generic import generic_claims

NAMED: dict[str, tuple[Claim, ...]] = {
    "seed": S.CLAIMS,
    "lr": W.LR,
    "init": W.INIT,
    "convergence": W.CONVERGENCE,
    "regularization": W.REGULARIZATION,
    "small-batch": SB.CLAIMS,
    "placement": P.PLACEMENT,
    "overhead": P.OVERHEAD,
    "invariance": P.INVARIANCE,
    "activations": M.ACTIVATIONS,
    "ioffe-mnist": M.IOFFE,
    "ics": M.ICS,
    "smoothness": M.SMOOTHNESS,
    "noisy-bn": M.NOISY,
    "depth": D.DEPTH,
    "width": D.WIDTH,
    "transfer": TR.CLAIMS,
}


def claims_for(d: StudyData) -> tuple[Claim, ...]:
    """The study's claims: its declaration (named study or study file), else BN vs none per setting."""
    if d.name in NAMED:
        return NAMED[d.name]
    declared = ((d.meta.get("spec") or {}).get("claims")) or ()
    return from_file(declared) if declared else generic_claims(d)


def findings_of(d: StudyData) -> list[Finding]:
    """Each claim's fixed-sample finding, before Holm (what a sequential look reads)."""
    return [c.finding(d) for c in claims_for(d)]


def analyse(d: StudyData) -> list[Finding]:
    """The study's findings, their verdicts decided once, on p Holm-adjusted across its claims."""
    return holm_headlines(findings_of(d))
