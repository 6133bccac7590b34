"""The HTML report in a real headless browser (Debian's chromium through chromedriver): it renders
with no console error and its three charts are visible. Skipped where chromium is not installed,
unless REMEDIATOR_REQUIRE_CHROMIUM=1 (scripts/test installs it with apt and sets that)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.evidence.period import parse_period
from remediator.evidence.render import to_html
from remediator.evidence.report import build_report
from tests.evidence.scenario import run_scenario
from tests.support.engine import PLAYBOOKS, World, make_world

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def _browser() -> object:
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("REMEDIATOR_REQUIRE_CHROMIUM"):
            pytest.fail("chromium and chromium-driver are not installed (scripts/test installs them with apt)")
        pytest.skip("chromium is not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="remediator-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    return driver


@pytest.mark.slow(reason="starts a real headless chromium")
def test_the_report_renders_in_chromium_with_visible_charts(world: World, tmp_path: Path) -> None:
    run_scenario(world)
    report = build_report(world.store, parse_period("2026-Q4", now=world.clock()), now=world.clock(),
                          playbook_controls={p.name: p.controls for p in PLAYBOOKS})
    page = tmp_path / "report.html"
    page.write_text(to_html(report), encoding="utf-8")
    driver: object = _browser()
    try:
        driver.get(page.as_uri())  # type: ignore[attr-defined]
        assert driver.title == "remediator evidence report 2026-Q4"  # type: ignore[attr-defined]
        charts = driver.find_elements("css selector", "svg.chart")  # type: ignore[attr-defined]
        assert len(charts) == 3
        for chart in charts:
            assert chart.is_displayed()
            assert chart.size["width"] > 100, chart.size
            assert chart.size["height"] > 50, chart.size
            assert chart.find_elements("css selector", "rect")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]  # type: ignore[attr-defined]
        assert errors == []
        assert "Every remediation" in driver.find_element("css selector", "body").text  # type: ignore[attr-defined]
    finally:
        driver.quit()  # type: ignore[attr-defined]
        shutil.rmtree(driver.profile_dir, ignore_errors=True)  # type: ignore[attr-defined]
