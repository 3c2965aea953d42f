"""A claim is one declaration: a study file's `[[claims]]` are checked when read and become the report's
findings, Holm family, summary rows, plan rows and sequential needs; a claim added to a named study's
declaration appears in every one of them with no other change."""

import textwrap

import numpy as np
import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import make_store

from bnlab import studies
from bnlab.claims import registry
from bnlab.claims import seed as seed_claims
from bnlab.claims.claim import Claim
from bnlab.claims.declared import STATISTICS, from_file
from bnlab.claims.findings import compare_finding
from bnlab.config import RunSpec
from bnlab.errors import ConfigError
from bnlab.planning import rounds as R
from bnlab.planning.costs import plan_claims
from bnlab.report.study_report import write_report
from bnlab.stats import compare
from bnlab.studydata import StudyData

STUDY = """
name = "mine"
seeds = 3
[base]
epochs = 2
train_limit = 256
[grid]
norm = ["none", "batch"]
batch_size = [32, 128]
"""
CLAIM = """
[[claims]]
key = "bs128"
title = "BN helps at batch size 128"
a = {{ norm = "none", batch_size = 128 }}
b = {{ norm = "batch", batch_size = 128 }}
statistic = "{statistic}"
direction = "higher"
"""


def load(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(text))
    return studies.get(str(p))


def test_a_study_file_declares_claims_of_every_statistic(tmp_path):
    for stat in STATISTICS:
        st = load(tmp_path, STUDY + CLAIM.format(statistic=stat))
        (c,) = st.claims
        assert (c["key"], c["statistic"], c["margin"]) == ("bs128", stat, None)
        assert st.to_json()["claims"] == [c]
    assert "claims" not in load(tmp_path, STUDY).to_json()  # no [[claims]]: the generic claims


@pytest.mark.parametrize(
    "claim, message",
    [
        ('key = "x"\nfoo = 1', "claims[0]: unknown key 'foo'; allowed: key, title, a, b"),
        ('key = "a b"', "claims[0]: key must be 1-32 letters, digits, '-' or '_', got 'a b'"),
        ('key = "x"\nstatistic = "median"', "claim 'x': statistic must be one of final_test_acc, "),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "up"',
            "direction must be 'higher' or 'lower'",
        ),
        ('key = "x"\nstatistic = "final_test_acc"\ndirection = [1]', "direction must be 'higher' or 'lower'"),
        ('key = "x"\nstatistic = ["a"]', "claim 'x': statistic must be one of final_test_acc, "),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "higher"\nmargin = -1',
            "claim 'x': margin must be a positive number in the statistic's unit, got -1",
        ),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "higher"\na = { norm = "group" }\n'
            'b = { norm = "batch" }',
            "claim 'x': a = {'norm': 'group'} matches no configuration of the study's grid",
        ),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "higher"\na = { colour = 1 }\n'
            "b = { norm = 1 }",
            "claim 'x': a.colour is not a RunSpec field",
        ),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "higher"\na = { batch_size = 32 }\n'
            "b = { batch_size = 32 }",
            "claim 'x': a and b pick the same configurations; make them differ",
        ),
        (
            'key = "x"\nstatistic = "final_test_acc"\ndirection = "higher"\na = "none"\nb = {norm = "batch"}',
            "claim 'x': a must be a table of RunSpec fields",
        ),
    ],
)
def test_a_bad_claim_is_one_line_naming_it(tmp_path, claim, message):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, STUDY + "[[claims]]\n" + claim + "\n")
    assert message in str(e.value) and "\n" not in str(e.value) and str(tmp_path / "s.toml") in str(e.value)


def test_claims_must_be_tables_with_distinct_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"claims must be an array of tables \(\[\[claims\]\]\)"):
        load(tmp_path, "claims = [1, 2]\n" + STUDY)
    twice = CLAIM.format(statistic="final_test_acc") * 2
    with pytest.raises(ConfigError, match="key 'bs128' is declared twice"):
        load(tmp_path, STUDY + twice)


DECLARED = [
    dict(
        key="bs128",
        title="BN helps at batch size 128",
        a={"norm": "none", "batch_size": 128},
        b={"norm": "batch", "batch_size": 128},
        statistic="final_test_acc",
        direction="higher",
        margin=None,
    ),
    dict(
        key="loss32",
        a={"norm": "none", "batch_size": 32},
        b={"norm": "batch", "batch_size": 32},
        statistic="final_test_loss",
        direction="lower",
        margin=0.01,
    ),
]


def test_declared_claims_are_the_reports_findings_with_holm_across_them(tmp_path):
    st = make_store(
        tmp_path / "s.sqlite", study="mine", bn_gain=0.01, seeds=5, batch_sizes=(32, 128), claims=DECLARED
    )
    d = StudyData.load(st, "mine")
    claims = registry.claims_for(d)
    assert [c.key for c in claims] == ["bs128", "loss32"]
    assert claims[0].needs(RunSpec(norm="batch", batch_size=128)) and not claims[0].needs(
        RunSpec(batch_size=32)
    )
    assert claims[1].title == "norm batch has lower final test loss than norm none at batch_size 32"
    raw, fs = registry.findings_of(d), registry.analyse(d)
    assert [f.verdict for f in raw] == ["", ""]  # decided once, after Holm
    assert fs[0].verdict == "supported" and fs[0].effect == pytest.approx(1.0, abs=0.2)
    assert fs[0].contrast == "norm batch − norm none"
    assert fs[1].unit == "nats" and fs[1].margin == 0.01 and fs[1].expected_sign == -1
    p1, p2 = sorted(f.p_value for f in raw)  # Holm over the file's two claims
    assert sorted(f.p_holm for f in fs) == pytest.approx([min(1, 2 * p1), min(1, max(2 * p1, p2))])
    md = write_report(st, "mine", tmp_path / "out")["md"].read_text()
    assert "(bs128) BN helps at batch size 128" in md and "(loss32)" in md
    assert [p.finding.key for p in plan_claims(d)] == ["bs128", "loss32"]


def test_one_declaration_adds_a_claim_everywhere(tmp_path, monkeypatch):
    """A seventh claim of the seed study, declared once: it is tested, in the Holm family of seven, in the
    report, in the plan, and a sequential round trains only the configurations it declares."""

    def bn_at_128(claim: Claim, d: StudyData):
        n, b = d.find(norm="none", batch_size=128), d.find(norm="batch", batch_size=128)
        c = compare(n.finals(), b.finals(), label_a="none", label_b="batch")
        return compare_finding(claim, "Final test accuracy at bs 128.", c, unit="pp", scale=100, sign=+1)

    z = Claim(key="z", title="BN helps at bs 128", quote="mine", test=bn_at_128, uses={"batch_size": (128,)})
    monkeypatch.setitem(registry.NAMED, "seed", (*seed_claims.CLAIMS, z))
    st = make_store(tmp_path / "s.sqlite", seeds=3)
    d = StudyData.load(st, "seed")
    fs = registry.analyse(d)
    assert [f.key for f in fs] == ["a", "b", "c", "d", "e", "f", "z"]
    raw = {f.key: f for f in registry.findings_of(d)}
    finite = sorted(p for p in (f.p_value for f in raw.values()) if np.isfinite(p))
    assert fs[-1].p_holm >= raw["z"].p_value * (len(finite) - finite.index(raw["z"].p_value)) - 1e-12
    assert "(z) BN helps at bs 128" in write_report(st, "seed", tmp_path / "out")["md"].read_text()
    assert plan_claims(d)[-1].finding.key == "z"
    only_z = [c.label for c in R.needed_configs(d, ["z"])]
    assert only_z == ["none, bs 128", "batch, bs 128"]


SIDES = st.dictionaries(
    st.sampled_from(["norm", "batch_size", "lr", "colour"]),
    st.one_of(
        st.sampled_from(["none", "batch", "group"]),
        st.sampled_from([32, 128, 64]),
        st.floats(),
        st.lists(st.integers(), max_size=2),
    ),
    max_size=2,
)
ANY = st.one_of(
    st.integers(-3, 3), st.floats(), st.text(max_size=6), st.lists(st.integers(), max_size=2), st.booleans()
)
CLAIMS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "key": st.one_of(st.sampled_from(["c1", "c2", "a b"]), ANY),
            "title": st.one_of(st.text(max_size=10), ANY),
            "a": st.one_of(SIDES, ANY),
            "b": st.one_of(SIDES, ANY),
            "statistic": st.one_of(st.sampled_from(sorted(STATISTICS)), ANY),
            "direction": st.one_of(st.sampled_from(["higher", "lower"]), ANY),
            "margin": st.one_of(st.floats(), ANY),
            "other": ANY,
        },
    ),
    max_size=3,
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(claims=CLAIMS)
def test_any_claims_table_gives_claims_or_one_line(tmp_path, claims):
    """Claims of any shape on a valid study: the checked claims (each with a test the report can run), or
    one line naming the file; never another exception."""
    base = tomllib.loads(textwrap.dedent(STUDY))
    try:
        study = studies.from_dict({**base, "claims": claims}, "s.toml")
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("s.toml: "), str(e)
        return
    assert [c["key"] for c in study.claims] == [c["key"] for c in claims]
    assert all(callable(c.test) for c in from_file(study.claims))
