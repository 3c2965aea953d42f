"""report.html in a real browser (headless Chromium): it renders, is not blank, and every figure loads."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from test_report import make_store

from bnlab.report.study_report import write_report

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((p for p in (shutil.which(c) for c in CANDIDATES) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason=f"no Chromium binary found (looked for {', '.join(CANDIDATES)})"
)
CHECK = (
    "<script>addEventListener('load', () => { const im = [...document.images]; document.body.setAttribute("
    "'data-images', im.length + ':' + im.filter(i => i.complete && i.naturalWidth > 0).length); });</script>"
)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    st = make_store(tmp / "s.sqlite", batch_sizes=(32, 128), seeds=3, epochs=4)
    return tmp, write_report(st, "seed", tmp / "out", command="bnlab study seed")


def test_screenshot_is_not_blank(report):
    tmp, paths = report
    shot = tmp / "shot.png"
    r = _chromium(tmp / "profile1", f"--screenshot={shot}", "--window-size=1280,4000", paths["html"].as_uri())
    assert shot.exists(), f"no screenshot; chromium said: {r.stderr[-2000:]}"
    px = image.imread(shot)[..., :3]  # floats in [0, 1]
    rgb = (px * 255).astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    non_white = (px.min(-1) < 0.95).mean()
    assert len(colours) > 200 and non_white > 0.05, (len(colours), non_white)


def test_every_figure_loads(report):
    tmp, paths = report
    html = paths["html"].read_text()
    check = paths["html"].with_name("check.html")
    check.write_text(html.replace("</body>", CHECK + "</body>"))
    r = _chromium(tmp / "profile2", "--dump-dom", "--virtual-time-budget=10000", check.as_uri())
    m = re.search(r'data-images="(\d+):(\d+)"', r.stdout)
    assert m, f"the page's image check did not run; chromium said: {r.stderr[-2000:]}"
    n_imgs, loaded = map(int, m.groups())
    assert n_imgs == html.count('<img src="data:image/png;base64,') == 4 and loaded == n_imgs
