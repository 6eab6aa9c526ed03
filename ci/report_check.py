#!/usr/bin/env python3
"""Open deploy.py's report page in a real headless Chromium (Debian's, driven by Playwright
with executable_path; run with .tools/playwright/bin/python), as a person would open the file:

    python ci/report_check.py --page build/local-dev/report.html --screenshot build/report/report.png

Prints one JSON line with what the page shows: the stacks of the graph (and their waves),
the edges, the timeline's resources per stack, the findings, every request the page made
besides its own file (it must make none: the page is self-contained), and console errors.
Exit 0 when the page rendered (its graph and timeline are there) and made no request."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headless import check, screenshot


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", required=True, help="the report's HTML file")
    parser.add_argument("--screenshot", help="where to save a PNG of the whole page")
    parser.add_argument("--timeout", type=float, default=30, help="seconds for each step")
    args = parser.parse_args(argv)

    url = Path(args.page).resolve().as_uri()
    result = {"url": url, "requests": [], "console_errors": []}

    def steps(page) -> bool:
        page.on("request", lambda request: request.url != url and result["requests"].append(request.url))
        page.on("console", lambda message: message.type == "error" and result["console_errors"].append(message.text))
        page.goto(url, wait_until="load")
        page.wait_for_selector("#graph g.stack")
        result["title"] = page.title()
        result["graph"] = page.eval_on_selector_all(
            "#graph g.stack", "gs => gs.map(g => ({stack: g.dataset.stack, wave: +g.dataset.wave, "
            "visible: g.getBoundingClientRect().width > 0}))")
        result["edges"] = page.eval_on_selector_all("#graph path.edge", "ps => ps.map(p => [p.dataset.from, p.dataset.to])")
        result["timeline"] = page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('[data-timeline-stack]')].map(s => "
            "[s.dataset.timelineStack, [...s.querySelectorAll('[data-timeline-resource]')].map(r => r.dataset.timelineResource)]))")
        result["bars_drawn"] = page.eval_on_selector_all(
            "[data-timeline-resource] .bar", "bs => bs.filter(b => b.getBoundingClientRect().width > 0).length")
        result["findings"] = page.eval_on_selector_all("li.finding", "ls => ls.map(l => l.dataset.kind)")
        screenshot(page, args.screenshot, result)
        return bool(result["graph"]) and all(g["visible"] for g in result["graph"]) and not result["requests"]

    return check(result, steps, viewport={"width": 1400, "height": 900}, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
