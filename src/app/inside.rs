//! Inside the network: the feature maps each branch of an Inception block makes of the picture
//! on show in *Classify*, and the stem's 7×7 filters. Only the block on screen is computed and
//! read back, and only its first channels.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

use super::session::Session;
use crate::train::FeatureMaps;

/// Inception blocks in order, as the seed names them.
pub const INCEPTION_NAMES: [&str; 9] = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"];
/// Maps shown per branch.
const CHANNELS: usize = 8;
const COLUMNS: usize = 4;

#[component]
pub fn InsidePanel(session: Session) -> impl IntoView {
    // Nothing is computed for a section nobody sees: while drawing, the worker's time goes to
    // the prediction.
    let section = NodeRef::<leptos::html::Section>::new();
    let on_screen = RwSignal::new(false);
    let check = move || {
        let (Some(section), Some(window)) = (section.get_untracked(), web_sys::window()) else { return };
        let rect = section.get_bounding_client_rect();
        let height = window.inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0);
        let visible = rect.bottom() > 0.0 && rect.top() < height;
        if on_screen.get_untracked() != visible {
            on_screen.set(visible);
        }
    };
    // The panel lives as long as the page: its listeners need no removal.
    let _ = window_event_listener(leptos::ev::scroll, move |_| check());
    let _ = window_event_listener(leptos::ev::resize, move |_| check());
    Effect::new(move |_| {
        section.track();
        check();
    });

    // The maps follow the picture, the block and the model, while on screen.
    Effect::new(move |_| {
        let block = session.inspected.get();
        let has_model = session.model.with(Option::is_some);
        if let (true, true, Some(frame)) = (on_screen.get(), has_model, session.frame.get()) {
            session.request_activations(frame, block, CHANNELS);
        }
    });
    Effect::new(move |_| {
        if on_screen.get() && session.model.with(Option::is_some) && session.filters.with_untracked(Option::is_none) {
            session.request_filters();
        }
    });

    view! {
        <section class="inside" id="inside" node_ref=section>
            <h2>"Inside the network"</h2>
            <p class="lede">
                "What each branch of an Inception block makes of the picture in " <a href="#classify">"3 · Classify"</a>
                ": its first " {CHANNELS} " feature maps (bright: strong activation). Click a branch in "
                <a href="#network">"5 · Network"</a> " to come here."
            </p>
            <div class="block-picker">
                {INCEPTION_NAMES.iter().enumerate().map(|(index, name)| view! {
                    <button type="button" class:active=move || session.inspected.get() == index on:click=move |_| session.inspected.set(index)>
                        {*name}
                    </button>
                }).collect_view()}
            </div>
            {move || {
                if session.model.with(Option::is_none) {
                    return view! { <p class="waiting">"Train or load a model first (the maps come from its weights)."</p> }.into_any();
                }
                if session.frame.with(Option::is_none) {
                    return view! { <p class="waiting">"Draw, upload or pick an image in 3 · Classify."</p> }.into_any();
                }
                match session.activations.get() {
                    Some((block, branches)) => view! {
                        <h3>{format!("Inception {}", INCEPTION_NAMES[block])}</h3>
                        <div class="activation-branches">
                            {branches.into_iter().enumerate().map(|(i, maps)| view! { <BranchMaps index=i maps /> }).collect_view()}
                        </div>
                    }.into_any(),
                    None => view! { <p class="waiting">"Computing the maps…"</p> }.into_any(),
                }
            }}
            {move || session.inside_error.get().map(|text| view! { <p class="status error">{text}</p> })}
            {move || session.filters.get().map(|values| view! {
                <figure class="stem-filters">
                    <Heatmaps values side=(7, 7) count=64 columns=8 diverging=true />
                    <figcaption>"The stem's 64 filters (b1, 7×7, stride 2): blue negative, red positive weights"</figcaption>
                </figure>
            })}
        </section>
    }
}

#[component]
fn BranchMaps(index: usize, maps: FeatureMaps) -> impl IntoView {
    let [_, channels, height, width] = maps.shape;
    let shown = channels.min(CHANNELS);
    view! {
        <figure class="branch-maps">
            <figcaption>
                <strong>{format!("Branch {}", index + 1)}</strong>
                <code>{format!(" [1, {channels}, {height}, {width}]")}</code>
                {format!(" · first {shown} of {channels} channels")}
            </figcaption>
            <Heatmaps values=maps.values side=(height, width) count=shown columns=COLUMNS diverging=false />
        </figure>
    }
}

/// `count` maps of `side` (height, width), drawn on one canvas in a grid with 1-pixel grey gaps,
/// each scaled to its own range.
#[component]
fn Heatmaps(values: Vec<f32>, side: (usize, usize), count: usize, columns: usize, diverging: bool) -> impl IntoView {
    let (h, w) = side;
    let rows = count.div_ceil(columns);
    let (width, height) = (columns * (w + 1) - 1, rows * (h + 1) - 1);
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        // Grey gaps: a map may be all white or all black.
        let mut rgba: Vec<u8> = [150, 156, 170, 255].repeat(width * height);
        for (map, chunk) in values.chunks_exact(h * w).take(count).enumerate() {
            let (x0, y0) = ((map % columns) * (w + 1), (map / columns) * (h + 1));
            let colour = colour_map(chunk, diverging);
            for (i, &value) in chunk.iter().enumerate() {
                let at = ((y0 + i / w) * width + x0 + i % w) * 4;
                rgba[at..at + 4].copy_from_slice(&colour(value));
            }
        }
        let context = canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok());
        if let (Some(context), Ok(image)) =
            (context, ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width as u32, height as u32))
        {
            let _ = context.put_image_data(&image, 0.0, 0.0);
        }
    });
    // Small maps (3×3 in b5) are shown as large as big ones.
    let scale = (96 / h.max(w)).max(2);
    let style = format!("width: {}px; height: {}px", width * scale, height * scale);
    view! { <canvas node_ref=canvas width=width height=height style=style class="heatmaps" /> }
}

/// A colour for each value of one map: black → red → yellow → white over its range, or blue
/// → white → red around zero.
fn colour_map(values: &[f32], diverging: bool) -> impl Fn(f32) -> [u8; 4] {
    let (low, high) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let bound = low.abs().max(high.abs()).max(f32::EPSILON);
    let span = (high - low).max(f32::EPSILON);
    move |value| {
        let byte = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
        if diverging {
            let t = value / bound;
            if t >= 0.0 { [255, byte(1.0 - t), byte(1.0 - t), 255] } else { [byte(1.0 + t), byte(1.0 + t), 255, 255] }
        } else {
            let t = (value - low) / span;
            [byte(3.0 * t), byte(3.0 * t - 1.0), byte(3.0 * t - 2.0), 255]
        }
    }
}
