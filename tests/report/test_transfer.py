"""The transfer study (issue 26): its grid, its dataset × norm claims where the answer is known, their error
rate on simulated null studies (with the depth and width interaction claims'), the side-by-side table, and
the rule that one store holds a study on one dataset unless dataset is one of its axes."""

import math

import numpy as np
import pytest

from bnlab import api, data, stats, studies
from bnlab.claims import registry
from bnlab.claims import transfer as TR
from bnlab.claims.depth import DEPTH, WIDTH
from bnlab.claims.findings import holm_headlines
from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.records import RunResult
from bnlab.report.tables import transfer_table
from bnlab.store import Store
from bnlab.studydata import StudyData
from helpers import VERSIONS, needs_mnist
from memory_studies import study_data

DS = ("mnist", "fashion-mnist")


def test_the_transfer_grid_is_the_seed_grid_on_both_datasets():
    specs = studies.STUDIES["transfer"].specs()
    seed = studies.STUDIES["seed"].specs()
    assert len(specs) == 2 * len(seed) == 80
    assert {(s.dataset, s.norm, s.batch_size, s.seed) for s in specs} == {
        (d, s.norm, s.batch_size, s.seed) for d in DS for s in seed
    }
    assert {(s.epochs, s.lr, s.optimizer, s.profile, s.hidden) for s in specs} == {
        (10, 1e-3, "adam", "keras", (128, 64))
    }


def test_contrast_is_welch_james_for_two_by_two_and_its_ci_matches_its_p():
    rng = np.random.default_rng(3)
    cells = {(a, b): rng.normal(a + 2 * b, 0.5 + a + 2 * b, 4 + a + b) for a in (0, 1) for b in (0, 1)}
    c = stats.contrast(cells, {(1, 1): 1, (1, 0): -1, (0, 1): -1, (0, 0): 1})
    it = stats.interaction_test(cells)
    assert c.p_value == pytest.approx(it.welch_p, rel=1e-9) and c.df == pytest.approx(it.welch_df2, rel=1e-9)
    m = {k: v.mean() for k, v in cells.items()}
    assert c.estimate == pytest.approx(m[1, 1] - m[1, 0] - m[0, 1] + m[0, 0])
    # the CI at level 1 - p has an end at 0
    c2 = stats.contrast(cells, {(1, 1): 1, (1, 0): -1, (0, 1): -1, (0, 0): 1}, level=1 - c.p_value)
    assert min(abs(c2.ci[0]), abs(c2.ci[1])) == pytest.approx(0, abs=1e-9)
    one = stats.contrast({**cells, (0, 0): [1.0]}, {(1, 1): 1, (0, 0): -1})
    assert math.isnan(one.p_value) and math.isnan(one.ci[0])


def _transfer(gain_m, gain_f, gap=(0.0, 0.0), n=5, rng=None, sd=(0.002, 0.001, 0.004, 0.002)):
    """A transfer study at batch size 32: BN's gain in final (and epoch-1) accuracy gain_m on MNIST, gain_f
    on Fashion-MNIST; BN's change of the train − test gap gap[0], gap[1]; SDs per cell (mnist none, mnist
    batch, fashion none, fashion batch)."""
    rng = rng or np.random.default_rng(0)
    cells, k = {}, 0
    for ds, base, g, dg in (("mnist", 0.977, gain_m, gap[0]), ("fashion-mnist", 0.885, gain_f, gap[1])):
        for norm in ("none", "batch"):
            mu = base + (g if norm == "batch" else 0)
            acc = rng.normal(mu, sd[k], n)
            acc1 = rng.normal(mu - 0.02, sd[k] * 2, n)
            gp = rng.normal(0.02 + (dg if norm == "batch" else 0), sd[k], n)
            cells[RunSpec(dataset=ds, norm=norm, batch_size=32)] = (acc1, acc, gp)
            k += 1
    return study_data("transfer", cells, ["dataset", "norm"])


def _verdicts(d):
    return {f.key: f.verdict for f in registry.analyse(d)}


def test_a_larger_gain_on_fashion_mnist_is_supported_and_a_smaller_one_contradicted():
    tight = (0.001, 0.0005, 0.002, 0.001)
    assert _verdicts(_transfer(0.0015, 0.01, gap=(-0.002, -0.01), sd=tight)) == {
        "transfer-final": "supported",
        "transfer-gap": "supported",
        "transfer-epoch1": "supported",
    }
    v = _verdicts(_transfer(0.01, 0.0, gap=(-0.01, 0.0), sd=tight))
    assert set(v.values()) == {"contradicted"}
    f = {f.key: f for f in registry.analyse(_transfer(0.0015, 0.01, sd=tight))}["transfer-final"]
    assert f.effect == pytest.approx(0.85, abs=0.3) and f.unit == "pp"
    assert [r.label for r in f.rows] == ["mnist: batch − none", "fashion-mnist: batch − none"]
    assert f.n == {"fashion-mnist batch": 5, "fashion-mnist none": 5, "mnist batch": 5, "mnist none": 5}


def test_the_same_gain_on_both_datasets_with_many_seeds_is_equivalent():
    rng = np.random.default_rng(5)
    v = _verdicts(_transfer(0.002, 0.002, n=40, rng=rng, sd=(0.001,) * 4))
    assert v["transfer-final"] == "equivalent"


def test_a_missing_dataset_leaves_the_claims_inconclusive_not_an_error():
    d = _transfer(0.0, 0.01).subset(dataset="mnist")
    assert set(_verdicts(d).values()) == {"inconclusive"}


def _support_rate(claim, make, n: int) -> float:
    """Share of `n` simulated studies in which `claim` alone (a Holm family of one) is supported."""
    return (
        sum(
            holm_headlines([claim.finding(make(np.random.default_rng(i)))])[0].verdict == "supported"
            for i in range(n)
        )
        / n
    )


def _depth_null(rng):
    """No norm × depth interaction: BN adds 0.15 pp at every depth, depth costs 0.1 pp per doubling; seed SDs
    differ by norm (2×) and grow with depth, as in the measured study."""
    cells = {}
    for L in (2, 4, 8, 16):
        for norm, gain, sd in (("none", 0.0, 0.002), ("batch", 0.0015, 0.001)):
            s = sd * (1 + math.log2(L) / 2)
            mu = 0.97 + gain - 0.001 * math.log2(L)
            cells[RunSpec(norm=norm, hidden=(128,) + (64,) * (L - 1))] = (
                rng.normal(mu - 0.03, 2 * s, 5),
                rng.normal(mu, s, 5),
                np.zeros(5),
            )
    return study_data("depth", cells, ["hidden", "norm"])


def _width_null(rng):
    cells = {}
    for w in (32, 128, 512):
        for norm, gain, sd in (("none", 0.0, 0.002), ("batch", 0.0015, 0.001)):
            mu = 0.95 + gain + 0.004 * math.log2(w / 32)
            cells[RunSpec(norm=norm, hidden=(w, w // 2))] = (np.zeros(5), rng.normal(mu, sd, 5), np.zeros(5))
    return study_data("width", cells, ["hidden", "norm"])


N_NULL = 200
# α = 0.05 with a binomial allowance of 3 SDs at N_NULL studies: a test whose true rate is 5% passes with
# probability > 0.99; one of 10% (twice α) fails with probability > 0.9
BOUND = 0.05 + 3 * math.sqrt(0.05 * 0.95 / N_NULL)


@pytest.mark.parametrize(
    "claim, make",
    [  # one claim per test function: depth-epoch1 shares depth-final's, transfer-gap/-epoch1 transfer-final's
        (DEPTH[0], _depth_null),
        (WIDTH[0], _width_null),
        (TR.CLAIMS[0], lambda r: _transfer(0.0015, 0.0015, rng=r)),
    ],
    ids=lambda x: getattr(x, "key", ""),
)
def test_interaction_claims_are_supported_in_at_most_alpha_of_null_studies(claim, make):
    assert _support_rate(claim, make, N_NULL) <= BOUND


def test_the_null_simulation_has_power_where_the_interaction_is_real():
    """The same simulation with a real interaction: the transfer claim is supported in most studies, so
    the null rate above is the test's, not a simulation that never supports anything."""
    assert _support_rate(TR.CLAIMS[0], lambda r: _transfer(0.0015, 0.0115, rng=r), 50) >= 0.8


def test_the_side_by_side_table_tests_the_seed_claims_on_each_dataset():
    cells = {}
    rng = np.random.default_rng(2)
    for ds, base in (("mnist", 0.977), ("fashion-mnist", 0.885)):
        for bs in (16, 32, 64, 128):
            for norm in ("none", "batch"):
                mu = base + (0.01 if (norm == "batch" and ds == "fashion-mnist") else 0)
                cells[RunSpec(dataset=ds, norm=norm, batch_size=bs)] = (
                    rng.normal(mu, 0.001, 5),
                    rng.normal(mu, 0.001, 5),
                    np.full(5, 0.01),
                )
    d = study_data("transfer", cells, ["dataset", "norm", "batch_size"])
    blocks = transfer_table(d)
    table = blocks[-1]
    assert list(table.header) == [
        "claim",
        "mnist: effect [95% CI]",
        "mnist: verdict",
        "fashion-mnist: effect [95% CI]",
        "fashion-mnist: verdict",
    ]
    assert [r[0][:3] for r in table.rows] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    a = table.rows[0]
    assert a[4] == "supported" and a[2] == "equivalent"  # BN adds 1 pp on Fashion-MNIST only
    assert a[3].startswith("batch − none: +") and 0.8 < float(a[3].split("+")[1].split()[0]) < 1.2


def test_subset_recomputes_varying_labels_and_threshold():
    d = _transfer(0.0, 0.01)
    f = d.subset(dataset="fashion-mnist")
    assert f.varying == ["norm"] and [c.label for c in f.configs] == ["none", "batch"]
    assert f.threshold == 0.85 and d.subset(dataset="mnist").threshold == 0.97


@pytest.fixture
def mnist_store(tmp_path):
    out = tmp_path / "o"
    api.run_study("width", seeds=1, epochs=1, train_limit=256, test_limit=200, out=out, report=False)
    return out


@needs_mnist
def test_a_second_dataset_into_the_same_store_is_refused_before_training(mnist_store):
    if not data.available("fashion-mnist"):
        pytest.skip("Fashion-MNIST not found (Debian: dataset-fashion-mnist)")
    st = Store(mnist_store / "bnlab.sqlite")
    before = len(st.runs("width"))
    st.close()
    with pytest.raises(ConfigError) as e:
        api.run_study(
            "width",
            seeds=1,
            epochs=1,
            train_limit=256,
            test_limit=200,
            dataset="fashion-mnist",
            out=mnist_store,
        )
    msg = str(e.value)
    assert "\n" not in msg and "spans the datasets fashion-mnist, mnist" in msg and "--out" in msg
    with Store(mnist_store / "bnlab.sqlite") as st:
        assert len(st.runs("width")) == before == 6


def test_a_store_that_mixes_datasets_is_refused_by_the_report(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    st.begin_study("seed", "q", {"name": "seed", "axes": {"norm": ["none", "batch"]}}, "c")
    for ds in DS:
        r = RunResult(RunSpec(dataset=ds, epochs=1))
        r.epochs.append(
            dict(epoch=1, steps=1, train_loss=0.1, train_acc=0.9, test_loss=0.1, test_acc=0.9, wall_s=1)
        )
        st.save("seed", r, VERSIONS)
    with pytest.raises(ConfigError, match="spans the datasets fashion-mnist, mnist"):
        StudyData.load(st, "seed")
    st.begin_study("mine", "q", {"name": "mine", "axes": {"dataset": list(DS)}}, "c")
    st.link("mine", [r["run_id"] for r in st.runs("seed")])
    assert {c.spec.dataset for c in StudyData.load(st, "mine").configs} == set(DS)
