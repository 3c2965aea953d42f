"""Statistics as small pure functions over arrays of per-seed results (numpy + scipy.stats only).

No torch here. Non-finite entries (diverged runs) are dropped, never imputed; callers
count and report them. Every interval carries its level. Degenerate inputs (too few
values, no variance) give NaN statistics rather than errors, and NaN reads as
"inconclusive" in a verdict.

summaries: one sample (t- and bootstrap intervals, trends; the shared helpers); comparisons: two samples
(Welch/paired t with a permutation test, Hedges' g, TOST); ranks: probability of improvement, Hodges–Lehmann
shift; ratios: a ratio of means with bootstrap, log-Welch or Fieller intervals; groups: Holm,
ANOVA/Kruskal–Wallis; verdicts: the four verdicts; power: detectable effects and seeds needed; designs: tests
shaped to a claim (interaction, stabilization, best of, censored times); resolution: what one measurement can
resolve (curve noise, permutation floor, McNemar's SE); sequential: group-sequential boundaries (Lan–DeMets
O'Brien–Fleming-type spending) and sequential verdicts for seeds added in rounds."""

from __future__ import annotations

from .comparisons import Comparison, Equivalence, compare, equivalence, hedges_g, tost_p, welch
from .designs import (
    BestOf,
    CensoredComparison,
    Contrast,
    Interaction,
    SpreadDifference,
    Stabilization,
    best_of,
    censored_compare,
    contrast,
    interaction_test,
    spread_difference,
    stabilization,
)
from .futility import FUTILITY, conditional_power
from .groups import GroupTest, group_test, holm
from .power import min_detectable_effect, seeds_for_equivalence, seeds_needed, welch_power
from .ranks import prob_improvement
from .ratios import fieller_ci, log_ratio_ci, ratio_ci
from .resolution import curve_noise, mcnemar_se, permutation_floor
from .sequential import (
    ClaimLook,
    Decision,
    boundaries,
    crossing_probabilities,
    decide,
    design_drift,
    expected_fraction,
    inflation_factor,
    nominal_levels,
    obf_spending,
    sequential_p,
    stagewise_p,
)
from .summaries import (
    NAN2,
    Summary,
    Trend,
    bootstrap_ci,
    finite,
    nan_mean,
    nan_stat,
    pair,
    steps_to_threshold,
    summarize,
    trend,
)
from .verdicts import CLAIM_VERDICTS, VERDICTS, ClaimVerdict, claim_verdict, verdict, verdict_with_equivalence

__all__ = [
    "BestOf",
    "CLAIM_VERDICTS",
    "CensoredComparison",
    "Contrast",
    "FUTILITY",
    "ClaimLook",
    "ClaimVerdict",
    "Comparison",
    "Decision",
    "Equivalence",
    "GroupTest",
    "Interaction",
    "NAN2",
    "SpreadDifference",
    "Stabilization",
    "Summary",
    "Trend",
    "VERDICTS",
    "best_of",
    "bootstrap_ci",
    "boundaries",
    "censored_compare",
    "contrast",
    "conditional_power",
    "claim_verdict",
    "compare",
    "crossing_probabilities",
    "curve_noise",
    "decide",
    "design_drift",
    "equivalence",
    "expected_fraction",
    "fieller_ci",
    "finite",
    "group_test",
    "hedges_g",
    "holm",
    "inflation_factor",
    "interaction_test",
    "log_ratio_ci",
    "mcnemar_se",
    "min_detectable_effect",
    "nan_mean",
    "nan_stat",
    "nominal_levels",
    "obf_spending",
    "pair",
    "permutation_floor",
    "prob_improvement",
    "ratio_ci",
    "seeds_for_equivalence",
    "seeds_needed",
    "sequential_p",
    "spread_difference",
    "stabilization",
    "stagewise_p",
    "steps_to_threshold",
    "summarize",
    "tost_p",
    "trend",
    "verdict",
    "verdict_with_equivalence",
    "welch",
    "welch_power",
]
