#!/usr/bin/env python3
"""One whole training run in the page, headless (Chromium, or Firefox ESR), as a user makes it:
loads the four Fashion-MNIST files, types the settings, presses Train, and waits for the end of the run.
Prints JSON: the settings, minutes from Train to the end (test passes included), each epoch's
test accuracy, the training rate the page showed, and the longest frame gap.

  benches/page_run.py URL [--backend auto|webgpu|cpu] [--workers N] [--input-size 96]
                      [--batch-size 128] [--epochs 5] [--lr 0.05] [--momentum 0] [--schedule constant|linear]
                      [--weights glorot|he] [--train-images N]
                      [--test-images N] [--preset quick|seed] [--screenshot FILE]
                      [--browser chromium|firefox]

With --preset the page's own preset button fills the settings (the other settings flags then
change single fields of it). URL is the app as served (`trunk build --release` and any static
server). Candidates for the quick preset were measured with this (BENCHMARKS.md). It runs on
the selenium in .venv (scripts/setup.sh makes it)."""
import argparse, glob, json, os, re, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from browsers import BROWSERS, Browser  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("url")
p.add_argument("--backend", default="cpu")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--preset", choices=["quick", "seed"])
p.add_argument("--workers")
p.add_argument("--input-size")
p.add_argument("--batch-size")
p.add_argument("--epochs")
p.add_argument("--lr")
p.add_argument("--momentum")
p.add_argument("--schedule", choices=["constant", "linear"])
p.add_argument("--weights", choices=["glorot", "he"])
p.add_argument("--train-images")
p.add_argument("--test-images")
p.add_argument("--screenshot")
p.add_argument("--browser", choices=BROWSERS, default="chromium")
p.add_argument("--timeout", type=float, default=3600)
a = p.parse_args()

browser = Browser(a.browser, a.timeout)
js = browser.js
try:
    separator = "&" if "?" in a.url else "?"
    browser.open(f"{a.url}{separator}backend={a.backend}")
    browser.until("the device", lambda: "Running on" in browser.text(), 180)
    browser.upload("section.dataset input[type=file]", sorted(glob.glob(os.path.join(a.data, "*-ubyte.gz"))))
    browser.until("the four files", lambda: browser.text().count("10000") >= 2 and "60000 images" in browser.text())
    if a.preset:
        browser.click_text({"quick": "Quick look", "seed": "Seed settings"}[a.preset])
    fields = {"Learning rate": a.lr, "Momentum": a.momentum, "Batch size": a.batch_size, "Epochs": a.epochs, "Input size": a.input_size,
              "Training images": a.train_images, "Test images": a.test_images, "Workers": a.workers}
    js("""for (const [label, v] of Object.entries(arguments[0])) for (const l of document.querySelectorAll('section.training label.field'))
            if (v != null && l.innerText.trim().startsWith(label)) { const i = l.querySelector('input'); i.value = v;
              i.dispatchEvent(new Event('input', {bubbles: true})); }""", fields)
    for label, value in (("Rate schedule", a.schedule), ("Initial weights", a.weights)):
        if value:
            js("""for (const l of document.querySelectorAll('section.training label.field')) if (l.innerText.trim().startsWith(arguments[0])) {
                    const s = l.querySelector('select'); s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true})); }""", label, value)
    settings = js("""return Object.fromEntries([...document.querySelectorAll('section.training label.field')]
                       .map(l => [l.innerText.trim().split('\\n')[0], l.querySelector('input, select').value]))""")
    browser.click("button.primary")
    started = time.time()
    phase = lambda: js("const s = document.querySelector('.run-status'); return s && s.dataset.phase")
    browser.until("the end of the run", lambda: phase() in ("Finished", "Failed", "Stopped"), a.timeout)
    minutes = (time.time() - started) / 60
    status = js("return document.querySelector('.run-status').innerText")
    figure = lambda name: js(f"const v = document.querySelector('.figure.{name} .value'); return v && v.innerText")
    accuracies = [float(x) for x in re.findall(r"After epoch \d+: ([\d.]+) % of", browser.text())]
    result = {
        "runner": "page_run",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "phase": phase(),
        "status": status,
        "settings": settings,
        "workers_line": js("const w = document.querySelector('.worker-count'); return w && w.innerText"),
        "minutes": round(minutes, 2),
        "test_accuracy_percent": accuracies,
        "model": js("const m = document.querySelector('.model-info'); return m && m.innerText"),
        "frame_gap": figure("frame-gap"),
        "figures": js("""return Object.fromEntries([...document.querySelectorAll('section.training .figure')]
                          .map(f => [f.className.replace('figure', '').trim(), f.querySelector('.value') && f.querySelector('.value').innerText]))"""),
    }
    if a.screenshot:
        browser.screenshot(a.screenshot)
    print(json.dumps(result, indent=2, ensure_ascii=False))
finally:
    browser.quit()
