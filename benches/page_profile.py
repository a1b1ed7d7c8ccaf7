#!/usr/bin/env python3
"""Where the page's single-image inference spends its time, on the CPU backend: runs the
Benchmark panel headless in Chromium with V8's sampling profiler traced (Chromium's
`--trace-startup`), then prints, for the samples of the worker that classifies, each wasm
function's share of the time (self, and with what it calls).

  benches/page_profile.py URL [--runs 150] [--input-size 96] [--top 30] [--keep-trace FILE]

URL is the app built with the wasm's function names kept, e.g.
  CARGO_PROFILE_WEB_STRIP=false trunk build --release --dist DIR
and served by any static server (the shipped `web` profile strips the names: the profile then
only shows function numbers). The benchmark's training part runs one step of batch 16; only the
samples under `infer::classify` are counted. It runs on the selenium in .venv
(scripts/setup.sh makes it). BENCHMARKS.md has what it found."""
import argparse, collections, glob, json, os, re, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import browsers  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("url")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--input-size", default="96")
p.add_argument("--runs", default="150")
p.add_argument("--top", type=int, default=30)
p.add_argument("--keep-trace", help="also keep Chromium's trace (JSON) here")
a = p.parse_args()

trace = a.keep_trace or os.path.join(tempfile.mkdtemp(), "trace.json")
# Chromium writes the trace when the duration ends, so the browser stays open until then.
duration = 90
browsers.CHROMIUM_ARGS = browsers.CHROMIUM_ARGS + [
    "--trace-startup=disabled-by-default-v8.cpu_profiler,v8", f"--trace-startup-file={trace}",
    "--trace-startup-format=json", f"--trace-startup-duration={duration}"]
browser = browsers.Browser("chromium", 600)
started = time.time()
try:
    browser.open(f"{a.url}{'&' if '?' in a.url else '?'}backend=cpu")
    browser.until("the device", lambda: "Running on" in browser.text(), 180)
    browser.upload("section.dataset input[type=file]", sorted(glob.glob(os.path.join(a.data, "*-ubyte.gz"))))
    browser.until("the four files", lambda: "60000 images" in browser.text())
    browser.js("""const values = arguments[0];
        document.querySelectorAll('#benchmark .settings input').forEach((input, i) => {
          input.value = values[i]; input.dispatchEvent(new Event('input', {bubbles: true})); });""",
               [a.input_size, "16", "1", a.runs, "1"])
    browser.click_text("Run benchmark")

    def report():
        for _, text, _ in browser.console():
            if text.startswith("BENCHMARK_JSON "):
                return json.loads(text[len("BENCHMARK_JSON "):])
        return None

    figures = browser.until("the benchmark", report, duration - 10)["report"]
    print(f"inference: median {figures['inference']['median_ms']:.1f} ms over {figures['inference']['runs']} runs (the profiler costs a little)")
    browser.until("the trace", lambda: os.path.exists(trace) and os.path.getsize(trace) > 0 and time.time() - started > duration + 5, duration + 60)
    time.sleep(5)  # the file is written in pieces
finally:
    browser.quit()

# The profiler's samples, per thread: `Profile` starts one, `ProfileChunk`s carry its call-tree
# nodes, the sampled node ids and the time between samples.
events = json.load(open(trace))
events = events["traceEvents"] if isinstance(events, dict) else events
profiles = collections.defaultdict(lambda: {"nodes": {}, "samples": [], "deltas": []})
for event in events:
    if event.get("name") == "ProfileChunk":
        data, profile = event["args"]["data"], profiles[(event["pid"], event["id"])]
        for node in data.get("cpuProfile", {}).get("nodes", []):
            profile["nodes"][node["id"]] = node
        profile["samples"] += data.get("cpuProfile", {}).get("samples", [])
        profile["deltas"] += data.get("timeDeltas", [])


def stacks(profile):
    """Each sample's stack of function names, innermost first, with the time it stands for."""
    nodes, parent, names = profile["nodes"], {}, {}
    for node in nodes.values():
        if "parent" in node:
            parent[node["id"]] = node["parent"]
        for child in node.get("children", []):
            parent[child] = node["id"]
    for sample, delta in zip(profile["samples"], profile["deltas"][1:] + [0]):
        if sample not in names:
            stack, at = [], sample
            while at in nodes:
                stack.append(nodes[at]["callFrame"]["functionName"] or "(anonymous)")
                at = parent.get(at)
            names[sample] = stack
        yield names[sample], delta


own, inclusive, total = collections.Counter(), collections.Counter(), 0
for profile in profiles.values():
    for stack, delta in stacks(profile):
        calls = next((k for k, name in enumerate(stack) if "infer::classify" in name), None)
        if calls is not None:
            total += delta
            own[stack[0]] += delta
            for name in set(stack[:calls]):
                inclusive[name] += delta
if not total:
    sys.exit("no samples under infer::classify: was the wasm built with its names (CARGO_PROFILE_WEB_STRIP=false)?")
print(f"{total / 1000:.0f} ms of samples under infer::classify")
for title, counts in (("self", own), ("with what it calls (below classify)", inclusive)):
    print(f"\n| {title} | function |\n| --- | --- |")
    for name, time_us in counts.most_common(a.top):
        print(f"| {100 * time_us / total:.1f} % | `{re.sub(r'::h[0-9a-f]{16}$', '', name)}` |")
