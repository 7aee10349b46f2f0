"""Headless Chromium (Debian `chromium` + `chromium-driver`) driven by
Selenium for the HTML report tests: the page is opened from a file, the
browser's console and network logs are collected, and the network is kept
off by a proxy address nothing listens on (any request would fail and show
up in the log)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"{names[0]} is missing: install the Debian packages chromium and chromium-driver")


@contextmanager
def headless_chromium(workdir: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps",
                "--proxy-server=http://127.0.0.1:9", "--window-size=1400,1000",
                f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(_binary("chromedriver"), log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def console_problems(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") in ("SEVERE", "WARNING")]


def requested_urls(driver: webdriver.Chrome, document: str) -> list[str]:
    """Every URL the page `document` asked for, itself included (from the
    DevTools log; the browser's own start-up pages belong to other documents)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent" and params.get("documentURL") == document:
            urls.append(params["request"]["url"])
    return urls
