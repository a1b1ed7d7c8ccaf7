#!/usr/bin/env python3
"""A user's whole session in the built app, in headless Chromium with WebGPU, over WebDriver
(Debian's chromium and chromium-driver, driven with selenium from .venv: scripts/setup.sh).

  tests/e2e/session.py URL [--out DIR]

Opens the page, loads the real Fashion-MNIST files through the file input, trains the Quick look
run on the CPU backend and checks its test accuracy, draws a trouser, a sneaker and a bag with
the mouse and checks each is read as its own class, draws with touch and a pen, classifies a test image, downloads
the weights, reloads and sees them restored, loads the downloaded file, and is refused a damaged
one, runs a small benchmark, and loses the GPU mid-run (a test hook) to see training resume from
its last checkpoint. Saves a screenshot of every stage in DIR. Fails on any console error or Rust panic, and on
any request that leaves the page's origin."""
import argparse, glob, json, os, re, sys, time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("url")
p.add_argument("--out", default="target/e2e")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--timeout", type=float, default=900)
p.add_argument("--quick-accuracy", type=float, default=80.0, help="the least test accuracy the Quick look run must reach, in %%")
p.add_argument("--quick-images", type=int, help="train Quick look on this many images instead of its own number")
p.add_argument("--quick-timeout", type=float, default=1800)
a = p.parse_args()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import App, output_folder  # noqa: E402
from browsers import Browser  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

out, downloads = output_folder(a.out)

browser = Browser("chromium", a.timeout, downloads)
app = App(browser, out)
js, until, element, click, click_text, upload, text = browser.js, browser.until, browser.element, browser.click, browser.click_text, browser.upload, browser.text
shot, prediction, model_line, set_fields, load_data = app.shot, app.prediction, app.model_line, app.set_fields, app.load_data


def draw(strokes, pointer="mouse"):
    """Each stroke is a list of (x, y) in pad pixels (0..280), drawn with `pointer`: mouse,
    touch or pen."""
    browser.draw(element("canvas.drawing-pad"), strokes, pointer)


browser.on_timeout = lambda: shot("timeout")
try:
    # A fresh profile: no autosave from an earlier run.
    browser.open(a.url)
    until("the device", lambda: "Running on" in text())
    until("the architecture view", lambda: "5,977,530" in text())
    print("page up:", app.backend()[:120])
    # Only this origin may be reached, and no inline script runs but Trunk's pinned loader.
    csp = js("const m = document.querySelector('meta[http-equiv=Content-Security-Policy]'); return m && m.content")
    assert csp and "default-src 'self'" in csp and "connect-src 'self'" in csp and "'sha256-" in csp, csp
    shot("start")

    files = sorted(glob.glob(os.path.join(a.data, "*-ubyte.gz")))
    assert len(files) == 4, f"the four Fashion-MNIST files in {a.data}"
    load_data(files)
    shot("data")

    # Two bad files from the suite in docs/bad-inputs.md: an interrupted download under the name
    # of a loaded file, and a picture. Each gets its message; the loaded splits stay.
    upload("section.dataset input[type=file]", app.bad_data(a.data, os.path.join(out, "01-start.png")))
    until("the refusals", lambda: "magic number 0x89504E47" in text() and "corrupt or cut short" in text())
    assert "(10000 images) stays loaded" in text(), text()
    assert "60000 images" in text() and text().count("10000") >= 2, "the loaded splits stay"
    print("bad data files:", app.file_reports()[:300])
    shot("bad-data", "section.dataset")

    untrained = js("return document.querySelector('.prediction').innerText")
    assert "untrained" in untrained, untrained
    # Quick look, as a new user presses it: its settings, its trade-offs, the whole run.
    click_text("Quick look")
    note = js("return document.querySelector('.preset-note').innerText")
    assert "32×32 input instead of 96×96" in note and "momentum 0.9" in note, note
    print("quick look:", app.settings())
    if a.quick_images:
        set_fields({"Training images": str(a.quick_images)})
    click("button.primary")
    started = time.time()
    # While the run goes, its settings are locked: what the form shows is what the run uses.
    locked = "const f = document.querySelector('section.training fieldset.settings'); return !!f && f.disabled && !f.querySelector('input:enabled, select:enabled, button:enabled')"
    until("the locked settings", lambda: js(locked), 30)
    until("the end of the quick run", lambda: app.phase() in ("Finished", "Failed"), a.quick_timeout)
    assert app.phase() == "Finished", text()
    assert not js("return document.querySelector('section.training fieldset.settings').disabled"), "the settings stay locked after the run"
    accuracy = float(re.findall(r"After epoch 1: ([\d.]+) % of 10,?000", text())[0])
    estimate = js("const e = document.querySelector('.seed-estimate'); return e && e.innerText")
    print("quick run: %.1f %% on the 10,000 test images, %.1f min from Train to the end; %s" % (accuracy, (time.time() - started) / 60, estimate))
    assert accuracy >= a.quick_accuracy, f"the quick run reached {accuracy} %, under {a.quick_accuracy} %"
    assert estimate and "The seed's own run" in estimate, estimate
    until("the trained model", lambda: "trained in this page" in (model_line() or ""))
    print("trained:", model_line())
    shot("trained")

    def clear_pad():
        js("document.querySelector('canvas.drawing-pad').focus()")
        browser.keys(Keys.DELETE)  # Delete clears
        until("the cleared pad", lambda: not prediction(), 30)

    # Three garments drawn with the mouse, as a person would, each read as its own class. A
    # trouser: a waistband and two legs. A sneaker: its outline, toe to the left as the
    # dataset's are. A bag: a wide box, coloured in, with a handle, as the dataset's bags are.
    # The bag was a narrower box until 2026-12-06: a Quick look model trained by a build with
    # other rounding read it as a pullover (48 %), and that one reads this bag at 99.6 %
    # (BENCHMARKS.md, "The drawn bag").
    bag = [[(40, 120), (240, 120), (240, 250), (40, 250), (40, 120)], [(110, 120), (110, 80), (170, 80), (170, 120)]]
    drawings = [
        ("Trouser", [[(110, 40), (170, 40)], [(112, 40), (100, 250)], [(168, 40), (180, 250)], [(112, 60), (168, 60)]]),
        ("Sneaker", [[(240, 210), (240, 150), (190, 140), (160, 170), (80, 180), (40, 195), (40, 215), (240, 215)]]),
        ("Bag", bag + [[(40, y), (240, y)] for y in range(130, 251, 12)]),
    ]
    for garment, strokes in drawings:
        draw(strokes)
        seen = until(f"a prediction of the drawn {garment.lower()}", prediction, 120)
        print(f"drawn {garment.lower()} →", seen)
        shot(f"drawn-{garment.lower()}", "section.classify")
        assert seen[0] == garment, f"a drawn {garment.lower()} was read as {seen}"
        clear_pad()

    # The bag with a finger: the page must not scroll under it.
    scrolled = js("return window.scrollY")
    draw([[(70, 110), (210, 110), (210, 230), (70, 230), (70, 110)], [(110, 110), (110, 60), (170, 60), (170, 110)]], "touch")
    print("drawn bag (touch) →", until("a prediction of the bag", prediction, 120))
    assert js("return window.scrollY") == scrolled, "the page scrolled under a finger drawing"
    shot("drawn-bag-touch", "section.classify")
    # Undo (Ctrl+Z) takes the handle off again; a pen adds it back.
    js("document.querySelector('canvas.drawing-pad').focus()")
    before_undo = js("return document.querySelector('.model-input canvas').toDataURL()")
    browser.keys(Keys.CONTROL, "z")
    until("the undone stroke", lambda: js("const c = document.querySelector('.model-input canvas'); return c && c.toDataURL()") != before_undo, 30)
    draw([[(110, 110), (110, 60), (170, 60), (170, 110)]], "pen")
    until("the pen stroke", lambda: js("const c = document.querySelector('.model-input canvas'); return c && c.toDataURL()") == before_undo, 30)

    click_text("A test image")
    until("a test image's prediction", lambda: "Test image #" in text() and prediction(), 120)
    print("test image:", js("return document.querySelector('.frame-source').innerText"), "→", prediction())
    shot("test-image", "section.classify")

    # Inside the network: a click on a branch of 4a in the architecture view opens its maps.
    click('[data-inception="4a"] .branch')
    until("the maps of 4a", lambda: js("return document.querySelectorAll('.branch-maps canvas').length") == 4
          and "Inception 4a" in text() and js("return !!document.querySelector('.stem-filters canvas')"), 120)
    print("inside 4a:", js("return [...document.querySelectorAll('.branch-maps figcaption')].map(f => f.innerText).join(' | ')"))
    shot("inside", "section.inside")

    # 6 · Benchmark, kept small: its figures come as a table and as JSON.
    # Input size, batch sizes, timed steps, classifications, workers (two: data-parallel).
    js("""const values = ['32', '4, 8', '1', '3', '2'];
          const inputs = document.querySelectorAll('#benchmark .settings input');
          if (inputs.length !== values.length) throw new Error('the benchmark has ' + inputs.length + ' settings');
          inputs.forEach((input, i) => {
            input.value = values[i]; input.dispatchEvent(new Event('input', {bubbles: true})); });""")
    click_text("Run benchmark")
    until("the benchmark's figures or its error", lambda: js("return !!document.querySelector('#benchmark-json, #benchmark .error')"), 300)
    error = js("const e = document.querySelector('#benchmark .error'); return e && e.innerText")
    assert not error, "the benchmark refused or failed: " + error
    figures = json.loads(js("return document.querySelector('#benchmark-json').innerText"))
    report, page = figures["report"], figures["page"]
    assert [f["batch_size"] for f in report["training"]] == [4, 8] and report["inference"]["runs"] == 3, figures
    assert report["device"].endswith(", 2 workers"), report["device"]
    assert page["wasm_raw_bytes"] > 1_000_000 and 0 < page["wasm_gzip_bytes"] < page["wasm_raw_bytes"], page
    assert page["first_prediction_ms"] and page["worker_wasm_memory_bytes"] > 0, page
    print("benchmark: %.1f ms per image, %.1f images/s at batch 8, wasm %.1f MB (%.1f MB gzipped)" % (
        report["inference"]["median_ms"], report["training"][1]["images_per_second"], page["wasm_raw_bytes"] / 1e6, page["wasm_gzip_bytes"] / 1e6))
    shot("benchmark", "#benchmark")

    click_text("Download weights")
    saved = until("the downloaded weights", lambda: [f for f in glob.glob(os.path.join(downloads, "*.safetensors"))], 120)[0]
    until("the whole file", lambda: os.path.getsize(saved) > 23_000_000, 60)
    print("downloaded", os.path.basename(saved), os.path.getsize(saved), "bytes")

    browser.refresh()
    until("the restored autosave", lambda: "Restored the" in text() and "restored from" in (model_line() or ""), 120)
    print("after reload:", model_line())
    draw([[(110, 40), (170, 40)], [(112, 40), (100, 250)], [(168, 40), (180, 250)]])
    print("drawn after reload →", until("a prediction after reload", prediction, 120))
    shot("restored", "section.classify")

    upload("input[accept='.safetensors']", [saved])
    until("the loaded file", lambda: "loaded from" in (model_line() or ""), 120)
    print("loaded:", model_line())
    damaged = os.path.join(out, "damaged.safetensors")
    with open(saved, "rb") as f, open(damaged, "wb") as g:
        g.write(f.read()[:5_000_000])
    upload("input[accept='.safetensors']", [damaged])
    until("the refusal", lambda: "cut short" in text(), 60)
    assert "loaded from" in model_line(), "a refused file leaves the model as it was"
    print("damaged file:", js("return document.querySelector('.weights-note').innerText"))
    shot("damaged-weights", "section.classify")

    # A lost GPU mid-run, on WebGPU (`?backend=webgpu`; SwiftShader here): the test hook
    # destroys the worker's device after epoch 1; the page says so, a new worker resumes
    # from epoch 1's checkpoint on a fresh device, and the run ends with all its epochs.
    app.check_requests(a.url)
    sep = "&" if "?" in a.url else "?"
    browser.open(a.url + sep + "backend=webgpu&test-hooks")
    until("the WebGPU device", lambda: "Running on WebGPU" in text(), 120)
    load_data(files)
    set_fields({"Batch size": "16", "Epochs": "3", "Input size": "32", "Training images": "32", "Test images": "16"})
    click("button.primary")
    # A step of epoch 2 on screen: epoch 1's autosave (sent before it) has reached the page.
    until("a step of epoch 2", lambda: "Epoch 2 of 3 · step" in text(), 300)
    lost_at = time.time()
    js("window.googlenetTestHooks.loseDevice()")
    notice = until("the notice of the lost device", lambda: js("const n = document.querySelector('#device-notice'); return n && n.innerText"), 120)
    print("device lost: %s (notice after %.2f s)" % (notice, time.time() - lost_at))
    assert "GPU device was lost" in notice and "resumed training from the checkpoint of epoch 1" in notice, notice
    # (No screenshot mid-run: resizing the window for one stalls the page's frames.)
    until("the end of the resumed run", lambda: app.phase() in ("Finished", "Failed"), 600)
    assert app.phase() == "Finished", text()
    print("resumed run finished %.1f s after the loss" % (time.time() - lost_at))
    assert "Finished: 3 epochs" in text() and "3 epochs" in model_line(), text()
    print("after the lost device:", js("return document.querySelector('.run-status').innerText"), "|", model_line(),
          "| longest frame gap:", js("return document.querySelector('.figure.frame-gap .value').innerText"))
    shot("resumed-after-device-loss", "section.training")

    app.check_console()
    app.check_requests(a.url)
    print("PASS: e2e session")
finally:
    browser.quit()
