"""What the end-to-end sessions read and do in the app's page, in either browser (browsers.py)."""
import glob, os, sys, urllib.parse


def output_folder(path):
    """Makes `path` (screenshots) and its `downloads/` ready for a session, emptied of the last
    one's files; returns both, absolute."""
    out = os.path.abspath(path)
    downloads = os.path.join(out, "downloads")
    os.makedirs(downloads, exist_ok=True)
    for old in glob.glob(os.path.join(downloads, "*")) + glob.glob(os.path.join(out, "*.png")):
        os.remove(old)
    return out, downloads


class App:
    """The page in `browser`; screenshots of the stages go to `out`, numbered."""

    def __init__(self, browser, out):
        self.browser, self.out, self.stage = browser, out, 0
        self.js, self.text = browser.js, browser.text

    def shot(self, name, css=None):
        """A full-page screenshot, and one of the element `css` when given."""
        self.stage += 1
        path = os.path.join(self.out, f"{self.stage:02}-{name}.png")
        self.browser.screenshot(path, css, os.path.join(self.out, f"{self.stage:02}-{name}-detail.png"))
        print(f"  screenshot {path}")

    def backend(self):
        return self.js("return document.querySelector('[data-backend]').innerText")

    def prediction(self):
        """The highlighted class, its probability and the time taken, once the bars are shown."""
        return self.js("""const best = document.querySelector('.probabilities li.best');
            return best && [best.querySelector('.class-name').innerText, best.querySelector('.class-value').innerText,
                            document.querySelector('.inference-time').innerText]""")

    def model_line(self):
        return self.js("const m = document.querySelector('.model-info'); return m && m.innerText")

    def phase(self):
        return self.js("const s = document.querySelector('.run-status'); return s && s.dataset.phase")

    def settings(self):
        return self.js("""return Object.fromEntries([...document.querySelectorAll('section.training label.field')]
                          .map(l => [l.innerText.trim().split('\\n')[0], l.querySelector('input, select').value]))""")

    def set_fields(self, values):
        """Types `values` ({label: value}) into the training settings, as a user would."""
        self.js("""for (const [label, v] of Object.entries(arguments[0])) for (const l of document.querySelectorAll('label.field'))
                if (l.innerText.trim().startsWith(label)) { const i = l.querySelector('input'); i.value = v;
                  i.dispatchEvent(new Event('input', {bubbles: true})); }""", values)

    def load_data(self, files):
        self.browser.upload("section.dataset input[type=file]", files)
        self.browser.until("the four files", lambda: self.text().count("10000") >= 2 and "60000 images" in self.text())

    def bad_data(self, data, picture):
        """Two bad files from the suite in docs/bad-inputs.md, under `out`/bad: an interrupted
        download under the name of a loaded file, and `picture`."""
        bad = os.path.join(self.out, "bad")
        os.makedirs(bad, exist_ok=True)
        with open(os.path.join(data, "t10k-images-idx3-ubyte.gz"), "rb") as f:
            whole = f.read()
        with open(os.path.join(bad, "t10k-images-idx3-ubyte.gz"), "wb") as f:
            f.write(whole[: len(whole) // 2])
        with open(picture, "rb") as f, open(os.path.join(bad, "photo.png"), "wb") as g:
            g.write(f.read())
        return sorted(glob.glob(os.path.join(bad, "*")))

    def file_reports(self):
        return self.js("return [...document.querySelectorAll('.file-reports li.error')].map(l => l.innerText).join(' | ')")

    def check_console(self):
        """Fails on any console error, uncaught error or Rust panic since the last check, or if
        an error logged in a worker or a worker's worker would not have been seen."""
        errors = self.browser.console_errors()
        errors += self.browser.probe_worker_errors()
        if errors:
            sys.exit(f"FAIL: console errors ({self.browser.name}):\n" + "\n".join(m[:400] for m in errors))

    def check_requests(self, url):
        """Fails on any request that left the origin of `url`."""
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlparse(url))
        names = self.js("return performance.getEntriesByType('resource').map(e => e.name)")
        foreign = [n for n in names if not (n.startswith(origin) or n.startswith("blob:") or n.startswith("data:"))]
        if foreign:
            sys.exit(f"FAIL: requests left {origin}: {foreign}")
