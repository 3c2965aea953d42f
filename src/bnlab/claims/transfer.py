"""Claims of the transfer study: does BN's effect on the seed's net carry over from MNIST to Fashion-MNIST?

Each claim is a dataset × norm interaction at batch size 32, tested by Welch's t on the contrast L =
(ȳ_F,batch − ȳ_F,none) − (ȳ_M,batch − ȳ_M,none) of the four cell means (`stats.contrast`; for this 2 × 2
layout it is the Welch–James interaction test): the difference between BN's effect on Fashion-MNIST (F) and on
MNIST (M). Fashion-MNIST is the harder task (the seed's net reaches about 88% on it, 98% on MNIST), so each
claim predicts BN's help is larger there; the equivalence margin (0.2 pp) says when the effect transfers
unchanged. BN's effect on each dataset is an exploratory row, Holm within the table. A diverged run counts at
chance accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import stats
from ..studydata import Config, StudyData, acc_or_chance
from .claim import Claim
from .depth import epoch1_acc
from .finding import MARGIN, POWER, Finding
from .rows import ALPHA, comparison_row

DATASETS = ("mnist", "fashion-mnist")  # (the easier, the harder): the contrast is harder − easier
NORMS = ("none", "batch")
BS = 32  # the original's own comparison
WEIGHTS = {
    (DATASETS[1], "batch"): 1,
    (DATASETS[1], "none"): -1,
    (DATASETS[0], "batch"): -1,
    (DATASETS[0], "none"): 1,
}


def gaps(c: Config | None) -> np.ndarray:
    """Train − test accuracy at the last epoch (eval mode), NaN for a diverged run."""
    return c.gaps() if c else np.array([])


def effect_differs(values: Callable[[Config | None], np.ndarray], what: str, sign: int):
    """The test of "BN's effect on `what` is larger (sign +1) or more negative (−1) on Fashion-MNIST"."""

    def test(claim: Claim, d: StudyData) -> Finding:
        cells = {(ds, n): values(d.find(dataset=ds, norm=n, batch_size=BS)) for ds in DATASETS for n in NORMS}
        c = stats.contrast(cells, WEIGHTS)
        per = [
            stats.compare(cells[ds, "none"], cells[ds, "batch"], label_a="none", label_b="batch")
            for ds in DATASETS
        ]
        rows = [
            comparison_row(f"{ds}: batch − none", p, 100, sign, margin=MARGIN["pp"])
            for ds, p in zip(DATASETS, per)
        ]
        n = min(c.n.values())
        mde = stats.min_detectable_effect(c.sd_a, c.sd_b, n, n, ALPHA, POWER) * 100 if n >= 2 else np.nan
        ok = n >= 2 and np.isfinite(c.estimate) and c.estimate != 0
        return Finding(
            key=claim.key,
            title=claim.title,
            claim=claim.quote,
            measure=f"{what} at batch size {BS}, {d.epochs} (diverged runs at chance accuracy), on "
            f"{' and '.join(DATASETS)}: BN's effect (batch − none) on each, and their difference; the table "
            "gives the effect on each dataset (exploratory, Holm-corrected over the two).",
            test="Welch's t test of the dataset × norm interaction contrast (Welch–Satterthwaite df "
            f"{c.df:.1f}; each cell keeps its own seed variance), two-sided",
            contrast="(batch − none on fashion-mnist) − (batch − none on mnist)",
            effect=c.estimate * 100,
            effect_ci=(c.ci[0] * 100, c.ci[1] * 100),
            unit="pp",
            p_value=c.p_value,
            n={f"{ds} {nm}": k for (ds, nm), k in c.n.items()},
            expected_sign=sign,
            rows=tuple(rows),
            margin=MARGIN["pp"],
            tost_p=c.tost_p(MARGIN["pp"] / 100),
            mde=mde,
            seeds_needed=stats.seeds_needed(abs(c.estimate), c.sd_a, c.sd_b, ALPHA, POWER) if ok else None,
        )

    return test


USES = {"batch_size": (BS,), "norm": NORMS, "dataset": DATASETS}
HARDER = "Fashion-MNIST is the harder task (this net reaches about 88% test accuracy on it, 98% on MNIST)"
CLAIMS = (
    Claim(
        key="transfer-final",
        title="BN's gain in final test accuracy is larger on Fashion-MNIST",
        quote=f"{HARDER}: if BN helps more where training is harder, its gain over no BN (about 0.15 pp on "
        "MNIST at batch size 32) is larger there; within ±0.2 pp, the gain transfers unchanged.",
        test=effect_differs(acc_or_chance, "Final test accuracy", +1),
        uses=USES,
    ),
    Claim(
        key="transfer-gap",
        title="BN narrows the generalization gap more on Fashion-MNIST",
        quote=f"{HARDER}, and overfits more: if BN regularizes, it narrows the train − test gap more there.",
        test=effect_differs(gaps, "Train − test accuracy (eval mode)", -1),
        uses=USES,
    ),
    Claim(
        key="transfer-epoch1",
        title="BN's gain after epoch 1 is larger on Fashion-MNIST",
        quote=f"{HARDER}: does BN's early-training gain (test accuracy after epoch 1) grow with it?",
        test=effect_differs(epoch1_acc, "Test accuracy after epoch 1", +1),
        uses=USES,
    ),
)
