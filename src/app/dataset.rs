//! Loading Fashion-MNIST from the user's disk: a file picker and a drop zone, a line per file,
//! the class counts of each split and a preview grid.

use js_sys::Uint8Array;
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, File, FileList, ImageData};

use crate::data::{IdxKind, Loader, SplitName, CLASS_NAMES, IMAGE_SIDE};

/// Preview images shown per split: two of each class.
const PREVIEW_PER_CLASS: usize = 2;

#[component]
pub fn DatasetPanel(loader: RwSignal<Loader>) -> impl IntoView {
    let dragging = RwSignal::new(false);
    let load = move |files: Option<FileList>| {
        let Some(files) = files else { return };
        let files: Vec<File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
        leptos::task::spawn_local(async move {
            for file in files {
                let bytes = read_file(&file).await;
                loader.update(|loader| {
                    match bytes {
                        Ok(bytes) => loader.add(&file.name(), &bytes),
                        Err(message) => loader.refuse(&file.name(), message),
                    };
                });
            }
        });
    };

    view! {
        <section class="dataset" id="data">
            <h2>"Data: Fashion-MNIST"</h2>
            <label
                class="drop-zone"
                class:dragging=move || dragging.get()
                on:dragover=move |event: web_sys::DragEvent| { event.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=move |event: web_sys::DragEvent| {
                    event.prevent_default();
                    dragging.set(false);
                    load(event.data_transfer().and_then(|transfer| transfer.files()));
                }
            >
                <span>"Drop the four Fashion-MNIST files here (" <code>"train-images-idx3-ubyte.gz"</code> " …), gzipped or raw, or "</span>
                <input type="file" multiple on:change=move |event| {
                    let input: web_sys::HtmlInputElement = event_target(&event);
                    load(input.files());
                    input.set_value("");
                } />
            </label>
            <ul class="file-reports">
                {move || loader.with(|loader| loader.reports().iter().map(|report| {
                    let (class, text) = match &report.outcome {
                        Ok((IdxKind::Images, count)) => ("ok", format!("{count} images, 28×28")),
                        Ok((IdxKind::Labels, count)) => ("ok", format!("{count} labels")),
                        Err(message) => ("error", message.clone()),
                    };
                    view! { <li class=class><code>{report.name.clone()}</code> ": " {text}</li> }
                }).collect_view())}
                {move || loader.with(|loader| loader.unpaired().into_iter().map(|message| view! { <li class="note">{message}</li> }).collect_view())}
            </ul>
            <SplitPreview loader name=SplitName::Train title="Training split" />
            <SplitPreview loader name=SplitName::Test title="Test split" />
        </section>
    }
}

async fn read_file(file: &File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|error| format!("the browser could not read the file: {error:?}"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// One split's class counts and sample images, once its images and labels are paired.
#[component]
fn SplitPreview(loader: RwSignal<Loader>, name: SplitName, title: &'static str) -> impl IntoView {
    move || {
        loader.with(|loader| {
            let split = loader.split(name)?;
            let counts = split.class_counts();
            let mut samples: Vec<(Vec<u8>, u8)> = Vec::new();
            for class in 0..10u8 {
                let of_class = split.labels.iter().enumerate().filter(|(_, &label)| label == class);
                samples.extend(of_class.take(PREVIEW_PER_CLASS).map(|(i, _)| (split.image(i).to_vec(), class)));
            }
            Some(view! {
                <div class="split" data-split=title>
                    <h3>{title} " · " {split.len()} " images"</h3>
                    <table class="class-counts">
                        <tr>{CLASS_NAMES.iter().map(|name| view! { <th>{*name}</th> }).collect_view()}</tr>
                        <tr>{counts.iter().map(|count| view! { <td>{*count}</td> }).collect_view()}</tr>
                    </table>
                    <div class="samples">
                        {samples.into_iter().map(|(pixels, label)| view! {
                            <figure class="sample">
                                <GreyImage pixels />
                                <figcaption>{CLASS_NAMES[usize::from(label)]}</figcaption>
                            </figure>
                        }).collect_view()}
                    </div>
                </div>
            })
        })
    }
}

/// A 28×28 greyscale image, drawn on a canvas once it is in the page.
#[component]
pub(super) fn GreyImage(pixels: Vec<u8>) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        if let Some(canvas) = canvas.get() {
            draw_grey(&canvas, &pixels);
        }
    });
    view! { <canvas node_ref=canvas width=IMAGE_SIDE height=IMAGE_SIDE /> }
}

fn draw_grey(canvas: &web_sys::HtmlCanvasElement, pixels: &[u8]) {
    let Some(context) = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|context| context.dyn_into::<CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let rgba: Vec<u8> = pixels.iter().flat_map(|&p| [p, p, p, 255]).collect();
    if let Ok(image) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), IMAGE_SIDE as u32, IMAGE_SIDE as u32) {
        let _ = context.put_image_data(&image, 0.0, 0.0);
    }
}
