"""The package's shape (ARCHITECTURE.md): no import circle, a torch-free floor and report, small modules."""

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

import bnlab
from bnlab import studies
from bnlab.report import registry

SRC = Path(bnlab.__file__).parent
ROOT = Path(__file__).resolve().parent.parent  # the checkout: src/, tests/, benchmarks/
MAX_LINES = 400


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom, modules) -> list[str]:
    """The bnlab modules one `from X import a, b` uses: X.a where it is a module, else X itself
    (a name defined in X). Parents that Python imports on the way are not counted."""
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("bnlab"):
        return []
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """module → the bnlab modules it imports anywhere in its body (lazy imports inside functions count)."""
    files = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                deps.update(d for d in _resolve(mod, path.name == "__init__.py", node, files) if d in files)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
        graph[mod] = deps - {mod}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path, or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(m):
        colour[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if colour.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in colour and (found := visit(d)):
                return found
        colour[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in colour and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_relative_and_lazy_imports():
    g = import_graph()
    assert "bnlab.core.train" in g["bnlab.run.local"]  # from ..core.train import ...
    assert "bnlab.run.ray_backend" in g["bnlab.run.backends"]  # imported inside open_backend
    assert "bnlab.records" in g["bnlab.store"]
    assert (
        "bnlab.stats" in g["bnlab.claims.findings"] and "bnlab" not in g["bnlab.claims.findings"]
    )  # from .. import


def test_no_import_circle_anywhere():
    assert _cycle(import_graph()) is None


def test_nothing_imports_the_package_itself():
    """bnlab/__init__ sits on top (its lazy entry points import api); nothing inside imports it back."""
    g = import_graph()
    assert [m for m, deps in g.items() if "bnlab" in deps] == []


def _within(module: str, packages) -> bool:
    """module is one of `packages` or inside one (bnlab.run.worker is within bnlab.run; bnlab.runs is not)."""
    return any(module == p or module.startswith(p + ".") for p in packages)


ENTRY = ("bnlab.api", "bnlab.plan", "bnlab.cli", "bnlab.console")  # the top: nothing below imports them


@pytest.mark.parametrize(
    "wing, forbidden, allowed",
    [
        # report reads the store, the claims' findings and the sequential rounds, and writes documents
        ("bnlab.report", ("bnlab.core", "bnlab.run", *ENTRY), ()),
        (
            "bnlab.core",
            (
                "bnlab.run",
                "bnlab.claims",
                "bnlab.planning",
                "bnlab.report",
                "bnlab.store",
                "bnlab.api",
                "bnlab.cli",
            ),
            (),
        ),
        ("bnlab.run", ("bnlab.claims", "bnlab.planning", "bnlab.report", *ENTRY), ()),
        # a study's claims and their tests: the study data and stats, nothing that trains or writes
        (
            "bnlab.claims",
            ("bnlab.core", "bnlab.run", "bnlab.planning", "bnlab.report", "bnlab.export", *ENTRY),
            (),
        ),
        # sequential planning sits beside run/: studies, the store, the claims and stats; never report
        ("bnlab.planning", ("bnlab.core", "bnlab.run", "bnlab.report", "bnlab.export", *ENTRY), ()),
        ("bnlab.export", ("bnlab.core", "bnlab.run", "bnlab.planning", *ENTRY), ()),
        ("bnlab.stats", ("bnlab",), ()),  # the floor: numpy and scipy only
    ],
)
def test_data_flows_down_only(wing, forbidden, allowed):
    bad = {
        m: sorted(
            d for d in deps if _within(d, forbidden) and not _within(d, allowed) and not _within(d, [wing])
        )
        for m, deps in import_graph().items()
        if _within(m, [wing])
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_layer_rule_reads_package_boundaries():
    assert _within("bnlab.run.worker", ["bnlab.run"]) and _within("bnlab.run", ["bnlab.run"])
    assert not _within("bnlab.runs", ["bnlab.run"])


NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):   # as if torch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def test_report_stats_and_store_import_without_torch():
    code = NO_TORCH + (
        "import bnlab.report, bnlab.stats, bnlab.store, bnlab.records, bnlab.run.jobs, bnlab.export\n"
        "from bnlab.report import study_report, summary, registry\n"
        "from bnlab.claims import registry as claims\n"
        "from bnlab.planning import costs, rounds, until_decided\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_issue_s_own_check_passes():
    """torch stubbed out of sys.modules (scipy.stats must then not load at import: it probes for torch)."""
    code = "import sys; sys.modules['torch'] = None; import bnlab.report, bnlab.stats, bnlab.store"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_torch_blocker_blocks():
    r = subprocess.run(
        [sys.executable, "-c", NO_TORCH + "import bnlab.core.train"], capture_output=True, text=True
    )
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr


def _noqa_lines(text: str) -> list[int]:
    """Lines of the comments that silence a linter (`# noqa`, `# ruff: noqa`); strings do not count."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [t.start[0] for t in tokens if t.type == tokenize.COMMENT and "noqa" in t.string.lower()]


def test_no_noqa_comment_anywhere():
    """A finding is fixed at its cause, or its rule is switched off in pyproject.toml with a reason."""
    files = [p for d in ("src", "tests", "benchmarks") for p in sorted((ROOT / d).rglob("*.py"))]
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in files for n in _noqa_lines(p.read_text())]
    assert files and hits == []


def test_the_noqa_finder_reads_comments_only():
    assert _noqa_lines('x = "# noqa"\ny = 1  # noqa: E501\nz = 2  # NOQA\n') == [2, 3]


def test_no_module_is_over_the_limit():
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_named_study_has_its_report_and_no_report_is_orphaned():
    assert set(registry.REPORTS) == set(studies.STUDIES)
    assert registry.report_for("my-own-study") is registry.GENERIC
    for name, rep in registry.REPORTS.items():
        assert set(rep.generic) <= set(registry.GENERIC_FIGURES), name
        assert len({f.file for f in rep.figures}) == len(rep.figures), name


def test_every_named_study_declares_its_claims_once():
    """A claim's declaration is its one home: every named study has its tuple of Claims, with keys unique
    across the study, and `uses` naming RunSpec fields with values of the study's own grid."""
    import dataclasses

    from bnlab.claims.registry import NAMED
    from bnlab.config import RunSpec

    fields = {f.name for f in dataclasses.fields(RunSpec)}
    assert set(NAMED) == set(studies.STUDIES)
    for name, claims in NAMED.items():
        keys = [c.key for c in claims]
        assert keys and len(set(keys)) == len(keys), name
        specs = studies.STUDIES[name].specs(seeds=1)
        for c in claims:
            assert set(c.uses) <= fields, (name, c.key)
            assert any(c.needs(s) for s in specs), (name, c.key)  # it reads some configuration of the grid
