"""RunSpec validation, seeds, grids and TOML study files."""

import pytest

from bnlab import studies
from bnlab.config import Grid, RunSpec, parse_seeds
from bnlab.errors import ConfigError
from bnlab.study import Study


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("norm", "instance", "norm = 'instance' is not allowed; choose one of: none, batch"),
        ("profile", "jax", "profile = 'jax' is not allowed; choose one of: keras, torch"),
        ("dataset", "cifar", "dataset = 'cifar' is not allowed"),
        ("batch_size", 0, "batch_size = 0 is out of range; it must be >= 1"),
        ("batch_size", 2.5, "batch_size must be an integer"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("lr", float("nan"), "lr must be a finite number > 0"),
        ("lr", float("inf"), "lr must be a finite number > 0"),
        ("epochs", 0, "epochs = 0 is out of range"),
        ("placement", "middle", "placement = 'middle' is not allowed; choose one of: after, before"),
    ],
)
def test_bad_fields_name_the_field_and_allowed_values(field, value, needle):
    with pytest.raises(ConfigError, match="^" + needle.replace("(", r"\(").replace("[", r"\[")):
        RunSpec(**{field: value})


def test_group_size_must_divide_widths():
    with pytest.raises(ConfigError, match="group_size = 5 must divide every hidden width"):
        RunSpec(norm="group", group_size=5)


def test_seeds():
    assert parse_seeds("5") == (0, 1, 2, 3, 4)
    assert parse_seeds("3,7,11") == (3, 7, 11)
    assert parse_seeds([2]) == (2,)
    for bad in ("0", "x", "1,1", "-1,2", True):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_hash_ignores_seed_and_json_round_trips():
    a, b = RunSpec(seed=1, norm="batch"), RunSpec(seed=2, norm="batch")
    assert a.config_hash() == b.config_hash() and a.run_id != b.run_id
    assert RunSpec.from_json(a.to_json()) == a
    assert RunSpec(norm="none").config_hash() != a.config_hash()
    with pytest.raises(ConfigError, match="unknown run field 'colour'"):
        RunSpec.from_json({**a.to_json(), "colour": 1})


def test_grid_expansion_counts_and_duplicates():
    g = Grid({"norm": ("none", "batch"), "batch_size": (16, 32, 64, 128)}, {"epochs": 10}, parse_seeds(5))
    specs = g.expand()
    assert len(specs) == 40 and len({(s.config_hash(), s.seed) for s in specs}) == 40
    with pytest.raises(ConfigError, match="repeats a value"):
        Grid({"lr": (0.1, 0.1)}).expand()
    with pytest.raises(ConfigError, match="unknown grid field 'colour'"):
        Grid({"colour": (1,)}).expand()


def test_seed_study_is_the_full_factorial():
    s = studies.get("seed")
    specs = s.specs()
    assert len(specs) == 2 * 4 * 5
    assert {(x.norm, x.batch_size) for x in specs} == {
        (n, b) for n in ("none", "batch") for b in (16, 32, 64, 128)
    }
    assert all(x.epochs == 10 and x.lr == 1e-3 and x.profile == "keras" for x in specs)
    assert len(s.specs(seeds=2, epochs=1)) == 16 and s.specs(seeds=2, epochs=1)[0].epochs == 1


def test_none_times_placement_is_deduplicated():
    s = Study("p", "", axes={"norm": ("none", "batch"), "placement": ("after", "before")}, seeds=2)
    assert len(s.specs()) == 2 * 3


def _toml(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_toml_study_round_trip(tmp_path):
    p = _toml(
        tmp_path,
        'name = "mine"\nquestion = "q?"\nseeds = [0, 3]\n[base]\nepochs = 2\n'
        '[grid]\nnorm = ["none", "batch"]\nbatch_size = [32, 128]\n',
    )
    s = studies.get(str(p))
    specs = s.specs()
    assert s.name == "mine" and len(specs) == 8 and {x.seed for x in specs} == {0, 3}
    assert (s.mix_none, s.max_stack) == (True, None)
    text = 'name = "t"\nmix_none = false\nmax_stack = 2\n[grid]\nnorm = ["none", "batch"]\n'
    s = studies.get(str(_toml(tmp_path, text)))
    assert (s.mix_none, s.max_stack) == (False, 2)


@pytest.mark.parametrize(
    "text, needle",
    [
        ('name = "a"\ncolour = 1\n', "unknown key 'colour'; allowed: name, question"),
        ('name = "a"\n[grid]\nnorm = ["none", "weird"]\n', "norm = 'weird' is not allowed"),
        ('name = "a"\n[grid]\nnorm = "batch"\n', "grid.norm must be a non-empty list"),
        ('name = "a"\n[base]\nbatch_size = "big"\n', "batch_size must be an integer"),
        ('name = "a"\n[base]\ncolour = 3\n', "unknown grid field 'colour'"),
        ('name = "a"\nseeds = 0\n', "seeds = 0 is out of range"),
        ('name = "a"\n[grid]\nlr = [0.1, 0.1]\n', "repeats a value"),
        ('name = "a b"\n', "name must be 1-64 letters"),
        ('name = "a"\n[base\n', "not valid TOML"),
        ('name = "a"\nmix_none = "no"\n', "mix_none must be true or false"),
        ('name = "a"\nmax_stack = 0\n', "max_stack must be an integer >= 1"),
    ],
)
def test_toml_errors_are_config_errors(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        studies.get(str(_toml(tmp_path, text)))


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown study 'nope'; choose one of: seed"):
        studies.get("nope")
