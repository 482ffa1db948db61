"""The web console (GET /ui) in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
scripts/setup.sh installs) driven through selenium against the suite's `serve run` server, through the whole flow
on the tiny model: token and session, a refused upload shown at its file, line and column, the upload with its
preview and summary, the config form with "auto" resolved, preprocessing, training with its curves filling,
the results with the confusion matrix, deploy, predict and undeploy, runs and sessions.

Each screen is saved as a PNG under the test's tmp_path, and copied to $CONSOLE_SCREENSHOTS when it is set
(CONSOLE_SCREENSHOTS=docs/img/console refreshes the screenshots docs/console.md shows)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from conftest import API_TOKEN, TINY_MODEL
from data import sentiment_files, sentiment_rows, write_csv

WIDE, NARROW, HEIGHT = 1280, 420, 800
SLOW = 240  # seconds: preprocessing, training and a deployment on 2 busy cores


BINARY = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
# Decided before any fixture runs, so that a machine without the browser starts no server for nothing.
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("selenium") is None,
                       reason="selenium is not installed: pip install -c constraints.txt -e '.[test]'"),
    pytest.mark.skipif(not BINARY or not DRIVER,
                       reason="no Chromium and chromedriver on PATH: scripts/setup.sh installs them as root where "
                              "apt-get is (apt-get install chromium chromium-driver)"),
]


def _browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = BINARY
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDE},{HEIGHT}", "--lang=en-GB", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))


@pytest.fixture
def browser():
    driver = _browser()
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Console:
    """The page under test: find, fill, click and wait by element id, and a screenshot of each screen."""

    def __init__(self, driver, shots: Path):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.shots, self.wait = driver, shots, WebDriverWait
        shots.mkdir(parents=True, exist_ok=True)

    def by_id(self, id_: str):
        return self.driver.find_element("id", id_)

    def text(self, id_: str) -> str:
        return self.by_id(id_).text

    def fill(self, id_: str, value: str) -> None:
        field = self.by_id(id_)
        field.clear()
        field.send_keys(value)

    def click(self, id_: str) -> None:
        self.by_id(id_).click()

    def screen(self, name: str) -> None:
        self.driver.find_element("css selector", f'nav button[data-screen="{name}"]').click()

    def until(self, what: str, condition, timeout: float = 30):
        return self.wait(self.driver, timeout, poll_frequency=0.2).until(lambda d: condition(), message=what)

    def shoot(self, name: str, width: int = WIDE) -> Path:
        """The whole page at `width`: the viewport is set to the page's height for the picture (Chrome's device
        metrics), then put back."""
        def viewport(height: int) -> None:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            self.driver.execute_script("return new Promise((done) => requestAnimationFrame(() => setTimeout(done, 200)))")

        viewport(HEIGHT)  # laid out (and the charts resized) at this width first
        viewport(max(HEIGHT, self.driver.execute_script("return document.documentElement.scrollHeight")))
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path


def _copy_screenshots(shots: Path) -> None:
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in sorted(shots.glob("*.png")):
            shutil.copy(png, Path(target) / png.name)


def _session_and_refused_upload(page: Console, train: Path, bad_test: Path) -> None:
    page.fill("token", API_TOKEN)
    page.driver.find_element("css selector", "#token-form button").click()
    page.by_id("force-restart").click()
    page.click("start-session")
    page.until("the session key", lambda: page.by_id("key-shown").get_attribute("value"))
    assert page.driver.current_url.endswith("/ui") and page.by_id("key-shown").get_attribute("value") not in \
        page.driver.current_url
    page.until("the status line", lambda: "State: setup" in page.text("status-line"))
    page.shoot("01-session")
    page.screen("data")
    page.by_id("train-file").send_keys(str(train))
    page.by_id("test-file").send_keys(str(bad_test))
    page.until("the preview", lambda: len(page.driver.find_elements("css selector", "#preview table")) == 2)
    page.click("upload")
    error = page.until("the refusal by its file", lambda: page.text("test_file-error"))
    assert error.startswith("400: test_file: line 4, column 2 (label)"), error  # the API's words, by its input
    assert page.driver.find_elements("css selector", "#preview td.bad"), "the refused cell is not marked"
    page.shoot("02-upload-refused")


def _upload_configure_preprocess(page: Console, test: Path) -> None:
    from selenium.webdriver.support.ui import Select

    page.by_id("test-file").send_keys(str(test))
    page.click("upload")
    page.until("the dataset summary", lambda: "Label counts" in page.text("dataset-summary"))
    assert "180" in page.text("dataset-summary") and "neg" in page.text("dataset-summary")
    page.shoot("03-data")
    page.screen("config")
    page.until("the config form", lambda: page.driver.find_elements("id", "cfg-epochs"))
    for field, value in (("cfg-model", TINY_MODEL), ("cfg-epochs", "3"), ("cfg-batch_size", "4"),
                         ("cfg-learning_rate", "0.003")):
        page.fill(field, value)
    Select(page.by_id("cfg-init_eval")).select_by_visible_text("true")
    page.fill("config-extra", '{"epochs_per_test_run": 1}')  # a field outside the main ones, as JSON
    page.fill("cfg-epochs", "0")  # refused by the API: its words are shown by the form
    page.click("save-config")
    assert "epochs" in page.until("the refusal", lambda: page.text("config-error"))
    page.fill("cfg-epochs", "3")
    page.click("save-config")
    page.until("the saved config", lambda: page.text("config-saved"))
    assert page.by_id("cfg-model").get_attribute("value") == TINY_MODEL
    assert "auto →" in page.text("config-fields")  # warmup_ratio and the others: what "auto" resolves to
    page.shoot("04-config")
    page.screen("data")
    page.click("preprocess")
    page.until("preprocessing", lambda: "State: preprocessed" in page.text("status-line"), SLOW)


def _train(page: Console) -> None:
    page.screen("training")
    page.click("train-start")
    points = lambda chart: int(page.by_id(chart).get_attribute("data-points") or 0)  # noqa: E731
    first = page.until("the first loss points", lambda: points("loss-chart"), SLOW)
    page.shoot("05-training-live")  # mid-run, as far as it got by now
    page.until("the run's end", lambda: "State: trained" in page.text("status-line"), SLOW)
    # 3 epochs of 32 steps, evaluated before the first and after each: 4 validation points; the loss chart has
    # grown since its first point (the live reports seen while it trained, and each epoch's loss)
    page.until("the validation curve", lambda: points("metric-chart") == 4)
    assert points("loss-chart") > first, (first, points("loss-chart"))
    assert "100 %" in page.text("live") and "Evaluations" in page.text("history")
    page.shoot("06-training-done")
    page.shoot("06-training-narrow", NARROW)


def _results_and_model(page: Console) -> None:
    page.screen("results")
    page.until("the confusion matrix", lambda: page.driver.find_elements("css selector", "#confusion table"), 60)
    assert "accuracy" in page.text("test-metrics") and "pos" in page.text("per-label")
    assert "worst-predicted" in page.text("worst")
    page.shoot("07-results")
    page.screen("model")
    page.click("deploy")
    page.until("the deployment", lambda: page.by_id("deployment").get_attribute("data-state") == "ready", SLOW)
    page.fill("predict-input", "the film was wonderful and the cast felt wonderful\nthe plot was dull and tedious")
    page.click("predict")
    page.until("the predictions", lambda: page.driver.find_elements("css selector", "#predictions table"), 60)
    assert "single_label" in page.text("predictions")
    page.shoot("08-model")
    page.click("undeploy")
    page.until("the deployment removed", lambda: page.by_id("deployment").get_attribute("data-state")
               in ("none", "deleting", "absent"), 60)
    page.click("predict")
    assert "409" in page.until("predict without a model", lambda: page.text("predict-error"), 30)
    page.screen("runs")
    page.until("the runs", lambda: "done" in page.text("runs") and page.text("sessions"))
    page.shoot("09-runs")


def test_the_console_drives_the_whole_flow(server, browser, tmp_path):
    # Not the sentiment sample test_flow uploads (180 rows, not 160): caches are shared by content, and test_flow
    # expects to write that sample's cache itself.
    train, test = sentiment_files(tmp_path, 180)
    bad_test = write_csv(tmp_path / "bad" / "test.csv", ["text", "label"],
                         [*sentiment_rows(2, seed=3), ("the ending was fine", "meh"), *sentiment_rows(2, seed=4)])
    page = Console(browser, tmp_path / "screenshots")
    browser.get(f"{server.url}/ui")
    try:
        _session_and_refused_upload(page, train, bad_test)
        _upload_configure_preprocess(page, test)
        _train(page)
        _results_and_model(page)
    except BaseException:
        page.shoot("99-failed")  # where the failure left the page (under tmp_path only)
        raise
    _copy_screenshots(page.shots)
    # No script error; the refusals the test asked for are logged as failed loads, which are not.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "Failed to load" not in e["message"]]
    assert not errors, errors
