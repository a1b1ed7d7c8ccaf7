//! Data-parallel training across Web Workers: the replica workers a training worker starts on
//! the CPU backend, and the pool through which that training worker, the coordinator, drives
//! them ([`WorkerReplicas`], a [`ReplicaPool`]).
//!
//! A WebAssembly module without threads computes on one core, so the page trains on several
//! modules at once, one per worker. The coordinator keeps the run (data, shuffles, test
//! passes, checkpoints) and the first slice of every batch; each replica keeps only a copy of
//! the model. Per step a replica gets its slice's 28×28 bytes, sends back its gradients, and
//! then gets the batch's averaged gradients, which it applies as the coordinator does (see
//! [`crate::train::data_parallel`]). In the test pass that ends each epoch it classifies its
//! share of every test batch. The messages ([`ToReplica`], [`FromReplica`]) are JSON in a
//! `json` field with their bytes beside, as between the page and the training worker.
//!
//! A replica that dies (a panic, memory exhausted, a worker ended) is reported as lost; the
//! coordinator starts another from its own weights and does the step again.

use std::cell::Cell;

use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, ErrorEvent, MessageEvent, Url, Worker};

use super::client::{hand_over, spawn_module_worker, REPLICA_NAME};
use super::inbox::Inbox;
use super::{JSON, WEIGHTS};
use crate::train::data_parallel::{Replica, ReplicaError, ReplicaPool, SliceBatch, SliceGradients};

/// Bytes beside the messages.
const PIXELS: &str = "pixels";
const LABELS: &str = "labels";
const GRADIENTS: &str = "gradients";
const PROBABILITIES: &str = "probabilities";

/// Coordinator → replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum ToReplica {
    /// Hold the model of the weights file beside this message (replacing any other), trained
    /// with this learning rate. Answered by `Initialized`.
    Init { learning_rate: f64 },
    /// The gradients of the slice beside (`pixels`, `labels`). Answered by `Gradients`.
    Gradients,
    /// Apply the batch's averaged gradients beside (`gradients`). Not answered.
    Apply,
    /// Classify the test images beside (`pixels`), a share of the test pass. Answered by
    /// `Probabilities`.
    Classify,
    /// Test hook: panic, as a replica that crashes does.
    Crash,
}

/// Replica → coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum FromReplica {
    Ready,
    Initialized,
    /// The slice's figures; its gradients ride beside (`gradients`). `memory`: the replica's
    /// wasm memory (its peak).
    Gradients { images: usize, loss: f32, correct: f32, memory: u64 },
    /// The softmax probabilities of the test images sent, ten per image, ride beside
    /// (`probabilities`).
    Probabilities,
    Failed { message: String },
    /// The replica panicked, or (sent on its behalf) its worker hit an error it did not catch.
    Crashed { message: String },
}

impl FromReplica {
    fn read(data: &JsValue) -> Self {
        let json = Reflect::get(data, &JSON.into()).ok().and_then(|value| value.as_string()).unwrap_or_default();
        serde_json::from_str(&json).unwrap_or_else(|error| Self::Failed { message: format!("an unreadable message from a replica: {error}") })
    }
}

fn envelope<T: Serialize>(message: &T) -> Object {
    let envelope = Object::new();
    // Cannot fail: the protocol's messages derive `Serialize` over structs, strings and numbers.
    let json = serde_json::to_string(message).expect("plain data");
    let _ = Reflect::set(&envelope, &JSON.into(), &json.into());
    envelope
}

fn bytes_beside(data: &JsValue, key: &str) -> Vec<u8> {
    Reflect::get(data, &key.into()).ok().and_then(|value| value.dyn_into::<Uint8Array>().ok()).map(|array| array.to_vec()).unwrap_or_default()
}

fn floats_beside(data: &JsValue, key: &str) -> Vec<f32> {
    Reflect::get(data, &key.into()).ok().and_then(|value| value.dyn_into::<Float32Array>().ok()).map(|array| array.to_vec()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The replica's side

thread_local! {
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// Makes this worker a replica: it waits for `Init`, then answers the coordinator, one message
/// at a time, in order.
#[wasm_bindgen(js_name = startReplicaWorker)]
pub fn start_replica_worker() {
    if STARTED.replace(true) {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(&FromReplica::Crashed { message: info.to_string() }, None);
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let inbox = Inbox::default();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let inbox = inbox.clone();
        move |event: MessageEvent| inbox.push(event.data())
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    wasm_bindgen_futures::spawn_local(serve(inbox));
    post(&FromReplica::Ready, None);
}

async fn serve(inbox: Inbox) {
    let mut replica: Option<Replica> = None;
    loop {
        let data = inbox.next().await;
        let json = Reflect::get(&data, &JSON.into()).ok().and_then(|value| value.as_string()).unwrap_or_default();
        let command: ToReplica = match serde_json::from_str(&json) {
            Ok(command) => command,
            Err(error) => {
                post(&FromReplica::Failed { message: format!("an unreadable command for a replica: {error}") }, None);
                continue;
            }
        };
        match command {
            ToReplica::Init { learning_rate } => {
                // The replicas train on the CPU backend: that is what they are for.
                match Replica::from_weights(&bytes_beside(&data, WEIGHTS), learning_rate, &burn::tensor::Device::flex()) {
                    Ok(ready) => {
                        replica = Some(ready);
                        post(&FromReplica::Initialized, None);
                    }
                    Err(message) => post(&FromReplica::Failed { message }, None),
                }
            }
            ToReplica::Gradients => {
                let Some(replica) = replica.as_ref() else {
                    post(&FromReplica::Failed { message: "the replica holds no model yet".into() }, None);
                    continue;
                };
                let slice = SliceBatch { pixels: bytes_beside(&data, PIXELS), labels: bytes_beside(&data, LABELS) };
                match replica.gradients(&slice).await {
                    Ok(gradients) => post(
                        &FromReplica::Gradients {
                            images: gradients.images,
                            loss: gradients.loss,
                            correct: gradients.correct,
                            memory: super::wasm_memory_bytes(),
                        },
                        Some(&gradients.values),
                    ),
                    Err(message) => post(&FromReplica::Failed { message }, None),
                }
            }
            ToReplica::Apply => match replica.as_mut() {
                Some(replica) => replica.apply(&floats_beside(&data, GRADIENTS)),
                None => post(&FromReplica::Failed { message: "the replica holds no model yet".into() }, None),
            },
            ToReplica::Classify => {
                let Some(replica) = replica.as_ref() else {
                    post(&FromReplica::Failed { message: "the replica holds no model yet".into() }, None);
                    continue;
                };
                match replica.probabilities(&bytes_beside(&data, PIXELS)).await {
                    Ok(values) => post_floats(&FromReplica::Probabilities, PROBABILITIES, &values),
                    Err(message) => post(&FromReplica::Failed { message }, None),
                }
            }
            ToReplica::Crash => panic!("replica crashed on purpose (test hook)"),
        }
    }
}

/// Posts `message` to the coordinator, with gradients beside it (transferred, not copied).
fn post(message: &FromReplica, gradients: Option<&[f32]>) {
    match gradients {
        Some(values) => post_floats(message, GRADIENTS, values),
        None => post_with(envelope(message), &Array::new()),
    }
}

/// Posts `message` with `values` beside it under `key` (transferred, not copied).
fn post_floats(message: &FromReplica, key: &str, values: &[f32]) {
    let envelope = envelope(message);
    let array = Float32Array::from(values);
    let _ = Reflect::set(&envelope, &key.into(), &array);
    post_with(envelope, &Array::of1(&array.buffer()));
}

fn post_with(envelope: Object, transfer: &Array) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    if let Err(error) = scope.post_message_with_transfer(&envelope, transfer) {
        web_sys::console::error_2(&"a replica could not post to its coordinator".into(), &error);
    }
}

// ---------------------------------------------------------------------------------------------
// The coordinator's side

/// How long a replica worker may take to start: fetch and compile the module, say it is ready.
const REPLICA_START_SECONDS: f64 = 60.0;

/// One replica worker, as the coordinator holds it.
struct ReplicaWorker {
    worker: Worker,
    inbox: Inbox,
    /// The replica's wasm memory, as it last said.
    memory: Cell<u64>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl ReplicaWorker {
    /// Starts a replica and gives it the weights file `weights`.
    async fn start(weights: &[u8], learning_rate: f64) -> Result<Self, String> {
        let (worker, url) = spawn_module_worker(REPLICA_NAME)?;
        let inbox = Inbox::default();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let inbox = inbox.clone();
            move |event: MessageEvent| inbox.push(event.data())
        });
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new({
            let inbox = inbox.clone();
            move |event: ErrorEvent| {
                // Handled here: an error left to bubble would reach the page as the training
                // worker's own, which the page takes for a crashed training worker.
                event.prevent_default();
                inbox.push(envelope(&FromReplica::Crashed { message: event.message() }).into())
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let replica = Self { worker, inbox, memory: Cell::new(0), _on_message: on_message, _on_error: on_error };
        hand_over(&replica.worker, "startReplicaWorker")?;
        // A worker that never says it is ready (Firefox ESR 153 now and then never returns from
        // `new Worker` inside a worker) must not leave the run "Starting…" for ever: the caller
        // trains without it and says why.
        let ready = replica.inbox.next_within(REPLICA_START_SECONDS * 1000.0).await;
        let _ = Url::revoke_object_url(&url);
        let Some(ready) = ready else {
            return Err(format!("a replica worker did not start within {REPLICA_START_SECONDS} s"));
        };
        match FromReplica::read(&ready) {
            FromReplica::Ready => {}
            FromReplica::Failed { message } | FromReplica::Crashed { message } => return Err(message),
            other => return Err(format!("a replica said {other:?} before it was ready")),
        }
        replica.init(weights, learning_rate).await?;
        Ok(replica)
    }

    /// Makes the replica hold the weights file `weights`.
    async fn init(&self, weights: &[u8], learning_rate: f64) -> Result<(), String> {
        let message = envelope(&ToReplica::Init { learning_rate });
        let array = Uint8Array::from(weights);
        let _ = Reflect::set(&message, &WEIGHTS.into(), &array);
        self.post(&message, &Array::of1(&array.buffer()))?;
        match FromReplica::read(&self.inbox.next().await) {
            FromReplica::Initialized => Ok(()),
            FromReplica::Failed { message } | FromReplica::Crashed { message } => Err(message),
            other => Err(format!("a replica said {other:?} instead of taking its weights")),
        }
    }

    fn post(&self, message: &JsValue, transfer: &Array) -> Result<(), String> {
        self.worker.post_message_with_transfer(message, transfer).map_err(|error| format!("{error:?}"))
    }
}

impl Drop for ReplicaWorker {
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

/// The coordinator's replicas, each in its own worker.
pub struct WorkerReplicas {
    replicas: Vec<ReplicaWorker>,
    learning_rate: f64,
    /// How many replicas got a slice of the current step, or of the current test batch.
    sent: usize,
    /// Replicas replaced so far (after a loss, or to take new weights).
    pub replaced: usize,
}

impl WorkerReplicas {
    /// No replicas: the coordinator trains alone.
    pub fn none() -> Self {
        Self { replicas: Vec::new(), learning_rate: 0.0, sent: 0, replaced: 0 }
    }

    /// `count` replica workers, each holding the weights file `weights`.
    pub async fn start(count: usize, weights: &[u8], learning_rate: f64) -> Result<Self, String> {
        let mut replicas = Vec::with_capacity(count);
        for _ in 0..count {
            replicas.push(ReplicaWorker::start(weights, learning_rate).await?);
        }
        Ok(Self { replicas, learning_rate, sent: 0, replaced: 0 })
    }

    /// The wasm memory of all the replicas together (each one's peak so far).
    pub fn memory_bytes(&self) -> u64 {
        self.replicas.iter().map(|replica| replica.memory.get()).sum()
    }

    /// Test hook: replica `index` panics, as a crashed one would; the step under way (or the
    /// next) loses it.
    pub fn crash(&self, index: usize) -> bool {
        self.replicas.get(index).is_some_and(|replica| replica.post(&envelope(&ToReplica::Crash), &Array::new()).is_ok())
    }
}

impl WorkerReplicas {
    /// The answer of every replica sent a slice, in order, each read by `take` (which hands
    /// back a message that is not the answer). Every answer is taken, even after one replica is
    /// lost: none is left over for the next request. The first error is returned.
    async fn answers<T>(
        &self,
        what: &str,
        take: impl Fn(&ReplicaWorker, FromReplica, &JsValue) -> Result<T, FromReplica>,
    ) -> Result<Vec<T>, ReplicaError> {
        let mut answers = Vec::with_capacity(self.sent);
        let mut first_error = None;
        for (index, replica) in self.replicas.iter().take(self.sent).enumerate() {
            let data = replica.inbox.next().await;
            let error = match take(replica, FromReplica::read(&data), &data) {
                Ok(answer) => {
                    answers.push(answer);
                    continue;
                }
                Err(FromReplica::Crashed { message }) => ReplicaError::Lost { index, message },
                Err(FromReplica::Failed { message }) => ReplicaError::Failed { index, message },
                Err(other) => ReplicaError::Failed { index, message: format!("a replica said {other:?} instead of sending {what}") },
            };
            first_error.get_or_insert(error);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(answers),
        }
    }
}

impl ReplicaPool for WorkerReplicas {
    fn len(&self) -> usize {
        self.replicas.len()
    }

    fn send(&mut self, slices: Vec<SliceBatch>) {
        self.sent = slices.len().min(self.replicas.len());
        for (replica, slice) in self.replicas.iter().zip(slices) {
            let message = envelope(&ToReplica::Gradients);
            let (pixels, labels) = (Uint8Array::from(&slice.pixels[..]), Uint8Array::from(&slice.labels[..]));
            let _ = Reflect::set(&message, &PIXELS.into(), &pixels);
            let _ = Reflect::set(&message, &LABELS.into(), &labels);
            // A replica that cannot be posted to is gone: `receive` hears it from its error.
            if let Err(message) = replica.post(&message, &Array::of2(&pixels.buffer(), &labels.buffer())) {
                replica.inbox.push(envelope(&FromReplica::Crashed { message }).into());
            }
        }
    }

    async fn receive(&mut self) -> Result<Vec<SliceGradients>, ReplicaError> {
        self.answers("gradients", |replica, message, data| match message {
            FromReplica::Gradients { images, loss, correct, memory } => {
                replica.memory.set(memory);
                Ok(SliceGradients { images, loss, correct, values: floats_beside(data, GRADIENTS) })
            }
            other => Err(other),
        })
        .await
    }

    fn apply(&mut self, gradients: &[f32]) {
        for replica in &self.replicas {
            let message = envelope(&ToReplica::Apply);
            let array = Float32Array::from(gradients);
            let _ = Reflect::set(&message, &GRADIENTS.into(), &array);
            if let Err(message) = replica.post(&message, &Array::of1(&array.buffer())) {
                replica.inbox.push(envelope(&FromReplica::Crashed { message }).into());
            }
        }
    }

    fn send_test(&mut self, slices: Vec<Vec<u8>>) {
        self.sent = slices.len().min(self.replicas.len());
        for (replica, pixels) in self.replicas.iter().zip(slices) {
            let message = envelope(&ToReplica::Classify);
            let pixels = Uint8Array::from(&pixels[..]);
            let _ = Reflect::set(&message, &PIXELS.into(), &pixels);
            if let Err(message) = replica.post(&message, &Array::of1(&pixels.buffer())) {
                replica.inbox.push(envelope(&FromReplica::Crashed { message }).into());
            }
        }
    }

    async fn receive_test(&mut self) -> Result<Vec<Vec<f32>>, ReplicaError> {
        self.answers("probabilities", |_, message, data| match message {
            FromReplica::Probabilities => Ok(floats_beside(data, PROBABILITIES)),
            other => Err(other),
        })
        .await
    }

    async fn replace(&mut self, index: usize, weights: &[u8]) -> Result<(), String> {
        let slot = self.replicas.get_mut(index).ok_or("no such replica")?;
        // The old worker goes first: its memory is the new one's.
        slot.worker.terminate();
        *slot = ReplicaWorker::start(weights, self.learning_rate).await?;
        self.replaced += 1;
        Ok(())
    }
}
