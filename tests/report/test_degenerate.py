"""Reports of runs whose values a figure cannot draw: all NaN, all infinite, constant, without epochs, one
seed. The report is still written, every figure is a real PNG, and a note under a figure names what it
could not draw (issue 24)."""

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bnlab.config import RunSpec
from bnlab.records import RunResult
from bnlab.report.plot_style import fit_axis
from bnlab.report.registry import REPORTS, report_for
from bnlab.report.study_report import write_report
from bnlab.store import Store
from bnlab.studydata import StudyData
from helpers import VERSIONS, bnlab, needs_mnist

KINDS = {  # (loss, accuracy, diverged epoch) of every epoch; "empty": runs without epochs
    "nan": (math.nan, 0.1, 1),
    "inf": (math.inf, math.nan, 1),
    "constant": (0.5, 1.0, None),
    "empty": (None, None, None),
}
EMPTY = "no finite values (all NaN, infinite or empty)"
PANELS = f"panel 'lr 1000.0': {EMPTY}; panel 'lr 1000000.0': {EMPTY}"


def make_store(path, study, kind, seeds, epochs=2):
    """none/batch × lr 1e3, 1e6 × seeds, every run of one kind."""
    st = Store(path)
    axes = {"norm": ["none", "batch"], "lr": [1e3, 1e6]}
    st.begin_study(study, "q", {"name": study, "axes": axes, "seeds": seeds}, "cmd")
    loss, acc, div = KINDS[kind]
    for norm in axes["norm"]:
        for lr in axes["lr"]:
            for seed in range(seeds):
                r = RunResult(RunSpec(norm=norm, lr=lr, seed=seed, epochs=epochs, optimizer="sgd"))
                for e in range(1, (div or epochs) + 1) if kind != "empty" else ():
                    r.epochs.append(
                        dict(
                            epoch=e,
                            steps=100 * e,
                            train_loss=loss,
                            train_acc=acc,
                            test_loss=loss,
                            test_acc=acc,
                            wall_s=0.1 * e,
                        )
                    )
                r.diverged_epoch = div
                st.save(study, r, VERSIONS)
    return st


def _check_files(paths) -> tuple[str, str]:
    """Every file exists, every PNG is one and is in both documents; (md, html) text."""
    md, html = paths["md"].read_text(), paths["html"].read_text()
    pngs = [p for p in paths.values() if p.suffix == ".png"]
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000, p
        assert f"]({p.name})" in md
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(pngs)
    for text in (md, html):  # Python's nan/inf never reach a reader
        assert not re.search(r"(?<![\w./-])-?(nan|inf)(?![\w/-])", text.replace(str(paths["md"].parent), ""))
    return md, html


def _note(file: str, n_div: int, n: int, text: str, html: bool = False) -> str:
    """The note under `file`, as report.md (or report.html) writes it."""
    why = f" ({n_div} of {n} runs diverged: non-finite loss)" if n_div else ""
    b, e = ("<strong>", "</strong>") if html else ("**", "**")
    return f"{b}Not drawn in {file}{why}:{e} {text}."


@pytest.mark.parametrize("seeds", [1, 2])
@pytest.mark.parametrize(
    "kind, expected",
    [
        ("nan", {"loss_curves.png": PANELS, "final_accuracy.png": f"final accuracy: {EMPTY}"}),
        (
            "inf",
            {
                "accuracy_curves.png": PANELS,
                "loss_curves.png": PANELS,
                "final_accuracy.png": f"final accuracy: {EMPTY}",
            },
        ),
        (
            "constant",  # 2 panels × 2 norms × train/test × 2 epochs of accuracy 1.0: nothing inside (0, 1)
            {
                "accuracy_curves.png": "accuracy axis: none of its 16 finite values is in (0, 1): "
                "linear axis instead of logit"
            },
        ),
        (
            "empty",
            {
                "accuracy_curves.png": PANELS,
                "loss_curves.png": PANELS,
                "final_accuracy.png": f"final accuracy: {EMPTY}",
            },
        ),
    ],
)
def test_a_study_of_undrawable_runs_reports_what_each_figure_could_not_draw(tmp_path, kind, expected, seeds):
    st = make_store(tmp_path / "s.sqlite", "mine", kind, seeds)
    paths = write_report(st, "mine", tmp_path / "out")
    md, html = _check_files(paths)
    n = 4 * seeds
    n_div = n if KINDS[kind][2] else 0
    if kind != "constant":  # no run has a finite accuracy of 97% or more
        expected = {
            **expected,
            "time_to_threshold.png": f"none of the {n} runs reached 97% test accuracy: no times to draw",
        }
    for file in ("accuracy_curves.png", "loss_curves.png", "final_accuracy.png", "time_to_threshold.png"):
        if file in expected:
            assert _note(file, n_div, n, expected[file]) in md and md.count(f"Not drawn in {file}") == 1
            assert _note(file, n_div, n, expected[file], html=True) in html
        else:
            assert f"Not drawn in {file}" not in md
    assert md.count("Not drawn in") == len(expected)
    if kind != "constant":  # no finite final accuracy: the claim cannot be tested, and says so
        assert "| **inconclusive** |" in md and "n/a, not enough finite runs" in md


SWEEPS = {"lr_sweep.png", "init_sweep.png", "small_batch.png", "depth_gain.png"}  # a diverged run at chance


@pytest.mark.parametrize("kind", ["inf", "empty"])
def test_every_named_study_reports_runs_with_no_finite_value(tmp_path, kind):
    """Every study's own figures and findings on runs without one finite number: each figure is written,
    and every figure but the sweeps (where a diverged run counts at chance) has its note."""
    for study in REPORTS:
        st = make_store(tmp_path / f"{study}.sqlite", study, kind, seeds=2)
        paths = write_report(st, study, tmp_path / study)
        md, _ = _check_files(paths)
        files = [p.name for p in paths.values() if p.suffix == ".png"]
        assert len(files) == len(report_for(study).figures) + len(report_for(study).generic), study
        for f in files:
            assert (f"Not drawn in {f}" in md) == (f not in SWEEPS or kind == "empty"), (study, f)


def test_one_seed_of_one_configuration_draws_without_a_band_or_a_note(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("one", "q", {"name": "one", "axes": {}, "seeds": 1}, "cmd")
    r = RunResult(RunSpec(norm="batch", seed=0, epochs=2))
    for e in (1, 2):
        r.epochs.append(
            dict(
                epoch=e, steps=50 * e, train_loss=0.3, train_acc=0.98, test_loss=0.2, test_acc=0.975, wall_s=e
            )
        )
    st.save("one", r, VERSIONS)
    d = StudyData.load(st, "one")
    assert len(d.configs) == 1 and len(d.runs) == 1
    paths = write_report(st, "one", tmp_path / "out")
    md, _ = _check_files(paths)
    assert "Not drawn in" not in md and "0.9750 (1)" in md  # one value: its mean, no interval


NO_CI = "no confidence intervals.** A curve of one run has no band and its mean no ±"


@pytest.mark.parametrize("seeds, note", [(1, "One seed per configuration"), (2, None)])
def test_a_report_of_one_seed_per_configuration_says_once_that_it_has_no_intervals(tmp_path, seeds, note):
    st = make_store(tmp_path / "s.sqlite", "mine", "constant", seeds)
    md, html = _check_files(write_report(st, "mine", tmp_path / "out"))
    assert md.count(NO_CI) == (1 if note else 0) and (note is None or f"**{note}: {NO_CI}" in md)
    assert html.count("no confidence intervals.") == (1 if note else 0)


def test_a_report_says_how_many_configurations_have_one_seed(tmp_path):
    st = make_store(tmp_path / "s.sqlite", "mine", "constant", 2)
    r = RunResult(RunSpec(norm="layer", seed=0, epochs=2, optimizer="sgd"))
    r.epochs += [dict(epoch=e, steps=100 * e, test_acc=0.9, test_loss=0.3, wall_s=e) for e in (1, 2)]
    st.save("mine", r, VERSIONS)
    md, _ = _check_files(write_report(st, "mine", tmp_path / "out"))
    assert md.count(NO_CI) == 1 and f"**One seed in 1 of 5 configurations: {NO_CI}" in md


@pytest.mark.parametrize(
    "values, scale, yscale, notes",
    [
        ([[np.nan, np.inf], []], "log", "linear", [f"w: {EMPTY}"]),
        (
            [[-1.0, 0.0, np.nan]],
            "log",
            "linear",
            ["w: none of its 2 finite values is > 0: linear axis instead of log"],
        ),
        ([[0.0, 2.0, -np.inf]], "log", "log", ["w: 1 of 2 finite values not > 0, left off the log axis"]),
        (
            [[1.0, 0.5, 0.9]],
            "logit",
            "logit",
            ["w: 1 of 3 finite values not in (0, 1), left off the logit axis"],
        ),
        ([[3.0, 3.0]], "log", "log", []),
    ],
)
def test_fit_axis_keeps_a_scale_only_for_values_it_can_show(tmp_path, values, scale, yscale, notes):
    fig, ax = plt.subplots()
    for v in values:
        ax.plot(np.arange(len(v)), v)
    assert fit_axis(ax, "y", values, scale, where="w") == notes
    assert ax.get_yscale() == yscale
    assert [t.get_text() for t in ax.texts] == (
        ["no finite values to draw\n(all NaN, infinite or empty)"] if notes and EMPTY in notes[0] else []
    )
    fig.savefig(tmp_path / "f.png")  # matplotlib accepts what fit_axis left
    plt.close(fig)


@needs_mnist
def test_a_study_whose_every_run_diverges_exits_0_with_a_report_that_says_so(tmp_path):
    toml = tmp_path / "diverge.toml"
    toml.write_text(
        'name = "diverge"\nseeds = 2\n[base]\nepochs = 1\nlr = 1e6\noptimizer = "sgd"\n'
        'train_limit = 300\ntest_limit = 200\n[grid]\nnorm = ["none", "batch"]\n'
    )
    r = bnlab("study", str(toml), "--out", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "o" / "report.md").read_text()
    assert _note("loss_curves.png", 4, 4, f"panel 'all runs': {EMPTY}") in md
    assert "| none | 2 (2) | — |" in md and "Traceback" not in r.stderr
    assert (tmp_path / "o" / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
