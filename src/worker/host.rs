//! The worker's side: trains one run at a time, unit by unit, and between units answers
//! pause, resume and stop, and reports progress to the page. It also owns the model the page
//! classifies with (the last epoch's, or one loaded from a file) and writes and reads weight files.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::module::Module;
use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, WorkerGlobalScope};

use super::{JSON, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, WEIGHTS};
use crate::bench::{self, BenchConfig};
use crate::data::Dataset;
use crate::engine::{self, Backend, BackendPreference};
use crate::model::GoogLeNetConfig;
use crate::train::data_parallel::ReplicaPool;
use super::replica::WorkerReplicas;
use crate::infer;
use crate::model::weights;
use crate::model::GoogLeNet;
use crate::train::{Command, FeatureMaps, ModelInfo, ModelOrigin, Progress, TrainConfig, TrainingRun, Update, WeightsPurpose};
use burn::tensor::Tensor;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Control {
    #[default]
    Run,
    Pause,
    Stop,
}

#[derive(Default)]
struct Host {
    control: Cell<Control>,
    busy: Cell<bool>,
    /// The model the page classifies with: the running training's latest epoch, the last
    /// run's (what it learned survives a stop or a failure), or a loaded file's.
    model: RefCell<Option<(GoogLeNet, ModelInfo)>>,
    /// The device last started, for the preference it was started for: asking the browser for
    /// an adapter on every classification would cost each one a round trip.
    engine: RefCell<Option<(BackendPreference, engine::Engine)>>,
    /// Test hook: crash a replica before the next unit of work.
    lose_replica: Cell<bool>,
}

impl Host {
    async fn engine(&self, preference: BackendPreference) -> engine::Engine {
        if let Some((_, engine)) = self.engine.borrow().as_ref().filter(|(started_for, _)| *started_for == preference) {
            return engine.clone();
        }
        let engine = engine::start(preference).await;
        self.engine.replace(Some((preference, engine.clone())));
        engine
    }
}

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Makes this worker listen for commands; called once the wasm module is instantiated in
/// the worker (a second call does nothing).
#[wasm_bindgen(js_name = startTrainingWorker)]
pub fn start_training_worker() {
    if STARTED.replace(true) {
        return;
    }
    // A panic leaves this module unusable: say so to the page, which starts a new worker.
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(&Update::Crashed { message: info.to_string() });
    }));
    engine::on_device_lost(|message| post(&Update::DeviceLost { message }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let host = Rc::new(Host::default());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| handle(&host, event.data()));
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&Update::Ready);
}

fn handle(host: &Rc<Host>, data: JsValue) {
    let json = Reflect::get(&data, &JSON.into()).ok().and_then(|value| value.as_string());
    let command = match json.as_deref().map(Command::from_json) {
        Some(Ok(command)) => command,
        Some(Err(message)) => return post(&Update::Failed { message }),
        None => return post(&Update::Failed { message: "the worker got a message without a command".into() }),
    };
    match command {
        Command::Start { config, backend, resume_after, workers } => {
            if host.busy.get() {
                return post(&Update::Failed { message: "a run is already under way: stop it first".into() });
            }
            let train = dataset(&data, TRAIN_IMAGES, TRAIN_LABELS);
            let test = dataset(&data, TEST_IMAGES, TEST_LABELS);
            let checkpoint = (resume_after > 0).then(|| (weights_beside(&data), resume_after));
            host.busy.set(true);
            host.control.set(Control::Run);
            wasm_bindgen_futures::spawn_local(run_training(host.clone(), config, backend, workers, train, test, checkpoint));
        }
        Command::Pause if host.busy.get() && host.control.get() == Control::Run => host.control.set(Control::Pause),
        Command::Resume if host.control.get() == Control::Pause => host.control.set(Control::Run),
        Command::Stop if host.busy.get() => host.control.set(Control::Stop),
        Command::Pause | Command::Resume | Command::Stop => {}
        Command::Classify { id, frames, backend } => wasm_bindgen_futures::spawn_local(classify(host.clone(), id, frames, backend)),
        Command::SaveWeights { purpose } => wasm_bindgen_futures::spawn_local(save_weights(host.clone(), purpose)),
        Command::LoadWeights { origin, backend } => {
            wasm_bindgen_futures::spawn_local(load_weights(host.clone(), weights_beside(&data), origin, backend));
        }
        Command::Activations { id, frame, block, channels, backend } => {
            wasm_bindgen_futures::spawn_local(activations(host.clone(), id, frame, block, channels, backend));
        }
        Command::Filters { backend } => wasm_bindgen_futures::spawn_local(filters(host.clone(), backend)),
        Command::Benchmark { config, backend, workers } => {
            // A benchmark beside a training run would measure neither.
            if host.busy.get() {
                return post(&Update::BenchmarkFailed { message: "training is under way: stop it before benchmarking".into() });
            }
            let sample = dataset(&data, TRAIN_IMAGES, TRAIN_LABELS);
            host.busy.set(true);
            wasm_bindgen_futures::spawn_local(benchmark(host.clone(), config, backend, workers, sample));
        }
        Command::ResetModel => {
            host.model.replace(None);
            post(&Update::Model { info: None });
        }
        Command::LoseReplica => host.lose_replica.set(true),
        Command::LoseDevice => {
            if !engine::lose_device() {
                web_sys::console::warn_1(&"LoseDevice: this worker holds no WebGPU device".into());
            }
        }
        Command::Memory => {
            let device = host.engine.borrow().as_ref().and_then(|(_, engine)| engine::device_memory(&engine.device));
            post(&Update::Memory {
                wasm_bytes: wasm_memory_bytes(),
                device_in_use: device.map(|(in_use, _)| in_use),
                device_reserved: device.map(|(_, reserved)| reserved),
            });
        }
    }
}

/// The model for inference, on the device `backend` asks for (moved there if it is elsewhere).
async fn model_on(host: &Host, backend: BackendPreference) -> Result<(GoogLeNet, ModelInfo, burn::tensor::Device), String> {
    let (model, info) = host.model.borrow().clone().ok_or("there is no trained model yet")?;
    let device = host.engine(backend).await.device;
    if model.devices().first() == Some(&device) {
        return Ok((model, info, device));
    }
    // A model trained on one device and used on another: through the CPU, read asynchronously.
    let moved = weights::to_cpu(&model).await.map_err(|error| error.to_string())?.to_device(&device);
    host.model.replace(Some((moved.clone(), info.clone())));
    Ok((moved, info, device))
}

async fn classify(host: Rc<Host>, id: u64, frames: Vec<u8>, backend: BackendPreference) {
    let started = js_sys::Date::now();
    let result = match model_on(&host, backend).await {
        Ok((model, info, device)) => infer::classify(&model, info.input_size, &frames, &device).await,
        Err(message) => Err(message),
    };
    post(&match result {
        Ok(predictions) => Update::Predictions {
            id,
            probabilities: predictions.into_iter().map(|p| p.probabilities).collect(),
            milliseconds: js_sys::Date::now() - started,
        },
        Err(message) => Update::ClassifyFailed { id, message },
    });
}

async fn activations(host: Rc<Host>, id: u64, frame: Vec<u8>, block: usize, channels: usize, backend: BackendPreference) {
    let result = async {
        let (model, info, device) = model_on(&host, backend).await?;
        let input = crate::data::images_to_input(&frame, info.input_size, &device);
        let branches = model.inception_branches(input, block).ok_or(format!("there is no Inception block {block}"))?;
        let shapes: Vec<[usize; 4]> = branches.iter().map(Tensor::dims).collect();
        // The first channels of every branch, in one readback.
        let firsts: Vec<Tensor<1>> = branches
            .into_iter()
            .map(|branch| {
                let [_, c, h, w] = branch.dims();
                branch.slice([0..1, 0..channels.min(c), 0..h, 0..w]).flatten(0, 3)
            })
            .collect();
        let values = engine::read_floats(Tensor::cat(firsts, 0)).await.map_err(|error| format!("could not read the maps back: {error}"))?;
        let mut offset = 0;
        let branches = shapes
            .into_iter()
            .map(|shape| {
                let len = channels.min(shape[1]) * shape[2] * shape[3];
                offset += len;
                FeatureMaps { shape, values: values[offset - len..offset].to_vec() }
            })
            .collect();
        Ok::<_, String>(branches)
    }
    .await;
    post(&match result {
        Ok(branches) => Update::Activations { id, block, branches },
        Err(message) => Update::InsideFailed { message },
    });
}

async fn filters(host: Rc<Host>, backend: BackendPreference) {
    let result = match model_on(&host, backend).await {
        Ok((model, _, _)) => engine::read_floats(model.stem_filters()).await.map_err(|error| format!("could not read the filters back: {error}")),
        Err(message) => Err(message),
    };
    post(&match result {
        Ok(values) => Update::Filters { values },
        Err(message) => Update::InsideFailed { message },
    });
}

async fn benchmark(host: Rc<Host>, config: BenchConfig, backend: BackendPreference, workers: usize, sample: Dataset) {
    let engine = host.engine(backend).await;
    let result = async {
        let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
        let performance = scope.performance().ok_or("this worker has no clock (performance)")?;
        // The replicas start with any weights: the benchmark gives them each run's own.
        let model = GoogLeNetConfig::new().with_input_size(config.input_size).init(&engine.device);
        let (mut replicas, note) = start_replicas(&model, &engine, workers, config.input_size, crate::train::SEED_LEARNING_RATE).await;
        if let Some(note) = note {
            web_sys::console::warn_1(&note.into());
        }
        let summary = match replicas.len() {
            0 => engine.summary(),
            n => format!("{}, {} workers", engine.summary(), n + 1),
        };
        let report = bench::run(&config, summary, &engine.device, &mut replicas, sample.split(), || performance.now(), |stage| {
            post(&Update::Benchmarking { stage })
        })
        .await?;
        Ok::<_, String>((report, replicas.memory_bytes()))
    }
    .await;
    host.busy.set(false);
    post(&match result {
        Ok((report, replica_memory)) => Update::Benchmarked {
            report,
            worker_memory_bytes: wasm_memory_bytes() + replica_memory,
            device_memory: engine::device_memory(&engine.device),
        },
        Err(message) => Update::BenchmarkFailed { message },
    });
}

/// The size of this module's WebAssembly memory (it only grows: this is its peak).
pub fn wasm_memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

async fn save_weights(host: Rc<Host>, purpose: WeightsPurpose) {
    let Some((model, info)) = host.model.borrow().clone() else {
        return post(&Update::WeightsFailed { message: "there is no trained model to save yet".into() });
    };
    let mut notes = vec![("app", "googlenet-web (GoogLeNet, D2L 5.9, Fashion-MNIST)".to_owned())];
    notes.extend(info.epochs.map(|epochs| ("epochs", epochs.to_string())));
    notes.extend(info.test_accuracy.map(|accuracy| ("test_accuracy", format!("{accuracy:.4}"))));
    let bytes = match weights::to_cpu(&model).await.and_then(|cpu| weights::save(&cpu, info.input_size, &notes)) {
        Ok(bytes) => bytes,
        Err(error) => return post(&Update::WeightsFailed { message: error.to_string() }),
    };
    post_with(&Update::Weights { purpose, info }, Some(&bytes));
}

async fn load_weights(host: Rc<Host>, bytes: Vec<u8>, origin: ModelOrigin, backend: BackendPreference) {
    let device = host.engine(backend).await.device;
    match weights::load(&bytes, &device) {
        Ok((model, file)) => {
            let note = |key: &str| file.metadata.get(key);
            let info = ModelInfo {
                origin,
                input_size: file.input_size,
                epochs: note("epochs").and_then(|text| text.parse().ok()),
                test_accuracy: note("test_accuracy").and_then(|text| text.parse().ok()),
            };
            host.model.replace(Some((model, info.clone())));
            post(&Update::Model { info: Some(info) });
        }
        Err(error) => post(&Update::WeightsFailed { message: error.to_string() }),
    }
}

/// The weights file sent beside a command (empty when there is none: refused as empty).
fn weights_beside(data: &JsValue) -> Vec<u8> {
    Reflect::get(data, &WEIGHTS.into())
        .ok()
        .and_then(|value| value.dyn_into::<Uint8Array>().ok())
        .map(|array| array.to_vec())
        .unwrap_or_default()
}

/// A split sent with `Start`; empty when it is missing (the run then says which is missing).
fn dataset(data: &JsValue, images: &str, labels: &str) -> Dataset {
    let bytes = |key: &str| {
        Reflect::get(data, &key.into())
            .ok()
            .and_then(|value| value.dyn_into::<Uint8Array>().ok())
            .map(|array| array.to_vec())
            .unwrap_or_default()
    };
    Dataset::new(bytes(images), bytes(labels)).unwrap_or_default()
}

/// The replicas for a run on `engine` with `workers` workers in all, holding `model`'s weights:
/// none on WebGPU (one device trains), and none when they cannot start (the note says why).
async fn start_replicas(model: &GoogLeNet, engine: &engine::Engine, workers: usize, input_size: usize, learning_rate: f64) -> (WorkerReplicas, Option<String>) {
    if workers <= 1 {
        return (WorkerReplicas::none(), None);
    }
    if engine.backend != Backend::Cpu {
        return (WorkerReplicas::none(), Some("WebGPU trains on one worker: the GPU is one device".into()));
    }
    let started = async {
        let cpu = weights::to_cpu(model).await.map_err(|error| error.to_string())?;
        let bytes = weights::save(&cpu, input_size, &[]).map_err(|error| error.to_string())?;
        WorkerReplicas::start(workers - 1, &bytes, learning_rate).await
    };
    match started.await {
        Ok(replicas) => (replicas, None),
        Err(message) => (WorkerReplicas::none(), Some(format!("the replica workers could not start ({message}): training on one worker"))),
    }
}

/// Trains a run on `workers` workers (data-parallel on the CPU backend); `checkpoint`: the
/// weights file of epoch n to resume after, and n.
async fn run_training(
    host: Rc<Host>,
    config: TrainConfig,
    backend: BackendPreference,
    workers: usize,
    train: Dataset,
    test: Dataset,
    checkpoint: Option<(Vec<u8>, usize)>,
) {
    let engine = host.engine(backend).await;
    post(&Update::Engine { backend: engine.backend, summary: engine.summary() });
    let started = TrainingRun::new(config, train, test, &engine.device).map_err(|error| error.to_string()).and_then(|run| {
        let Some((bytes, completed)) = checkpoint else { return Ok(run) };
        let (model, file) = weights::load(&bytes, &engine.device).map_err(|error| format!("the checkpoint could not be read: {error}"))?;
        if file.input_size != run.config().input_size {
            return Err(format!("the checkpoint is for {0}×{0} images, the run for {1}×{1}", file.input_size, run.config().input_size));
        }
        // Classify with the checkpoint's model until the next epoch ends.
        let info = ModelInfo {
            origin: ModelOrigin::Trained,
            input_size: file.input_size,
            epochs: Some(completed),
            test_accuracy: file.metadata.get("test_accuracy").and_then(|text| text.parse().ok()),
        };
        host.model.replace(Some((model.clone(), info.clone())));
        post(&Update::Model { info: Some(info) });
        Ok(run.starting_from(model).resuming_after(completed))
    });
    let mut run = match started {
        Ok(run) => run,
        Err(message) => {
            host.busy.set(false);
            return post(&Update::Failed { message });
        }
    };
    let (mut replicas, note) = start_replicas(run.model(), &engine, workers, run.config().input_size, run.config().learning_rate).await;
    post(&Update::Workers { count: replicas.len() + 1, note });
    let (train_size, test_size) = run.sizes();
    post(&Update::Started {
        train_size,
        test_size,
        steps_per_epoch: run.steps_per_epoch(),
        epochs: run.config().epochs,
        resumed_after: run.epochs_done(),
    });

    let (mut train_seconds, mut test_seconds) = (0.0, 0.0);
    let outcome = loop {
        match host.control.get() {
            Control::Stop => break Ok(true),
            Control::Pause => {
                post(&Update::Paused);
                while host.control.get() == Control::Pause {
                    sleep(50).await;
                }
                if host.control.get() == Control::Run {
                    post(&Update::Resumed);
                }
                continue;
            }
            Control::Run => {}
        }
        if host.lose_replica.replace(false) && !replicas.crash(0) {
            web_sys::console::warn_1(&"LoseReplica: this run has no replicas".into());
        }
        let started = js_sys::Date::now();
        let replaced = replicas.replaced;
        let advanced = run.advance_with(&mut replicas).await;
        if replicas.replaced > replaced {
            post(&Update::ReplicaReplaced {
                message: format!("A replica worker was lost and replaced; the step it was in was done again (epoch {}).", run.epochs_done() + 1),
            });
        }
        match advanced {
            Ok(Some(progress)) => {
                let seconds = (js_sys::Date::now() - started) / 1000.0;
                match &progress {
                    Progress::Step(_) => train_seconds += seconds,
                    Progress::Testing { .. } => test_seconds += seconds,
                    Progress::Epoch(report) => {
                        test_seconds += seconds;
                        // Classify with, and autosave, what this epoch learned.
                        let info = ModelInfo {
                            origin: ModelOrigin::Trained,
                            input_size: run.config().input_size,
                            epochs: Some(report.epoch),
                            test_accuracy: Some(report.test_accuracy),
                        };
                        host.model.replace(Some((run.model().valid(), info.clone())));
                        post(&Update::Model { info: Some(info) });
                        post(&Update::Progress { progress, train_seconds, test_seconds });
                        save_weights(host.clone(), WeightsPurpose::Autosave).await;
                        sleep(0).await;
                        continue;
                    }
                }
                post(&Update::Progress { progress, train_seconds, test_seconds });
            }
            Ok(None) => break Ok(false),
            Err(error) => {
                // A lost device fails the readback under way; its callback may come a moment
                // later. The page hears of the loss from `DeviceLost`, not as a failed run.
                sleep(100).await;
                if engine::device_lost().is_some() {
                    host.busy.set(false);
                    return;
                }
                break Err(error.to_string());
            }
        }
        // On the CPU backend a unit never waits for anything: let the page's commands in.
        sleep(0).await;
    };
    host.busy.set(false);
    post(&match outcome {
        Ok(stopped) => Update::Finished { stopped },
        Err(message) => Update::Failed { message },
    });
}

fn post(update: &Update) {
    post_with(update, None);
}

/// Posts `update`, with a weights file beside it (its buffer transferred, not copied).
fn post_with(update: &Update, weights: Option<&[u8]>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let message = Object::new();
    let _ = Reflect::set(&message, &JSON.into(), &update.to_json().into());
    let transfer = js_sys::Array::new();
    if let Some(bytes) = weights {
        let array = Uint8Array::from(bytes);
        transfer.push(&array.buffer());
        let _ = Reflect::set(&message, &WEIGHTS.into(), &array);
    }
    if let Err(error) = scope.post_message_with_transfer(&message, &transfer) {
        web_sys::console::error_2(&"the training worker could not post to the page".into(), &error);
    }
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
