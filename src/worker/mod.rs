//! The Web Worker that owns the model while it trains, so the page never waits on the device,
//! and on the CPU backend the replica workers it coordinates, so training uses every core.
//!
//! Every worker runs this same wasm module (it is handed over, compiled, with the URL of the
//! wasm-bindgen glue), and its name says which part it plays. [`host`] is the training
//! worker's side, [`client`] the page's. They exchange [`crate::train::Command`]s and
//! [`crate::train::Update`]s as JSON in a `json` field; the dataset's bytes ride beside a
//! `Start` as transferred `Uint8Array`s. [`replica`] holds the replicas' side and the pool
//! through which the training worker, their coordinator, drives them, with their messages.

mod client;
mod host;
mod inbox;
mod replica;

pub use client::TrainerWorker;
pub use host::{start_training_worker, wasm_memory_bytes};
pub use replica::{start_replica_worker, WorkerReplicas};

/// Starts this worker's part, by the name it was started with: a replica, or the training worker.
pub fn start_in_worker() {
    let scope: web_sys::DedicatedWorkerGlobalScope = wasm_bindgen::JsCast::unchecked_into(js_sys::global());
    if scope.name() == client::REPLICA_NAME {
        start_replica_worker();
    } else {
        start_training_worker();
    }
}

/// How many workers to train with on the CPU backend when the user has not said: one per
/// core the browser reports, at most [`MAX_WORKERS`], and at most one per 2 GB where the
/// browser tells its memory (`navigator.deviceMemory`, Chromium only). In the page and in
/// the training worker alike.
pub fn default_workers() -> usize {
    let global = js_sys::global();
    let navigator = js_sys::Reflect::get(&global, &"navigator".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    let number = |key: &str| js_sys::Reflect::get(&navigator, &key.into()).ok().and_then(|value| value.as_f64());
    let cores = number("hardwareConcurrency").map_or(1, |cores| cores as usize);
    let by_memory = number("deviceMemory").map_or(usize::MAX, |gigabytes| ((gigabytes / 2.0) as usize).max(1));
    cores.min(by_memory).clamp(1, MAX_WORKERS)
}

/// The most workers a run uses: past this the gradients' traffic outweighs what a core adds.
pub const MAX_WORKERS: usize = 8;

/// The envelope's field names.
const JSON: &str = "json";
const TRAIN_IMAGES: &str = "trainImages";
const TRAIN_LABELS: &str = "trainLabels";
const TEST_IMAGES: &str = "testImages";
const TEST_LABELS: &str = "testLabels";
/// A weights file (safetensors bytes), beside `LoadWeights` and `Weights`.
const WEIGHTS: &str = "weights";

/// Whether this code runs in a worker rather than a page.
pub fn in_worker() -> bool {
    web_sys::window().is_none()
}
