"""Jupyter: StudyResult._repr_html_ (self-contained: inline PNG, no network, styles scoped) and
examples/original_study.ipynb executed by nbclient on a small slice of MNIST (every cell must run)."""

import base64
import os
import re
from pathlib import Path

import pytest

import bnlab
from bnlab.api import StudyResult
from bnlab.export.notebook import SCOPE, study_findings
from bnlab.report.study_report import write_report
from bnlab.store import Store
from helpers import needs_mnist
from report.test_report import make_store

NOTEBOOK = Path(__file__).parents[2] / "examples" / "original_study.ipynb"


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(i) for i in re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)]


def _check_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html and "file://" not in html
    assert not re.search(r"<(script|link|iframe|html|body)\b", html)
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    selectors = [s.strip() for sel in re.findall(r"([^{}]+)\{", css) for s in sel.split(",")]
    assert selectors and all(s.startswith(f".{SCOPE}") for s in selectors), (
        selectors
    )  # the notebook keeps its style


def test_repr_html_shows_the_verdicts_and_the_main_figure_inline(tmp_path):
    make_store(tmp_path / "bnlab.sqlite", bn_gain=0.01, noise=0.0005, seeds=3, batch_sizes=(32, 128)).close()
    with Store(tmp_path / "bnlab.sqlite") as st:
        res = StudyResult("seed", st.results("seed"), tmp_path, tmp_path / "bnlab.sqlite")
    html = res._repr_html_()
    _check_self_contained(html)
    fs = study_findings(res.store, "seed")
    rows = re.findall(r"<tr><td>\((\w)\) ", html)
    assert rows == [f.key for f in fs] == list("abcdef")  # one row per finding, in the report's order
    verdicts = re.findall(r'<span class="v (\w+)">', html)
    assert verdicts == [f.verdict for f in fs] and verdicts[0] == "supported"
    imgs = _images(html)
    assert len(imgs) == 1 and imgs[0][:8] == b"\x89PNG\r\n\x1a\n" and len(imgs[0]) > 20_000
    assert "12 runs in 4 configurations; 3 epochs" in html
    assert list(tmp_path.iterdir()) == [
        tmp_path / "bnlab.sqlite"
    ]  # drawn in a temporary folder, nothing left


def test_repr_html_reuses_the_report_s_figure(tmp_path):
    st = make_store(tmp_path / "bnlab.sqlite", seeds=2, batch_sizes=(32, 64))
    paths = write_report(st, "seed", tmp_path)
    res = StudyResult("seed", st.results("seed"), tmp_path, tmp_path / "bnlab.sqlite", paths)
    st.close()
    html = res._repr_html_()
    assert _images(html) == [paths["accuracy"].read_bytes()]  # the report's curves, not drawn again
    assert f"<code>{paths['html']}</code>" in html


@needs_mnist
def test_the_original_study_notebook_runs_every_cell(tmp_path, monkeypatch):
    nbformat = pytest.importorskip(
        "nbformat", reason="nbformat is not installed: pip install 'bnlab[notebook]'"
    )
    nbclient = pytest.importorskip(
        "nbclient", reason="nbclient is not installed: pip install 'bnlab[notebook]'"
    )
    pytest.importorskip("ipykernel", reason="ipykernel is not installed: pip install 'bnlab[notebook]'")
    src = str(Path(bnlab.__file__).parents[1])  # the kernel imports this bnlab
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]))
    for k, v in dict(
        TRAIN_LIMIT="2000", TEST_LIMIT="2000", SEEDS="2", EPOCHS="1", OUT=str(tmp_path / "out")
    ).items():
        monkeypatch.setenv(f"BNLAB_NOTEBOOK_{k}", v)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed without outputs
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises on any cell error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    study = next(
        h for h in html if 'class="bnlab-result"' in h
    )  # the StudyResult: verdicts and curves inline
    assert len(re.findall(r'<span class="v (\w+)">', study)) == 6 and len(_images(study)) == 1
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # accuracy and loss curves
    assert any("<table" in h and "original (one run)" in h for h in html)
    findings = next(o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert findings.count("\n- ") == 5 and "(a) BN improves final test accuracy" in findings
    widgets = (
        nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    )
    bar = [o["data"]["text/plain"] for w in widgets.values() for o in w["state"].get("outputs", [])]
    assert any("runs 16/16" in t for t in bar), bar  # rich's progress bar, drawn in the cell
    assert len(bnlab.load(tmp_path / "out")) == 16  # 2 norms × 4 batch sizes × 2 seeds × 1 epoch


def test_repr_html_of_study_all_is_its_summary_page(tmp_path):
    from bnlab.report.summary import write_summary

    make_store(tmp_path / "seed" / "bnlab.sqlite", seeds=2, batch_sizes=(32,)).close()
    paths = write_summary([("seed", tmp_path / "seed" / "bnlab.sqlite", tmp_path / "seed", {})], tmp_path)
    html = StudyResult("all", [], tmp_path, tmp_path / "seed" / "bnlab.sqlite", paths)._repr_html_()
    _check_self_contained(html)
    assert "<h1>bnlab: every claim, measured</h1>" in html and html.count('<span class="v ') == 6
    assert "No summary page" in StudyResult("all", [], tmp_path, tmp_path / "x.sqlite")._repr_html_()
