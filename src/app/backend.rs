//! Which device runs the model, and the control to change it.

use leptos::prelude::*;

use crate::engine::{Backend, BackendPreference, Engine};

/// A selector for Auto / WebGPU / CPU.
#[component]
pub fn BackendPicker(preference: RwSignal<BackendPreference>) -> impl IntoView {
    let options = [
        (BackendPreference::Auto, "Auto (GPU if real, else CPU)"),
        (BackendPreference::WebGpu, "WebGPU"),
        (BackendPreference::Cpu, "CPU"),
    ];
    view! {
        <label class="backend-picker">
            "Device: "
            <select on:change=move |event| {
                if let Some(choice) = BackendPreference::parse(&event_target_value(&event)) {
                    preference.set(choice);
                }
            }>
                {options.into_iter().map(|(value, label)| view! {
                    <option value=value.as_str() selected=move || preference.get() == value>{label}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// A plain sentence saying which device runs the model and why.
#[component]
pub fn EngineStatus(engine: Engine) -> impl IntoView {
    let class = match engine.backend {
        Backend::WebGpu => "status webgpu",
        Backend::Cpu => "status cpu",
    };
    view! { <p class=class data-backend=engine.backend.to_string()>{engine.summary()}</p> }
}
