//! The Web Worker that owns the model while it trains, so the page never waits on the device.
//!
//! The worker runs this same wasm module (the page hands it over, compiled, with the URL of
//! the wasm-bindgen glue): [`host`] is its side, [`client`] the page's. They exchange
//! [`crate::train::Command`]s and [`crate::train::Update`]s as JSON in a `json` field; the
//! dataset's bytes ride beside a `Start` as transferred `Uint8Array`s.

mod client;
mod host;

pub use client::TrainerWorker;
pub use host::{start_training_worker, wasm_memory_bytes};

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
