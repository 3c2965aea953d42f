"""Seeds until decided, read back from the store (no training): the plan's rounds, the replay that trains only
what undecided claims need, the report section, and `bnlab plan`'s numbers."""

import math

import numpy as np
import pytest

from bnlab import stats
from bnlab.claims.registry import NAMED, claims_for
from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.planning import rounds as R
from bnlab.planning.costs import plan_claims, plan_text
from bnlab.records import RunResult
from bnlab.report.study_report import write_report
from bnlab.store import Store
from bnlab.studydata import StudyData

VERSIONS = {"bnlab": "0.1.0", "torch": "2.13.0", "python": "3.11", "device": "test-cpu", "threads": 2}


def make_store(path, cells, *, study="mine", plan=None, epochs=2):
    """Synthetic runs: cells maps (norm, lr) → (mean final test accuracy, seed sd, seeds); every run and norm
    draws its own noise. `plan`: a sequential plan stored with the study's spec."""
    st = Store(path)
    axes = {"norm": ["none", "batch"], "lr": sorted({lr for _, lr in cells})}
    spec = {"name": study, "axes": axes, "base": {"epochs": epochs}, "seeds": 4}
    if plan:
        spec[R.SPEC_KEY] = plan.to_json()
    st.begin_study(study, "synthetic", spec, f"bnlab study {study} --until-decided")
    for (norm, lr), (mean, sd, seeds) in cells.items():
        for seed in range(seeds):
            rng = np.random.default_rng([seed, int(lr * 1e4), norm == "batch"])
            r = RunResult(RunSpec(norm=norm, batch_size=64, lr=lr, seed=seed, epochs=epochs))
            final = mean + sd * rng.standard_normal()
            for e in range(1, epochs + 1):
                r.epochs.append(
                    dict(
                        epoch=e,
                        steps=938 * e,
                        train_loss=0.2 / e,
                        train_acc=final + 0.01,
                        test_loss=0.1,
                        test_acc=final - 0.01 * (epochs - e),
                        wall_s=1.5 * e,
                    )
                )
            st.save(study, r, VERSIONS)
    return st


def test_the_plan_fixes_the_rounds_and_the_seed_list_in_advance():
    p = R.Plan((0, 1, 2), 2, 8)
    assert p.sizes() == [3, 5, 7, 8] and p.seed_list() == tuple(range(8))
    assert p.fractions() == pytest.approx([3 / 8, 5 / 8, 7 / 8, 1])
    q = R.Plan((3, 7, 11), 3, 6)  # a seed list continues with the smallest unused seeds
    assert q.seed_list() == (3, 7, 11, 0, 1, 2) and q.sizes() == [3, 6]
    assert R.Plan.of({"spec": {R.SPEC_KEY: q.to_json()}}) == q and R.Plan.of({"spec": {}}) is None
    with pytest.raises(ConfigError, match="--max-seeds 2 is below the first round's 3 seeds"):
        R.Plan((0, 1, 2), 1, 2)
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        R.Plan((0,), 1, 4)
    with pytest.raises(ConfigError, match="--round = 0 is out of range"):
        R.Plan((0, 1), 0, 4)


def test_the_seed_study_maps_each_claim_to_the_configurations_it_tests():
    def bs(norm, b):
        return RunSpec(norm=norm, batch_size=b)

    claims = {c.key: c for c in NAMED["seed"]}
    assert claims["a"].needs(bs("none", 32)) and not claims["a"].needs(bs("batch", 16))
    assert claims["d"].needs(bs("batch", 128)) and not claims["d"].needs(bs("none", 16))
    assert claims["f"].needs(bs("none", 16)) and claims["f"].uses_text() == "norm none/batch"
    assert claims["a"].uses_text() == "batch size 32, norm none/batch"


def test_replay_takes_a_round_once_the_undecided_claims_configurations_are_complete(tmp_path):
    """lr 1e-3: BN +1 pp with seed sd 0.05 pp, decided at the first look; lr 3e-3: no effect, sd 0.3 pp, still
    open. The second round trains only lr 3e-3 (seeds 4–7), the configurations the generic claim bn2 declares
    it uses, and the replay takes it; were every configuration needed, the replay would stop at the first
    look."""
    plan = R.Plan((0, 1, 2, 3), 4, 8)
    cells = {
        ("none", 1e-3): (0.97, 5e-4, 4),
        ("batch", 1e-3): (0.98, 5e-4, 4),
        ("none", 3e-3): (0.97, 3e-3, 8),
        ("batch", 3e-3): (0.97, 3e-3, 8),
    }
    st = make_store(tmp_path / "s.sqlite", cells, plan=plan)
    d = StudyData.load(st, "mine")
    assert [c.uses for c in claims_for(d)] == [
        {"lr": (1e-3,), "norm": ("none", "batch")},
        {"lr": (3e-3,), "norm": ("none", "batch")},
    ]
    h = R.history(d, plan)
    assert [r.n for r in h.rounds] == [4, 8] and h.finished
    assert h.rounds[0].configs == ("none, lr 0.001", "batch, lr 0.001", "none, lr 0.003", "batch, lr 0.003")
    assert h.rounds[1].configs == ("none, lr 0.003", "batch, lr 0.003")
    a, b = h.decisions
    assert (a.verdict, a.look) == ("supported", 0) and b.verdict in ("undecided", "equivalent")
    assert np.isfinite(b.p_seq) or b.verdict == "equivalent"
    lo, hi = h.interval(0, 0)  # the repeated CI excludes 0 when the boundary is crossed
    assert 0 < lo < h.rounds[0].findings[0].effect < hi
    assert len(R.history(d, plan, looks=1).rounds) == 1


def test_report_shows_the_rounds_and_regenerates_the_same_and_fixed_studies_have_none(tmp_path):
    plan = R.Plan((0, 1, 2), 3, 9)
    cells = {("none", 1e-3): (0.970, 2e-3, 6), ("batch", 1e-3): (0.972, 2e-3, 6)}  # rounds 1–2 stored of 3
    st = make_store(tmp_path / "s.sqlite", cells, plan=plan)
    p1 = write_report(st, "mine", tmp_path / "out")
    md = p1["md"].read_text()
    sec = md[md.index("## Seeds until decided") : md.index("## Reproduce")]
    assert "3, 6, 9 (at most 9)" in sec and "Lan & DeMets 1983" in sec and "O'Brien & Fleming 1979" in sec
    assert "(bn1) BN vs none" in sec and "still running" in sec and "undecided so far at 6 seeds" in sec
    summary = md[md.index("## Summary") : md.index("## Seeds until decided")]
    head = next(ln for ln in summary.splitlines() if ln.startswith("| claim"))
    assert head.endswith("| verdict | sequential verdict |") and "its valid verdicts are" in summary
    bn1 = next(ln for ln in summary.splitlines() if ln.startswith("| (bn1)"))
    assert bn1.endswith("| **undecided** at 6 seeds |"), bn1
    assert (tmp_path / "out" / "sequential.png").stat().st_size > 10_000
    assert "sequential.png" in md and 'src="data:image/png;base64,' in p1["html"].read_text()
    again = write_report(st, "mine", tmp_path / "out")["md"].read_text()
    assert again[again.index("## Seeds until decided") : again.index("## Reproduce")] == sec
    fixed = make_store(tmp_path / "f.sqlite", cells)
    md = write_report(fixed, "mine", tmp_path / "f")["md"].read_text()
    assert "Seeds until decided" not in md and "sequential verdict" not in md and "| verdict |" in md


def test_plan_numbers_follow_the_seed_sd_and_the_stats_functions(tmp_path):
    sd = 2e-3
    cells = {("none", 1e-3): (0.970, sd, 6), ("batch", 1e-3): (0.971, sd, 6)}
    d = StudyData.load(make_store(tmp_path / "s.sqlite", cells), "mine")
    (p,) = plan_claims(d, power=0.8)
    f = d.configs
    sd_hat = math.sqrt((np.var(f[0].finals(), ddof=1) + np.var(f[1].finals(), ddof=1)) / 2) * 100
    assert not p.approximate and p.sd == pytest.approx(sd_hat, rel=0.05)  # equal-SD Welch MDE inverted
    assert p.target == 0.2 and p.target_from == "margin" and p.level == 0.05
    assert p.fixed == pytest.approx(stats.seeds_needed(0.2, p.sd, p.sd, 0.05, 0.8), abs=0)
    assert p.equivalence == stats.seeds_for_equivalence(0.2, p.sd, p.sd, 0.0, 0.05, 0.8)
    assert p.fixed <= p.max_seeds <= 1.1 * p.fixed + 6 and p.expected < p.fixed
    assert p.cost(10) == (10 * 2 * 2, pytest.approx(10 * 2 * 2 * 1.5 / 60))  # 1.5 s per model-epoch
    (q,) = plan_claims(d, effect=0.5)
    assert q.target == 0.5 and q.target_from == "--effect" and q.fixed < p.fixed
    text = plan_text(d, "a test", power=0.8)
    assert "bnlab plan mine: from a test." in text and "(bn1)" in text and "margin" in text


def test_implied_sd_of_a_one_sided_claim_whose_estimate_lies_on_the_untested_side():
    """Claim (d) at 30 seeds: bs 16 − bs 32 = −0.06 pp, one-sided p 0.948 (CI [−0.12, +∞)); its SE is
    |estimate| / |Φ⁻¹(1 − p)|, as for an estimate on the tested side (before: no SD, '≈n/a')."""
    import scipy.stats as ss

    from bnlab.claims.finding import Finding
    from bnlab.planning.costs import implied_sd

    f = Finding(
        key="d",
        title="t",
        claim="c",
        measure="m",
        test="t",
        contrast="bs 16 − bs 32",
        effect=-0.06,
        effect_ci=(-0.12, math.inf),
        unit="pp",
        p_value=0.948,
        n={"bs 16": 30},
        expected_sign=+1,
        verdict="inconclusive",
    )
    sd, approx = implied_sd(f, 30)
    assert approx and sd == pytest.approx(0.06 / abs(ss.norm.isf(0.948)) * math.sqrt(15))
