"""What the two browser checks share (ci/browser_check.py, ci/report_check.py; both run
with .tools/playwright/bin/python): Debian's Chromium, headless, driven by Playwright
with executable_path (Playwright's own browser download cannot be used here), one page,
every step bounded, one JSON line of what the page showed, exit 0 or 1."""
from __future__ import annotations

import json
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def check(result: dict, steps, viewport: dict, timeout: float, launch_args=()) -> int:
    """Open a page and run `steps(page) -> ok`, which fills `result`; a Playwright error
    is a failure with its first line. Prints `result` as one JSON line; the exit status."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(launch_args))
        try:
            page = browser.new_page(viewport=viewport)
            page.set_default_timeout(timeout * 1000)
            ok = steps(page)
        except Error as exc:
            result["failure"] = str(exc).splitlines()[0]
            ok = False
        finally:
            browser.close()
    print(json.dumps(result))
    return 0 if ok else 1


def screenshot(page, path: str | None, result: dict) -> None:
    """A PNG of the whole page at `path` (if given), named in `result`."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True)
        result["screenshot"] = path
