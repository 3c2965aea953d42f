"""The report section of a sequential study (`bnlab study NAME --until-decided`): per claim, its rounds (the
estimate with its repeated confidence interval and the boundary), the seeds it used and its sequential
verdict, all recomputed from the store by `rounds.history`. A fixed-seed study gets no section."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import stats
from ..claims.finding import fmt, fmt_p
from ..planning.rounds import History, Plan, history, verdict_text
from ..studydata import StudyData
from . import plot_style as P
from .document import Block, Bullets, Figure, Heading, Para, Table

FILE = "sequential.png"


def _seeds(h: History, i: int) -> int:
    return h.rounds[h.decisions[i].look].n


def _table(h: History) -> list[list[str]]:
    rows = []
    for i, f in enumerate(h.rounds[0].findings):
        x = h.decisions[i]
        k = x.look
        rows.append(
            [
                f"({f.key}) {f.title}",
                f"[[{x.verdict}]]",
                f"{k + 1} of {len(h.plan.sizes())}",
                str(_seeds(h, i)),
                fmt_p(x.p_seq) if np.isfinite(x.p_seq) else "—",
                f"{x.alpha:.4g}",
                verdict_text(h, i),
            ]
        )
    return rows


def _rounds_table(h: History) -> list[list[str]]:
    rows = []
    for i, f0 in enumerate(h.rounds[0].findings):
        for k in range(h.decisions[i].look + 1):
            f, look = h.rounds[k].findings[i], h.rounds[k].looks[i]
            lo, hi = h.interval(i, k)
            nom = stats.nominal_levels(h.plan.fractions()[: k + 1], h.decisions[i].levels[k])[k]
            nom = nom / 2 if look.one_sided else nom  # a one-sided p faces the upper half of the boundary
            rows.append(
                [
                    f"({f0.key})",
                    str(k + 1),
                    str(h.rounds[k].n),
                    f"{fmt(f.effect, f.unit)} [{fmt(lo, f.unit)}, {fmt(hi, f.unit)}]",
                    f"{look.z:+.2f}" if np.isfinite(look.z) else "—",
                    f"±{h.boundary(i, k):.2f}",
                    fmt_p(look.p),
                    f"{nom:.2g}",
                    fmt_p(look.tost_p) if np.isfinite(look.tost_p) else "—",
                ]
            )
    return rows


def figure(h: History, path: Path) -> None:
    """Per claim: the estimate and its repeated CI per round with 0 and the margin (left); z against the
    boundary ±c_k (right); the round that decided it marked."""
    fs = h.rounds[0].findings
    fig, axes = P.plt.subplots(len(fs), 2, figsize=(10, 2.1 * len(fs) + 0.4), squeeze=False)
    for i, f0 in enumerate(fs):
        x = h.decisions[i]
        ks = range(x.look + 1)
        n = np.array([h.rounds[k].n for k in ks])
        eff = np.array([h.rounds[k].findings[i].effect for k in ks])
        ci = np.array([h.interval(i, k) for k in ks]).reshape(-1, 2)
        z = np.array([h.rounds[k].looks[i].z for k in ks])
        c = np.array([h.boundary(i, k) for k in ks])
        a, b = axes[i]
        a.axhline(0, color="k", lw=0.8)
        if np.isfinite(f0.margin):
            for m in (-f0.margin, f0.margin):
                a.axhline(m, color="C2", ls=":", lw=1)
        ok = np.isfinite(ci).all(axis=1)
        a.errorbar(n[ok], eff[ok], yerr=np.abs(ci[ok] - eff[ok, None]).T, fmt="o", color="C0", capsize=3)
        a.plot(n[~ok], eff[~ok], "o", color="C0", mfc="none")
        a.set_title(f"({f0.key}) {f0.title}", fontsize=9, loc="left")
        what = f0.contrast.split(" (")[0]
        a.set_ylabel(f"{what}\n({f0.unit})" if f0.unit else what, fontsize=8)
        b.plot(n, z, "o-", color="C0", label="z")
        b.plot(
            n, c, "--", color="C3", lw=1, marker="_", ms=10, label="boundary ±c"
        )  # a tick: one look shows too
        if not h.rounds[0].looks[i].one_sided:  # a one-sided test faces the upper boundary only
            b.plot(n, -c, "--", color="C3", lw=1, marker="_", ms=10)
        b.set_ylim(
            -max(5.0, np.nanmax(np.abs(z), initial=0) + 0.5), max(5.0, np.nanmax(np.abs(z), initial=0) + 0.5)
        )
        b.text(0.99, 0.95, x.verdict, transform=b.transAxes, ha="right", va="top", fontsize=9)
        for ax in (a, b):
            ax.set_xticks(h.plan.sizes())
            ax.set_xlim(h.plan.sizes()[0] - 1, h.plan.max_seeds + 1)
        if i == 0:
            b.legend(fontsize=8, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("seeds per configuration")
    fig.tight_layout()
    P.save(fig, path)


def replay(d: StudyData) -> tuple[Plan | None, History | None]:
    """A sequential study's plan and its rounds replayed from the store; (None, None) for a fixed-seed study,
    (plan, None) before its first round is complete."""
    plan = Plan.of(d.meta) if d.configs else None
    return plan, (history(d, plan) if plan else None)


def summary_verdicts(h: History | None) -> dict[str, str]:
    """Claim key → its sequential verdict for the Summary table ('supported, round 2 (10 seeds)')."""
    if h is None:
        return {}
    return {
        f.key: f"[[{x.verdict}]]"
        + (
            f", round {x.look + 1} ({h.rounds[x.look].n} seeds)"
            if x.verdict not in ("undecided", "futile")
            else f" at {h.rounds[x.look].n} seeds"
        )
        for f, x in zip(h.rounds[0].findings, h.decisions)
    }


def section(d: StudyData, out: Path, plan: Plan | None, h: History | None) -> list[Block]:
    """The report blocks of a sequential study (and its figure, written to out/FILE); [] for a fixed-seed one.
    `plan, h`: from replay(d)."""
    if plan is None:
        return []
    b: list[Block] = [Heading(2, "Seeds until decided: sequential verdicts")]
    sizes = plan.sizes()
    b.append(
        Para(
            "This study ran with `--until-decided`: rounds of seeds per configuration at "
            f"{', '.join(map(str, sizes))} "
            f"(at most {plan.max_seeds}), every claim re-tested after each round and stopped once decided. "
            "Each look compares the claim's own test with a group-sequential boundary: Lan–DeMets "
            "O'Brien–Fleming-type α spending, α(t) = 2 − 2Φ(z_{α/2}/√t) with t = seeds / max-seeds (Lan & "
            "DeMets "
            f"1983; O'Brien & Fleming 1979), α = {plan.alpha} shared over the claims by Holm's procedure, "
            "recycled when a claim is decided (Maurer & Bretz 2013); equivalence by a sequential TOST within "
            "the claim's declared margin. The chance of any false 'supported' or 'contradicted' verdict "
            "stays "
            "at most α however many rounds are taken. The findings below analyse every stored seed as if "
            "their number had been fixed in advance; for a study whose seeds were added until decided, the "
            "verdicts here (the Summary's 'sequential verdict' column) are the valid ones."
        )
    )
    if h is None:
        return b + [
            Para(f"No round is complete yet: the first needs {sizes[0]} seeds of every configuration.")
        ]
    figure(h, out / FILE)
    b += [
        Table(
            [
                "claim",
                "verdict",
                "decided at round",
                "seeds per configuration",
                "sequential p",
                "level",
                "in words",
            ],
            _table(h),
        ),
        Figure(
            out / FILE,
            "Per claim and round: the estimate with its repeated 95% confidence interval (left; "
            "dotted: the equivalence margin) and z against the boundary ±c (right), until the "
            "claim was decided.",
        ),
        Para(
            "Rounds: the estimate with its repeated CI (estimate ± c·SE, the SE implied by the claim's test; "
            "it "
            "excludes 0 exactly when z crosses the boundary), z (the claim's p as a normal quantile, signed "
            "by the "
            "estimate), the boundary c for the claim's share of α at that round, the claim's p and the level "
            "it "
            "had to beat (half the two-sided level for a one-sided test), and the TOST p where the claim "
            "declares a "
            "margin."
        ),
        Table(
            [
                "claim",
                "round",
                "seeds",
                "estimate [repeated CI]",
                "z",
                "boundary",
                "p",
                "must beat",
                "TOST p",
            ],
            _rounds_table(h),
        ),
    ]
    trained = [
        f"round {k + 1} ({r.n} seeds): {len(r.configs)} configuration(s)"
        + ("" if len(r.configs) == len(d.configs) else f" ({', '.join(r.configs)})")
        for k, r in enumerate(h.rounds)
    ]
    state = (
        "every claim decided or stopped for futility"
        if all(x.verdict != "undecided" for x in h.decisions)
        else f"the last round (max-seeds {plan.max_seeds}) taken"
        if h.finished
        else "still running: rerun the command to continue"
    )
    return b + [
        Para(
            f"Configurations trained per round ({state}); a round trains only the configurations an "
            "undecided claim uses:"
        ),
        Bullets(trained),
    ]


def model_epochs(h: History, d: StudyData) -> int:
    """Model-epochs the rounds trained: per round, its new seeds × the configurations it needed × epochs."""
    epochs = {c.label: c.spec.epochs for c in d.configs}
    prev, total = 0, 0
    for r in h.rounds:
        total += (r.n - prev) * sum(epochs.get(c, 0) for c in r.configs)
        prev = r.n
    return total
