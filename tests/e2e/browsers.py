"""Headless Chromium (Debian's chromium and chromedriver, WebGPU on) or Firefox ESR (Debian's
firefox-esr and geckodriver) over selenium, with one small API for both; shared by the
end-to-end sessions and the headless benchmark runners.

The drivers and browsers are named by path and SE_OFFLINE is set: Selenium Manager never
downloads anything.

Console messages and errors: in Chromium over WebDriver BiDi (log.entryAdded), which sees the page
and the workers it starts but not a worker's workers (the app's replica workers), CSP violations
or failed loads; so Chromium's own browser log (goog:loggingPrefs, which sees all of them) is read
as well. Not over BiDi in Firefox, though its BiDi sees all but failed loads: with a log.entryAdded
subscription, even one since removed, Firefox ESR 153 now and then never returns from `new Worker`
in a worker (the app's training worker starting a replica: 8 runs in about 180 here, none in
130 without one). Firefox prints the console messages of the page and of all its workers on its
stdout instead (devtools.console.stdout.content), with the page's uncaught errors (not a
worker's: the app hears those as the worker's error event), which geckodriver writes to a log read
here; a listener in the page adds its CSP violations after it loaded."""
import json, os, re, shutil, sys, tempfile, time

os.environ["SE_OFFLINE"] = "true"
try:
    import selenium  # noqa: F401
except ImportError:
    # Started with another python: run again with the one in .venv (scripts/setup.sh makes it).
    venv = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv"))
    if not os.path.exists(os.path.join(venv, "bin", "python")) or os.path.realpath(sys.prefix) == venv:
        sys.exit("selenium is missing: scripts/setup.sh installs it in .venv")
    os.execv(os.path.join(venv, "bin", "python"), [os.path.join(venv, "bin", "python"), *sys.argv])
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

BROWSERS = ("chromium", "firefox")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-webgpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1400,1000"]
WIDTH, HEIGHT = 1400, 1000
FIREFOX_PREFS = {"devtools.console.stdout.content": True, "devtools.console.stdout.chrome": False,
                 "browser.chrome.site_icons": False}  # no favicon requests (their loader logs errors)
LISTEN_CSP = """window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', e => cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI}`));"""
PROBE = ("probe: worker error", "probe: nested worker error")  # what `probe_worker_errors` logs


def errors(messages):
    """The errors and Rust panics among `messages` (level, text, source), but the probe's."""
    return [f"{text} ({source})" for level, text, source in messages
            if (level == "error" or "panicked" in text) and not any(mark in text for mark in PROBE)]


def geckodriver():
    found = shutil.which("geckodriver") or os.path.expanduser("~/.cargo/bin/geckodriver")
    if not os.path.isfile(found):
        sys.exit("geckodriver is missing: scripts/setup.sh installs it (cargo install geckodriver)")
    return found


class Browser:
    """One headless browser, `name` one of BROWSERS. Files the page downloads land in
    `downloads`. `on_timeout` runs before `until` gives up (the e2e sessions take a screenshot)."""

    def __init__(self, name="chromium", timeout=900, downloads=None):
        self.name, self.timeout = name, timeout
        self.on_timeout = lambda: None
        self.messages = []  # every console message and uncaught error: (level, text, source)
        self.seen = 0  # how many of them `console` has handed out
        if name == "chromium":
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for arg in CHROMIUM_ARGS:
                options.add_argument(arg)
            if downloads:
                options.add_experimental_option("prefs", {"download.default_directory": downloads})
            options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            options.enable_bidi = True
            self.driver = webdriver.Chrome(options, webdriver.ChromeService("/usr/bin/chromedriver"))
            if downloads:
                self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        elif name == "firefox":
            options = webdriver.FirefoxOptions()
            options.binary_location = "/usr/bin/firefox-esr"
            options.add_argument("-headless")
            for key, value in FIREFOX_PREFS.items():
                options.set_preference(key, value)
            if downloads:
                for key, value in {"browser.download.folderList": 2, "browser.download.dir": downloads,
                                   "browser.download.useDownloadDir": True, "browser.download.manager.showWhenStarting": False,
                                   "browser.download.alwaysOpenPanel": False}.items():
                    options.set_preference(key, value)
            self.log = tempfile.NamedTemporaryFile(prefix="geckodriver-", suffix=".log")
            self.read = 0  # how far `console` has read it
            self.driver = webdriver.Firefox(options, webdriver.FirefoxService(geckodriver(), log_output=self.log.name))
            self.driver.set_window_size(WIDTH, HEIGHT)
        else:
            raise ValueError(f"no browser {name!r}: one of {BROWSERS}")
        if name == "chromium":
            self.driver.script.add_console_handler(lambda m: self.messages.append((m.level, m.text or "", m.source)))
            self.driver.script.add_error_handler(lambda e: self.messages.append(("error", e.message or "", e.source)))

    def open(self, url):
        self.navigate(lambda: self.driver.get(url))

    def refresh(self):
        self.navigate(self.driver.refresh)

    def navigate(self, go):
        if self.name == "firefox":
            self.messages += self.csp_violations()
        go()
        if self.name == "firefox":
            self.js(LISTEN_CSP)

    def csp_violations(self):
        try:
            return [("error", f"CSP: {v}", "the page") for v in self.js("const v = window.cspViolations || []; window.cspViolations = []; return v")]
        except Exception:
            return []

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def until(self, what, predicate, timeout=None):
        end = time.time() + (timeout or self.timeout)
        while time.time() < end:
            value = predicate()
            if value:
                return value
            time.sleep(0.25)
        self.on_timeout()
        for level, text, source in self.console()[-40:]:
            print(f"  console {level}: {text[:300]} ({source})")
        sys.exit(f"FAIL: timed out waiting for {what}")

    def element(self, css):
        return self.until(css, lambda: self.driver.find_elements(By.CSS_SELECTOR, css))[0]

    def click_element(self, element):
        # Centred first: the sticky section bar must not be over it.
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def click(self, css):
        self.click_element(self.element(css))

    def click_text(self, text):
        literal = "concat('" + "', \"'\", '".join(text.split("'")) + "', '')"
        xpath = f"//button[normalize-space(.)={literal}]"
        self.click_element(self.until(text, lambda: self.driver.find_elements(By.XPATH, xpath))[0])

    def upload(self, css, files):
        self.element(css).send_keys("\n".join(files))

    def text(self):
        return self.js("return document.body.innerText")

    def keys(self, *keys):
        """Presses `keys` together (a chord such as Keys.CONTROL, "z") in the focused element."""
        chain = ActionChains(self.driver)
        for key in keys:
            chain.key_down(key)
        for key in reversed(keys):
            chain.key_up(key)
        chain.perform()

    def draw(self, element, strokes, pointer="mouse", extent=280):
        """Draws `strokes`, each a list of (x, y) in an extent×extent frame laid over `element`,
        with a `pointer`: mouse, touch or pen (Pointer Events), 30 ms a segment."""
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        # Two frames for the scroll to settle: Firefox places the first move of a chain after a
        # scroll a fraction of a pixel off otherwise.
        self.driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")
        width, height = self.js("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", element)
        chain = ActionChains(self.driver, duration=30, devices=[PointerInput(pointer, pointer)])
        at = lambda x, y: (int((x - extent / 2) * width / extent), int((y - extent / 2) * height / extent))
        for stroke in strokes:
            chain.move_to_element_with_offset(element, *at(*stroke[0])).click_and_hold()
            for point in stroke[1:]:
                chain.move_to_element_with_offset(element, *at(*point))
            chain.release()
        chain.perform()

    def screenshot(self, path, css=None, detail=None):
        """A screenshot of the whole page in `path`, and of the element `css` in `detail`."""
        # A window as tall as the page: element screenshots are clipped to the window.
        height = self.js("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        self.driver.set_window_size(WIDTH, int(height) + 100)
        try:
            if css:
                self.element(css).screenshot(detail)
            self.driver.save_screenshot(path)
        finally:
            self.driver.set_window_size(WIDTH, HEIGHT)

    def console(self):
        """The console messages and uncaught errors since the last call: (level, text, source)."""
        if self.name == "firefox":
            self.messages += self.csp_violations() + self.firefox_stdout()
        new, self.seen = self.messages[self.seen:], len(self.messages)
        if self.name == "chromium":
            # With what BiDi missed, what it saw comes again here, as "URL LINE:COLUMN \"text\"".
            new += [("error" if entry["level"] == "SEVERE" else entry["level"].lower(), entry["message"], "chromium's log")
                    for entry in self.driver.get_log("browser")]
        return new

    def firefox_stdout(self):
        """The page's console messages and uncaught errors that Firefox printed since the last
        call: `console.error: "text" ({a:1})` (the arguments as source), and `JavaScript error:
        URL, line N: message` (only the page's; Firefox's own code's are there too)."""
        with open(self.log.name, "rb") as f:
            f.seek(self.read)
            lines = f.read()
        lines = lines[: lines.rfind(b"\n") + 1]
        self.read += len(lines)
        found = []
        for line in lines.decode(errors="replace").splitlines():
            if m := re.match(r"console\.(\w+): (.*)", line):
                if re.match(r"[A-Za-z][\w.-]*: ", m[2]):
                    continue  # "Prefix: …": a console of Firefox's own code
                level = {"log": "info", "warning": "warn"}.get(m[1], m[1])
                try:
                    text = json.loads(m[2])  # one string
                except ValueError:
                    text = m[2]
                found.append((level, text if isinstance(text, str) else m[2], "firefox's stdout"))
            elif m := re.match(r"JavaScript error: ((?:https?|blob):[^,]*), line \d+: (.*)", line):
                found.append(("error", m[2], m[1]))
        return found

    def console_errors(self):
        """The errors and Rust panics among the console messages since the last call."""
        return errors(self.console())

    def probe_worker_errors(self):
        """Has a worker and a worker's worker (blob: workers, as the app's) log an error, and waits
        until `console_errors` has both: what the page's workers log is seen too. Returns the
        other errors seen meanwhile."""
        # Module workers on blob: URLs made where they start, as the app's; each logs its error
        # when told to, once both are up.
        worker = lambda source: ("new Worker(URL.createObjectURL(new Blob([%s], {type: 'text/javascript'})), {type: 'module'})"
                                 % json.dumps(source))
        inner = worker(f"onmessage = () => console.error({json.dumps(PROBE[1])}); postMessage('up')")
        outer = worker(f"self.inner = {inner}; inner.onmessage = () => postMessage('up');"
                       f"onmessage = () => {{ console.error({json.dumps(PROBE[0])}); inner.postMessage(0) }}")
        self.js(f"window.probeWorker = {outer}; probeWorker.onmessage = () => window.probeUp = true")
        self.until("the probe's workers", lambda: self.js("return !!window.probeUp"), 30)
        self.js("window.probeWorker.postMessage(0)")
        seen = []
        self.until("the errors logged by a worker and a worker's worker",
                   lambda: seen.extend(self.console()) or all(any(mark in text for _, text, _ in seen) for mark in PROBE), 30)
        self.js("window.probeWorker.terminate()")
        return errors(seen)

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass
        if self.name == "firefox":
            self.log.close()
