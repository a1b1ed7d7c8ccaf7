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
use crate::data::Loader;

/// The whole page. `backend` overrides the `?backend=` query parameter (tests use it).
#[component]
pub fn App(#[prop(optional)] backend: Option<BackendPreference>) -> impl IntoView {
    let preference = RwSignal::new(backend.unwrap_or_else(preference_from_url));
    let engine = LocalResource::new(move || engine::start(preference.get()));
    // The loaded files outlive any change of device.
    let loader = RwSignal::new(Loader::default());
    // The worker that owns the model, shared by training and classifying.
    let session = Session::new(preference);
    provide_context(session);

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

/// `?backend=webgpu|cpu|auto`; anything else means auto.
fn preference_from_url() -> BackendPreference {
    web_sys::window()
        .and_then(|window| window.location().search().ok())
        .and_then(|search| {
            search
                .trim_start_matches('?')
                .split('&')
                .find_map(|pair| pair.strip_prefix("backend="))
                .and_then(BackendPreference::parse)
        })
        .unwrap_or_default()
}
