#!/usr/bin/env python3
"""A shorter user's session in the built app in headless Firefox ESR (Debian's firefox-esr,
geckodriver; driven with selenium from .venv: scripts/setup.sh).

  tests/e2e/firefox.py URL [--out DIR]

Opens the page, loads the real Fashion-MNIST files and is refused two bad ones, trains a short
run on the CPU backend (Quick look's settings on a few thousand images, two workers), draws a
trouser with the mouse and has it classified, draws with touch and a pen, runs a small benchmark
(the browser's CompressionStream gzips the wasm), downloads the weights, reloads (the autosave
is restored from IndexedDB) and loads the downloaded file: the drawing's 28×28 image gets the
same answer each time. Where Firefox differs from Chromium (no navigator.gpu on Linux, pointer
types) it prints what the page says or does. Saves a screenshot of every stage in DIR. Fails
on any console error (the page's, its workers' and their workers'; how they are read:
browsers.py), Rust panic, CSP violation, crashed worker, or request that leaves the page's
origin."""
import argparse, base64, glob, json, os, re, sys, time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("url")
p.add_argument("--out", default="target/e2e-firefox")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--timeout", type=float, default=300)
p.add_argument("--train-images", type=int, default=2000, help="images of the short training run")
p.add_argument("--test-images", type=int, default=1000, help="test images after its epoch")
a = p.parse_args()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import App, output_folder  # noqa: E402
from browsers import Browser  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402

out, downloads = output_folder(a.out)

started = time.time()
browser = Browser("firefox", a.timeout, downloads)
app = App(browser, out)
js, until, text = browser.js, browser.until, browser.text
TROUSER = [[(110, 40), (170, 40)], [(112, 40), (100, 250)], [(168, 40), (180, 250)], [(112, 60), (168, 60)]]
BAG = [[(60, 110), (220, 110), (220, 240), (60, 240), (60, 110)], [(100, 110), (100, 60), (180, 60), (180, 110)]]


def draw(strokes, pointer="mouse"):
    browser.draw(browser.element("canvas.drawing-pad"), strokes, pointer)


def model_input():
    return js("const c = document.querySelector('.model-input canvas'); return c && c.toDataURL()")


def settled_prediction(what):
    """The prediction once it stopped changing (one drawn while a request was in flight comes
    after that request's answer), and the 28×28 image it is for (a data: URL)."""
    last = [None]

    def settled():
        now = (app.prediction(), model_input())
        done = now[0] and now == last[0]
        last[0] = now
        return done and now
    return until(what, lambda: settled() or time.sleep(0.75), 120)


def picture_answer(path):
    """The answer for the picture at `path`, uploaded."""
    browser.upload("input[accept^='image/']", [path])
    name = os.path.basename(path)
    until(f"{name} on show", lambda: name in js("return document.querySelector('.frame-source').innerText"), 60)
    return settled_prediction(f"a prediction of {name}")[0]


def same_answers(model, drawn, picture, answer):
    """The trouser drawn again is read as the same class as with the trained model, and the
    28×28 image of the first drawing, uploaded, gets exactly the same answer."""
    draw(TROUSER)
    again = settled_prediction(f"a prediction of the drawn trouser, model {model}")[0]
    print(f"drawn trouser, model {model} →", again)
    assert again[0] == drawn[0], f"the model {model} reads the trouser as {again}, the trained one as {drawn}"
    clear_pad()
    now = picture_answer(picture)
    print(f"the first drawing's 28×28 image, model {model} →", now)
    assert now[:2] == answer[:2], f"the model {model} answers {now}, the trained one {answer}"


def clear_pad():
    browser.click_text("Clear")
    until("the cleared pad", lambda: not app.prediction(), 30)


browser.on_timeout = lambda: app.shot("timeout")
try:
    browser.open(a.url)
    until("the device", lambda: "Running on" in text(), 120)
    until("the architecture view", lambda: "5,977,530" in text())
    backend = app.backend()
    gpu = js("return 'gpu' in navigator")
    print(f"{browser.driver.capabilities['browserName']} {browser.driver.capabilities['browserVersion']}, navigator.gpu {'present' if gpu else 'missing'}")
    print("page up:", backend)
    if not gpu:
        # Firefox on Linux has no WebGPU: the page runs on the CPU and says why.
        assert "Running on the CPU" in backend and "navigator.gpu is missing" in backend, backend
    csp = js("const m = document.querySelector('meta[http-equiv=Content-Security-Policy]'); return m && m.content")
    assert csp and "default-src 'self'" in csp and "'sha256-" in csp, csp
    app.shot("start")

    files = sorted(glob.glob(os.path.join(a.data, "*-ubyte.gz")))
    assert len(files) == 4, f"the four Fashion-MNIST files in {a.data}"
    app.load_data(files)
    app.shot("data")
    browser.upload("section.dataset input[type=file]", app.bad_data(a.data, os.path.join(out, "01-start.png")))
    until("the refusals", lambda: "magic number 0x89504E47" in text() and "corrupt or cut short" in text())
    assert "(10000 images) stays loaded" in text() and "60000 images" in text(), text()
    print("bad data files:", app.file_reports()[:300])
    app.shot("bad-data", "section.dataset")

    # A short run with Quick look's settings: 32×32, one epoch, on the CPU backend's workers.
    browser.click_text("Quick look")
    app.set_fields({"Training images": str(a.train_images), "Test images": str(a.test_images)})
    print("training:", app.settings())
    browser.click("button.primary")
    trained_at = time.time()
    until("the end of the run", lambda: app.phase() in ("Finished", "Failed"), 300)
    assert app.phase() == "Finished", text()
    accuracy = re.findall(r"After epoch 1: ([\d.]+) % of ([\d,]+)", text())
    workers = js("const w = document.querySelector('.worker-count'); return w && w.innerText")
    print("trained in %.1f s: %s %% of %s test images; %s" % (time.time() - trained_at, *accuracy[0], workers))
    assert not js("return document.querySelector('#device-notice')"), "a worker crashed or its device was lost"
    until("the trained model", lambda: "trained in this page" in (app.model_line() or ""))
    print("model:", app.model_line())
    app.shot("trained", "section.training")

    # A trouser with the mouse (Pointer Events over WebDriver actions). Its 28×28 image is kept:
    # the same strokes drawn again in another layout of the page draw a slightly different one
    # (Firefox gives fractional clientX/clientY, which the page truncates), and the answers of
    # the restored models are compared on the very same image.
    draw(TROUSER)
    drawn, image = settled_prediction("a prediction of the drawn trouser")
    print("drawn trouser (mouse) →", drawn)
    app.shot("drawn-trouser", "section.classify")
    picture = os.path.join(out, "trouser-28x28.png")
    with open(picture, "wb") as f:
        f.write(base64.b64decode(image.split(",", 1)[1]))
    answer = picture_answer(picture)
    print("the drawing's 28×28 image, uploaded →", answer)
    clear_pad()
    # Touch and pen: what the page makes of them in Firefox. The page must not scroll under a finger.
    for pointer in ("touch", "pen"):
        js("document.querySelector('canvas.drawing-pad').scrollIntoView({block: 'center'})")
        scrolled = js("return window.scrollY")
        try:
            draw(BAG, pointer)
        except WebDriverException as e:
            if "Unimplemented" not in e.msg:
                raise
            # geckodriver: "Unimplemented pointerMove for pointerType pen".
            print(f"drawn bag ({pointer}): Firefox's WebDriver cannot: {e.msg.splitlines()[0]}")
            ActionChains(browser.driver).reset_actions()
            continue
        drew = until(f"the bag drawn with {pointer}", lambda: app.prediction(), 60)
        print(f"drawn bag ({pointer}) →", drew)
        assert js("return window.scrollY") == scrolled, f"the page scrolled under a {pointer} drawing"
        clear_pad()

    # A small benchmark: its figures include the wasm gzipped by the browser's CompressionStream.
    # Input size, batch sizes, timed steps, classifications, workers.
    js("""const values = ['32', '4', '1', '3', '1'];
          const inputs = document.querySelectorAll('#benchmark .settings input');
          if (inputs.length !== values.length) throw new Error('the benchmark has ' + inputs.length + ' settings');
          inputs.forEach((input, i) => { input.value = values[i]; input.dispatchEvent(new Event('input', {bubbles: true})); });""")
    browser.click_text("Run benchmark")
    until("the benchmark's figures or its error", lambda: js("return !!document.querySelector('#benchmark-json, #benchmark .error')"), 300)
    error = js("const e = document.querySelector('#benchmark .error'); return e && e.innerText")
    assert not error, "the benchmark refused or failed: " + error
    figures = json.loads(js("return document.querySelector('#benchmark-json').innerText"))
    report, page = figures["report"], figures["page"]
    assert 0 < page["wasm_gzip_bytes"] < page["wasm_raw_bytes"], page
    print("benchmark on %s: %.1f ms per image, %.1f images/s at batch 4, wasm %.1f MB (%.1f MB gzipped by CompressionStream)" % (
        report["device"], report["inference"]["median_ms"], report["training"][0]["images_per_second"],
        page["wasm_raw_bytes"] / 1e6, page["wasm_gzip_bytes"] / 1e6))
    app.shot("benchmark", "#benchmark")

    browser.click_text("Download weights")
    saved = until("the downloaded weights", lambda: glob.glob(os.path.join(downloads, "*.safetensors")), 120)[0]
    until("the whole file", lambda: os.path.getsize(saved) > 23_000_000 and not glob.glob(os.path.join(downloads, "*.part")), 60)
    print("downloaded", os.path.basename(saved), os.path.getsize(saved), "bytes")

    # Restored twice, each time with the same answers: from the autosave after a reload
    # (IndexedDB), then from the downloaded file.
    browser.refresh()
    until("the restored autosave", lambda: "Restored the" in text() and "restored from" in (app.model_line() or ""), 120)
    print("after reload:", app.model_line())
    same_answers("restored after reload", drawn, picture, answer)
    clear_pad()
    browser.upload("input[accept='.safetensors']", [saved])
    until("the loaded file", lambda: "loaded from" in (app.model_line() or ""), 120)
    print("loaded:", app.model_line())
    same_answers("loaded from the file", drawn, picture, answer)
    app.shot("loaded", "section.classify")

    app.check_console()
    app.check_requests(a.url)
    print("PASS: e2e firefox session (%.1f min)" % ((time.time() - started) / 60))
finally:
    browser.quit()
