//! The architecture view: b1..b5 as a diagram, every Inception block opened into its four
//! branches, with the shapes of a real forward pass on the active device.

use std::rc::Rc;

use leptos::prelude::*;

use super::inside::INCEPTION_NAMES;
use super::session::Session;
use crate::architecture::{format_count, format_shape, Architecture, BlockView, InceptionView};
use crate::engine::Engine;
use crate::model::{GoogLeNet, GoogLeNetConfig};
use crate::train::INPUT_SIZES;

/// Input sizes a user may pick: the seed's 96, and the ones the issue names.
const PRESETS: [usize; 4] = [64, 96, 128, 224];
/// The sizes the network accepts, as training checks them.
const MIN_SIZE: usize = *INPUT_SIZES.start();
const MAX_SIZE: usize = *INPUT_SIZES.end();

/// An architecture traced on the device, and how long that forward pass took.
#[derive(Clone)]
struct Traced {
    architecture: Architecture,
    millis: f64,
}

/// Runs the traced forward pass and waits for the device to finish it (an asynchronous
/// readback: a synchronous one would panic on WebGPU).
async fn trace(model: Rc<GoogLeNet>, engine: Engine, size: usize) -> Result<Traced, String> {
    let started = now();
    let (architecture, logits) = Architecture::trace(&model, 1, size, &engine.device);
    logits.into_data_async().await.map_err(|error| format!("the forward pass failed on the device: {error:?}"))?;
    Ok(Traced { architecture, millis: now() - started })
}

fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

#[component]
pub fn ArchitectureView(engine: Engine) -> impl IntoView {
    let config = GoogLeNetConfig::new();
    let model = Rc::new(config.init(&engine.device));
    let size = RwSignal::new(config.input_size);
    let size_error = RwSignal::new(None::<String>);
    let backend = engine.backend;
    let traced = LocalResource::new(move || trace(model.clone(), engine.clone(), size.get()));

    let on_size = move |text: String| match text.trim().parse::<usize>() {
        Ok(value) if (MIN_SIZE..=MAX_SIZE).contains(&value) => {
            size_error.set(None);
            size.set(value);
        }
        _ => size_error.set(Some(format!("Input size must be a whole number from {MIN_SIZE} to {MAX_SIZE}; kept {}.", size.get_untracked()))),
    };

    view! {
        <section class="architecture" id="network">
            <h2>"Network: GoogLeNet"</h2>
            <div class="size-picker">
                <label>
                    "Input size "
                    <input type="number" min=MIN_SIZE max=MAX_SIZE prop:value=move || size.get().to_string()
                        on:change=move |event| on_size(event_target_value(&event)) />
                </label>
                {PRESETS.into_iter().map(|preset| view! {
                    <button class:active=move || size.get() == preset on:click=move |_| on_size(preset.to_string())>
                        {format!("{preset}×{preset}")}
                    </button>
                }).collect_view()}
                <span class="size-error" role="alert">{move || size_error.get()}</span>
            </div>
            <Transition fallback=|| view! { <p class="status pending">"Running a forward pass…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <p class="status error">{move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ")}</p>
                }>
                    {move || traced.get().map(|result| result.map(|traced| view! { <Diagram traced backend=backend.to_string() /> }))}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn Diagram(traced: Traced, backend: String) -> impl IntoView {
    let Traced { architecture, millis } = traced;
    view! {
        <p class="arch-summary">
            "Input " <code>{format_shape(&architecture.input)}</code>
            " · " <strong class="total-params">{format_count(architecture.total_params)}</strong> " parameters"
            " · forward pass " {format!("{millis:.0} ms")} " on " {backend}
        </p>
        <ol class="blocks">
            {architecture.blocks.into_iter().map(|block| view! { <Block block /> }).collect_view()}
        </ol>
    }
}

#[component]
fn Block(block: BlockView) -> impl IntoView {
    let BlockView { name, layers, inceptions, params, output } = block;
    view! {
        <li class="block" data-block=name>
            <div class="block-head">
                <span class="block-name">{name}</span>
                <span class="params">{format_count(params)} " params"</span>
            </div>
            {inceptions.into_iter().map(|inception| view! { <Inception inception /> }).collect_view()}
            <ul class="layers">
                {layers.into_iter().map(|layer| view! { <li>{layer}</li> }).collect_view()}
            </ul>
            <div class="block-output">"→ " <code class="shape">{format_shape(&output)}</code></div>
        </li>
    }
}

#[component]
fn Inception(inception: InceptionView) -> impl IntoView {
    let InceptionView { name, input, branches, concat, params } = inception;
    let title = format!("Inception {name}");
    // A click on a branch opens the block's activation maps (when the page has a session).
    let index = INCEPTION_NAMES.iter().position(|known| *known == name);
    let open_maps = move |_| {
        if let (Some(session), Some(index)) = (use_context::<Session>(), index) {
            session.inspected.set(index);
            let inside = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("inside"));
            if let Some(inside) = inside {
                inside.scroll_into_view();
            }
        }
    };
    view! {
        <div class="inception" data-inception=name>
            <div class="inception-head">
                <span class="inception-name">{title}</span>
                <span>"in " <code>{format_shape(&input)}</code></span>
                <span class="params">{format_count(params)} " params"</span>
            </div>
            <div class="branches">
                {branches.into_iter().enumerate().map(|(i, branch)| view! {
                    <div class="branch" title="Show this block's activation maps" on:click=open_maps>
                        <div class="branch-name">{format!("branch {}", i + 1)}</div>
                        <ol class="branch-layers">
                            {branch.layers.into_iter().map(|layer| view! { <li>{layer}</li> }).collect_view()}
                        </ol>
                        <code class="shape branch-shape">{format_shape(&branch.output)}</code>
                        <span class="params">{format_count(branch.params)} " params"</span>
                    </div>
                }).collect_view()}
            </div>
            <div class="concat">"concat → " <code class="shape concat-shape">{format_shape(&concat)}</code></div>
        </div>
    }
}
