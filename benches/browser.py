#!/usr/bin/env python3
"""The Benchmark panel, run headless: opens the app in Debian's Chromium with WebGPU (or its
Firefox ESR), loads the Fashion-MNIST files, classifies a test image with a weights file (for
the time to the first prediction), runs the benchmark and prints its JSON.

  benches/browser.py URL [--backend auto|webgpu|cpu] [--weights FILE] [--input-size 96]
                     [--batch-sizes 16,32,128] [--steps 3] [--runs 30] [--workers N]
                     [--browser chromium|firefox]

URL is the app as served: `trunk serve --release`, or `trunk build --release` and any static
server. --weights (e.g. what `cargo run --release --bin train` wrote) gives a model to classify
with before the benchmark; without it the first-prediction figure is null. It runs on the
selenium in .venv (scripts/setup.sh makes it)."""
import argparse, glob, json, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from browsers import BROWSERS, Browser  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("url")
p.add_argument("--backend", default="auto")
p.add_argument("--weights")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--input-size", default="96")
p.add_argument("--batch-sizes", default="16,32,128")
p.add_argument("--steps", default="3")
p.add_argument("--runs", default="30")
p.add_argument("--workers", default=None, help="workers on the CPU backend (default: the page's, one per core)")
p.add_argument("--browser", choices=BROWSERS, default="chromium")
p.add_argument("--timeout", type=float, default=3600)
a = p.parse_args()

browser = Browser(a.browser, a.timeout)
try:
    separator = "&" if "?" in a.url else "?"
    browser.open(f"{a.url}{separator}backend={a.backend}")
    browser.until("the device", lambda: "Running on" in browser.text(), 180)
    browser.upload("section.dataset input[type=file]", sorted(glob.glob(os.path.join(a.data, "*-ubyte.gz"))))
    browser.until("the four files", lambda: "60000 images" in browser.text())
    if a.weights:
        browser.upload("input[accept='.safetensors']", [os.path.abspath(a.weights)])
        browser.until("the loaded weights", lambda: "loaded from" in browser.text(), 300)
        browser.click_text("A test image")
        browser.until("the first prediction", lambda: browser.js("return !!document.querySelector('.probabilities li.best')"), 300)
    browser.js("""const values = arguments[0];
        document.querySelectorAll('#benchmark .settings input').forEach((input, i) => {
          if (values[i] == null) return;
          input.value = values[i]; input.dispatchEvent(new Event('input', {bubbles: true})); });""",
               [a.input_size, a.batch_sizes, a.steps, a.runs, a.workers])
    browser.click_text("Run benchmark")
    seen = []

    def report():
        for level, text, source in browser.console():
            if text.startswith("BENCHMARK_JSON "):
                return json.loads(text[len("BENCHMARK_JSON "):])
            if level == "error" or "panicked" in text:
                seen.append(f"{text} ({source})")
        failure = browser.js("const e = document.querySelector('#benchmark .error'); return e && e.innerText")
        if failure or seen:
            sys.exit(f"FAIL: {failure or seen}")
        return None

    figures = browser.until("the benchmark", report)
    print(json.dumps(figures, indent=2))
finally:
    browser.quit()
