//! Classify: draw a garment (or upload a picture, or pick a test image), see the 28×28 image
//! the model receives and its ten class probabilities. Also where weights are saved and loaded.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use js_sys::{Object, Reflect, Uint8Array};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlImageElement, ImageData, KeyboardEvent, PointerEvent, Url};

use super::dataset::GreyImage;
use super::session::Session;
use crate::data::{Loader, SplitName, CLASS_NAMES};
use crate::infer::GreyPicture;

/// The drawing surface's side, in canvas pixels (ten per Fashion-MNIST pixel).
const PAD_SIDE: u32 = 280;
/// Undo keeps this many strokes.
const UNDO_DEPTH: usize = 40;
/// How long the drawing must rest before it is classified again.
const DEBOUNCE: Duration = Duration::from_millis(120);

/// Where the picture on show came from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    Drawing,
    Upload(String),
    TestImage { index: usize, truth: u8 },
}

#[component]
pub fn ClassifyPanel(loader: RwSignal<Loader>, session: Session) -> impl IntoView {
    let frame = session.frame;
    let source = RwSignal::new(Source::Drawing);
    let error = RwSignal::new(None::<String>);

    // Every new picture, and every change of model, asks for a prediction.
    Effect::new(move |_| {
        let has_model = session.model.with(Option::is_some);
        match frame.get() {
            Some(pixels) if has_model => session.classify(pixels),
            _ => session.clear_prediction(),
        }
    });
    let show = move |pixels: Option<Vec<u8>>, from: Source| {
        error.set(None);
        source.set(from);
        frame.set(pixels);
    };
    let test_image = move |_| {
        let picked = loader.with_untracked(|loader| {
            let test = loader.split(SplitName::Test)?;
            let index = (js_sys::Math::random() * test.len() as f64) as usize % test.len();
            Some((test.image(index).to_vec(), index, test.labels[index]))
        });
        match picked {
            Some((pixels, index, truth)) => show(Some(pixels), Source::TestImage { index, truth }),
            None => error.set(Some("Load the test split (1 · Data) to pick one of its images.".into())),
        }
    };
    let upload = move |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&event);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        leptos::task::spawn_local(async move {
            match picture_from_file(&file).await {
                Ok(picture) => match picture.normalised_photo().to_frame() {
                    Some(pixels) => show(Some(pixels), Source::Upload(file.name())),
                    None => error.set(Some(format!("{}: the picture is blank once its background is taken off", file.name()))),
                },
                Err(message) => error.set(Some(format!("{}: {message}", file.name()))),
            }
        });
    };

    let drawn = move |picture: Option<GreyPicture>| show(picture.and_then(|p| p.with_outlines_filled().to_frame()), Source::Drawing);

    view! {
        <section class="classify" id="classify">
            <h2>"Classify"</h2>
            <ModelBar session />
            <div class="classify-body">
                <DrawingPad on_change=drawn />
                <div class="model-input">
                    <h4>"What the model sees (28×28)"</h4>
                    {move || match frame.get() {
                        Some(pixels) => view! { <GreyImage pixels /> }.into_any(),
                        None => view! { <div class="empty-frame">"Draw a garment, light on dark"</div> }.into_any(),
                    }}
                    <p class="frame-source">{move || match source.get() {
                        Source::Drawing => String::new(),
                        Source::Upload(name) => format!("From {name}"),
                        Source::TestImage { index, truth } => format!("Test image #{index}, truly: {}", CLASS_NAMES[usize::from(truth)]),
                    }}</p>
                    <div class="picture-sources">
                        <button type="button" on:click=test_image>"A test image"</button>
                        <label class="file-button">"Upload a picture…"<input type="file" accept="image/png,image/jpeg,image/webp" on:change=upload /></label>
                    </div>
                    {move || error.get().map(|text| view! { <p class="status error">{text}</p> })}
                </div>
                <PredictionBars session has_frame=Signal::derive(move || frame.with(Option::is_some)) />
            </div>
        </section>
    }
}

/// The model in use, and saving / loading / discarding its weights.
#[component]
fn ModelBar(session: Session) -> impl IntoView {
    let load = move |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&event);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        leptos::task::spawn_local(async move {
            match JsFuture::from(file.array_buffer()).await {
                Ok(buffer) => session.load_weights(file.name(), &Uint8Array::new(&buffer)),
                Err(error) => session.weights_note.set(Some((format!("the browser could not read {}: {error:?}", file.name()), true))),
            }
        });
    };
    view! {
        <div class="model-bar">
            <p class="model-info">{move || match session.model.get() {
                Some(info) => format!("Model: {}", info.describe()),
                None => "No trained model yet: train one (2 · Train), load a weights file, or come back after a run (each epoch is autosaved).".into(),
            }}</p>
            {move || session.model.get().and_then(|info| info.test_accuracy).filter(|&accuracy| accuracy < 0.2).map(|accuracy| view! {
                <p class="status chance">{format!(
                    "This model is right on {:.1} % of the test images, which is about chance (10 %): its answers mean little yet. Train it longer, or load better weights.",
                    accuracy * 100.0
                )}</p>
            })}
            <div class="weights-controls">
                <button type="button" disabled=move || session.model.with(Option::is_none) on:click=move |_| session.download_weights()>"Download weights"</button>
                <label class="file-button">"Load weights…"<input type="file" accept=".safetensors" on:change=load /></label>
            </div>
            {move || session.restored.get().map(|text| view! {
                <p class="status restored">{text} " " <button type="button" on:click=move |_| session.discard_autosave()>"Discard"</button></p>
            })}
            {move || session.weights_note.get().map(|(text, is_error)| view! {
                <p class=if is_error { "status error weights-note" } else { "status weights-note" }>{text}</p>
            })}
        </div>
    }
}

#[component]
fn PredictionBars(session: Session, has_frame: Signal<bool>) -> impl IntoView {
    view! {
        <div class="prediction">
            <h4>"Prediction"</h4>
            {move || {
                if session.model.with(Option::is_none) {
                    return view! {
                        <p class="untrained">"Nothing to show: an untrained network's guesses are noise (about 10 % for every class). Train or load a model first."</p>
                    }.into_any();
                }
                let Some(report) = session.prediction.get().filter(|_| has_frame.get()) else {
                    return view! { <p class="waiting">"Draw, upload or pick an image."</p> }.into_any();
                };
                let (best, _) = report.prediction.best();
                view! {
                    <ol class="probabilities">
                        {report.prediction.probabilities.iter().enumerate().map(|(class, &p)| view! {
                            <li class:best=class == best>
                                <span class="class-name">{CLASS_NAMES[class]}</span>
                                <span class="bar"><span style=format!("width: {:.1}%", p * 100.0)></span></span>
                                <span class="class-value">{format!("{:.1} %", p * 100.0)}</span>
                            </li>
                        }).collect_view()}
                    </ol>
                    <p class="inference-time">{format!("{} · {:.0} ms in the worker", report.prediction.best_name(), report.milliseconds)}</p>
                }.into_any()
            }}
        </div>
    }
}

/// Strokes so far, for undo: the canvas as it was before each.
type UndoStack = Rc<RefCell<Vec<ImageData>>>;

/// A canvas to draw on with mouse, touch or pen: light strokes on black, like Fashion-MNIST.
/// `on_change` gets the picture after every change (debounced), `None` once cleared.
#[component]
fn DrawingPad(on_change: impl Fn(Option<GreyPicture>) + Clone + 'static) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let brush = RwSignal::new(22u32);
    let eraser = RwSignal::new(false);
    let undo_stack: UndoStack = Rc::default();
    let last_point = Rc::new(RefCell::new(None::<(f64, f64)>));
    let pending = Rc::new(RefCell::new(None::<TimeoutHandle>));

    let context = move || canvas.get_untracked().and_then(|canvas| context_2d(&canvas));
    let changed = {
        let pending = pending.clone();
        let on_change = on_change.clone();
        move || {
            if let Some(handle) = pending.borrow_mut().take() {
                handle.clear();
            }
            let on_change = on_change.clone();
            let read = move || on_change(context().and_then(|context| read_picture(&context)));
            *pending.borrow_mut() = set_timeout_with_handle(read, DEBOUNCE).ok();
        }
    };
    let clear = {
        let (undo_stack, changed) = (undo_stack.clone(), changed.clone());
        move || {
            if let Some(context) = context() {
                push_undo(&undo_stack, &context);
                fill_black(&context);
                changed();
            }
        }
    };
    let undo = {
        let (undo_stack, changed) = (undo_stack.clone(), changed.clone());
        move || {
            if let (Some(context), Some(previous)) = (context(), undo_stack.borrow_mut().pop()) {
                let _ = context.put_image_data(&previous, 0.0, 0.0);
                changed();
            }
        }
    };
    Effect::new(move |_| {
        if let Some(context) = canvas.get().and_then(|canvas| context_2d(&canvas)) {
            fill_black(&context);
        }
    });

    let point = move |event: &PointerEvent| {
        let canvas = canvas.get_untracked()?;
        let rect = canvas.get_bounding_client_rect();
        let scale = f64::from(PAD_SIDE) / rect.width().max(1.0);
        let (x, y) = client_position(event);
        Some(((x - rect.left()) * scale, (y - rect.top()) * scale))
    };
    let stroke_to = move |context: &CanvasRenderingContext2d, from: (f64, f64), to: (f64, f64)| {
        context.set_stroke_style_str(if eraser.get_untracked() { "#000" } else { "#fff" });
        context.set_line_width(f64::from(brush.get_untracked()));
        context.set_line_cap("round");
        context.set_line_join("round");
        context.begin_path();
        context.move_to(from.0, from.1);
        context.line_to(to.0, to.1);
        context.stroke();
    };
    let down = {
        let (undo_stack, last_point, changed) = (undo_stack.clone(), last_point.clone(), changed.clone());
        move |event: PointerEvent| {
            event.prevent_default();
            let (Some(context), Some(at)) = (context(), point(&event)) else { return };
            if let Some(canvas) = canvas.get_untracked() {
                let _ = canvas.set_pointer_capture(event.pointer_id());
                let _ = canvas.focus();
            }
            push_undo(&undo_stack, &context);
            stroke_to(&context, at, at);
            *last_point.borrow_mut() = Some(at);
            changed();
        }
    };
    let moved = {
        let (last_point, changed) = (last_point.clone(), changed.clone());
        move |event: PointerEvent| {
            let Some(from) = *last_point.borrow() else { return };
            event.prevent_default();
            let (Some(context), Some(at)) = (context(), point(&event)) else { return };
            stroke_to(&context, from, at);
            *last_point.borrow_mut() = Some(at);
            changed();
        }
    };
    let up = {
        let last_point = last_point.clone();
        move |_: PointerEvent| *last_point.borrow_mut() = None
    };
    let keys = {
        let (undo, clear) = (undo.clone(), clear.clone());
        move |event: KeyboardEvent| {
            let key = event.key();
            if (event.ctrl_key() || event.meta_key()) && key.eq_ignore_ascii_case("z") {
                event.prevent_default();
                undo();
            } else if key == "Delete" || key == "Backspace" {
                event.prevent_default();
                clear();
            } else if key.eq_ignore_ascii_case("e") {
                eraser.update(|on| *on = !*on);
            }
        }
    };

    view! {
        <div class="drawing">
            <canvas
                node_ref=canvas
                class="drawing-pad"
                class:erasing=move || eraser.get()
                width=PAD_SIDE
                height=PAD_SIDE
                tabindex="0"
                aria-label="Drawing area: draw a garment. Ctrl+Z undoes a stroke, Delete clears, E toggles the eraser."
                on:pointerdown=down
                on:pointermove=moved
                on:pointerup=up.clone()
                on:pointercancel=up
                on:keydown=keys
            ></canvas>
            <div class="drawing-tools">
                <label>"Brush " <input type="range" min="6" max="48" prop:value=move || brush.get().to_string()
                    on:input=move |event| if let Ok(size) = event_target_value(&event).parse() { brush.set(size) } /></label>
                <button type="button" class:active=move || eraser.get() on:click=move |_| eraser.update(|on| *on = !*on)>"Eraser"</button>
                <button type="button" title="Ctrl+Z" on:click=move |_| undo()>"Undo"</button>
                <button type="button" title="Delete" on:click=move |_| clear()>"Clear"</button>
            </div>
        </div>
    }
}

fn context_2d(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    // Read back after every stroke: a CPU-side canvas makes that cheap.
    let options = Object::new();
    let _ = Reflect::set(&options, &"willReadFrequently".into(), &true.into());
    canvas.get_context_with_context_options("2d", &options).ok().flatten()?.dyn_into().ok()
}

fn fill_black(context: &CanvasRenderingContext2d) {
    context.set_fill_style_str("#000");
    context.fill_rect(0.0, 0.0, f64::from(PAD_SIDE), f64::from(PAD_SIDE));
}

fn push_undo(stack: &UndoStack, context: &CanvasRenderingContext2d) {
    if let Ok(snapshot) = context.get_image_data(0.0, 0.0, f64::from(PAD_SIDE), f64::from(PAD_SIDE)) {
        let mut stack = stack.borrow_mut();
        if stack.len() == UNDO_DEPTH {
            stack.remove(0);
        }
        stack.push(snapshot);
    }
}

fn read_picture(context: &CanvasRenderingContext2d) -> Option<GreyPicture> {
    let side = PAD_SIDE as usize;
    let data = context.get_image_data(0.0, 0.0, f64::from(PAD_SIDE), f64::from(PAD_SIDE)).ok()?;
    Some(GreyPicture::from_rgba(&data.data(), side, side))
}

/// Decodes an image file with the browser and reads its pixels, scaled to fit the pad.
async fn picture_from_file(file: &web_sys::File) -> Result<GreyPicture, String> {
    let url = Url::create_object_url_with_blob(file).map_err(|_| "the browser could not open the file")?;
    let image = HtmlImageElement::new().map_err(|_| "no image element")?;
    image.set_src(&url);
    let decoded = JsFuture::from(image.decode()).await;
    let _ = Url::revoke_object_url(&url);
    decoded.map_err(|_| "this is not an image the browser can read (PNG, JPEG or WebP)")?;
    let (width, height) = (image.natural_width(), image.natural_height());
    if width == 0 || height == 0 {
        return Err("the image is empty".into());
    }
    let scale = (f64::from(PAD_SIDE) / f64::from(width.max(height))).min(1.0);
    let (w, h) = (((f64::from(width) * scale).round() as u32).max(1), ((f64::from(height) * scale).round() as u32).max(1));
    let document = web_sys::window().and_then(|window| window.document()).ok_or("no document")?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").map_err(|_| "no canvas")?.unchecked_into();
    canvas.set_width(w);
    canvas.set_height(h);
    let context = context_2d(&canvas).ok_or("no 2D canvas")?;
    // Transparent parts count as white: product photos are cut out on white.
    context.set_fill_style_str("#fff");
    context.fill_rect(0.0, 0.0, f64::from(w), f64::from(h));
    context
        .draw_image_with_html_image_element_and_dw_and_dh(&image, 0.0, 0.0, f64::from(w), f64::from(h))
        .map_err(|_| "the image could not be drawn")?;
    let data = context.get_image_data(0.0, 0.0, f64::from(w), f64::from(h)).map_err(|_| "the image's pixels could not be read")?;
    Ok(GreyPicture::from_rgba(&data.data(), w as usize, h as usize))
}

/// A pointer's `clientX` and `clientY` as the browser gives them. The CSSOM makes them doubles
/// and Firefox gives fractions of a pixel, where web-sys's `client_x()` reads an `i32` (up to a
/// pixel off on the 280-pixel pad).
pub fn client_position(event: &PointerEvent) -> (f64, f64) {
    let read = |axis: &str| Reflect::get(event, &axis.into()).ok().and_then(|value| value.as_f64()).unwrap_or_default();
    (read("clientX"), read("clientY"))
}
