"""`bnlab study NAME --until-decided` end to end on a small slice of real MNIST: rounds, report, resume after
an interruption in the middle of a round, `bnlab plan`."""

import pytest
import torch

from bnlab import api
from bnlab.cli import main
from bnlab.errors import ConfigError
from bnlab.run.jobs import Progress
from helpers import bnlab, needs_mnist

# futility 0: these tests follow the rounds to --max-seeds (with 2 of 4 seeds, round 1 is already at half of
# N_max, where the default futility rule may stop a claim: test_futility_stops_claims_at_half_of_max_seeds)
TINY = dict(seeds=2, max_seeds=4, round_seeds=2, futility=0.0, epochs=1, train_limit=1000, test_limit=500)


@needs_mnist
def test_cli_runs_rounds_writes_the_sequential_report_and_plans(tmp_path):
    out = tmp_path / "seed"
    r = bnlab(
        "study",
        "seed",
        "--until-decided",
        "--max-seeds",
        "4",
        "--round",
        "2",
        "--futility",
        "0",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--test-limit",
        "500",
        "--out",
        str(out),
        "--cpus-per-group",
        "2",
    )
    assert r.returncode == 0, r.stderr
    assert "round 1: 2 seeds × 8 configurations" in r.stdout and "sequential verdicts:" in r.stdout
    assert "(a) BN improves final test accuracy:" in r.stdout
    md = (out / "report.md").read_text()
    assert "## Seeds until decided" in md and "2, 4 (at most 4)" in md and (out / "sequential.png").exists()
    p = bnlab("plan", "seed", "--out", str(out), "--effect", "0.5")
    assert p.returncode == 0, p.stderr
    assert f"from the 32 runs of seed in {out / 'bnlab.sqlite'}" in p.stdout
    assert "(a)    0.50 pp (--effect)" in p.stdout and "--until-decided max / expected" in p.stdout


@needs_mnist
def test_an_interrupted_sequential_study_resumes_at_its_round(tmp_path):
    """Ctrl-C after the first stack of round 2: round 1's runs and that stack are kept; the same call trains
    only the rest of round 2 and reaches the decisions a third call replays without training."""
    done = []

    def stop_in_round_two(n):
        done.append(n)
        if len(done) == 5:  # round 1 trains 4 stacks (one per batch size)
            raise KeyboardInterrupt

    opts = api.Options(
        out=tmp_path / "o",
        device="cpu",
        cpus_per_group=torch.get_num_threads(),
        progress=Progress(group_done=stop_in_round_two),
    )
    with pytest.raises(KeyboardInterrupt):
        api.run_study("seed", until_decided=True, options=opts, **TINY)
    kept = sum(done)
    assert kept > 16  # round 1 (16 runs) and a stack of round 2
    opts = api.Options(out=tmp_path / "o", device="cpu", cpus_per_group=torch.get_num_threads())
    res = api.run_study("seed", until_decided=True, options=opts, **TINY)
    assert res.counts["trained"] == 32 - kept and res.counts["total"] == 32
    h = res.sequential
    assert [r.n for r in h.rounds] == [2, 4] and h.finished and len(res.final()) == 32
    again = api.run_study("seed", until_decided=True, options=opts, **TINY)
    assert again.counts["trained"] == 0 and again.sequential.decisions == h.decisions


def test_sequential_options_are_checked_before_training(tmp_path, capsys):
    with pytest.raises(ConfigError, match="need until-decided"):
        api.run_study("seed", max_seeds=10, out=tmp_path)
    with pytest.raises(ConfigError, match="--fresh cannot be combined"):
        api.run_study("seed", until_decided=True, fresh=True, out=tmp_path)
    assert main(["study", "seed", "--until-decided", "--max-seeds", "3", "--out", str(tmp_path)]) == 2
    assert "--max-seeds 3 is below the first round's 5 seeds" in capsys.readouterr().err
    assert main(["study", "all", "--until-decided", "--out", str(tmp_path)]) == 2


@needs_mnist
@pytest.mark.parametrize("study, first, later", [("depth", 12, 8), ("transfer", 16, 4)])
def test_the_issue_26_studies_run_until_decided_retraining_only_what_their_claims_use(
    tmp_path, study, first, later
):
    """Round 1 trains every configuration; round 2 only those an undecided claim uses: every depth without BN
    and with BN after the ReLU (BN before it is a row, not a claim), and the four batch-size-32 cells of the
    transfer claims (the side-by-side seed claims are not its claims)."""
    from bnlab import data
    from bnlab.store import Store
    from bnlab.studydata import StudyData

    if study == "transfer" and not data.available("fashion-mnist"):
        pytest.skip("Fashion-MNIST not found (Debian: dataset-fashion-mnist)")
    opts = api.Options(out=tmp_path / "o", device="cpu", cpus_per_group=torch.get_num_threads())
    tiny = {**TINY, "train_limit": 256, "test_limit": 200}
    res = api.run_study(study, until_decided=True, options=opts, **tiny)
    assert [r.n for r in res.sequential.rounds] == [2, 4]
    with Store(res.store) as st:
        d = StudyData.load(st, study)
    assert len(d.configs) == first and sorted(len(c.runs) for c in d.configs).count(4) == later
    again = [c.spec for c in d.configs if len(c.runs) == 4]
    if study == "transfer":
        assert {s.batch_size for s in again} == {32}
    else:
        assert {s.placement for s in again} == {"after"}
    assert "## Seeds until decided" in (tmp_path / "o" / "report.md").read_text()


@needs_mnist
def test_futility_stops_claims_at_half_of_max_seeds(tmp_path):
    """The default rule (stats.FUTILITY) on the same tiny study: round 1 (2 of at most 4 seeds) is at half of
    --max-seeds, a claim that cannot be decided by 4 seeds stops there, and the report says so."""
    opts = api.Options(out=tmp_path / "o", device="cpu", cpus_per_group=torch.get_num_threads())
    res = api.run_study("seed", until_decided=True, options=opts, **{**TINY, "futility": None})
    h = res.sequential
    futile = [f.key for f, x in zip(h.rounds[0].findings, h.decisions) if x.verdict == "futile"]
    assert futile and all(
        h.decisions[i].look == 0 for i, x in enumerate(h.decisions) if x.verdict == "futile"
    )
    assert h.plan.futility == 0.1
    md = (tmp_path / "o" / "report.md").read_text()
    assert "undecided: futile at 2 seeds (round 1)" in md and "**futile** at 2 seeds" in md
    with pytest.raises(ConfigError, match="--futility must be a conditional power in"):
        api.run_study("seed", until_decided=True, options=opts, **{**TINY, "futility": 1.5})
