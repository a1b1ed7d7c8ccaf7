//! The page's side: starts the worker and talks to it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, ErrorEvent, MessageEvent, Url, Worker, WorkerOptions, WorkerType};

use super::{JSON, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, WEIGHTS};
use crate::data::Split;
use crate::bench::BenchConfig;
use crate::engine::BackendPreference;
use crate::train::{Command, ModelOrigin, TrainConfig, Update};

/// A worker's first script: loads the page's glue and compiled module, then hands over to
/// the entry point it is told ([`super::start_training_worker`], or
/// [`super::start_replica_worker`] for the replicas a training worker starts). Module workers
/// run it in every browser with WebGPU, and in Firefox.
const BOOTSTRAP: &str = r#"
self.onmessage = async ({ data }) => {
  self.onmessage = null;
  try {
    const glue = await import(data.glue);
    await glue.default({ module_or_path: data.module });
    glue[data.entry]();
  } catch (error) {
    const message = "the " + self.name + " worker could not start: " + error;
    self.postMessage({ json: JSON.stringify({ Failed: { message } }) });
  }
};
"#;

/// The worker names, which also tell this module, once it runs in a worker, which part it plays.
pub(super) const TRAINER_NAME: &str = "googlenet-trainer";
pub(super) const REPLICA_NAME: &str = "googlenet-replica";

#[wasm_bindgen]
extern "C" {
    /// The URL of the wasm-bindgen glue this code was loaded by (the page's, or a test's).
    #[wasm_bindgen(thread_local_v2, js_namespace = ["import", "meta"], js_name = url)]
    static GLUE_URL: String;
}

/// A training worker. Commands sent before it is ready wait in a queue. Dropping it ends
/// the worker (and its run).
pub struct TrainerWorker {
    worker: Worker,
    ready: Rc<Cell<bool>>,
    queue: Rc<RefCell<Vec<(JsValue, Array)>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl TrainerWorker {
    /// Starts a worker; `on_update` hears everything it reports, with the weights file that
    /// rides beside a `Weights` update.
    pub fn spawn(on_update: impl Fn(Update, Option<Uint8Array>) + 'static) -> Result<Self, String> {
        let (worker, url) = spawn_module_worker(TRAINER_NAME)?;

        let on_update = Rc::new(on_update);
        let ready = Rc::new(Cell::new(false));
        let queue: Rc<RefCell<Vec<(JsValue, Array)>>> = Rc::default();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let (on_update, ready, queue, worker, url) = (on_update.clone(), ready.clone(), queue.clone(), worker.clone(), url);
            move |event: MessageEvent| {
                let json = Reflect::get(&event.data(), &JSON.into()).ok().and_then(|value| value.as_string());
                let update = match json.as_deref().map(Update::from_json) {
                    Some(Ok(update)) => update,
                    Some(Err(message)) => Update::Failed { message },
                    None => Update::Failed { message: "the training worker sent an unreadable message".into() },
                };
                if update == Update::Ready && !ready.replace(true) {
                    let _ = Url::revoke_object_url(&url);
                    for (message, transfer) in queue.take() {
                        let _ = worker.post_message_with_transfer(&message, &transfer);
                    }
                }
                let weights = Reflect::get(&event.data(), &WEIGHTS.into()).ok().and_then(|value| value.dyn_into::<Uint8Array>().ok());
                on_update(update, weights);
            }
        });
        // An error the worker did not catch: it may be unusable now, as after a panic.
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            on_update(Update::Crashed { message: event.message() }, None);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        hand_over(&worker, "startTrainingWorker")?;
        Ok(Self { worker, ready, queue, _on_message: on_message, _on_error: on_error })
    }

    pub fn send(&self, command: &Command) {
        self.post(envelope(command), Array::new());
    }

    /// Starts a run on copies of the two splits, which move to the worker without a second
    /// copy (their buffers are transferred).
    /// On the CPU backend the run trains on `workers` workers (see [`Command::Start`]).
    pub fn start(&self, config: TrainConfig, backend: BackendPreference, workers: usize, train: Split<'_>, test: Split<'_>) {
        self.start_run(config, backend, workers, train, test, None);
    }

    /// Goes on with a run after epoch `completed`, from `checkpoint` (that epoch's weights
    /// file, copied): what the page does when a worker was lost mid-run.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        &self,
        config: TrainConfig,
        backend: BackendPreference,
        workers: usize,
        train: Split<'_>,
        test: Split<'_>,
        completed: usize,
        checkpoint: &Uint8Array,
    ) {
        self.start_run(config, backend, workers, train, test, Some((completed, checkpoint)));
    }

    fn start_run(&self, config: TrainConfig, backend: BackendPreference, workers: usize, train: Split<'_>, test: Split<'_>, checkpoint: Option<(usize, &Uint8Array)>) {
        let parts = [(TRAIN_IMAGES, train.images), (TRAIN_LABELS, train.labels), (TEST_IMAGES, test.images), (TEST_LABELS, test.labels)];
        let resume_after = checkpoint.map_or(0, |(completed, _)| completed);
        let (message, transfer) = Self::with_bytes(&Command::Start { config, backend, resume_after, workers }, &parts);
        if let Some((_, bytes)) = checkpoint {
            let copy = Uint8Array::new(bytes);
            let _ = Reflect::set(&message, &WEIGHTS.into(), &copy);
            transfer.push(&copy.buffer());
        }
        self.post(message, transfer);
    }

    /// Runs the benchmark on a copy of `sample` (its training images), transferred likewise.
    pub fn benchmark(&self, config: BenchConfig, backend: BackendPreference, workers: usize, sample: Split<'_>) {
        self.post_with_bytes(&Command::Benchmark { config, backend, workers }, &[(TRAIN_IMAGES, sample.images), (TRAIN_LABELS, sample.labels)]);
    }

    /// Sends `command` with a copy of each byte slice beside it under its key; the copies'
    /// buffers are transferred, not copied again.
    fn post_with_bytes(&self, command: &Command, parts: &[(&str, &[u8])]) {
        let (message, transfer) = Self::with_bytes(command, parts);
        self.post(message, transfer);
    }

    /// The message for `command` with a copy of each byte slice beside it, and the buffers to
    /// transfer.
    fn with_bytes(command: &Command, parts: &[(&str, &[u8])]) -> (JsValue, Array) {
        let message = envelope(command);
        let transfer = Array::new();
        for &(key, bytes) in parts {
            let array = Uint8Array::from(bytes);
            transfer.push(&array.buffer());
            let _ = Reflect::set(&message, &key.into(), &array);
        }
        (message, transfer)
    }

    /// Asks the worker to use the weights file `bytes` (a copy goes; `bytes` stays usable).
    pub fn load_weights(&self, origin: ModelOrigin, backend: BackendPreference, bytes: &Uint8Array) {
        let message = envelope(&Command::LoadWeights { origin, backend });
        let copy = Uint8Array::new(bytes);
        let _ = Reflect::set(&message, &WEIGHTS.into(), &copy);
        self.post(message, Array::of1(&copy.buffer()));
    }

    fn post(&self, message: JsValue, transfer: Array) {
        if self.ready.get() {
            let _ = self.worker.post_message_with_transfer(&message, &transfer);
        } else {
            self.queue.borrow_mut().push((message, transfer));
        }
    }
}

/// Starts a module worker named `name` on the bootstrap script; it waits for [`hand_over`].
/// Also returns the script's URL, to revoke once the worker is ready. Works from the page and
/// from inside a worker (the training worker starts its replicas so).
pub(super) fn spawn_module_worker(name: &str) -> Result<(Worker, String), String> {
    let failed = |what: &str, error: JsValue| format!("the {name} worker could not start ({what}: {error:?})");
    let options = BlobPropertyBag::new();
    options.set_type("text/javascript");
    let blob = Blob::new_with_str_sequence_and_options(&Array::of1(&BOOTSTRAP.into()), &options).map_err(|error| failed("script", error))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|error| failed("script URL", error))?;
    let worker_options = WorkerOptions::new();
    worker_options.set_type(WorkerType::Module);
    worker_options.set_name(name);
    let worker = Worker::new_with_options(&url, &worker_options).map_err(|error| failed("Worker", error))?;
    Ok((worker, url))
}

/// Sends a worker from [`spawn_module_worker`] this module (compiled) and its glue's URL, and
/// the glue's export to start with.
pub(super) fn hand_over(worker: &Worker, entry: &str) -> Result<(), String> {
    let bootstrap = Object::new();
    let _ = Reflect::set(&bootstrap, &"glue".into(), &GLUE_URL.with(|url| JsValue::from_str(url)));
    let _ = Reflect::set(&bootstrap, &"module".into(), &wasm_bindgen::module());
    let _ = Reflect::set(&bootstrap, &"entry".into(), &entry.into());
    worker.post_message(&bootstrap).map_err(|error| format!("the worker could not be handed its module: {error:?}"))
}

impl Drop for TrainerWorker {
    fn drop(&mut self) {
        // Nothing it still sends may reach the closures, which go with it.
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

fn envelope(command: &Command) -> JsValue {
    let message = Object::new();
    let _ = Reflect::set(&message, &JSON.into(), &command.to_json().into());
    message.into()
}
