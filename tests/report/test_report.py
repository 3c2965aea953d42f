"""The report: files, the results.csv contract, self-contained HTML, and findings that follow the data."""

import base64
import csv
import math
import re

import numpy as np
import pytest

from bnlab.claims import seed as seed_claims
from bnlab.claims.findings import holm_headlines
from bnlab.claims.registry import analyse
from bnlab.config import RunSpec
from bnlab.records import NUMERICS, RunResult
from bnlab.report.document import Para
from bnlab.report.study_report import write_report
from bnlab.results_csv import RESULT_COLUMNS
from bnlab.store import Store
from bnlab.studydata import StudyData

VERSIONS = {
    "bnlab": "0.1.0",
    "torch": "2.13.0",
    "python": "3.11.2",
    "device": "test-cpu",
    "threads": 2,
    "numerics": NUMERICS,
}


def make_store(
    path,
    *,
    study="seed",
    bn_gain=0.001,
    noise=0.0008,
    epochs=3,
    seeds=5,
    batch_sizes=(16, 32, 64, 128),
    diverge=(),
    axes=None,
    lrs=(1e-3,),
    base=0.977,
    claims=(),
):
    """A store of synthetic runs: none/batch × batch sizes × lrs × seeds. BN adds `bn_gain` to test accuracy;
    every seed adds the same noise to both norms (so bn_gain=0 gives identical distributions).
    `diverge`: (norm, batch_size, seed) triples whose loss turns NaN at epoch 2."""
    st = Store(path)
    axes = axes or {"norm": ["none", "batch"], "batch_size": list(batch_sizes)}
    st.begin_study(
        study,
        "synthetic",
        {"name": study, "axes": axes, "base": {"epochs": epochs}, "seeds": seeds, "claims": list(claims)},
        f"bnlab study {study} --seeds {seeds}",
    )
    for norm in ("none", "batch"):
        for bs in batch_sizes:
            for lr in lrs:
                for seed in range(seeds):
                    rng = np.random.default_rng(1000 * seed + bs)
                    r = RunResult(RunSpec(norm=norm, batch_size=bs, seed=seed, epochs=epochs, lr=lr))
                    final = base + (bn_gain if norm == "batch" else 0) + noise * rng.standard_normal()
                    steps = math.ceil(60000 / bs)
                    for e in range(1, epochs + 1):
                        left = (epochs - e) / max(epochs - 1, 1)
                        te = final - 0.012 * left**1.5 + noise * 0.5 * rng.standard_normal() * (e < epochs)
                        tr = final + 0.01 * (e - 1) / epochs - 0.05 * (e == 1) + noise * rng.standard_normal()
                        bad = (norm, bs, seed) in diverge and e == 2
                        r.epochs.append(
                            dict(
                                epoch=e,
                                steps=steps * e,
                                train_loss=math.nan if bad else 0.3 / e,
                                train_acc=tr,
                                test_loss=math.nan if bad else 0.12 - 0.01 * e + (1 - te),
                                test_acc=te,
                                wall_s=steps * e * 2e-4,
                            )
                        )
                        if bad:
                            r.diverged_epoch = 2
                            break
                    st.save(study, r, VERSIONS)
    return st


def _load(st, study="seed"):
    return StudyData.load(st, study)


def test_report_files_csv_and_html(tmp_path):
    st = make_store(tmp_path / "s.sqlite", diverge=[("batch", 64, 1)])
    paths = write_report(st, "seed", tmp_path / "out", command="bnlab study seed", wall_s=12.5)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    with open(paths["csv"]) as f:
        rows = list(csv.reader(f))
    assert rows[0][: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert len(rows) - 1 == (2 * 4 * 5 - 1) * 3 + 2  # run × epoch; the diverged run stops at epoch 2
    pngs = [p for p in paths.values() if p.suffix == ".png"]
    assert len(pngs) == 4
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000
    html = paths["html"].read_text()
    assert "http://" not in html and "https://" not in html
    imgs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == len(pngs) and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)
    assert not re.search(r"<(script|link|iframe)", html)
    md = paths["md"].read_text()
    for p in pngs:
        assert f"]({p.name})" in md
    bad = next(r.run_id for r in _load(st).runs if r.diverged_epoch)
    for text in (html, md):
        assert "bnlab study seed" in text and "2.13.0" in text and "diverged" in text
        assert bad in text  # the diverged run is listed by name
        assert text.count("Verdict") >= 6 and "Santurkar" in text and "0.9786" in text
    acc = np.nanmean([r.final("test_acc") for r in _load(st).runs])
    assert f"√(p(1−p)/n) = {math.sqrt(acc * (1 - acc) / 10000) * 100:.3f} pp" in md


@pytest.mark.parametrize(
    "gain, noise, verdict",
    [
        (0.01, 0.0005, "supported"),
        (-0.01, 0.0005, "contradicted"),
        (0.0, 0.0005, "equivalent"),  # same distributions, seed sd 0.05 pp: TOST shows |effect| < 0.2 pp
        (0.0, 0.01, "inconclusive"),  # seed sd 1 pp: 5 seeds cannot show it is under 0.2 pp
    ],
)
def test_claim_a_follows_the_data(tmp_path, gain, noise, verdict):
    st = make_store(tmp_path / "s.sqlite", bn_gain=gain, noise=noise, batch_sizes=(32, 128))
    a = holm_headlines([seed_claims.CLAIMS[0].finding(_load(st))])[0]  # claim a alone: a family of one
    assert a.verdict == verdict
    assert [r.verdict for r in a.rows] == [verdict]  # the other batch size: exploratory, Holm
    assert a.n == {"none": 5, "batch": 5} and (a.effect > 0) == (gain > 0)
    if gain:
        assert abs(a.effect - gain * 100) < 0.2 and a.effect_ci[0] < gain * 100 < a.effect_ci[1]
    assert verdict in a.sentence()
    assert a.margin == 0.2 and a.mde > 0 and "with 80% power" in a.sentence()


def test_seed_findings_are_one_per_claim_and_count_runs_that_never_converge(tmp_path):
    st = make_store(tmp_path / "s.sqlite", bn_gain=-0.012, noise=0.0005, diverge=[("none", 32, 0)])
    d = _load(st)
    fs = analyse(d)
    assert [f.key for f in fs] == list("abcdef")
    assert all(f.verdict in ("supported", "contradicted", "equivalent", "inconclusive") for f in fs)
    b = fs[1]
    assert "batch 0/5" in b.notes[0] and b.verdict == "contradicted"  # BN never reaches 97%: ranked last
    assert "the ranks favour the side opposite to the claim: contradicted" in b.sentence()
    assert b.effect_text().endswith("; P(batch slower) 1.00") and "; P(batch slower) 1.00; p " in b.sentence()
    assert fs[0].decides == "" and "slower" not in fs[0].effect_text()
    assert fs[0].n == {"none": 4, "batch": 5} and any("diverged" in n for n in fs[0].notes)
    assert fs[5].n == {"none": 19, "batch": 20}  # runs over 4 batch sizes; the diverged one out


def test_the_spread_claim_warns_when_its_bootstrap_has_few_seeds(tmp_path):
    few = {f.key: f for f in analyse(_load(make_store(tmp_path / "3.sqlite", seeds=3)))}["f"]
    many = {f.key: f for f in analyse(_load(make_store(tmp_path / "5.sqlite", seeds=5)))}["f"]
    assert few.test.startswith("Welch–James test of the norm × batch size interaction")
    assert any("resamples only 3 seeds per configuration" in n for n in few.notes)
    assert not any("resamples only" in n for n in many.notes)


def test_generic_study_gets_bn_vs_none_per_setting_with_holm(tmp_path):
    st = make_store(
        tmp_path / "s.sqlite",
        study="mine",
        bn_gain=0.01,
        noise=0.0005,
        batch_sizes=(64,),
        lrs=(1e-3, 3e-3),
        axes={"norm": ["none", "batch"], "lr": [1e-3, 3e-3]},
        seeds=3,
    )
    fs = analyse(_load(st, "mine"))
    assert len(fs) == 2 and all(np.isfinite(f.p_holm) and f.p_holm >= f.p_value for f in fs)
    assert all(f.verdict == "supported" for f in fs)
    paths = write_report(st, "mine", tmp_path / "out")
    assert "lr 0.003" in paths["md"].read_text() and paths["html"].exists()


def test_a_study_without_runs_or_where_no_run_converges_still_reports(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("seed", "q", {}, "cmd")
    paths = write_report(st, "seed", tmp_path / "out")
    assert paths["html"].exists() and "no runs" in paths["md"].read_text()
    st = make_store(tmp_path / "low.sqlite", base=0.9, seeds=2, batch_sizes=(32,))
    paths = write_report(st, "seed", tmp_path / "low")
    assert paths["threshold"].stat().st_size > 5_000 and "none 0/2, batch 0/2" in paths["md"].read_text()


def test_exploratory_rows_are_holm_adjusted_within_their_table():
    """Three directional rows with raw p 0.01, 0.04, 0.03 (Holm: 0.03, 0.06, 0.06): only the first is
    supported; a row claiming no direction gets no verdict; one its builder adjusted keeps its p. Each verdict
    is decided here, once: the rows come in without one."""
    from bnlab.claims.rows import Row, holm_rows

    rows = (
        Row("a", 1.0, (0.5, 1.5), 0.01, sign=+1),
        Row("b", 1.0, (0.1, 1.9), 0.04, sign=+1),
        Row("c", -1.0, (-1.9, -0.1), 0.03, sign=+1),
        Row("no direction", 1.0, (0.5, 1.5), 0.001),
        Row("builder's family", 1.0, (0.5, 1.5), 0.04, p_holm=0.04, sign=+1),
        Row("builder's family, beyond α", 1.0, (0.5, 1.5), 0.01, p_holm=0.07, sign=+1),
    )
    out = holm_rows(rows)
    assert [r.p_holm for r in out[:3]] == pytest.approx([0.03, 0.06, 0.06])
    assert [r.verdict for r in out] == [
        "supported",
        "inconclusive",
        "inconclusive",
        "",
        "supported",
        "inconclusive",
    ]
    assert math.isnan(out[3].p_holm) and out[4].p_holm == 0.04 and out[5].p_holm == 0.07
    assert all(r.verdict == "" for r in rows)


def test_every_directional_row_of_a_study_report_shows_its_holm_p(tmp_path):
    st = make_store(tmp_path / "s.sqlite", seeds=3)
    for f in analyse(_load(st)):
        for r in f.rows:
            assert not r.sign or not np.isfinite(r.p_value) or np.isfinite(r.p_holm), (f.key, r.label)


def test_log_axis_bands_are_geometric_and_stay_positive():
    """3 seeds of a positive trace spread over two decades: the arithmetic 95% band dips below 0 (a log axis
    would fill down to its floor); the log band is the geometric mean with the back-transformed t-interval."""
    from types import SimpleNamespace

    from bnlab import stats
    from bnlab.report.study_figures import _trace_band

    steps, vals = np.array([0, 10]), np.array([[0.01, 1.0], [0.1, 2.0], [1.0, 4.0]])
    c = SimpleNamespace(runs=[SimpleNamespace(traces={("beta", -1): (steps, v)}) for v in vals])
    _, m, lo, _ = _trace_band(c, "beta", -1)
    assert lo[0] < 0 and m[0] == pytest.approx(0.37)
    x, gm, glo, ghi = _trace_band(c, "beta", -1, log=True)
    s = stats.summarize(np.log(vals[:, 0]))
    assert list(x) == [0, 10] and gm[0] == pytest.approx(0.1) and (glo > 0).all()
    assert (glo[0], ghi[0]) == pytest.approx((math.exp(s.ci_low), math.exp(s.ci_high)))


@pytest.mark.parametrize("unit, amount, mde", [("", "±0.010)", "0.005"), ("pp", "±0.01 pp)", "0.01 pp")])
def test_a_sentence_names_its_unit_only_where_there_is_one(unit, amount, mde):
    from bnlab.claims.finding import Finding

    f = Finding(
        key="k",
        title="t",
        claim="c",
        measure="m",
        test="t",
        contrast="batch − none",
        effect=-0.0001,
        effect_ci=(-0.003, 0.003),
        unit=unit,
        p_value=0.8,
        n={"none": 3, "batch": 3},
        expected_sign=-1,
        verdict="equivalent",
        margin=0.01,
        tost_p=0.0001,
        mde=0.005,
    )
    text = f.sentence()
    assert f"equivalence (TOST, {amount} p < 0.001" in text and "  " not in text and " :" not in text
    assert f"detects an effect of {mde} or more" in text


def test_every_verdict_a_report_can_show_has_its_own_badge_style():
    from bnlab.report.document import CSS, to_html
    from bnlab.stats.verdicts import CLAIM_VERDICTS

    for v in (*CLAIM_VERDICTS, "undecided"):  # 'undecided': a sequential study's open claim
        assert re.search(rf"\.{v}\b[^{{]*\{{background:", CSS), v
        assert f'<span class="v {v}">{v}</span>' in to_html([Para(f"[[{v}]]")], "t")
