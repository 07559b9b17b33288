"""The console in a real headless Chromium (Debian's chromium + chromedriver, via Selenium).

The browser and its driver are Debian packages that scripts/test installs; Selenium is given
both paths, so its manager never downloads anything. Set SYNTHESIA_WATCHD_SCREENSHOTS to a
folder to keep the README's screenshots there.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from consolefixtures import LiveDaemon, add_job
from helpers import wait_until
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.stores.ledger import Ledger

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
XSS = "<img src=x onerror=alert(1)>.mp4"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,860",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own profile folder."""
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "install the Debian packages chromium and chromium-driver (scripts/test does)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, predicate: Callable[[WebDriver], object], timeout: float = 20) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(predicate)


def _console_errors(driver: WebDriver) -> list[str]:
    """Severe browser console entries (script errors, CSP refusals)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _no_alert(driver: WebDriver) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_pages_load_without_errors(live: LiveDaemon, browser: WebDriver) -> None:
    """Every page renders in Chromium with htmx loaded and nothing refused by the CSP."""
    job = add_job(live.engine, "a.mp4", JobState.FAILED, last_error="not a video")
    for path, heading in (
        ("/", "Overview"),
        ("/jobs", "Jobs"),
        (f"/jobs/{job.id}", "Job #"),
        ("/failures", "Failures"),
        ("/attention", "Needs attention"),
    ):
        browser.get(live.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(heading), path
        assert browser.execute_script("return typeof htmx") == "object", path
    assert _console_errors(browser) == []


def test_a_job_progresses_live_without_a_reload(
    live_factory: Callable[..., LiveDaemon], browser: WebDriver
) -> None:
    """The jobs page shows a file handed over by the API appear and reach done, on its own."""
    live = live_factory(sim={"dub_seconds": 2.0})
    browser.get(live.url + "/jobs")
    browser.execute_script("window.notReloaded = true")
    live.engine.put("live.mp4")
    r = live.post("/api/v1/jobs", json={"watch": "drop", "path": "live.mp4"})
    assert r.status_code == 202
    seen: set[str] = set()

    def state(driver: WebDriver) -> str:
        # Read in one script call: htmx replaces the table every 2 s, so an element found
        # first and read afterwards may already be gone (a stale reference).
        text = driver.execute_script(
            "const c = document.querySelector('#jobs tr[data-job] .state');"
            "return c ? c.textContent : '';"
        )
        if text:
            seen.add(text)
        return str(text)

    _wait(browser, lambda d: state(d) == "done", timeout=40)
    assert browser.execute_script("return window.notReloaded") is True
    assert len(seen) >= 2, seen  # it was seen moving, not only finished
    chips = browser.execute_script(
        "return [...document.querySelectorAll('#jobs tr[data-job] .chip.done')]"
        ".map(c => c.textContent);"
    )
    assert set(chips) == {"fr-FR", "es-ES"}


def test_click_retry_on_a_failed_job(live: LiveDaemon, browser: WebDriver) -> None:
    """The Retry button on a job page goes through lifecycle and shows what it did."""
    job = add_job(live.engine, "broken.mp4", JobState.FAILED, last_error="boom")
    browser.get(f"{live.url}/jobs/{job.id}")
    browser.find_element(By.CSS_SELECTOR, f'[data-action="retry-{job.id}"]').click()
    _wait(browser, lambda d: d.find_elements(By.ID, "flash"))
    assert "queued again" in browser.find_element(By.ID, "flash").text
    with Ledger(live.engine.ledger_path) as ledger:
        assert "retry by operator: starting over" in [e.why for e in ledger.events(job.id)]


def test_click_pause_then_resume(live: LiveDaemon, browser: WebDriver) -> None:
    """The header's Pause button holds all watches (the daemon sees it); Resume lifts it."""
    browser.get(live.url + "/")
    browser.find_element(By.CSS_SELECTOR, '[data-action="pause"]').click()
    _wait(browser, lambda d: d.find_elements(By.ID, "global-hold"))
    assert "PAUSE" in browser.find_element(By.ID, "global-hold").text
    wait_until(lambda: live.daemon.scheduler.gate.all_new, what="the daemon honours the pause")
    browser.find_element(By.CSS_SELECTOR, '[data-action="resume"]').click()
    _wait(browser, lambda d: not d.find_elements(By.ID, "global-hold"))
    assert lifecycle.read_control(live.daemon.ledger).global_hold is None


def test_hostile_file_name_is_inert(live: LiveDaemon, browser: WebDriver) -> None:
    """A file named like an HTML tag is shown as text: no <img> element, no alert."""
    job = add_job(live.engine, XSS, JobState.FAILED, last_error="<script>alert(2)</script>")
    for path in ("/jobs", f"/jobs/{job.id}", "/failures"):
        browser.get(live.url + path)
        assert XSS in browser.find_element(By.TAG_NAME, "main").text, path
        assert browser.find_elements(By.CSS_SELECTOR, "main img") == [], path
        assert _no_alert(browser), path
    # Also after htmx swapped the live part in.
    browser.get(live.url + "/jobs")
    browser.execute_script("htmx.trigger('#live', 'every 2s')")
    _wait(
        browser, lambda d: d.execute_script("return document.querySelectorAll('#jobs tr').length")
    )
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == [] and _no_alert(browser)


def test_screenshots(
    live_factory: Callable[..., LiveDaemon], browser: WebDriver, tmp_path: Path
) -> None:
    """The README's screenshots render (PNG); kept when SYNTHESIA_WATCHD_SCREENSHOTS is set."""
    live = live_factory(sim={"dub_seconds": 30.0}, schedule=[])
    engine = live.engine
    for name in ("launch-teaser.mp4", "onboarding-01.mp4", "q3-all-hands.mp4"):
        engine.put(name)
        live.post("/api/v1/jobs", json={"watch": "drop", "path": name})
    wait_until(
        lambda: sum(1 for s in engine.states().values() if s == "dubbing") >= 2,
        timeout=30,
        what="jobs dubbing",
    )
    add_job(
        engine,
        "training/safety-briefing.mp4",
        JobState.FAILED,
        "drop",
        last_error=("not a video: the file starts with neither an MP4/MOV nor a WebM header"),
    )
    amb = add_job(engine, "webinar-2024-05.mp4", JobState.ASSET_CREATED, "drop")
    with Ledger(engine.ledger_path) as ledger:
        ledger.transition(amb.id, JobState.ASSET_CREATED, JobState.UPLOADED, why="uploaded")
        ledger.transition(
            amb.id,
            JobState.UPLOADED,
            JobState.NEEDS_ATTENTION,
            why="POST /v2/dubbing was sent but its answer was never recorded",
            submit_started_at=time.time() - 300,
            last_error="ambiguous submit: POST /v2/dubbing was sent but its answer was never "
            "recorded",
        )
    lifecycle.pause(live.daemon.ledger, watch="drop", drain=True)
    wait_until(lambda: live.daemon.scheduler.gate.why.get("drop"), what="the daemon drains")
    shots = {}
    for name, path in (("overview", "/"), ("jobs", "/jobs"), ("attention", "/attention")):
        browser.get(live.url + path)
        _wait(browser, lambda d: d.find_elements(By.TAG_NAME, "h1"))
        shot = tmp_path / f"console-{name}.png"
        browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        shots[name] = shot
    keep = os.environ.get("SYNTHESIA_WATCHD_SCREENSHOTS")
    if keep:
        for shot in shots.values():
            shutil.copy(shot, Path(keep) / shot.name)
