//! The worker's side: trains one run at a time, unit by unit, and between units answers
//! pause, resume and stop, and reports progress to the page.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::{JSON, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::data::Dataset;
use crate::engine::{self, BackendPreference};
use crate::model::GoogLeNet;
use crate::train::{Command, Progress, TrainConfig, TrainingRun, Update};

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
    /// The last run's model: what it learned survives a stop or a failure.
    model: RefCell<Option<GoogLeNet>>,
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
    console_error_panic_hook::set_once();
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
        Command::Start { config, backend } => {
            if host.busy.get() {
                return post(&Update::Failed { message: "a run is already under way: stop it first".into() });
            }
            let train = dataset(&data, TRAIN_IMAGES, TRAIN_LABELS);
            let test = dataset(&data, TEST_IMAGES, TEST_LABELS);
            host.busy.set(true);
            host.control.set(Control::Run);
            wasm_bindgen_futures::spawn_local(run_training(host.clone(), config, backend, train, test));
        }
        Command::Pause if host.busy.get() && host.control.get() == Control::Run => host.control.set(Control::Pause),
        Command::Resume if host.control.get() == Control::Pause => host.control.set(Control::Run),
        Command::Stop if host.busy.get() => host.control.set(Control::Stop),
        Command::Pause | Command::Resume | Command::Stop => {}
    }
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

async fn run_training(host: Rc<Host>, config: TrainConfig, backend: BackendPreference, train: Dataset, test: Dataset) {
    let engine = engine::start(backend).await;
    post(&Update::Engine { backend: engine.backend, summary: engine.summary() });
    let mut run = match TrainingRun::new(config, train, test, &engine.device) {
        Ok(run) => run,
        Err(error) => {
            host.busy.set(false);
            return post(&Update::Failed { message: error.to_string() });
        }
    };
    let (train_size, test_size) = run.sizes();
    post(&Update::Started { train_size, test_size, steps_per_epoch: run.steps_per_epoch(), epochs: run.config().epochs });

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
        let started = js_sys::Date::now();
        match run.advance().await {
            Ok(Some(progress)) => {
                let seconds = (js_sys::Date::now() - started) / 1000.0;
                match progress {
                    Progress::Step(_) => train_seconds += seconds,
                    _ => test_seconds += seconds,
                }
                post(&Update::Progress { progress, train_seconds, test_seconds });
            }
            Ok(None) => break Ok(false),
            Err(error) => break Err(error.to_string()),
        }
        // On the CPU backend a unit never waits for anything: let the page's commands in.
        sleep(0).await;
    };
    host.model.replace(Some(run.into_model()));
    host.busy.set(false);
    post(&match outcome {
        Ok(stopped) => Update::Finished { stopped },
        Err(message) => Update::Failed { message },
    });
}

fn post(update: &Update) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let message = Object::new();
    let _ = Reflect::set(&message, &JSON.into(), &update.to_json().into());
    if let Err(error) = scope.post_message(&message) {
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
