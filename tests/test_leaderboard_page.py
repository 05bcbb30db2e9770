"""The leaderboard page as a person uses it, in headless Chromium: it opens offline (no request
leaves the file, no console error), a header click sorts, a filter hides rows, each cell links to
its MLflow run, and at 1400 px the main table fits without scrolling. Screenshots at 1400 and
900 px go to test-artifacts/ for a person to look at.

Runs are written to a real SQLite MLflow store through ``Tracker`` (``record`` and ``grid`` from
test_leaderboard.py), then built and written by the same code as ``ptbench leaderboard``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, TINY, needs_command, needs_package
from test_leaderboard import corr, grid, record

from ptbench import optional
from ptbench.leaderboard import build_leaderboard, write_outputs
from ptbench.tracking import Tracker
from ptbench.tracking.ui import start_url

ARTIFACTS = ROOT / "test-artifacts"
SHIFTS = ("svhn_like", "usps_like", "rotated_digits")
TRAINING_VIEW = {"mlflow.experimentKind": "custom_model_development"}


def metrics(acc: float, seed: int, shifted: bool) -> dict[str, float]:
    """What a final run logs: test, calibration, corruption, attack and (maybe) shifted metrics."""
    out = corr(acc, acc - 0.2, acc - 0.3) | {
        "test_accuracy": acc + 0.01 * seed,
        "test_macro_f1": acc - 0.02,
        "test_nll": 1.5 - acc,
        "test_ece": 0.3 - acc / 4,
        "test_brier": 1 - acc,
        "trainable_params": 650.0 if acc < 0.7 else 5400.0,
        "adv_pgd_eps0.02_accuracy": acc / 3,
        "train_seconds": (30.0 if acc > 0.7 else 3.0) * (1 + acc) + seed,
    }
    for b in range(15):  # reliability bins
        out |= {f"test_rel_b{b:02d}_n": 5.0, f"test_rel_b{b:02d}_conf": (b + 0.5) / 15}
        out[f"test_rel_b{b:02d}_acc"] = min(1.0, (b + 0.5) / 15 * acc * 1.2)
    for i, s in enumerate(SHIFTS if shifted else ()):
        out |= {f"shifted_{s}_accuracy": acc - 0.1 * (i + 1), f"shifted_{s}_gap": 0.1 * (i + 1)}
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Tracker, dict]:
    """A two-task suite: 8 cells with two seeds each; one cell has no shifted-domain scores."""
    tmp = tmp_path_factory.mktemp("page")
    tracker = Tracker(f"sqlite:///{tmp}/mlflow.db")
    tasks = [
        TINY["axes"]["tasks"][0],
        {"name": "digits", "params": {"train_size": 150, "val_size": 100, "test_size": 100}},
    ]
    cells = grid(tmp, "page", axes={**TINY["axes"], "tasks": tasks})
    acc = {"full_finetune": 0.9, "linear_probe": 0.6}
    for i, ((_, strategy, reg), cell) in enumerate(cells.items()):
        a = acc[strategy] - (0.05 if reg != "none" else 0) - 0.01 * i
        finals = [metrics(a, seed, shifted=i != 1) for seed in range(2)]
        record(tracker, cell, [0.5, a - 0.05], finals)
    boards = build_leaderboard(tracker.uri, "page", {"strategy": "linear_probe", "regularizer": "none"})
    (path,) = write_outputs(boards, "page", "html", results_dir=tmp)
    return path, tracker, cells


def test_the_suites_experiment_opens_in_mlflows_training_view(page):
    _, tracker, _ = page
    exp = tracker.experiment_id("page")
    assert TRAINING_VIEW.items() <= tracker.client.get_experiment(exp).tags.items()
    url, found = start_url(tracker.uri, "0.0.0.0", 5001, "page")
    assert found and url == f"http://127.0.0.1:5001/#/experiments/{exp}/runs"


def test_the_page_is_one_offline_file_with_the_plotly_js_once(page):
    from plotly.offline import get_plotlyjs

    text = page[0].read_text()
    assert text.count(get_plotlyjs()) == 1  # the library, embedded once, not per plot
    ours = text.replace(get_plotlyjs(), "")
    assert "<script src" not in ours and "<link" not in ours and "data:image/png" not in ours
    assert text.count("Plotly.newPlot") == 2 * 4  # heatmap, Pareto, severity, reliability per task


def _driver(width: int):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = optional.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={width},1000")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=optional.which("chromedriver"))
    return webdriver.Chrome(options=opts, service=service)


def _open(driver, path: Path, width: int) -> None:
    """Load the page at exactly ``width`` CSS pixels and wait until its plots are drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.get(path.as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.querySelectorAll('.main-svg').length > 0")
    )


def _shot(driver, name: str) -> Path:
    import base64

    ARTIFACTS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    out = ARTIFACTS / name
    out.write_bytes(base64.b64decode(shot["data"]))
    return out


def _column(driver, table, name: str, visible_only: bool = True) -> list[str]:
    return driver.execute_script(
        """const [t, name, vis] = arguments;
        const i = [...t.querySelectorAll('tr.cols th')].findIndex(th => th.dataset.col === name);
        return [...t.tBodies[0].rows].filter(r => !vis || !r.hidden)
          .map(r => r.cells[i].textContent.trim());""",
        table,
        name,
        visible_only,
    )


def _header(table, name: str):
    from selenium.webdriver.common.by import By

    return table.find_element(By.CSS_SELECTOR, f"tr.cols th[data-col='{name}']")


def _num(s: str) -> float:
    return float(s.split("±")[0].replace(",", ""))


@needs_package("selenium", "pip install selenium")
@needs_command("chromedriver", "apt-get install chromium-driver")
@needs_command("chromium", "apt-get install chromium")
def test_the_page_sorts_filters_links_and_fits_in_chromium(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path, tracker, cells = page
    driver = _driver(1400)
    try:
        _open(driver, path, 1400)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        urls = [
            e["message"] for e in driver.get_log("performance") if "Network.requestWillBeSent" in e["message"]
        ]
        assert urls and all('"url":"file:' in m or '"url":"data:' in m for m in urls), urls
        left = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(u => !u.startsWith('file:') && !u.startsWith('data:'))"
        )
        assert left == []

        gen = driver.find_elements(By.CSS_SELECTOR, "table.lb[data-view='generalization']")
        assert len(gen) == 2
        t = gen[0]
        # fits at 1400 px: no scrolling inside the table's container, nor of the page
        fits = driver.execute_script(
            "const w = arguments[0].parentElement; return [w.scrollWidth, w.clientWidth,"
            " document.documentElement.scrollWidth, document.documentElement.clientWidth]",
            t,
        )
        assert fits[0] <= fits[1] and fits[2] <= fits[3], fits
        _shot(driver, "leaderboard-1400.png")

        # a header click sorts by value, a second click reverses; "—" (no score) stays last
        _header(t, "ece").click()
        ece = [_num(v) for v in _column(driver, t, "ece")]
        assert ece == sorted(ece) and len(ece) == 4
        _header(t, "test_acc").click()
        _header(t, "test_acc").click()
        acc = [_num(v) for v in _column(driver, t, "test_acc")]
        assert acc == sorted(acc, reverse=True) and acc != sorted(acc)
        shift = f"shifted_{SHIFTS[0]}"
        for _ in range(2):
            _header(t, shift).click()
            assert _column(driver, t, shift)[-1] == "—"

        # a filter hides rows of every table, and a task filter hides the other task
        Select(
            driver.find_element(By.CSS_SELECTOR, "#filters select[name='strategy']")
        ).select_by_visible_text("linear_probe")
        assert set(_column(driver, t, "strategy")) == {"linear_probe"}
        assert len(_column(driver, t, "strategy", visible_only=False)) == 4
        assert "2 of 4 rows shown" in t.find_element(By.XPATH, "../..").text
        sections = driver.find_elements(By.CSS_SELECTOR, "section.board")
        Select(driver.find_element(By.CSS_SELECTOR, "#filters select[name='task']")).select_by_index(1)
        assert [s.is_displayed() for s in sections] == [True, False]

        # each cell links to its own run in MLflow's UI
        exp = tracker.experiment_id("page")
        links = {
            a.text: a.get_attribute("href")
            for a in t.find_elements(By.CSS_SELECTOR, "tbody tr:not([hidden]) td a")
        }
        assert len(links) == 2  # the two linear_probe rows still shown
        for h, href in links.items():
            run = tracker.find_run(exp, **{"ptbench.kind": "cell", "ptbench.cell_hash": h})
            assert href == f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run.info.run_id}"

        _open(driver, path, 900)
        wide = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide[0] <= wide[1], wide  # at 900 px only a table's own container may scroll
        _shot(driver, "leaderboard-900.png")
    finally:
        driver.quit()
