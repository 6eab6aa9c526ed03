#!/usr/bin/env python3
"""Use the frontend as a person would, in a real headless Chromium (Debian's, driven by
Playwright with executable_path; run with .tools/playwright/bin/python):

    python ci/browser_check.py --url http://localhost:5173/ --screenshot build/browser/upload.png
    python ci/browser_check.py --url http://localhost:5999/ --expect-refused

Starts a session, chooses a file, uploads it through its presigned URL (the progress
bar must reach 100), waits until the session's list shows it, and saves a screenshot.
Prints one JSON line with what the page showed. With --expect-refused the page is on
an origin the CORS rules do not allow: it must fail to start a session. Exit 0 when
the page did what was expected."""
from __future__ import annotations

import argparse
import sys

from headless import check, screenshot

PHOTO = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"browser upload " * 64 + bytes.fromhex("ffd9")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--screenshot", help="where to save a PNG of the page after the upload")
    parser.add_argument("--expect-refused", action="store_true", help="the page's origin is not allowed: starting must fail")
    parser.add_argument("--timeout", type=float, default=30, help="seconds for each step")
    args = parser.parse_args(argv)

    result = {"url": args.url}

    def steps(page) -> bool:
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(args.url)
        result["version"] = page.inner_text("#version")
        page.click("#start")
        if args.expect_refused:
            page.wait_for_selector("#error:not([hidden])")
            result.update(error=page.inner_text("#error"), console=console[-3:])
            return "Could not start a session" in result["error"]
        page.wait_for_function("document.getElementById('session').textContent.startsWith('Session ')")
        result["session"] = page.inner_text("#session").removeprefix("Session ")
        page.set_input_files("#file", files=[{"name": "browser-photo.jpg", "mimeType": "image/jpeg", "buffer": PHOTO}])
        page.click("#upload")
        page.wait_for_selector("#uploads li[data-key$='/browser-photo.jpg'], #error:not([hidden])")
        result.update(progress=page.eval_on_selector("#progress", "p => p.value"),
                      status=page.inner_text("#upload-status"),
                      uploads=page.eval_on_selector_all("#uploads li[data-key]", "items => items.map(i => i.dataset.key)"),
                      error=page.inner_text("#error") if page.is_visible("#error") else "", size=len(PHOTO))
        screenshot(page, args.screenshot, result)
        ok = (not result["error"] and result["progress"] == 100
              and result["uploads"] == [f"sessions/{result['session']}/browser-photo.jpg"])
        if not ok:
            result["console"] = console[-5:]
        return ok

    # localhost is resolved to 127.0.0.1, where the server listens (not ::1).
    return check(result, steps, viewport={"width": 900, "height": 800}, timeout=args.timeout,
                 launch_args=["--host-resolver-rules=MAP localhost 127.0.0.1"])


if __name__ == "__main__":
    sys.exit(main())
