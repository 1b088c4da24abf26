"""Look at a built gallery as a person would: headless Chromium (Debian's package, `make browser`) over file://.

`python -m benchmarks.gallery_browser SITE OUT_PREFIX` writes OUT_PREFIX_index.png, _class.png and
_image.png (the README's screenshots); tests/pipeline/inspect/gallery/test_gallery.py drives the same browser through
`open_browser`. Playwright talks to the system Chromium over the DevTools protocol and downloads nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Flags that work in this project's containers (no sandbox as root, no network chatter)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}


@contextlib.contextmanager
def open_browser(viewport: dict = VIEWPORT):
    """A fresh headless Chromium page (its own profile folder); the page's errors are collected in page.errors."""
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport=viewport)
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
            yield page
        finally:
            browser.close()


def _drawn(page) -> None:
    page.wait_for_function("document.body.dataset.ready === '1' || document.getElementById('status').textContent !== ''")
    page.wait_for_load_state("load")  # every lazy thumbnail in view loaded


def visit(page, url: str) -> None:
    """Open `url` and wait until the page script has drawn it (or said why not)."""
    page.goto(url)
    _drawn(page)


def follow(page, selector: str) -> None:
    """Click the first element matching `selector` (a link or a sort button) and wait for the page it opens."""
    with page.expect_navigation():
        page.locator(selector).first.click()
    _drawn(page)


def screenshots(site: Path, prefix: Path) -> list[Path]:
    """The index sorted by mean weight (lowest first), the lowest class's page, and its worst image's page."""
    site = site.resolve()
    classes = json.loads((site / "data" / "classes.js").read_text().split(", ", 1)[1].rsplit(");", 1)[0])
    worst = min((c for c in classes if c["weight"] is not None), key=lambda c: c["weight"])
    written = []
    with open_browser() as page:
        for name, url in (("index", "index.html?view=all&sort=weight&dir=asc"),
                          ("class", f"index.html?view=class{worst['id']}&sort=weight"), ("image", None)):
            if url is None:  # the class page's first card: its lowest-weight image
                follow(page, "#grid a.card")
            else:
                visit(page, site.as_uri() + "/" + url)
            path = prefix.with_name(f"{prefix.name}_{name}.png")
            page.screenshot(path=str(path), full_page=name != "index")
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("site", type=Path)
    parser.add_argument("prefix", type=Path, help="e.g. docs/img/gallery_sample")
    args = parser.parse_args()
    for path in screenshots(args.site, args.prefix):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
