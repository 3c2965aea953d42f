"""A claim, declared once: what it says, which configurations its primary test reads, and that test.

Everything else is derived from the declaration: the finding (`Claim.finding`), its place in the study's
Holm family (`registry.analyse`), the configurations a sequential round trains while the claim is undecided
(`Claim.needs`, read by `bnlab.planning.rounds`), the seeds `bnlab plan` asks for, the summary row and the
report's sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..config import RunSpec
from ..studydata import StudyData
from .finding import Finding


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim of a study. `uses` maps RunSpec fields to the values its primary test reads (a configuration
    is used when each named field has one of its values; {} is every configuration); `test(claim, d)` computes
    the fixed-sample finding, before Holm."""

    key: str
    title: str
    quote: str  # the original's words, or the question the study file asks
    test: Callable[[Claim, StudyData], Finding]
    uses: Mapping[str, tuple] = field(default_factory=dict)

    def needs(self, spec: RunSpec) -> bool:
        """Whether the claim's primary test reads runs of the configuration of `spec`."""
        return all(getattr(spec, f) in vals for f, vals in self.uses.items())

    def uses_text(self) -> str:
        """'norm none/batch, batch size 32', or 'every configuration'."""
        if not self.uses:
            return "every configuration"
        return ", ".join(
            f"{f.replace('_', ' ')} {'/'.join(str(v) for v in vals)}" for f, vals in self.uses.items()
        )

    def finding(self, d: StudyData) -> Finding:
        return self.test(self, d)
