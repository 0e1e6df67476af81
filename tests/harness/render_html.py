#!/usr/bin/env python3
"""tests/harness/render_html.py: render a local HTML file in headless Chromium and check it.

Drives Debian's chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
JSON messages separated by NUL on fds 3 and 4), so no WebDriver, no websocket library and
no network port are needed. It

  - loads file://PAGE and waits for the load event,
  - collects every console message, uncaught exception and browser log entry (a
    Content-Security-Policy violation, a resource that failed to load...),
  - records every request the page makes other than the page itself (a self-contained
    page makes none),
  - evaluates a DOM check: the sections named with --section exist and have content,
    the SVG charts named with --chart draw something, and there is no <script>, no
    on* event attribute and no javascript: URL anywhere,
  - takes a full-page PNG screenshot (--screenshot FILE).

Prints one JSON object (the findings) on stdout. Exit 0 when the page is clean: no
console message of level error or warning, no exception, no log entry of level error or
warning, no request, every section and chart present, none of the forbidden elements.
Exit 1 otherwise (the reasons on stderr), 77 when chromium is missing, 2 on a harness
failure (chromium did not start or answer in time).

Chromium flags: the ones this machine needs (no sandbox as root, no GPU, and no
background networking, which this machine's closed network refuses), plus a throwaway
profile directory.
"""
import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]

DOM_CHECK = r"""
(function (sections, charts) {
  const out = {sections: {}, charts: {}, scripts: 0, handlers: [], js_urls: 0,
               external: [], title: document.title, text_len: document.body ?
               document.body.innerText.length : 0};
  for (const id of sections) {
    const el = document.getElementById(id);
    out.sections[id] = el ? {present: true, text: el.innerText.trim().length,
                             heading: (el.querySelector('h2') || {}).textContent || ''}
                          : {present: false};
  }
  for (const id of charts) {
    const el = document.getElementById(id);
    if (!el || el.namespaceURI !== 'http://www.w3.org/2000/svg') {
      out.charts[id] = {present: false};
      continue;
    }
    const box = el.getBoundingClientRect();
    out.charts[id] = {present: true, width: box.width, height: box.height,
                      marks: el.querySelectorAll('rect,polyline,circle').length};
  }
  out.scripts = document.querySelectorAll('script').length;
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (/^on/i.test(a.name)) out.handlers.push(el.tagName + '@' + a.name);
      if (/^\s*javascript:/i.test(a.value)) out.js_urls++;
    }
  }
  for (const el of document.querySelectorAll('[src],[href],link,iframe,object,embed')) {
    const v = el.getAttribute('src') || el.getAttribute('href') || '';
    if (v && !v.startsWith('#') && !v.startsWith('data:')) out.external.push(el.tagName + ' ' + v);
  }
  return JSON.stringify(out);
})(%s, %s)
"""


class Browser:
    def __init__(self, chromium, profile, deadline):
        self.deadline = deadline
        self.seq = 0
        self.events = []
        self.buf = b""
        to_child_r, self.to_child_w = os.pipe()
        self.from_child_r, from_child_w = os.pipe()
        # The child reads commands on fd 3 and writes answers on fd 4.
        def preexec():
            # Through fresh descriptors: a pipe end that already is 3 or 4 would keep its
            # close-on-exec flag (dup2 onto itself changes nothing).
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [chromium] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(profile, "chromium.stderr"), "wb"),
            # close_fds would close 3 and 4 again after preexec: keep them; our own ends
            # are close-on-exec (os.pipe), so only the two pipe ends reach chromium.
            preexec_fn=preexec, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)

    def send(self, method, params=None, session=None):
        self.seq += 1
        msg = {"id": self.seq, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child_w, json.dumps(msg).encode() + b"\0")
        return self.seq

    def _read_one(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            r, _, _ = select.select([self.from_child_r], [], [], left)
            if not r:
                continue
            chunk = os.read(self.from_child_r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None):
        want = self.send(method, params, session)
        while True:
            msg = self._read_one()
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session):
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and ev.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            msg = self._read_one()
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
            if "method" in msg:
                self.events.append(msg)

    def drain(self, seconds):
        """Collects events for a little while (late console messages, layout)."""
        end = min(time.monotonic() + seconds, self.deadline)
        while time.monotonic() < end:
            r, _, _ = select.select([self.from_child_r], [], [], end - time.monotonic())
            if not r:
                break
            chunk = os.read(self.from_child_r, 1 << 20)
            if not chunk:
                break
            self.buf += chunk
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)

    def close(self):
        try:
            self.send("Browser.close")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page")
    ap.add_argument("--section", action="append", default=[])
    ap.add_argument("--chart", action="append", default=[])
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    args = ap.parse_args()

    chromium = shutil.which(args.chromium)
    if chromium is None:
        sys.stderr.write("render_html: %s not found (Debian package chromium)\n" % args.chromium)
        return 77
    page = os.path.abspath(args.page)
    url = "file://" + page
    profile = tempfile.mkdtemp(prefix="dm-chromium.")
    findings = {"url": url, "console": [], "exceptions": [], "log": [], "requests": [],
                "dom": None, "screenshot": None}
    problems = []
    b = Browser(chromium, profile, time.monotonic() + args.timeout)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sess = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(domain + ".enable", session=sess)
        b.call("Emulation.setDeviceMetricsOverride", {"width": args.width, "height": 900,
               "deviceScaleFactor": 1, "mobile": False}, session=sess)
        nav = b.call("Page.navigate", {"url": url}, session=sess)
        if nav.get("errorText"):
            problems.append("navigation failed: " + nav["errorText"])
        b.wait_event("Page.loadEventFired", sess)
        b.drain(0.5)
        dom = b.call("Runtime.evaluate", {"expression": DOM_CHECK % (
            json.dumps(args.section), json.dumps(args.chart)), "returnByValue": True},
            session=sess)
        if "exceptionDetails" in dom:
            problems.append("the DOM check threw: %s" % dom["exceptionDetails"])
        else:
            findings["dom"] = json.loads(dom["result"]["value"])
        if args.screenshot:
            m = b.call("Page.getLayoutMetrics", session=sess)
            size = m.get("cssContentSize") or m["contentSize"]
            w, h = int(size["width"]), min(int(size["height"]), 16000)
            b.call("Emulation.setDeviceMetricsOverride", {"width": max(w, args.width),
                   "height": h, "deviceScaleFactor": 1, "mobile": False}, session=sess)
            shot = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport":
                          True}, session=sess)
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            findings["screenshot"] = {"path": args.screenshot, "width": max(w, args.width),
                                      "height": h}
        b.drain(0.3)
    except (TimeoutError, EOFError, RuntimeError, OSError, KeyError) as e:
        sys.stderr.write("render_html: %s\n" % e)
        try:
            sys.stderr.write(open(os.path.join(profile, "chromium.stderr")).read()[-3000:])
        except OSError:
            pass
        b.close()
        shutil.rmtree(profile, ignore_errors=True)
        return 2
    b.close()
    shutil.rmtree(profile, ignore_errors=True)

    for ev in b.events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            findings["console"].append({"type": p.get("type"), "text": text})
            if p.get("type") in ("error", "warning", "assert"):
                problems.append("console %s: %s" % (p.get("type"), text))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            findings["exceptions"].append(d.get("text", ""))
            problems.append("uncaught exception: %s" % d.get("text", ""))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            findings["log"].append({"level": e.get("level"), "source": e.get("source"),
                                    "text": e.get("text"), "url": e.get("url")})
            if e.get("level") in ("error", "warning"):
                problems.append("log %s (%s): %s" % (e.get("level"), e.get("source"), e.get("text")))
        elif m == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if u != url and not u.startswith("data:"):
                findings["requests"].append(u)
                problems.append("the page requested %s" % u)

    dom = findings["dom"] or {}
    for sid in args.section:
        s = dom.get("sections", {}).get(sid, {})
        if not s.get("present"):
            problems.append("section #%s is missing" % sid)
        elif s.get("text", 0) < 20:
            problems.append("section #%s is empty" % sid)
    for cid in args.chart:
        c = dom.get("charts", {}).get(cid, {})
        if not c.get("present"):
            problems.append("chart #%s is missing (or not SVG)" % cid)
        elif c.get("marks", 0) == 0 or c.get("width", 0) < 100 or c.get("height", 0) < 50:
            problems.append("chart #%s draws nothing: %s" % (cid, c))
    if dom.get("scripts"):
        problems.append("%d <script> elements" % dom["scripts"])
    if dom.get("handlers"):
        problems.append("event handler attributes: %s" % dom["handlers"][:5])
    if dom.get("js_urls"):
        problems.append("%d javascript: URLs" % dom["js_urls"])
    if dom.get("external"):
        problems.append("references outside the page: %s" % dom["external"][:5])
    findings["problems"] = problems
    json.dump(findings, sys.stdout, indent=1)
    sys.stdout.write("\n")
    for p in problems:
        sys.stderr.write("render_html: %s\n" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
