"""Findings for the claim studies (lr, init, convergence, regularization, small-batch, placement,
overhead, invariance): each turns one sentence of the original discussion into a test on its own data.

Conventions as in `findings`: effects with 95% CIs, Welch (or paired) tests with a permutation check,
Holm over a family of settings, verdicts from `stats.verdict`. Where a diverged run must count (a
learning rate or an init that does not train is the evidence), it counts as chance accuracy 1/C and a
note says so. Each study also has tables (`TABLES`) that the report prints before its findings.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import stats
from .findings import (
    Finding,
    Row,
    censored_finding,
    compare_finding,
    comparison_row,
    diverged_notes,
    holm_finite,
    stabilization_finding,
)
from .seed_findings import SHARED_TIMING_NOTE, seconds_rows
from .studydata import Config, StudyData, acc_or_chance, final_probe, per_step_ms

STABLE_ACC = 0.90  # "trains": no seed diverged and mean final test accuracy at least this


def _stable(c: Config | None) -> bool:
    return bool(c and c.n_diverged == 0 and np.mean(acc_or_chance(c)) >= STABLE_ACC)


def _chance_note(cs) -> tuple[str, ...]:
    n = sum(c.n_diverged for c in cs if c)
    return (
        (
            f"{n} diverged run(s) count as chance accuracy (10%) in these tests: not training is the outcome "
            "being measured.",
        )
        if n
        else ()
    )


# ---- lr ---------------------------------------------------------------------------------------------
def lr_limits(d: StudyData, optimizer: str) -> dict[str, tuple[float, float]]:
    """norm → (largest stable LR, best LR by mean final accuracy) for one optimizer."""
    out = {}
    for norm in ("none", "batch"):
        cs = [c for c in d.configs if c.spec.norm == norm and c.spec.optimizer == optimizer]
        if cs:
            stable = [c.spec.lr for c in cs if _stable(c)]
            best = max(cs, key=lambda c: np.mean(acc_or_chance(c)))
            out[norm] = (max(stable) if stable else math.nan, best.spec.lr)
    return out


def lr_findings(d: StudyData) -> list[Finding]:
    fs = []
    for opt in [o for o in ("adam", "sgd") if d.find(optimizer=o)]:
        lrs = sorted({c.spec.lr for c in d.configs if c.spec.optimizer == opt})
        pairs = [
            (lr, d.find(optimizer=opt, lr=lr, norm="none"), d.find(optimizer=opt, lr=lr, norm="batch"))
            for lr in lrs
        ]
        pairs = [(lr, n, b) for lr, n, b in pairs if n and b]
        if not pairs:
            continue
        comps = [
            stats.compare(acc_or_chance(n), acc_or_chance(b), label_a="none", label_b="batch")
            for _, n, b in pairs
        ]
        lim = lr_limits(d, opt)
        none_max = lim.get("none", (math.nan,))[0]
        beyond = [i for i, (lr, _, _) in enumerate(pairs) if not lr <= none_max] or [len(pairs) - 1]
        i = beyond[0]
        adj = holm_finite([c.p_value if j != i else math.nan for j, c in enumerate(comps)])  # the other lrs
        lr, n, b = pairs[i]
        rows = [
            comparison_row(f"lr {x:g}: batch − none", c, 100, +1, p)
            for j, ((x, _, _), c, p) in enumerate(zip(pairs, comps, adj))
            if j != i
        ]
        notes = [
            f"Largest stable learning rate (no seed diverged, mean final accuracy ≥ {STABLE_ACC:.0%}): "
            + "; ".join(f"{k} {_lr(v[0])}" for k, v in lim.items())
            + ". Best learning rate (highest mean "
            "final accuracy): " + "; ".join(f"{k} {_lr(v[1])}" for k, v in lim.items()) + "."
        ]
        fs.append(
            compare_finding(
                f"lr-{opt}",
                f"BN allows higher learning rates ({opt})",
                '"Batch normalization allows for the use of higher learning rates" (no numbers were given).',
                f"Final test accuracy with {opt} at lr {lr:g}, the first learning rate of the grid above the largest one "
                "at which the net without BN still trains; the table repeats the test at the other learning rates "
                "(exploratory, Holm-corrected over them).",
                comps[i],
                unit="pp",
                scale=100,
                sign=+1,
                rows=rows,
                notes=notes + list(_chance_note([x for _, *p in pairs for x in p])),
            )
        )
    return fs


def _lr(v: float) -> str:
    return "none in the grid" if not np.isfinite(v) else f"{v:g}"


def lr_tables(d: StudyData) -> list[tuple]:
    rows = []
    for opt in [o for o in ("adam", "sgd") if d.find(optimizer=o)]:
        for norm, (stable, best) in lr_limits(d, opt).items():
            c = d.find(optimizer=opt, norm=norm, lr=best)
            s = stats.summarize(acc_or_chance(c))
            div = sum(x.n_diverged for x in d.configs if x.spec.optimizer == opt and x.spec.norm == norm)
            rows.append([opt, norm, _lr(stable), _lr(best), f"{s.mean:.4f}", str(div)])
    return [
        ("h2", "Learning-rate limits"),
        ("p", f"Stable: no seed diverged and mean final test accuracy ≥ {STABLE_ACC:.0%}."),
        (
            "table",
            [
                "optimizer",
                "norm",
                "largest stable lr",
                "best lr",
                "mean final acc at best lr",
                "diverged runs (all lrs)",
            ],
            rows,
        ),
    ]


# ---- init -------------------------------------------------------------------------------------------
def init_findings(d: StudyData) -> list[Finding]:
    """BN reduces sensitivity to initialization: norm × init-scale interaction on final accuracy (diverged =
    chance), BN's spread over the scales smaller; the table compares the norms at every scale
    (exploratory)."""
    scales = sorted({c.spec.init_scale for c in d.configs})
    cells = {
        (c.spec.norm, c.spec.init_scale): acc_or_chance(c)
        for c in d.configs
        if c.spec.norm in ("none", "batch")
    }
    comps = [
        (
            a,
            stats.compare(
                cells.get(("none", a), []), cells.get(("batch", a), []), label_a="none", label_b="batch"
            ),
        )
        for a in scales
    ]
    adj = holm_finite([c.p_value for _, c in comps])
    f = stabilization_finding(
        "init",
        "BN reduces sensitivity to initialization",
        '"Batch normalization reduces the sensitivity of the network to the initial weights" (no numbers '
        "were given).",
        stats.stabilization(cells, "none", "batch"),
        "init scale",
        notes=_chance_note(d.configs),
    )
    return [
        dataclasses.replace(
            f,
            rows=f.rows
            + tuple(
                comparison_row(f"init × {a:g}: batch − none accuracy", c, 100, +1, p)
                for (a, c), p in zip(comps, adj)
            ),
        )
    ]


# ---- convergence ------------------------------------------------------------------------------------
CONVERGENCE_THRESHOLDS = (0.97, 0.98)


def convergence_findings(d: StudyData) -> list[Finding]:
    none, batch = d.find(norm="none"), d.find(norm="batch")
    fs = []
    for thr in CONVERGENCE_THRESHOLDS:
        (sa, wa), (sb, wb) = [c.to_threshold(thr) if c else (np.array([]),) * 2 for c in (none, batch)]
        f, lo_hi = stats.log_ratio_ci(sa, sb)
        fs.append(
            censored_finding(
                f"conv-{round(thr * 100)}",
                f"BN converges faster (steps to {thr:.0%})",
                '"Batch normalization helps neural networks converge more quickly" (no numbers were given).',
                f"Optimizer steps until test accuracy first reaches {thr:.0%}, evaluated every "
                f"{none.spec.eval_every if none else '?'} steps (fewer is faster); the table adds training seconds "
                "(BN's per-step cost included) and the speed-up factor among runs that reached it; a run that never "
                "reaches it is slower than any run that does.",
                stats.censored_compare(sa, np.isfinite(sa), sb, np.isfinite(sb)),
                rows=[
                    *seconds_rows(d, thr, wa, wb),
                    Row(
                        "speed-up factor in steps, geometric mean none/batch over runs that reached it (t-interval "
                        "on log ratio)",
                        f,
                        lo_hi,
                        math.nan,
                    ),
                ],
                notes=(*([SHARED_TIMING_NOTE] if d.shared_timing else []), *diverged_notes(none, batch)),
            )
        )
    return fs


# ---- regularization ---------------------------------------------------------------------------------
def _rise(c: Config | None) -> np.ndarray:
    """Final test loss minus its minimum over epochs: how far the run overfit."""
    if c is None:
        return np.array([])
    return np.array([r.final("test_loss") - np.nanmin(r.m["test_loss"]) for r in c.runs])


def regularization_findings(d: StudyData) -> list[Finding]:
    none, batch = d.find(norm="none"), d.find(norm="batch")
    gap = stats.compare(
        none.gaps() if none else [], batch.gaps() if batch else [], label_a="none", label_b="batch"
    )
    rows = [
        comparison_row(
            "gap with the running training-mode accuracy (pp): batch − none",
            stats.compare(
                none.gaps("running") if none else [],
                batch.gaps("running") if batch else [],
                label_a="none",
                label_b="batch",
            ),
            100,
            -1,
        ),
        comparison_row(
            "final test loss (nats): batch − none",
            stats.compare(
                none.finals("test_loss") if none else [],
                batch.finals("test_loss") if batch else [],
                label_a="none",
                label_b="batch",
            ),
            1,
            -1,
        ),
        comparison_row(
            "test-loss rise from its minimum (nats): batch − none",
            stats.compare(_rise(none), _rise(batch), label_a="none", label_b="batch"),
            1,
            -1,
        ),
        comparison_row(
            "final test accuracy (pp): batch − none",
            stats.compare(
                none.finals() if none else [],
                batch.finals() if batch else [],
                label_a="none",
                label_b="batch",
            ),
            100,
            +1,
        ),
    ]
    return [
        compare_finding(
            "reg",
            f"BN regularizes over {d.epochs}",
            '"Batch normalization acts as a form of regularization ... This can prevent overfitting" (no numbers).',
            f"Train minus test accuracy after {d.epochs}, both in eval mode (the trained network on the whole training "
            "set and on the test set); the table adds the gap with Keras's running training-mode accuracy, the final "
            "test loss, how far it rose from its minimum (overfitting), and the final test accuracy.",
            gap,
            unit="pp",
            scale=100,
            sign=-1,
            rows=rows,
            notes=diverged_notes(none, batch),
        )
    ]


# ---- small batches ----------------------------------------------------------------------------------
def _err(c: Config | None) -> np.ndarray:
    return 1 - acc_or_chance(c)


def small_batch_findings(d: StudyData) -> list[Finding]:
    """BN's error at the smallest batch against bs 32, as trained (running statistics) and with precise BN
    (population statistics recomputed over the training set before evaluation) where the study has both."""
    bss = sorted({c.spec.batch_size for c in d.configs})
    if not bss:
        return []
    lo, ref = bss[0], (32 if 32 in bss else bss[-1])
    err = lambda n, b, precise=False: _err(d.find(norm=n, batch_size=b, precise_bn=precise))  # noqa: E731
    precise_rows = (
        [
            comparison_row(
                f"precise BN (population statistics): bs {lo} − bs {ref} error",
                stats.compare(
                    err("batch", ref, True), err("batch", lo, True), label_a=f"bs {ref}", label_b=f"bs {lo}"
                ),
                100,
                +1,
            )
        ]
        if d.find(norm="batch", precise_bn=True)
        else []
    )
    fs = [
        compare_finding(
            "sb-bn",
            f"BN degrades at small batches (bs {lo} vs {ref})",
            '"the performance of batch normalization may be affected by the batch size" — Wu & He (2018): BN\'s '
            "error rises sharply as the batch shrinks.",
            f"Test error with BN at batch size {lo} minus at {ref} (after {d.epochs}), evaluated with the running "
            "statistics, as trained; the table adds the same with precise BN, whose population statistics do not "
            "depend on how far the running averages have converged (large batches take few steps here).",
            stats.compare(err("batch", ref), err("batch", lo), label_a=f"bs {ref}", label_b=f"bs {lo}"),
            unit="pp",
            scale=100,
            sign=+1,
            rows=precise_rows,
            notes=_chance_note(d.configs),
        )
    ]
    others = [
        n for n in ("group", "layer", "batch-renorm", "ghost-batch", "none") if d.find(norm=n, batch_size=lo)
    ]
    comps = [stats.compare(err("batch", lo), err(n, lo), label_a="batch", label_b=n) for n in others]
    adj = holm_finite([math.nan, *(c.p_value for c in comps[1:])])  # the headline is others[0]
    if others:
        fs.append(
            compare_finding(
                "sb-alt",
                f"Batch-independent norms beat BN at batch size {lo}",
                "Wu & He (2018): group normalization, which does not use the batch, keeps its error at small batches.",
                f"Test error at batch size {lo}: {others[0]} minus batch; the table repeats it for every other norm "
                "(exploratory, Holm-corrected over them).",
                comps[0],
                unit="pp",
                scale=100,
                sign=-1,
                rows=[
                    comparison_row(f"bs {lo}: {n} − batch error", c, 100, -1, p)
                    for n, c, p in list(zip(others, comps, adj))[1:]
                ],
            )
        )
    return fs


def small_batch_tables(d: StudyData) -> list[tuple]:
    bss = sorted({c.spec.batch_size for c in d.configs})
    rows = []
    for n, precise in dict.fromkeys((c.spec.norm, c.spec.precise_bn) for c in d.configs):
        cells = []
        for b in bss:
            s = stats.summarize(_err(d.find(norm=n, batch_size=b, precise_bn=precise)) * 100)
            cells.append(
                "—"
                if s.n == 0
                else f"{s.mean:.2f}" + (f" ± {s.ci_high - s.mean:.2f}" if np.isfinite(s.ci_high) else "")
            )
        rows.append([f"{n}{', precise BN' if precise else ''}", *cells])
    return [
        ("h2", "Test error (%) by batch size, per norm (Wu & He 2018, Table 2 style)"),
        (
            "p",
            f"Mean ± half-width of the 95% CI over seeds, after {d.epochs}; diverged runs count as chance. "
            "'precise BN': the same trained networks evaluated with population statistics recomputed over the "
            "training set instead of the running averages.",
        ),
        ("table", ["norm", *[f"bs {b}" for b in bss]], rows),
    ]


# ---- placement --------------------------------------------------------------------------------------
def placement_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    fin = lambda c: c.finals() if c else np.array([])  # noqa: E731
    rows = [
        comparison_row(
            "after − none (pp)",
            stats.compare(fin(none), fin(after), label_a="none", label_b="after"),
            100,
            +1,
        ),
        comparison_row(
            "before − none (pp)",
            stats.compare(fin(none), fin(before), label_a="none", label_b="before"),
            100,
            +1,
        ),
    ]
    return [
        compare_finding(
            "place",
            "BN before the ReLU (the BN paper) beats BN after it (the original)",
            "The original put BN after each ReLU; Ioffe & Szegedy (2015) normalize the pre-activation, before the "
            "nonlinearity.",
            f"Final test accuracy after {d.epochs}, BN before minus BN after the ReLU; the table "
            "compares each placement with no BN.",
            stats.compare(fin(after), fin(before), label_a="after", label_b="before"),
            unit="pp",
            scale=100,
            sign=+1,
            rows=rows,
            notes=diverged_notes(none, after, before),
        )
    ]


# ---- overhead ---------------------------------------------------------------------------------------
def overhead_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    t = stats.compare(per_step_ms(none), per_step_ms(after), label_a="none", label_b="batch")
    ratio, rci = stats.log_ratio_ci(per_step_ms(after), per_step_ms(none))
    fs = [
        compare_finding(
            "ovh-train",
            "BN costs training time",
            '"batch normalization introduces additional computational overhead during training" (no numbers).',
            "Training milliseconds per step of one model, batch size 32, each model timed in a stack of its own "
            f"norm ({none.runs[0].device if none else '?'}); BN after the ReLU minus none.",
            t,
            unit="ms",
            scale=1,
            sign=+1,
            rows=[
                Row("time ratio batch/none, geometric means (t-interval on log ratio)", ratio, rci, math.nan),
                comparison_row(
                    "BN before the ReLU − none (ms)",
                    stats.compare(per_step_ms(none), per_step_ms(before), label_a="none", label_b="before"),
                    1,
                    +1,
                ),
            ],
        )
    ]
    for B in (1, 1000):
        rows = []
        for label, c in (("after", after), ("before", before)):
            rows.append(
                comparison_row(
                    f"BN {label}: folded − unfolded (µs)",
                    stats.compare(
                        final_probe(c, f"latency_b{B}_us"),
                        final_probe(c, f"latency_b{B}_folded_us"),
                        label_a="unfolded",
                        label_b="folded",
                        paired=True,
                    ),
                    1,
                    -1,
                )
            )
        fold_vs_none = stats.compare(
            final_probe(none, f"latency_b{B}_us"), final_probe(after, f"latency_b{B}_folded_us")
        )
        rows.append(
            Row(
                "folded BN (after) − no BN (µs); no direction claimed",
                fold_vs_none.diff,
                fold_vs_none.diff_ci,
                fold_vs_none.p_value,
            )
        )
        fs.append(
            compare_finding(
                f"ovh-infer-b{B}",
                f"BN costs inference time at batch {B}, and folding removes it",
                '"the additional computation and memory at inference time" (no numbers).',
                f"Latency of one forward pass at batch {B} in eval mode (plain nn.Sequential, median of 7 timed blocks): "
                "BN after the ReLU minus no BN; the table: folded minus unfolded (paired per model), and folded BN "
                "minus no BN.",
                stats.compare(
                    final_probe(none, f"latency_b{B}_us"),
                    final_probe(after, f"latency_b{B}_us"),
                    label_a="none",
                    label_b="batch",
                ),
                unit="µs",
                scale=1,
                sign=+1,
                rows=rows,
            )
        )
    errs = np.concatenate(
        [final_probe(c, "fold_max_abs_err") for c in (after, before) if c] or [np.array([])]
    )
    if len(errs):
        notes = (
            f"Folding is exact: the largest |folded − unfolded| test logit over {len(errs)} models is "
            f"{np.nanmax(errs):.1e} (float32; bnlab's tests require ≤ 1e-5).",
        )
        fs[-1] = dataclasses.replace(fs[-1], notes=fs[-1].notes + notes)
    return fs


def overhead_tables(d: StudyData) -> list[tuple]:
    rows = []
    for c in d.configs:
        cell = lambda name, k=1.0, dg=1: f"{np.nanmedian(final_probe(c, name)) * k:.{dg}f}"  # noqa: E731
        rows.append(
            [
                d.label(c),
                f"{np.median(per_step_ms(c)):.3f}",
                cell("latency_b1_us"),
                cell("latency_b1_folded_us"),
                cell("latency_b1000_us"),
                cell("latency_b1000_folded_us"),
                cell("param_bytes", 1 / 1024),
                cell("state_bytes", 1 / 1024),
                cell("folded_bytes", 1 / 1024),
                f"{np.nanmax(final_probe(c, 'fold_max_abs_err')):.1e}",
            ]
        )
    return [
        ("h2", "Cost, measured"),
        (
            "p",
            "Medians over seeds. Training time is per step of one model; latency is one forward pass of "
            "a single plain PyTorch model in eval mode; memory counts float32 parameters (weights, biases, "
            "γ, β), BN's running statistics (state), and the folded model's parameters.",
        ),
        (
            "table",
            [
                "configuration",
                "train ms / step",
                "latency b1 (µs)",
                "b1 folded",
                "latency b1000 (µs)",
                "b1000 folded",
                "params (KiB)",
                "BN state (KiB)",
                "folded (KiB)",
                "max fold error",
            ],
            rows,
        ),
    ]


# ---- invariance -------------------------------------------------------------------------------------
def _drop(c: Config | None, mode: str) -> np.ndarray:
    """Per run: accuracy on the identity input minus the mean accuracy over the other (a, b) of the grid."""
    if c is None:
        return np.array([])
    out = []
    for r in c.runs:
        vals = {k: v for k, v in r.probes.items() if k.startswith(f"inv:{mode}:")}
        base = vals.pop(f"inv:{mode}:a=1:b=0", math.nan)
        out.append(base - np.mean(list(vals.values())) if vals else math.nan)
    return np.array(out)


def invariance_findings(d: StudyData) -> list[Finding]:
    none, after, before = (
        d.find(norm="none"),
        d.find(norm="batch", placement="after"),
        d.find(norm="batch", placement="before"),
    )
    rows = []
    for mode in ("eval", "batch"):
        for label, c in (("after", after), ("before", before)):
            rows.append(
                comparison_row(
                    f"{mode} statistics, BN {label} − none",
                    stats.compare(_drop(none, mode), _drop(c, mode), label_a="none", label_b=label),
                    100,
                    -1,
                )
            )
    return [
        compare_finding(
            "inv",
            "BN makes the network invariant to input scale and shift",
            '"invariance to scaling and shifting" of the inputs, as the original listed among BN\'s properties.',
            "Accuracy lost on transformed test inputs a·x + b: accuracy at (a, b) = (1, 0) minus the mean over the "
            "other 14 points of the grid, in eval mode (running statistics, as deployed); BN after the ReLU minus no "
            "BN. The table adds BN before the ReLU and batch statistics of the transformed test set.",
            stats.compare(_drop(none, "eval"), _drop(after, "eval"), label_a="none", label_b="batch"),
            unit="pp",
            scale=100,
            sign=-1,
            rows=rows,
            notes=(
                "Exact property, tested in tests/test_claims.py: in training mode BN(x·cW) = BN(x·W) for c > 0 "
                "(up to ε), so BN before the ReLU is invariant to a·x + b at its first layer when it normalizes "
                "with the statistics of the inputs it sees.",
            ),
        )
    ]
