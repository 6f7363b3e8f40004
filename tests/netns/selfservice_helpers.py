"""Processes for tests/netns/test_selfservice.py, run inside network namespaces.

``python selfservice_helpers.py browser OUTDIR``
    Headless Chromium (Debian's, via Playwright) driven by JSON lines on stdin:
    ``{"op": "goto", "url": U}``, ``{"op": "click", "selector": S, "double": bool}``
    (waits for the page after the POST; ``double`` first submits the same form twice
    more at once), ``{"op": "wait", "selector": S}``; each answer
    is one JSON line ``{"ok", "url", "text", "error"}``; ``"shot": NAME`` saves a
    screenshot OUTDIR/NAME.png.
``python selfservice_helpers.py webhook PORT SECRET_FILE MODE_FILE``
    A billing's webhook on 127.0.0.1:PORT that checks X-Debtgate-Signature and answers
    as MODE_FILE says: ``refuse`` (ok false, reason tariff), ``error`` (HTTP 500),
    ``slow`` (no answer for 5 s), anything else ok true. Requests are appended as JSON
    lines to MODE_FILE + ".log".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

DOUBLE_SUBMIT = """(sel) => { const f = document.querySelector(sel).form;
  const post = () => fetch(f.action, {method: "POST", redirect: "manual",
                                      body: new URLSearchParams(new FormData(f))});
  return Promise.all([post(), post()]).then(rs => rs.map(r => r.type)); }"""


def _wait_done(page: Any) -> None:
    """Wait for the page after the POST (a double click aborts the first navigation)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            page.wait_for_url(re.compile("done="), wait_until="load", timeout=5000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            page.wait_for_timeout(100)


def browser(outdir: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = chromium.new_page(viewport={"width": 390, "height": 844})
        print(json.dumps({"ok": True, "ready": True}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            out: dict[str, object] = {"ok": True}
            try:
                if cmd["op"] == "goto":
                    page.goto(cmd["url"], wait_until="load", timeout=10000)
                elif cmd["op"] == "click":
                    if cmd.get("double"):
                        # Two more submissions of the same form at once, then the click:
                        # what an impatient double (triple) click sends.
                        out["extra"] = page.evaluate(DOUBLE_SUBMIT, cmd["selector"])
                    page.click(cmd["selector"])
                    _wait_done(page)
                elif cmd["op"] == "wait":
                    page.wait_for_selector(cmd["selector"], state="visible", timeout=10000)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                out = {"ok": False, "error": str(exc)[:500]}
            try:
                out["url"] = page.url
                out["text"] = page.inner_text("body").replace("\u00a0", " ")
                if cmd.get("shot"):
                    page.screenshot(path=f"{outdir}/{cmd['shot']}.png", full_page=True)
            except Exception as exc:  # noqa: BLE001
                out["text"] = f"(page unreadable: {exc})"
            print(json.dumps(out), flush=True)
        chromium.close()


def webhook(port: int, secret_file: str, mode_file: str) -> None:
    from aiohttp import web

    secret = Path(secret_file).read_bytes().strip()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Debtgate-Signature", ""), want):
            return web.json_response({"error": "bad signature"}, status=401)
        mode = Path(mode_file).read_text().strip()
        with open(mode_file + ".log", "a") as log:
            log.write(json.dumps({"mode": mode, **json.loads(body)}) + "\n")
        if mode == "slow":
            await asyncio.sleep(5)
        if mode == "error":
            return web.Response(status=500, text="internal error")
        if mode == "refuse":
            return web.json_response({"ok": False, "reason": "tariff"})
        return web.json_response({"ok": True, "reason": None})

    app = web.Application()
    app.router.add_post("/hook", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    if sys.argv[1] == "browser":
        browser(sys.argv[2])
    else:
        webhook(int(sys.argv[2]), sys.argv[3], sys.argv[4])
