//! The Leptos page. Components are thin views over the core's plain types.

mod architecture;
mod backend;
mod benchmark;
mod chart;
mod classify;
mod dataset;
mod inside;
mod session;
mod storage;
mod training;

use leptos::prelude::*;

use crate::engine::{self, BackendPreference};
use architecture::ArchitectureView;
use backend::{BackendPicker, EngineStatus};
use benchmark::BenchmarkPanel;
use classify::ClassifyPanel;
use dataset::DatasetPanel;
use inside::InsidePanel;
use session::Session;
use training::TrainingPanel;
/// Where a pointer is, to the fraction of a pixel (tests/web.rs checks it).
pub use classify::client_position;
use crate::data::Loader;

/// The whole page. `backend` overrides the `?backend=` query parameter (tests use it).
#[component]
pub fn App(#[prop(optional)] backend: Option<BackendPreference>) -> impl IntoView {
    let preference = RwSignal::new(backend.unwrap_or_else(preference_from_url));
    let engine = LocalResource::new(move || engine::start(preference.get()));
    // The loaded files outlive any change of device.
    let loader = RwSignal::new(Loader::default());
    // The worker that owns the model, shared by training and classifying.
    let session = Session::new(preference, loader);
    provide_context(session);
    if url_flag("test-hooks") {
        install_test_hooks(session);
    }

    view! {
        <header class="masthead">
            <h1>"GoogLeNet in your browser"</h1>
            <p class="lede">
                "The Inception network of D2L §5.9 (5,977,530 parameters, 96×96 Fashion-MNIST input), "
                "built with Burn and run on WebGPU in this page. Nothing leaves your machine."
            </p>
        </header>
        <nav class="sections">
            <a href="#data">"1 · Data"</a>
            <a href="#train">"2 · Train"</a>
            <a href="#classify">"3 · Classify"</a>
            <a href="#inside">"4 · Inside"</a>
            <a href="#network">"5 · Network"</a>
            <a href="#benchmark">"6 · Benchmark"</a>
        </nav>
        <main>
            <BackendPicker preference />
            {move || session.device_notice.get().map(|text| view! {
                <p class="status warning" id="device-notice" role="alert">
                    {text} " " <button type="button" on:click=move |_| session.device_notice.set(None)>"Dismiss"</button>
                </p>
            })}
            <Suspense fallback=|| view! { <p class="status pending">"Starting the device…"</p> }>
                {move || engine.get().map(|engine| view! { <EngineStatus engine /> })}
            </Suspense>
            <DatasetPanel loader />
            <TrainingPanel loader session />
            <ClassifyPanel loader session />
            <InsidePanel session />
            <Suspense fallback=|| ()>
                {move || engine.get().map(|engine| view! { <ArchitectureView engine /> })}
            </Suspense>
            <BenchmarkPanel loader session />
        </main>
    }
}

/// The page's query parameters, `name=value` or `name`.
fn query_pairs() -> Vec<String> {
    let search = web_sys::window().and_then(|window| window.location().search().ok()).unwrap_or_default();
    search.trim_start_matches('?').split('&').filter(|pair| !pair.is_empty()).map(str::to_owned).collect()
}

/// `?backend=webgpu|cpu|auto`; anything else means auto.
fn preference_from_url() -> BackendPreference {
    query_pairs().iter().find_map(|pair| pair.strip_prefix("backend=")).and_then(BackendPreference::parse).unwrap_or_default()
}

/// Whether the page's address has `?name` (or `&name`).
fn url_flag(name: &str) -> bool {
    query_pairs().iter().any(|pair| pair == name || pair.strip_prefix(name).is_some_and(|rest| rest.starts_with('=')))
}

/// `window.googlenetTestHooks.loseDevice()`: what the end-to-end test calls to lose the GPU
/// mid-run. Only with `?test-hooks` in the address.
fn install_test_hooks(session: Session) {
    use wasm_bindgen::prelude::*;
    let hooks = js_sys::Object::new();
    let lose_device = Closure::<dyn Fn()>::new(move || session.lose_device()).into_js_value();
    let _ = js_sys::Reflect::set(&hooks, &"loseDevice".into(), &lose_device);
    let lose_replica = Closure::<dyn Fn()>::new(move || session.lose_replica()).into_js_value();
    let _ = js_sys::Reflect::set(&hooks, &"loseReplica".into(), &lose_replica);
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"googlenetTestHooks".into(), &hooks);
    }
}
