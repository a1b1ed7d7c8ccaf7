"""A small WebDriver client for Debian's chromium and chromedriver (no Python packages, no
downloaded browser), shared by the end-to-end test and the headless benchmark runner."""
import json, socket, subprocess, sys, time, urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-webgpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1400,1000"]


class Browser:
    """One headless Chromium with WebGPU, driven over chromedriver. `on_timeout` runs before
    `until` gives up (the e2e test takes a screenshot there)."""

    def __init__(self, timeout=900, downloads=None):
        self.timeout = timeout
        self.on_timeout = lambda: None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sid = None
        for _ in range(100):
            try:
                self.req("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        options = {"binary": "/usr/bin/chromium", "args": CHROMIUM_ARGS}
        if downloads:
            options["prefs"] = {"download.default_directory": downloads}
        caps = {"capabilities": {"alwaysMatch": {"goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": options}}}
        self.sid = self.req("POST", "/session", caps)["sessionId"]
        if downloads:
            self.cdp("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(r, timeout=self.timeout).read())["value"]

    def session(self, method, path, body=None):
        return self.req(method, f"/session/{self.sid}{path}", body)

    def js(self, script, *args):
        return self.session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def cdp(self, cmd, params=None):
        return self.session("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def open(self, url):
        self.session("POST", "/url", {"url": url})

    def until(self, what, predicate, timeout=None):
        end = time.time() + (timeout or self.timeout)
        while time.time() < end:
            value = predicate()
            if value:
                return value
            time.sleep(0.25)
        self.on_timeout()
        sys.exit(f"FAIL: timed out waiting for {what}")

    def element(self, css):
        found = self.until(css, lambda: self.session("POST", "/elements", {"using": "css selector", "value": css}))
        return found[0][ELEMENT]

    def click_element(self, id):
        # Centred first: the sticky section bar must not be over it.
        self.js("arguments[0].scrollIntoView({block: 'center'})", {ELEMENT: id})
        self.session("POST", f"/element/{id}/click", {})

    def click(self, css):
        self.click_element(self.element(css))

    def click_text(self, text):
        xpath = f"//button[normalize-space(.)={json.dumps(text)}]"
        found = self.until(text, lambda: self.session("POST", "/elements", {"using": "xpath", "value": xpath}))
        self.click_element(found[0][ELEMENT])

    def upload(self, css, files):
        self.session("POST", f"/element/{self.element(css)}/value", {"text": "\n".join(files)})

    def text(self):
        return self.js("return document.body.innerText")

    def console(self):
        """The console messages since the last call."""
        return self.session("POST", "/se/log", {"type": "browser"})

    def quit(self):
        if self.sid:
            try:
                self.session("DELETE", "")
            except Exception:
                pass
        self.driver.terminate()
        self.driver.wait()
