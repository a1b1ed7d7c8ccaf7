//! The messages between the page and the worker that owns the model. Plain data, sent as
//! JSON; the dataset's bytes travel beside `Start`, and weight files beside `LoadWeights` and
//! `Weights`, not inside them.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::run::Progress;
use crate::bench::{BenchConfig, BenchReport, BenchStage};
use crate::engine::{Backend, BackendPreference};

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Train a fresh model on the training and test splits sent with this message; or, with
    /// `resume_after` = n > 0, go on from the checkpoint of epoch n sent beside it (a weights
    /// file) as if the run had not been interrupted: epochs n + 1 onwards, same shuffles.
    ///
    /// On the CPU backend the run trains on `workers` workers, data-parallel: this one and
    /// `workers - 1` replicas it starts (see [`crate::train::data_parallel`]). On WebGPU it
    /// trains here alone, on the one device.
    Start {
        config: TrainConfig,
        backend: BackendPreference,
        #[serde(default)]
        resume_after: usize,
        #[serde(default = "one")]
        workers: usize,
    },
    Pause,
    Resume,
    /// Ends the run after the current unit of work; the model keeps what it learned.
    Stop,
    /// Classify 28×28 frames (back to back) with the current model; answered by `Predictions`.
    Classify { id: u64, frames: Vec<u8>, backend: BackendPreference },
    /// Send the current model's weights file (as `Weights`).
    SaveWeights { purpose: WeightsPurpose },
    /// Use the weights file sent with this message; `origin` says where it came from.
    LoadWeights { origin: ModelOrigin, backend: BackendPreference },
    /// Forget the model: back to no trained model.
    ResetModel,
    /// The first `channels` feature maps of each branch of Inception block `block` (0 = 3a …
    /// 8 = 5b) for one 28×28 frame; answered by `Activations`.
    Activations { id: u64, frame: Vec<u8>, block: usize, channels: usize, backend: BackendPreference },
    /// The stem's 7×7 filters; answered by `Filters`.
    Filters { backend: BackendPreference },
    /// Run the benchmark on the training images sent with this message; answered by
    /// `Benchmarking` as it goes, then `Benchmarked`.
    /// On the CPU backend, training is measured on `workers` workers as `Start` trains.
    Benchmark {
        config: BenchConfig,
        backend: BackendPreference,
        #[serde(default = "one")]
        workers: usize,
    },
    /// How much memory the worker holds; answered by `Memory`.
    Memory,
    /// Test hook: destroys the WebGPU device, as a driver reset or a GPU that went away would
    /// lose it. Answered by `DeviceLost` (nothing happens on the CPU backend).
    LoseDevice,
    /// Test hook: the first replica of the data-parallel run under way crashes (panics), as a
    /// replica that runs out of memory would. The run replaces it and goes on.
    LoseReplica,
}

fn one() -> usize {
    1
}

/// One branch's feature maps, as read back for the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureMaps {
    /// The branch output's full shape, `[1, channels, height, width]`.
    pub shape: [usize; 4],
    /// The first channels' maps, each `height × width`, back to back.
    pub values: Vec<f32>,
}

/// Why a weights file is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightsPurpose {
    /// The user asked for a file.
    Download,
    /// The page keeps it in browser storage (after every epoch).
    Autosave,
}

/// Where the model in use came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelOrigin {
    /// Trained in this page.
    Trained,
    /// A weights file the user loaded.
    File { name: String },
    /// The page's autosave, restored on load.
    Restored,
}

/// The model the worker classifies with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub origin: ModelOrigin,
    /// The side images are resized to: the size it was trained at.
    pub input_size: usize,
    /// Epochs trained, and the test accuracy after the last, when known.
    pub epochs: Option<usize>,
    pub test_accuracy: Option<f32>,
}

impl ModelInfo {
    /// A line for the page: where the model comes from and how good it is.
    pub fn describe(&self) -> String {
        let origin = match &self.origin {
            ModelOrigin::Trained => "trained in this page".to_owned(),
            ModelOrigin::File { name } => format!("loaded from {name}"),
            ModelOrigin::Restored => "restored from this browser's storage".to_owned(),
        };
        let epochs = match self.epochs {
            Some(1) => ", 1 epoch".to_owned(),
            Some(n) => format!(", {n} epochs"),
            None => String::new(),
        };
        let accuracy = self.test_accuracy.map_or(String::new(), |a| format!(", test accuracy {:.1} %", a * 100.0));
        format!("GoogLeNet {origin}{epochs}{accuracy}, {size}×{size} input", size = self.input_size)
    }
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Update {
    /// The worker listens for commands.
    Ready,
    /// The worker's device, as [`crate::engine::Engine::summary`] words it.
    Engine { backend: Backend, summary: String },
    /// `resumed_after`: the epochs a resumed run starts after (0 for a fresh run).
    Started { train_size: usize, test_size: usize, steps_per_epoch: usize, epochs: usize, resumed_after: usize },
    /// The run trains on `count` workers (1: the training worker alone); `note` says why
    /// fewer than asked, if so.
    Workers { count: usize, note: Option<String> },
    /// A replica of the run was lost and replaced; the step was done again.
    ReplicaReplaced { message: String },
    /// One unit of work is done; `train_seconds` is the time spent in SGD steps so far
    /// (pauses and test passes excluded), `test_seconds` the time in test passes.
    Progress { progress: Progress, train_seconds: f64, test_seconds: f64 },
    Paused,
    Resumed,
    /// The run is over: every epoch done, or stopped by the user.
    Finished { stopped: bool },
    /// The run could not start or could not go on; the message is for the page.
    Failed { message: String },
    /// The model in use changed (`None`: there is none).
    Model { info: Option<ModelInfo> },
    /// Softmax probabilities for the frames of `Classify` `id`, and the time it took.
    Predictions { id: u64, probabilities: Vec<[f32; 10]>, milliseconds: f64 },
    /// `Classify` `id` could not be answered.
    ClassifyFailed { id: u64, message: String },
    /// A weights file rides beside this message.
    Weights { purpose: WeightsPurpose, info: ModelInfo },
    /// A weights file was refused (or could not be written); the model in use is unchanged.
    WeightsFailed { message: String },
    /// The feature maps of `Activations` `id`, one entry per branch.
    Activations { id: u64, block: usize, branches: Vec<FeatureMaps> },
    /// The stem's filters, `[64, 1, 7, 7]` back to back.
    Filters { values: Vec<f32> },
    /// `Activations` or `Filters` could not be answered.
    InsideFailed { message: String },
    Benchmarking { stage: BenchStage },
    /// The benchmark's figures, the workers' WebAssembly memory after it (the training
    /// worker's and its replicas' together; it only grows, so this is their peak), and the
    /// device's pools: `(bytes in use, bytes reserved)`.
    Benchmarked { report: BenchReport, worker_memory_bytes: u64, device_memory: Option<(u64, u64)> },
    BenchmarkFailed { message: String },
    /// The worker's WebAssembly memory (it only grows: its peak), and what the device's
    /// memory pools hold and reserve (`None` on the CPU backend or before any device).
    Memory { wasm_bytes: u64, device_in_use: Option<u64>, device_reserved: Option<u64> },
    /// The WebGPU device is lost: nothing more can run on it. The page replaces the worker
    /// with a fresh one on a new device and resumes from the last checkpoint.
    DeviceLost { message: String },
    /// The worker panicked (its message): it can do nothing more, and the page replaces it as
    /// for a lost device. Also sent by the page's side for an error the worker did not catch.
    Crashed { message: String },
}

// `to_json` cannot fail: plain structs with string keys always serialise (serde_json writes a
// non-finite float as `null`; a diverged loss is reported as an error before it gets here).
impl Command {
    pub fn to_json(&self) -> String {
        // Cannot fail: derived `Serialize` over structs, enums, strings and numbers.
        serde_json::to_string(self).expect("commands are plain data")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| format!("unreadable command: {error}"))
    }
}

impl Update {
    pub fn to_json(&self) -> String {
        // Cannot fail: derived `Serialize` over structs, enums, strings and numbers.
        serde_json::to_string(self).expect("updates are plain data")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| format!("unreadable update: {error}"))
    }
}
