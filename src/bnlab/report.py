"""The study report, regenerated from the store alone: report.md, report.html, results.csv and figures.

The document is built once as a list of blocks (heading, paragraph, list,
table, figure, equation, preformatted) and rendered twice: Markdown with
figures linked as relative PNG paths, and one self-contained HTML file with
the figures inlined as base64 PNG and no network resources (math as Unicode).
Inline markup in block text: **bold**, `code`, [[verdict]], [link](href).
"""
from __future__ import annotations

import base64
import datetime
import html
import math
import re
import shlex
from pathlib import Path

import numpy as np

from . import claims, figures
from . import findings as F
from .studydata import StudyData
from . import stats
from .data import DATASETS
from .store import Store, write_results_csv

__all__ = ["write_report", "write_results_csv"]


def write_report(store: Store, study: str, out_dir: Path, *, command: str = "",
                 wall_s: float | None = None) -> dict[str, Path]:
    """Write OUT/report.md, OUT/report.html, OUT/results.csv and OUT/*.png; their paths by name
    (md, html, csv, and one per figure: accuracy, loss, final, threshold)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = StudyData.load(store, study)
    paths = {"md": out / "report.md", "html": out / "report.html", "csv": out / "results.csv"}
    write_results_csv(store.results(study), paths["csv"])
    figs = figures.write_all(d, out, F.ORIGINALS.get(study))
    regen = f"bnlab report {shlex.quote(study)} --out {shlex.quote(str(out))}"
    if store.path.resolve() != (out / "bnlab.sqlite").resolve():
        regen += f" --store {shlex.quote(str(store.path))}"
    blocks = _document(d, figs, command or d.meta.get("command") or "", wall_s, regen)
    paths["md"].write_text(to_markdown(blocks))
    paths["html"].write_text(to_html(blocks, f"bnlab report: {study}"))
    return {**paths, **{k: p for k, (p, _) in figs.items()}}


def _ci(s: stats.Summary, digits: int) -> str:
    """mean [95% CI]."""
    if s.n == 0:
        return "—"
    m = f"{s.mean:.{digits}f}"
    return m if not np.isfinite(s.ci_low) else f"{m} [{s.ci_low:.{digits}f}, {s.ci_high:.{digits}f}]"


def _pm(s: stats.Summary, digits: int, scale: float = 1.0) -> str:
    """mean ± half-width of the 95% t-interval (n)."""
    if s.n == 0:
        return "—"
    half = f" ± {(s.ci_high - s.mean) * scale:.{digits}f}" if np.isfinite(s.ci_high) else ""
    return f"{s.mean * scale:.{digits}f}{half} ({s.n})"


def _num(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.3g}"


def _p(p: float) -> str:
    return F.fmt_p(p) if np.isfinite(p) else "—"


def _utc(t: float | None) -> str:
    utc = datetime.timezone.utc
    return "—" if t is None else datetime.datetime.fromtimestamp(t, utc).strftime("%Y-%m-%d %H:%M UTC")


def _document(d: StudyData, figs: dict, command: str, wall_s: float | None, regen: str) -> list[tuple]:
    b: list[tuple] = [("h1", f"bnlab report: {d.name}")]
    if d.meta.get("question"):
        b.append(("p", f"**Question.** {d.meta['question']}"))
    if not d.configs:
        b += [("p", f"This study has no runs in the store yet; run it (`{command or 'bnlab study ' + d.name}`) "
                    f"and regenerate this report with `{regen}`.")]
        return b + THEORY
    fs = F.findings_for(d)
    b += _summary(fs) + _reproduce(d, command, wall_s, regen)
    b.append(("h2", "Figures"))
    b += [("fig", path, caption) for path, caption in figs.values()]
    b += _config_table(d)
    b += claims.TABLES.get(d.name, lambda d: [])(d)
    if d.name in F.ORIGINALS:
        b += _original_table(d)
    b.append(("h2", "Findings, one per claim of the original"))
    for f in fs:
        b += _finding(f)
    b += [("h2", "How large is chance?"), ("list", _chance(d))]
    return b + THEORY


def _summary(fs: list[F.Finding]) -> list[tuple]:
    rows = [[f"({f.key}) {f.title}", f.effect_text(),
             F.fmt_p(f.p_holm if np.isfinite(f.p_holm) else f.p_value), ", ".join(f"{v} {k}" for k, v in f.n.items()),
             f"[[{f.verdict}]]"] for f in fs]
    return [("h2", "Summary"),
            ("p", f"Each claim of the original discussion, tested on every seed (α = {F.ALPHA}; p Holm-adjusted "
                  "where a family of settings is tested). Details, definitions and tests are in Findings below."),
            ("table", ["claim", "effect [95% CI]", "p", "n", "verdict"], rows)]


def _reproduce(d: StudyData, command: str, wall_s: float | None, regen: str) -> list[tuple]:
    combos: dict[tuple, int] = {}
    for r in d.runs:
        v = r.versions
        key = (v.get("bnlab", "?"), v.get("torch", "?"), v.get("python", "?"), f"{r.device} ({v.get('device', '?')})",
               str(v.get("threads", "?")))
        combos[key] = combos.get(key, 0) + 1
    seeds = sorted({r.spec.seed for r in d.runs})
    per = sorted({len(c.runs) for c in d.configs})
    train_s = sum(float(r.m["wall_s"][-1]) for r in d.runs if len(r.m["wall_s"]))
    spec = d.configs[0].spec.to_json()
    fixed = ", ".join(f"{k} = {v}" for k, v in spec.items() if k not in d.varying and k != "seed")
    notes = (d.meta.get("spec") or {}).get("notes")
    items = [f"Study recorded {_utc(d.meta.get('created'))} (last started {_utc(d.meta.get('updated'))}); "
             f"report written {_utc(datetime.datetime.now().timestamp())}.",
             f"{len(d.runs)} runs in {len(d.configs)} configurations; seeds {_seeds(seeds)} "
             f"({'/'.join(map(str, per))} per configuration).",
             f"Training time in the store: {train_s:.0f} s summed over runs (each run's share of its stack's "
             "training time, evaluation excluded)"
             + (f"; this invocation trained for {wall_s:.0f} s of wall time." if wall_s is not None else "."),
             f"Varying: {', '.join(d.varying) or 'nothing'}. Fixed: {fixed}."]
    return [("h2", "Reproduce"),
            ("p", "Command that produced these runs (rerunning it resumes: runs already stored are skipped):"),
            ("pre", command or "(not recorded)"),
            ("p", "Regenerate this report from the store, without training:"), ("pre", regen),
            ("table", ["runs", "bnlab", "torch", "Python", "device", "threads"],
             [[str(n), *k] for k, n in combos.items()]),
            ("list", items + ([f"Study notes: {notes}"] if notes else []))]


def _seeds(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2 else \
        ", ".join(map(str, seeds))


def _config_table(d: StudyData) -> list[tuple]:
    thr = d.threshold
    rows = []
    for c in d.configs:
        steps = c.to_threshold(thr)[0]
        rows.append([c.label, f"{len(c.runs)} ({c.n_diverged})", _pm(stats.summarize(c.finals()), 4),
                     _pm(stats.summarize(c.finals("train_acc")), 4), _pm(stats.summarize(c.gaps()), 2, 100),
                     _pm(stats.summarize(steps), 0), _pm(stats.summarize(c.sec_per_epoch()), 2)])
    div = [f"`{r.run_id}` diverged (non-finite loss) at epoch {r.diverged_epoch}; it has no final value."
           for r in d.runs if r.diverged_epoch is not None]
    return [("h2", "Results per configuration"),
            ("p", "Mean ± half-width of the 95% t-interval over seeds (n runs with a value), at the last epoch. "
                  "Diverged runs are counted in the runs column and have no final value. Steps to "
                  f"{thr:.0%}: the first evaluation at or above it; n counts the runs that reached it. Seconds "
                  "per epoch: each run's training seconds / its epochs."),
            ("table", ["configuration", "runs (diverged)", "final test acc", "final train acc",
                       "train − test gap (pp)", f"steps to {thr:.0%}", "s / epoch"], rows)] + \
        ([("list", div)] if div else [])


def _original_table(d: StudyData) -> list[tuple]:
    rows = []
    for (norm, bs), vals in F.ORIGINALS[d.name].items():
        c = d.find(norm=norm, batch_size=bs)
        s = stats.summarize(c.finals()) if c else stats.summarize([])
        inside = ["—" if not np.isfinite(s.ci_low) else "yes" if s.ci_low <= v <= s.ci_high else "no" for v in vals]
        table = F.ORIGINAL_TABLE.get(bs) if norm == "batch" else None
        rows.append([norm, str(bs), "—" if table is None else f"{table:.4f}", " / ".join(f"{v:.4f}" for v in vals),
                     f"{_ci(s, 4)} (n = {s.n})", " / ".join(inside)])
    return [("h2", "The original's numbers beside bnlab's"),
            ("p", "The original trained one model per setting. Its hand-typed comparison table (BN) differs in the "
                  "fourth decimal from its printed output; both are shown. bs 32 with BN was trained twice in the "
                  "original (0.9785 in the batch-size loop, 0.9781 in the first comparison)."),
            ("table", ["norm", "batch size", "original table", "original printed", "bnlab mean [95% CI]",
                       "original inside bnlab's CI?"], rows)]


def _chance(d: StudyData) -> list[str]:
    """How much one accuracy moves by chance: the seed-to-seed sd of final test accuracy, the binomial
    standard error √(p(1−p)/n_test) of one accuracy and, for the seed study, the original's differences."""
    sds = [s.sd for c in d.configs for s in [stats.summarize(c.finals())] if s.n > 1]
    acc = float(np.nanmean([r.final("test_acc") for r in d.runs])) if d.runs else math.nan
    spec = d.configs[0].spec
    n_test = spec.test_limit or DATASETS[spec.dataset].n_test
    se = math.sqrt(acc * (1 - acc) / n_test) if np.isfinite(acc) else math.nan
    sd = float(np.median(sds)) if sds else math.nan
    out = [f"Seed-to-seed sd of final test accuracy: median {sd * 100:.3f} pp over {len(sds)} configurations "
           f"(range {min(sds, default=math.nan) * 100:.3f}–{max(sds, default=math.nan) * 100:.3f} pp).",
           f"Binomial standard error of one accuracy of {acc:.4f} on {n_test} test images: √(p(1−p)/n) = "
           f"{se * 100:.3f} pp; of a difference of two independent accuracies: {se * math.sqrt(2) * 100:.3f} pp."]
    if d.name in F.ORIGINALS:
        o, t = F.ORIGINAL, F.ORIGINAL_TABLE
        for what, (hi, lo) in (("BN vs no BN at bs 32", (o["batch", 32][1], o["none", 32][0])),
                               ("bs 16 vs bs 128 with BN", (t[16], t[128]))):
            diff = hi - lo
            out.append(f"The original's difference {what} ({hi:.4f} − {lo:.4f}) is {diff * 100:.2f} pp: "
                       f"{_times(diff, se * math.sqrt(2))} the standard error of a difference and "
                       f"{_times(diff, sd * math.sqrt(2))} the seed-to-seed sd of a difference measured here.")
    return out


def _times(x: float, ref: float) -> str:
    return "n/a times" if not (np.isfinite(ref) and ref > 0) else f"{x / ref:.2f} times"


def _finding(f: F.Finding) -> list[tuple]:
    b = [("h3", f"({f.key}) {f.title}"), ("p", f"**Claim.** {f.claim}"), ("p", f"**Measure.** {f.measure}"),
         ("p", f"**Test.** {f.test}."), ("p", f"**Verdict:** [[{f.verdict}]]. {f.sentence()}")]
    if f.rows:
        b.append(("table", ["also tested", "value [95% CI]", "p", "Holm p", "verdict"],
                  [[r.label, f"{_num(r.effect)} [{_num(r.ci[0])}, {_num(r.ci[1])}]", _p(r.p_value),
                    _p(r.p_holm), f"[[{r.verdict}]]" if r.verdict else "—"] for r in f.rows]))
    return b + ([("list", list(f.notes))] if f.notes else [])


THEORY: list[tuple] = [
    ("h2", "Theory: the original's three questions, answered"),
    ("h3", "1. What is batch normalization?"),
    ("p", "Batch normalization (Ioffe & Szegedy 2015) standardizes every unit of a layer over the current mini-batch, "
          "then applies a learned affine map. For the m values x₁ … xₘ of one unit in a mini-batch B:"),
    ("eq", "μ_B = (1/m) Σᵢ xᵢ\nσ²_B = (1/m) Σᵢ (xᵢ − μ_B)²\nx̂ᵢ = (xᵢ − μ_B) / √(σ²_B + ε)\nyᵢ = γ·x̂ᵢ + β"),
    ("p", "γ and β (one pair per unit) are **learned parameters**, trained by gradient descent like the weights; "
          "with γ = √(σ²_B + ε) and β = μ_B the layer can undo the normalization, so nothing is lost. ε (10⁻³ in "
          "Keras, 10⁻⁵ in PyTorch) keeps the division finite. Gradients flow through μ_B and σ²_B: the "
          "normalization is part of the model, not preprocessing. The paper normalizes the pre-activation Wx + b "
          "(β then replaces the bias b); the original study put BN after the ReLU (bnlab: `placement = after`)."),
    ("h3", "2. What does it change between training and inference?"),
    ("p", "In training, each batch is normalized with its own μ_B and σ²_B, and running estimates are updated as "
          "exponential moving averages. They are **non-trained state** (buffers, not parameters: the optimizer "
          "never touches them):"),
    ("eq", "μ̂ ← ρ·μ̂ + (1 − ρ)·μ_B\nσ̂² ← ρ·σ̂² + (1 − ρ)·σ²_B"),
    ("p", "with ρ = 0.99 in Keras (its `momentum`) and 0.9 in PyTorch (whose `momentum = 0.1` is 1 − ρ; PyTorch "
          "keeps the unbiased m/(m − 1)·σ²_B). At inference (Keras `training=False`, PyTorch `model.eval()`) the "
          "running estimates replace the batch statistics:"),
    ("eq", "y = γ·(x − μ̂) / √(σ̂² + ε) + β"),
    ("p", "a fixed affine map per unit that can be folded into the neighbouring linear layer, so it costs nothing "
          "at inference. What changes: batch statistics become running ones, an example's output no longer "
          "depends on the other examples in its batch, the running estimates stop updating, and the output is "
          "deterministic. This is also why Keras's train accuracy (training mode, averaged over the epoch while "
          "the weights move) is not directly comparable with test accuracy."),
    ("h3", "3. Why does it help, and when not?"),
    ("list", [
        "**Not by reducing internal covariate shift.** Santurkar et al. (2018) injected random, time-varying "
        "shifts and scales after every BN layer (more distributional instability, not less); the networks "
        "trained as well as with plain BN, and by their gradient-based measure BN does not reduce internal "
        "covariate shift. What BN does is make the loss landscape smoother: the loss and its gradient change "
        "more slowly along the step (smaller Lipschitz constants, better β-smoothness), so gradients are more "
        "predictive and larger steps are safe.",
        "**Larger learning rates.** Bjorck et al. (2018): the main benefit is that BN allows much larger "
        "learning rates. Without BN, large steps make activations and gradients grow with depth and training "
        "diverges; trained at the same small learning rate, the BN network loses most of its advantage. The "
        "faster convergence and the better generalization both come from the larger learning rate.",
        "**Regularization** is a side effect of the batch noise in μ_B and σ²_B; it is mild, shrinks as the "
        "batch grows, and on a small MLP it may not show at all (finding c measures it).",
        "**Initialization.** BN makes a unit's output invariant to the scale of its incoming weights "
        "(BN(a·Wx) = BN(Wx) for a > 0, up to ε), which reduces sensitivity to the initial scale. It does not make the "
        "network invariant to shifts or scales of the data in general.",
        "**Small batches.** With few examples, μ_B and σ²_B are noisy: Wu & He (2018) show BN's error rising "
        "quickly at 8 images per batch or fewer (ResNet-50, ImageNet), while group normalization, "
        "which does not use the batch, is unaffected. BN also couples the examples of a batch and behaves "
        "differently in training and inference (question 2). Its compute overhead is small."]),
    ("h2", "References"),
    ("list", [
        "Ioffe, S. & Szegedy, C. (2015). Batch Normalization: Accelerating Deep Network Training by Reducing "
        "Internal Covariate Shift. ICML 2015. arXiv:1502.03167.",
        "Santurkar, S., Tsipras, D., Ilyas, A. & Mądry, A. (2018). How Does Batch Normalization Help "
        "Optimization? NeurIPS 2018. arXiv:1805.11604.",
        "Bjorck, J., Gomes, C., Selman, B. & Weinberger, K. Q. (2018). Understanding Batch Normalization. "
        "NeurIPS 2018. arXiv:1806.02375.",
        "Wu, Y. & He, K. (2018). Group Normalization. ECCV 2018. arXiv:1803.08494."]),
]


def _md_inline(t: str) -> str:
    return re.sub(r"\[\[(\w+)\]\]", r"**\1**", t)   # [text](href) links are Markdown already


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *a in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + a[0])
        elif kind == "p":
            out.append(_md_inline(a[0]))
        elif kind == "list":
            out.append("\n".join(f"- {_md_inline(t)}" for t in a[0]))
        elif kind in ("pre", "eq"):
            out.append(f"```{'text' if kind == 'eq' else 'sh'}\n{a[0]}\n```")
        elif kind == "table":
            cell = lambda t: _md_inline(str(t)).replace("|", "\\|")  # noqa: E731
            lines = ["| " + " | ".join(map(cell, a[0])) + " |", "|" + "---|" * len(a[0])]
            out.append("\n".join(lines + ["| " + " | ".join(map(cell, r)) + " |" for r in a[1]]))
        elif kind == "fig":
            out.append(f"![{a[1]}]({a[0].name})\n\n*{a[1]}*")
    return "\n\n".join(out) + "\n"


def _html_inline(t: str) -> str:
    t = re.sub(r"(?<=[μσ²])_([A-Z])\b", r"<sub>\1</sub>", html.escape(str(t), quote=False))
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    t = re.sub(r"\[([^\]\[]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', t)
    return re.sub(r"\[\[(\w+)\]\]", r'<span class="v \1">\1</span>', t)


def _html_eq(t: str) -> str:
    t = html.escape(t, quote=False)
    return re.sub(r"_([A-Za-z])", r"<sub>\1</sub>", t).replace("\n", "<br>")


CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1100px;margin:2em auto;
padding:0 1.2em}
h1{font-size:1.8em;border-bottom:2px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #eee}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.35em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;white-space:pre-wrap}code{background:#f3f3f3;padding:0 .2em}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
.eq{font:1.15em/1.8 "STIX Two Math","Cambria Math","DejaVu Serif",serif;margin:.8em 2em}
.v{padding:.05em .45em;border-radius:.3em;font-weight:600}.supported{background:#d7f0dc;color:#17602a}
.contradicted{background:#f8d7da;color:#842029}.inconclusive{background:#e9ecef;color:#495057}
"""


def to_html(blocks: list[tuple], title: str) -> str:
    body = []
    for kind, *a in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_html_inline(a[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_html_inline(a[0])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_html_inline(t)}</li>" for t in a[0]) + "</ul>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(a[0])}</pre>")
        elif kind == "eq":
            body.append(f'<div class="eq">{_html_eq(a[0])}</div>')
        elif kind == "table":
            head = "".join(f"<th>{_html_inline(h)}</th>" for h in a[0])
            rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in r) + "</tr>" for r in a[1])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "fig":
            data = base64.b64encode(a[0].read_bytes()).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(a[1])}">'
                        f"<figcaption>{_html_inline(a[1])}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")
