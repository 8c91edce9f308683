#!/usr/bin/env python3
"""Drive headless Chromium over the DevTools protocol through the command centre.

Usage: browser-test.py BASE_URL CDP_PORT ARTEFACT_DIR USER PASSWORD DISTRICT COMMUNE OTHER_COMMUNE

Signs in, drills down province -> district -> commune -> officer, switches to English,
downloads the daily XLSX, checks that another commune is refused for a commune lead, and keeps a
screenshot of each step in ARTEFACT_DIR. Prints `browser: N passed, N failed, N skipped`.
Needs the `websocket-client` package (scripts/test-browser.sh installs it).
"""

import base64
import json
import os
import sys
import time
import urllib.request

import websocket

BASE, PORT, ART, USER, PASSWORD, DISTRICT, COMMUNE, OTHER = sys.argv[1:9]
LEAD = os.environ.get("LEAD_USER", "")
os.makedirs(ART, exist_ok=True)
DOWNLOADS = os.path.join(ART, "downloads")
os.makedirs(DOWNLOADS, exist_ok=True)


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"js failed: {expr}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def wait_for(self, expr, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if self.js(expr):
                    return True
            except RuntimeError:
                pass
            time.sleep(0.1)
        return False

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def click_and_wait(self, selector):
        before = self.js("location.href")
        ok = self.js(f"(function(){{var e=document.querySelector({json.dumps(selector)});"
                     f"if(!e)return false;e.click();return true;}})()")
        if not ok:
            raise RuntimeError(f"no element {selector}")
        self.wait_for(f"location.href !== {json.dumps(before)} && document.readyState === 'complete'")

    def shot(self, name):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(ART, f"{name}.png"), "wb") as f:
            f.write(base64.b64decode(data))


def page_target():
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json/list") as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("no DevTools page target")


passed = failed = 0
p = Page(page_target())
p.call("Page.enable")
p.call("Runtime.enable")
p.call("Emulation.setDeviceMetricsOverride", width=412, height=900, deviceScaleFactor=1, mobile=True)
try:
    p.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=os.path.abspath(DOWNLOADS))
except RuntimeError:
    p.call("Page.setDownloadBehavior", behavior="allow", downloadPath=os.path.abspath(DOWNLOADS))


def step(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - every failure is reported and counted
        failed += 1
        print(f"FAIL {name}: {e}")
    try:
        p.shot(f"{passed + failed:02d}-{name}")
    except Exception as e:  # noqa: BLE001
        print(f"     (no screenshot: {e})")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def unsigned_redirects():
    p.goto(f"{BASE}/dash")
    check(p.js("location.pathname") == "/signin", "unsigned /dash goes to /signin")


def sign_in(user):
    def run():
        p.goto(f"{BASE}/signin")
        p.js(f"document.getElementById('name').value={json.dumps(user)};"
             f"document.getElementById('password').value={json.dumps(PASSWORD)};")
        p.click_and_wait("#signin")
        check(p.js("location.pathname") == "/dash", f"after sign-in at {p.js('location.href')}")
        check(p.js("!!document.getElementById('kpi-accounts')"), "KPIs shown")
        check(p.js("!!document.getElementById('trend')"), "trend chart shown")
    return run


def province_page():
    check("(Tỉnh)" in p.js("document.getElementById('unit-title').textContent"), "province title")
    check(p.js("document.documentElement.lang") == "vi", "Vietnamese by default")


def to_district():
    p.click_and_wait(f"#children a[href*='unit={DISTRICT}&']")
    check(p.js("new URL(location.href).searchParams.get('unit')") == DISTRICT, "district page")
    check(p.js("document.querySelectorAll('#children tr').length") > 1, "communes listed")


def to_commune():
    p.click_and_wait(f"#children a[href*='unit={COMMUNE}&']")
    check(p.js("new URL(location.href).searchParams.get('unit')") == COMMUNE, "commune page")
    check(p.js("!!document.querySelector('#officers a')"), "officers listed")


def to_officer():
    p.click_and_wait("#officers a")
    check(p.js("location.pathname").startswith("/dash/officer/"), "officer page")
    check(p.js("!!document.getElementById('officer-title')"), "officer title")


def english():
    p.click_and_wait("#lang-en")
    check(p.js("document.documentElement.lang") == "en", "lang=en")
    check("Officer" in p.js("document.getElementById('officer-title').textContent"), "English title")
    # The choice sticks (cookie) on the next page.
    p.goto(f"{BASE}/dash?unit={COMMUNE}")
    check(p.js("document.documentElement.lang") == "en", "language kept by cookie")


def download_xlsx():
    for f in os.listdir(DOWNLOADS):
        os.remove(os.path.join(DOWNLOADS, f))
    p.js("document.getElementById('dl-daily-xlsx').click()")
    end = time.time() + 20
    found = None
    while time.time() < end and not found:
        done = [f for f in os.listdir(DOWNLOADS) if f.endswith(".xlsx")]
        if done:
            found = os.path.join(DOWNLOADS, done[0])
        time.sleep(0.2)
    check(found is not None, "an .xlsx was downloaded")
    with open(found, "rb") as f:
        check(f.read(2) == b"PK", "the download is an XLSX (zip) file")
    check(COMMUNE in os.path.basename(found), f"file named for the commune: {found}")


def other_commune_refused():
    if not LEAD:
        raise AssertionError("LEAD_USER not set")
    p.call("Network.enable")
    p.call("Network.clearBrowserCookies")
    sign_in(LEAD)()
    p.goto(f"{BASE}/dash?unit={OTHER}")
    check("403" in p.js("document.body.textContent"), "a commune lead cannot open another commune")


step("unsigned-redirects", unsigned_redirects)
step("sign-in", sign_in(USER))
step("province", province_page)
step("district", to_district)
step("commune", to_commune)
step("officer", to_officer)
step("english", english)
step("download-xlsx", download_xlsx)
step("other-commune-403", other_commune_refused)
print(f"browser: {passed} passed, {failed} failed, 0 skipped")
sys.exit(1 if failed else 0)
