//! The Benchmark panel: training images/s at several batch sizes and inference latency from
//! the worker ([`crate::bench`]), plus what only the page can see: the wasm's size raw and
//! gzipped, the time from opening the page to its first prediction, and memory. The figures
//! are shown as a table and as JSON (also logged to the console as `BENCHMARK_JSON {...}`,
//! which the headless runner reads).

use leptos::prelude::*;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen::prelude::*;
use web_sys::{PerformanceResourceTiming, ReadableWritablePair, Response};

use super::session::Session;
use crate::bench::{BenchConfig, BenchReport};
use crate::data::{Loader, SplitName};

/// What the page measured about itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageFigures {
    pub user_agent: String,
    pub date: String,
    /// The app's WebAssembly module as served, and as gzip would send it.
    pub wasm_url: String,
    pub wasm_raw_bytes: u64,
    pub wasm_gzip_bytes: Option<u64>,
    /// From navigation start (`performance.now()` is 0 there).
    pub page_ready_ms: f64,
    pub first_prediction_ms: Option<f64>,
    pub page_wasm_memory_bytes: u64,
    pub worker_wasm_memory_bytes: u64,
    /// What the device's memory pools hold and reserve after the benchmark (WebGPU only).
    pub device_in_use_bytes: Option<u64>,
    pub device_reserved_bytes: Option<u64>,
    /// Chrome's `performance.memory.usedJSHeapSize` (absent elsewhere).
    pub js_heap_bytes: Option<u64>,
}

/// A benchmark's state in the page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchState {
    pub running: bool,
    pub stage: Option<String>,
    pub error: Option<String>,
    pub result: Option<(BenchReport, PageFigures)>,
}

impl BenchState {
    /// The figures as one JSON document.
    pub fn json(report: &BenchReport, page: &PageFigures) -> String {
        // Cannot fail: derived `Serialize` of structs, strings and numbers, no maps with
        // non-string keys.
        serde_json::to_string_pretty(&serde_json::json!({ "runner": "browser", "page": page, "report": report })).expect("plain data")
    }
}

fn performance() -> Option<web_sys::Performance> {
    web_sys::window()?.performance()
}

/// Milliseconds since navigation start.
pub fn now_ms() -> f64 {
    performance().map_or(0.0, |performance| performance.now())
}

/// Gathers the page's own figures; `worker_memory` comes with the worker's report.
pub async fn page_figures(page_ready_ms: f64, first_prediction_ms: Option<f64>, worker_memory: u64, device_memory: Option<(u64, u64)>) -> PageFigures {
    let window = web_sys::window();
    let wasm = performance().and_then(|performance| {
        performance
            .get_entries_by_type("resource")
            .iter()
            .filter_map(|entry| entry.dyn_into::<PerformanceResourceTiming>().ok())
            .find(|entry| entry.name().ends_with(".wasm"))
    });
    let (wasm_url, wasm_raw_bytes) = wasm.map_or((String::new(), 0), |entry| (entry.name(), entry.decoded_body_size() as u64));
    let wasm_gzip_bytes = if wasm_url.is_empty() { None } else { gzip_size(&wasm_url).await.ok() };
    let js_heap_bytes = performance()
        .and_then(|performance| js_sys::Reflect::get(&performance, &"memory".into()).ok())
        .and_then(|memory| js_sys::Reflect::get(&memory, &"usedJSHeapSize".into()).ok())
        .and_then(|used| used.as_f64())
        .map(|used| used as u64);
    PageFigures {
        user_agent: window.as_ref().and_then(|window| window.navigator().user_agent().ok()).unwrap_or_default(),
        date: String::from(js_sys::Date::new_0().to_iso_string()),
        wasm_url,
        wasm_raw_bytes,
        wasm_gzip_bytes,
        page_ready_ms,
        first_prediction_ms,
        page_wasm_memory_bytes: crate::worker::wasm_memory_bytes(),
        worker_wasm_memory_bytes: worker_memory,
        device_in_use_bytes: device_memory.map(|(in_use, _)| in_use),
        device_reserved_bytes: device_memory.map(|(_, reserved)| reserved),
        js_heap_bytes,
    }
}

// web-sys has `CompressionStream` only behind its unstable-APIs flag; it is in every current
// browser, so it is bound here.
#[wasm_bindgen]
extern "C" {
    type CompressionStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(format: &str) -> Result<CompressionStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &CompressionStream) -> web_sys::ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &CompressionStream) -> web_sys::WritableStream;
}

/// The size of `url` gzipped, by the browser's own `CompressionStream` (off the main thread's
/// JavaScript, and no compressor in our wasm).
async fn gzip_size(url: &str) -> Result<u64, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_str(url)).await?.dyn_into()?;
    let body = response.body().ok_or("no body")?;
    let gzip = CompressionStream::new("gzip")?;
    let compressed = body.pipe_through(&ReadableWritablePair::new(&gzip.readable(), &gzip.writable()));
    let buffer = JsFuture::from(Response::new_with_opt_readable_stream(Some(&compressed))?.array_buffer()?).await?;
    Ok(buffer.unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

#[component]
pub fn BenchmarkPanel(loader: RwSignal<Loader>, session: Session) -> impl IntoView {
    let defaults = BenchConfig::default();
    let input_size = RwSignal::new(defaults.input_size.to_string());
    let batch_sizes = RwSignal::new(defaults.batch_sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
    let timed_steps = RwSignal::new(defaults.timed_steps.to_string());
    let runs = RwSignal::new(defaults.inference_runs.to_string());
    let workers = RwSignal::new(crate::worker::default_workers().to_string());
    let form_error = RwSignal::new(None::<String>);
    let state = session.benchmark;

    let read = move || -> Result<BenchConfig, String> {
        let number = |name: &str, text: String| text.trim().parse::<usize>().map_err(|_| format!("{name}: “{text}” is not a whole number"));
        let config = BenchConfig {
            input_size: number("Input size", input_size.get_untracked())?,
            batch_sizes: batch_sizes.get_untracked().split(',').map(|part| number("Batch sizes", part.to_owned())).collect::<Result<_, _>>()?,
            timed_steps: number("Timed steps", timed_steps.get_untracked())?,
            inference_runs: number("Classifications", runs.get_untracked())?,
        };
        config.validate()?;
        Ok(config)
    };
    let run = move |_| {
        form_error.set(None);
        let config = match read() {
            Ok(config) => config,
            Err(message) => return form_error.set(Some(message)),
        };
        let count = match workers.get_untracked().trim().parse::<usize>() {
            Ok(count) if (1..=crate::worker::MAX_WORKERS).contains(&count) => count,
            _ => return form_error.set(Some(format!("Workers (CPU): a whole number from 1 to {}", crate::worker::MAX_WORKERS))),
        };
        let needed = config.images_needed();
        let started = loader.with_untracked(|loader| {
            let train = loader.split(SplitName::Train).ok_or("Load the Fashion-MNIST training files (1 · Data) first: the benchmark trains on them.")?;
            if train.len() < needed {
                return Err(format!("The benchmark needs {needed} training images; {} are loaded.", train.len()));
            }
            session.run_benchmark(config, count, train.first(needed))
        });
        if let Err(message) = started {
            form_error.set(Some(message));
        }
    };
    let training_busy = move || session.progress.with(|progress| progress.phase.is_running());

    view! {
        <section class="benchmark" id="benchmark">
            <h2>"6 · Benchmark"</h2>
            <p class="hint">
                "Measures this device with the app's own code: training images per second at each batch size "
                "(one untimed warm-up step, then timed steps on real Fashion-MNIST images), single-image inference "
                "latency (median after warm-up), the app's download size, the time to its first prediction, and memory. "
                "The device is the one chosen at the top of the page."
            </p>
            <div class="settings">
                <label class="field">"Input size" <input type="number" min="16" max="512" prop:value=input_size on:input=move |e| input_size.set(event_target_value(&e)) /></label>
                <label class="field">"Batch sizes" <input type="text" size="12" prop:value=batch_sizes on:input=move |e| batch_sizes.set(event_target_value(&e)) /></label>
                <label class="field">"Timed steps" <input type="number" min="1" prop:value=timed_steps on:input=move |e| timed_steps.set(event_target_value(&e)) /></label>
                <label class="field">"Classifications" <input type="number" min="1" prop:value=runs on:input=move |e| runs.set(event_target_value(&e)) /></label>
                <label class="field">"Workers (CPU)" <input type="number" min="1" prop:value=workers on:input=move |e| workers.set(event_target_value(&e)) /></label>
            </div>
            <p>
                <button class="primary" on:click=run disabled=move || state.with(|s| s.running) || training_busy()>"Run benchmark"</button>
                {move || training_busy().then(|| view! { <span class="hint">" Training is under way: the benchmark waits for it to end."</span> })}
            </p>
            {move || form_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || state.with(|s| s.error.clone()).map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || state.with(|s| if s.running { s.stage.clone().or(Some("Starting…".into())) } else { None })
                .map(|stage| view! { <p class="status pending">{stage}</p> })}
            {move || state.with(|s| s.result.clone()).map(|(report, page)| {
                let json = BenchState::json(&report, &page);
                view! {
                    <table class="bench">
                        <tr><th colspan="2">{report.device.clone()}</th></tr>
                        <tr><td>"Inference, one image"</td><td>{format!(
                            "median {:.1} ms ({:.1}–{:.1}) over {} runs; the first, cold: {:.0} ms",
                            report.inference.median_ms, report.inference.min_ms, report.inference.max_ms, report.inference.runs, report.inference.first_ms
                        )}</td></tr>
                        {report.training.iter().map(|figure| view! {
                            <tr><td>{format!("Training, batch {}", figure.batch_size)}</td><td>{format!(
                                "{:.2} images/s ({:.1} GFLOP/s) over {} step{}; warm-up step {:.1} s",
                                figure.images_per_second, figure.gflops, figure.timed_steps,
                                if figure.timed_steps == 1 { "" } else { "s" }, figure.warm_up_seconds
                            )}</td></tr>
                        }).collect_view()}
                        <tr><td>"Download"</td><td>{format!(
                            "{} raw, {} gzipped",
                            megabytes(page.wasm_raw_bytes),
                            page.wasm_gzip_bytes.map_or("?".into(), megabytes)
                        )}</td></tr>
                        <tr><td>"Cold start"</td><td>{format!(
                            "page ready {:.0} ms after opening; first prediction {}",
                            page.page_ready_ms,
                            page.first_prediction_ms.map_or("— (none yet: classify a picture in 3 · Classify)".into(), |ms| format!("{ms:.0} ms after opening"))
                        )}</td></tr>
                        <tr><td>"Memory"</td><td>{format!(
                            "workers' wasm {}, page wasm {}{}{}",
                            megabytes(page.worker_wasm_memory_bytes),
                            megabytes(page.page_wasm_memory_bytes),
                            page.device_reserved_bytes.map_or(String::new(), |bytes| format!(", GPU buffers {} reserved", megabytes(bytes))),
                            page.js_heap_bytes.map_or(String::new(), |bytes| format!(", JavaScript heap {}", megabytes(bytes)))
                        )}</td></tr>
                    </table>
                    <details open>
                        <summary>"JSON"</summary>
                        <pre id="benchmark-json">{json}</pre>
                    </details>
                }
            })}
        </section>
    }
}
