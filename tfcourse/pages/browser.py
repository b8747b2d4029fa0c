"""Opens an HTML page in headless Chromium and reports whether it rendered cleanly: every image
loaded (complete, with a non-zero natural size) and no console errors or uncaught exceptions;
optionally a full-page PNG screenshot.

Chromium is driven by Selenium WebDriver through ``chromedriver`` (Debian: ``apt-get install
chromium chromium-driver``, which keeps the two at the same version). Selenium is an optional
dependency: ``pip install 'tfcourse[browser]'`` (``[dev]`` includes it).
"""

from __future__ import annotations

import base64
import os
import shutil
from typing import Any, Dict, Optional

from tfcourse.rundir import write_bytes

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_CANDIDATES = ("chromedriver",)
ENV_BINARY = "TFCOURSE_CHROMIUM"
ENV_DRIVER = "TFCOURSE_CHROMEDRIVER"
_IMAGES_JS = """return Array.from(document.images).map(i => ({
  alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))"""


def _find(env: str, candidates) -> Optional[str]:
    explicit = os.environ.get(env)
    if explicit:
        return shutil.which(explicit)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_chromium() -> Optional[str]:
    """The Chromium executable (``$TFCOURSE_CHROMIUM`` or the first of ``CHROMIUM_CANDIDATES`` on PATH), or None."""
    return _find(ENV_BINARY, CHROMIUM_CANDIDATES)


def find_chromedriver() -> Optional[str]:
    """The ``chromedriver`` executable (``$TFCOURSE_CHROMEDRIVER`` or on PATH), or None."""
    return _find(ENV_DRIVER, DRIVER_CANDIDATES)


def require_available() -> None:
    """Raises ``ValueError`` naming what to install unless Chromium, chromedriver and Selenium are all
    there: a CLI calls it before its work when ``--check`` is given, so a missing browser costs nothing."""
    import importlib.util

    binary, chromedriver = find_chromium(), find_chromedriver()
    if binary is None or chromedriver is None:
        missing = " and ".join(
            name for name, found in (("chromium", binary), ("chromium-driver", chromedriver)) if found is None
        )
        raise ValueError(
            f"headless Chromium was not found; install it (Debian: apt-get install {missing}) or set "
            f"{ENV_BINARY} / {ENV_DRIVER} to the executables."
        )
    if importlib.util.find_spec("selenium") is None:
        raise ValueError("the page check needs Selenium: pip install 'tfcourse[browser]'.")


def _driver(binary: str, chromedriver: str, width: int, timeout: float):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise ValueError("the page check needs Selenium: pip install 'tfcourse[browser]'.") from None
    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, for get_log("browser")
    # Both paths given: Selenium Manager (which would go online to find a driver) is never asked.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(timeout)
    return driver


def check_page(path: str, screenshot: Optional[str] = None, width: int = 1200, timeout: float = 60.0) -> Dict[str, Any]:
    """Loads ``path`` in headless Chromium and inspects it.

    Args:
        path: An HTML file.
        screenshot: Write a full-page PNG here (written atomically).
        width: Viewport width in CSS pixels.
        timeout: Seconds the page may take to load.

    Returns:
        ``ok`` (bool), ``images`` and ``images_loaded`` (counts), ``broken`` (alt texts of images that
        did not load), ``errors`` (console errors and uncaught exceptions), ``problems`` (sentences)
        and ``title``.

    Raises:
        ValueError: If Chromium, chromedriver or Selenium is not installed, or the file does not exist.
    """
    require_available()
    if not os.path.isfile(path):
        raise ValueError(f"No such page: {path}.")
    driver = _driver(find_chromium(), find_chromedriver(), width, timeout)
    try:
        driver.get("file://" + os.path.abspath(path))
        images = driver.execute_script(_IMAGES_JS)
        title = driver.title
        if screenshot:
            size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
                },
            )
            write_bytes(screenshot, base64.b64decode(shot["data"]))
        # SEVERE: console.error, uncaught exceptions and resources that failed to load
        errors = [
            f"{entry.get('source', 'console')}: {entry['message']}"
            for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]
    finally:
        driver.quit()
    broken = [image["alt"] or "(no alt)" for image in images if not image["complete"] or image["width"] == 0]
    problems = [f"image not loaded: {alt}" for alt in broken] + errors
    if not images:
        problems.append("the page has no images")
    return {
        "ok": not problems,
        "images": len(images),
        "images_loaded": len(images) - len(broken),
        "broken": broken,
        "errors": errors,
        "problems": problems,
        "title": title,
    }


def require_clean_page(path: str, prefix: str, screenshot: Optional[str] = None) -> Dict[str, Any]:
    """``check_page`` for a CLI's ``--check``: prints one line (``prefix: Chromium: n/m images loaded, ...``)
    and raises ``ValueError`` naming the problems unless the page rendered cleanly."""
    result = check_page(path, screenshot=screenshot)
    print(
        f"{prefix}: Chromium: {result['images_loaded']}/{result['images']} images loaded, "
        f"{len(result['errors'])} console errors" + (f"; screenshot {screenshot}" if screenshot else ""),
        flush=True,
    )
    if not result["ok"]:
        raise ValueError("the page did not render cleanly: " + "; ".join(result["problems"]))
    return result
