"""Headless Chromium (Debian's) driven by Playwright, run inside a subscriber namespace.

python browser_probe.py URL OUTDIR NAME LANG  -> prints JSON facts read from the DOM and
saves phone and desktop screenshots as OUTDIR/NAME-{phone,desktop}.png
"""

from __future__ import annotations

import json
import sys

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = {"phone": (390, 844), "desktop": (1366, 900)}

VISIBLE = """(sel) => { const e = document.querySelector(sel); if (!e) return false;
  const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
         && r.top < document.documentElement.scrollHeight; }"""


def main() -> None:
    url, outdir, name, lang = sys.argv[1:5]
    facts: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for size, (width, height) in SIZES.items():
            page = browser.new_page(viewport={"width": width, "height": height},
                                    locale="ru-RU" if lang == "ru" else "en-US")
            page.goto(url, wait_until="load")
            if page.get_attribute("html", "lang") != lang:
                # The visible language switch, as a subscriber would use it.
                page.click(f"a[hreflang={lang}]")
                page.wait_for_load_state("load")
            text = page.inner_text("body").replace("\u00a0", " ").replace("\u202f", " ")
            facts[size] = {
                "url": page.url,
                "lang": page.get_attribute("html", "lang"),
                "text": text,
                "qr_visible": page.evaluate(VISIBLE, "svg"),
                "pay_visible": page.evaluate(VISIBLE, "a.btn, button.btn"),
                "h1_visible": page.evaluate(VISIBLE, "h1"),
                "overflow_x": page.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth + 1"),
            }
            page.screenshot(path=f"{outdir}/{name}-{lang}-{size}.png", full_page=True)
            page.close()
        browser.close()
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
