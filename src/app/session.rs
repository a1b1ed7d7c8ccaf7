//! The page's side of the worker that owns the model, shared by the Train and Classify
//! panels: what the worker reports becomes signals, and what the panels ask becomes commands.

use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
// Our `Update` (the worker's message) shadows the name of the signal trait.
use leptos::prelude::Update as _;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, Url};

use super::benchmark::{self, BenchState};
use super::storage;
use crate::bench::BenchConfig;
use crate::data::{Loader, Split, SplitName};
use crate::engine::BackendPreference;
use crate::infer::Prediction;
use crate::train::{Command, FeatureMaps, ModelInfo, ModelOrigin, TrainConfig, TrainingProgress, Update, WeightsPurpose};
use crate::worker::TrainerWorker;

/// A prediction and how long the worker took for it.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictionReport {
    pub prediction: Prediction,
    pub milliseconds: f64,
}

/// One classification in flight at a time; the latest frame drawn meanwhile waits, older ones
/// are dropped (a drawing changes faster than the model answers).
#[derive(Default)]
struct ClassifyQueue {
    next_id: u64,
    in_flight: Option<u64>,
    pending: Option<Vec<u8>>,
    /// Answers to requests older than this are for a picture no longer shown.
    current_from: u64,
}

/// A recovery gives up after this many lost workers in one run: something is wrong beyond a
/// driver reset, and the page says so instead of looping.
const MAX_RECOVERIES: u32 = 3;
/// Nor does the page start workers without end: after this many lost in all, it asks for a
/// reload.
const MAX_LOST_WORKERS: u32 = 8;

/// The run under way, as the page needs it to go on after losing its worker.
struct ActiveRun {
    config: TrainConfig,
    backend: BackendPreference,
    workers: usize,
    /// The last epoch's weights file (its autosave), and that epoch.
    checkpoint: Option<(Uint8Array, usize)>,
    recoveries: u32,
}

#[derive(Clone, Copy)]
pub struct Session {
    worker: StoredValue<Option<TrainerWorker>, LocalStorage>,
    queue: StoredValue<ClassifyQueue, LocalStorage>,
    pub preference: RwSignal<BackendPreference>,
    /// How many workers train on the CPU backend (data-parallel); WebGPU trains on one.
    pub workers: RwSignal<usize>,
    pub progress: RwSignal<TrainingProgress>,
    /// The model the worker classifies with; `None` until one is trained, loaded or restored.
    pub model: RwSignal<Option<ModelInfo>>,
    pub prediction: RwSignal<Option<PredictionReport>>,
    /// The last word on weights: saved, refused, restored (`true`: an error).
    pub weights_note: RwSignal<Option<(String, bool)>>,
    /// The restored autosave's description, while the page offers to discard it.
    pub restored: RwSignal<Option<String>>,
    /// The 28×28 picture on show in *Classify*, which *Inside the network* looks at too.
    pub frame: RwSignal<Option<Vec<u8>>>,
    /// The Inception block (0 = 3a … 8 = 5b) whose activation maps are shown.
    pub inspected: RwSignal<usize>,
    /// The latest maps: the block, and the first channels of each branch.
    pub activations: RwSignal<Option<(usize, Vec<FeatureMaps>)>>,
    /// The stem's 7×7 filters, `[64, 1, 7, 7]` back to back.
    pub filters: RwSignal<Option<Vec<f32>>>,
    pub inside_error: RwSignal<Option<String>>,
    /// The id of the latest `Activations` request: older answers are dropped.
    latest_inside: StoredValue<u64>,
    pub benchmark: RwSignal<BenchState>,
    /// When the page was ready and when it first showed a prediction, in ms from navigation
    /// start: the benchmark's cold-start figures.
    page_ready_ms: f64,
    first_prediction_ms: StoredValue<Option<f64>>,
    /// The loaded files: a run that lost its worker goes on with them.
    loader: RwSignal<Loader>,
    run: StoredValue<Option<ActiveRun>, LocalStorage>,
    /// The weights file of the model the worker holds, and where it came from: a new worker
    /// gets it back.
    model_file: StoredValue<Option<(Uint8Array, ModelOrigin)>, LocalStorage>,
    /// A file sent to the worker and not yet accepted.
    pending_file: StoredValue<Option<Uint8Array>, LocalStorage>,
    /// What happened to the device or the worker, and what the page did about it.
    pub device_notice: RwSignal<Option<String>>,
    lost_workers: StoredValue<u32>,
    /// A recovery is on its way: the lost worker's further words (a panic after a lost
    /// device, its error event) must not start a second one.
    recovering: StoredValue<bool>,
}

impl Session {
    /// Starts the worker and restores the autosave, if any.
    pub fn new(preference: RwSignal<BackendPreference>, loader: RwSignal<Loader>) -> Self {
        let session = Self {
            worker: StoredValue::new_local(None),
            queue: StoredValue::new_local(ClassifyQueue::default()),
            preference,
            workers: RwSignal::new(crate::worker::default_workers()),
            progress: RwSignal::new(TrainingProgress::default()),
            model: RwSignal::new(None),
            prediction: RwSignal::new(None),
            weights_note: RwSignal::new(None),
            restored: RwSignal::new(None),
            frame: RwSignal::new(None),
            inspected: RwSignal::new(0),
            activations: RwSignal::new(None),
            filters: RwSignal::new(None),
            inside_error: RwSignal::new(None),
            latest_inside: StoredValue::new(0),
            benchmark: RwSignal::new(BenchState::default()),
            page_ready_ms: benchmark::now_ms(),
            first_prediction_ms: StoredValue::new(None),
            loader,
            run: StoredValue::new_local(None),
            model_file: StoredValue::new_local(None),
            pending_file: StoredValue::new_local(None),
            device_notice: RwSignal::new(None),
            lost_workers: StoredValue::new(0),
            recovering: StoredValue::new(false),
        };
        leptos::task::spawn_local(async move { session.restore().await });
        session
    }

    fn with_worker<T>(&self, action: impl FnOnce(&TrainerWorker) -> T) -> Result<T, String> {
        if self.worker.with_value(Option::is_none) {
            let session = *self;
            let worker = TrainerWorker::spawn(move |update, weights| session.receive(update, weights))?;
            self.worker.set_value(Some(worker));
        }
        // Set just above when it was `None`, and never cleared in between.
        Ok(self.worker.with_value(|worker| action(worker.as_ref().expect("spawned above"))))
    }

    fn send(&self, command: Command) {
        if let Err(message) = self.with_worker(|worker| worker.send(&command)) {
            self.weights_note.set(Some((message, true)));
        }
    }

    pub fn start_training(&self, config: TrainConfig, train: Split<'_>, test: Split<'_>) -> Result<(), String> {
        let (backend, workers) = (self.preference.get_untracked(), self.workers.get_untracked());
        self.with_worker(|worker| worker.start(config.clone(), backend, workers, train, test))?;
        let mut progress = TrainingProgress::starting();
        progress.input_size = config.input_size;
        self.progress.set(progress);
        self.run.set_value(Some(ActiveRun { config, backend, workers, checkpoint: None, recoveries: 0 }));
        Ok(())
    }

    /// The test hook behind `?test-hooks`: has the worker destroy its WebGPU device.
    pub fn lose_device(&self) {
        self.send(Command::LoseDevice);
    }

    /// The test hook behind `?test-hooks`: has a replica of the data-parallel run crash.
    pub fn lose_replica(&self) {
        self.send(Command::LoseReplica);
    }

    /// Recovers from a lost worker once the handler of its last message has returned (the
    /// recovery replaces that handler's worker).
    fn start_recovery(&self, what: String) {
        self.recovering.set_value(true);
        let session = *self;
        leptos::task::spawn_local(async move {
            session.recover(what);
            session.recovering.set_value(false);
        });
    }

    /// The worker is gone (its device lost, or a panic): a new one takes over, with the model
    /// the old one held, and the run under way goes on from its last checkpoint.
    fn recover(&self, what: String) {
        self.worker.set_value(None);
        self.queue.set_value(ClassifyQueue::default());
        self.lost_workers.update_value(|lost| *lost += 1);
        if self.lost_workers.get_value() > MAX_LOST_WORKERS {
            if self.progress.with_untracked(|progress| progress.phase.is_running()) {
                self.fail_run(what.clone());
            }
            let notice = format!("{what}. The worker was lost {MAX_LOST_WORKERS} times: reload the page (your autosaved model comes back).");
            web_sys::console::warn_1(&format!("googlenet-web: {notice}").into());
            return self.device_notice.set(Some(notice));
        }
        let run = self.run.try_update_value(|run| {
            run.as_mut().map(|run| {
                run.recoveries += 1;
                (run.config.clone(), (run.backend, run.workers), run.checkpoint.clone(), run.recoveries)
            })
        });
        let mut notice = format!("{what}. A new worker took over on a fresh device");
        match run.flatten() {
            Some((_, _, checkpoint, recoveries)) if recoveries > MAX_RECOVERIES => {
                self.restore_model();
                let kept = checkpoint.map_or(String::new(), |(_, epoch)| format!(" The model of epoch {epoch} is kept."));
                self.fail_run(format!("the worker was lost {recoveries} times in this run; training stopped.{kept}"));
                notice += ", without the run, which lost its worker too often";
            }
            Some((config, (backend, workers), checkpoint, _)) => {
                let completed = checkpoint.as_ref().map_or(0, |(_, epoch)| *epoch);
                let resumed = self.loader.with_untracked(|loader| {
                    let (train, test) = (loader.split(SplitName::Train), loader.split(SplitName::Test));
                    let (Some(train), Some(test)) = (train, test) else {
                        return Err("the data files are no longer loaded".to_owned());
                    };
                    self.with_worker(|worker| match &checkpoint {
                        Some((bytes, epoch)) => worker.resume(config, backend, workers, train, test, *epoch, bytes),
                        None => worker.start(config, backend, workers, train, test),
                    })
                });
                match resumed {
                    Ok(()) => {
                        notice += &if completed > 0 {
                            format!(" and resumed training from the checkpoint of epoch {completed}")
                        } else {
                            " and started training again (no epoch had ended, so there was no checkpoint)".to_owned()
                        };
                        let note = format!("{notice}.");
                        self.progress.update(|progress| progress.resume_after(completed, note));
                    }
                    Err(message) => {
                        self.restore_model();
                        notice += &format!("; training could not go on: {message}");
                        self.fail_run(message);
                    }
                }
            }
            None => {
                if self.restore_model() {
                    notice += " and reloaded the model";
                }
            }
        }
        web_sys::console::warn_1(&format!("googlenet-web: {notice}.").into());
        self.device_notice.set(Some(format!("{notice}.")));
    }

    /// Ends the run under way as failed, as the worker's `Failed` would.
    fn fail_run(&self, message: String) {
        self.run.set_value(None);
        self.progress.update(|progress| progress.apply(Update::Failed { message }));
    }

    /// Gives a new worker the model the last one held; `false` when there was none.
    fn restore_model(&self) -> bool {
        let Some((bytes, origin)) = self.model_file.get_value() else { return false };
        let backend = self.preference.get_untracked();
        self.pending_file.set_value(Some(bytes.clone()));
        self.with_worker(|worker| worker.load_weights(origin, backend, &bytes)).is_ok()
    }

    pub fn control(&self, command: Command) {
        self.send(command);
    }

    /// Classifies one 28×28 frame (the answer arrives in [`Self::prediction`]).
    pub fn classify(&self, frame: Vec<u8>) {
        let send_now = self.queue.try_update_value(|queue| {
            if queue.in_flight.is_some() {
                queue.pending = Some(frame.clone());
                None
            } else {
                queue.next_id += 1;
                queue.in_flight = Some(queue.next_id);
                Some(queue.next_id)
            }
        });
        if let Some(Some(id)) = send_now {
            self.send(Command::Classify { id, frames: frame, backend: self.preference.get_untracked() });
        }
    }

    /// Forgets the shown prediction: the picture is gone.
    pub fn clear_prediction(&self) {
        self.queue.update_value(|queue| {
            queue.pending = None;
            queue.current_from = queue.next_id + 1;
        });
        self.prediction.set(None);
    }

    pub fn download_weights(&self) {
        self.send(Command::SaveWeights { purpose: WeightsPurpose::Download });
    }

    pub fn load_weights(&self, name: String, bytes: &Uint8Array) {
        self.weights_note.set(Some((format!("Reading {name}…"), false)));
        let backend = self.preference.get_untracked();
        let origin = ModelOrigin::File { name };
        self.pending_file.set_value(Some(bytes.clone()));
        if let Err(message) = self.with_worker(|worker| worker.load_weights(origin, backend, bytes)) {
            self.weights_note.set(Some((message, true)));
        }
    }

    /// Runs the benchmark in the worker on `sample` (real training images).
    pub fn run_benchmark(&self, config: BenchConfig, workers: usize, sample: Split<'_>) -> Result<(), String> {
        let backend = self.preference.get_untracked();
        self.with_worker(|worker| worker.benchmark(config, backend, workers, sample))?;
        self.benchmark.set(BenchState { running: true, ..BenchState::default() });
        Ok(())
    }

    /// Asks for the first `channels` maps of every branch of Inception block `block` for `frame`.
    pub fn request_activations(&self, frame: Vec<u8>, block: usize, channels: usize) {
        self.latest_inside.update_value(|id| *id += 1);
        let id = self.latest_inside.get_value();
        self.send(Command::Activations { id, frame, block, channels, backend: self.preference.get_untracked() });
    }

    pub fn request_filters(&self) {
        self.send(Command::Filters { backend: self.preference.get_untracked() });
    }

    /// Drops the restored autosave: from storage and as the model in use.
    pub fn discard_autosave(&self) {
        let session = *self;
        leptos::task::spawn_local(async move {
            match storage::discard().await {
                Ok(()) => session.weights_note.set(Some(("The autosave is discarded.".into(), false))),
                Err(message) => session.weights_note.set(Some((message, true))),
            }
        });
        self.restored.set(None);
        self.model_file.set_value(None);
        self.send(Command::ResetModel);
    }

    async fn restore(&self) {
        match storage::load().await {
            Ok(Some(autosave)) => {
                let when = autosave.saved_at.to_locale_string("default", &Default::default());
                let what = autosave.info.as_ref().map_or("weights".into(), |info| {
                    let mut what = format!("weights of {}", info.epochs.map_or("a model".into(), |e| format!("{e} epoch(s)")));
                    if let Some(accuracy) = info.test_accuracy {
                        what += &format!(" ({:.1} % test accuracy)", accuracy * 100.0);
                    }
                    what
                });
                self.restored.set(Some(format!("Restored the {what} this browser saved on {when}.")));
                let backend = self.preference.get_untracked();
                self.pending_file.set_value(Some(autosave.bytes.clone()));
                let restored = self.with_worker(|worker| worker.load_weights(ModelOrigin::Restored, backend, &autosave.bytes));
                if let Err(message) = restored {
                    self.weights_note.set(Some((message, true)));
                }
            }
            Ok(None) => {}
            Err(message) => self.weights_note.set(Some((message, true))),
        }
    }

    fn receive(&self, update: Update, weights: Option<Uint8Array>) {
        match update {
            Update::DeviceLost { .. } | Update::Crashed { .. } if self.recovering.get_value() => {}
            Update::DeviceLost { message } => self.start_recovery(format!("The GPU device was lost ({message})")),
            Update::Crashed { message } => self.start_recovery(format!("The training worker stopped ({message})")),
            Update::Model { info } => {
                // The bytes of a file the worker accepted are what a new worker would get.
                if let Some(ModelInfo { origin: origin @ (ModelOrigin::File { .. } | ModelOrigin::Restored), .. }) = &info {
                    if let Some(bytes) = self.pending_file.try_update_value(Option::take).flatten() {
                        self.model_file.set_value(Some((bytes, origin.clone())));
                    }
                }
                // Another model: its filters are read afresh when shown.
                self.filters.set(None);
                match &info {
                    None => {
                        self.prediction.set(None);
                        self.activations.set(None);
                    }
                    Some(ModelInfo { origin: ModelOrigin::File { name }, .. }) => {
                        self.weights_note.set(Some((format!("Loaded {name}."), false)));
                    }
                    Some(_) => {}
                }
                self.model.set(info);
            }
            Update::Predictions { id, probabilities, milliseconds } => {
                let (current, next) = self.queue.try_update_value(|queue| {
                    if queue.in_flight == Some(id) {
                        queue.in_flight = None;
                    }
                    let next = queue.pending.take().map(|frame| {
                        queue.next_id += 1;
                        queue.in_flight = Some(queue.next_id);
                        (queue.next_id, frame)
                    });
                    (id >= queue.current_from, next)
                }).unwrap_or((false, None));
                if current {
                    if self.first_prediction_ms.get_value().is_none() {
                        self.first_prediction_ms.set_value(Some(benchmark::now_ms()));
                    }
                    if let Some(&probabilities) = probabilities.first() {
                        self.prediction.set(Some(PredictionReport { prediction: Prediction { probabilities }, milliseconds }));
                    }
                }
                if let Some((id, frames)) = next {
                    self.send(Command::Classify { id, frames, backend: self.preference.get_untracked() });
                }
            }
            Update::ClassifyFailed { id, message } => {
                self.queue.update_value(|queue| {
                    if queue.in_flight == Some(id) {
                        queue.in_flight = None;
                    }
                });
                self.weights_note.set(Some((message, true)));
            }
            Update::Weights { purpose, info } => match (purpose, weights) {
                (WeightsPurpose::Download, Some(bytes)) => match download(&bytes, &file_name(&info)) {
                    Ok(()) => self.weights_note.set(Some((format!("Saved {} ({:.1} MB).", file_name(&info), f64::from(bytes.length()) / 1e6), false))),
                    Err(message) => self.weights_note.set(Some((message, true))),
                },
                (WeightsPurpose::Autosave, Some(bytes)) => {
                    // The run's checkpoint, and the model a new worker would get.
                    let epoch = info.epochs.unwrap_or(0);
                    self.run.update_value(|run| {
                        if let Some(run) = run {
                            run.checkpoint = Some((bytes.clone(), epoch));
                        }
                    });
                    self.model_file.set_value(Some((bytes.clone(), ModelOrigin::Trained)));
                    let session = *self;
                    leptos::task::spawn_local(async move {
                        if let Err(message) = storage::save(&bytes, &info).await {
                            session.weights_note.set(Some((message, true)));
                        }
                    });
                }
                (_, None) => self.weights_note.set(Some(("the worker sent no weights file".into(), true))),
            },
            Update::WeightsFailed { message } => {
                self.pending_file.set_value(None);
                self.weights_note.set(Some((message, true)));
            }
            Update::Activations { id, block, branches } => {
                if id == self.latest_inside.get_value() {
                    self.inside_error.set(None);
                    self.activations.set(Some((block, branches)));
                }
            }
            Update::Filters { values } => self.filters.set(Some(values)),
            Update::InsideFailed { message } => self.inside_error.set(Some(message)),
            Update::Benchmarking { stage } => self.benchmark.update(|state| state.stage = Some(stage.describe())),
            Update::Benchmarked { report, worker_memory_bytes, device_memory } => {
                let session = *self;
                leptos::task::spawn_local(async move {
                    let first_prediction = session.first_prediction_ms.get_value();
                    let page = benchmark::page_figures(session.page_ready_ms, first_prediction, worker_memory_bytes, device_memory).await;
                    // The headless runner (benches/browser.py) reads this line.
                    web_sys::console::log_1(&format!("BENCHMARK_JSON {}", BenchState::json(&report, &page).replace('\n', " ")).into());
                    session.benchmark.set(BenchState { result: Some((report, page)), ..BenchState::default() });
                });
            }
            Update::BenchmarkFailed { message } => self.benchmark.set(BenchState { error: Some(message), ..BenchState::default() }),
            update => {
                if matches!(update, Update::Finished { .. } | Update::Failed { .. }) {
                    self.run.set_value(None);
                }
                self.progress.update(|progress| progress.apply(update));
            }
        }
    }
}

/// `googlenet-fashion-mnist-3-epochs.safetensors`, or without the count when unknown.
fn file_name(info: &ModelInfo) -> String {
    match info.epochs {
        Some(epochs) => format!("googlenet-fashion-mnist-{epochs}-epochs.safetensors"),
        None => "googlenet-fashion-mnist.safetensors".into(),
    }
}

fn download(bytes: &Uint8Array, name: &str) -> Result<(), String> {
    let failed = |error| format!("the browser could not save the file: {error:?}");
    let options = BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let blob = Blob::new_with_u8_array_sequence_and_options(&Array::of1(bytes), &options).map_err(failed)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(failed)?;
    let document = web_sys::window().and_then(|window| window.document()).ok_or("no document")?;
    let anchor: HtmlAnchorElement = document.create_element("a").map_err(failed)?.unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // Give the download time to take its own reference to the blob.
    set_timeout(move || drop(Url::revoke_object_url(&url)), std::time::Duration::from_secs(30));
    Ok(())
}
