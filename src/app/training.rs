//! Training in the page: the settings, the controls, live progress and charts, and after each
//! epoch the confusion matrix, per-class accuracy and the most confident mistakes. The model
//! lives in a worker (see [`Session`]); this view only sends commands and draws updates.

use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::chart::{Chart, Series};
use super::dataset::GreyImage;
use super::session::Session;
use crate::data::{Loader, SplitName, CLASS_NAMES};
use crate::worker::MAX_WORKERS;
use crate::train::{format_duration, Command, EpochReport, FrameGapMeter, Phase, Schedule, TrainConfig, TrainingProgress, WeightInit};

/// The settings form: text as typed, read into a [`TrainConfig`] on Train.
#[derive(Clone, Copy)]
struct Settings {
    learning_rate: RwSignal<String>,
    momentum: RwSignal<String>,
    /// "glorot" or "he".
    init: RwSignal<String>,
    /// "constant" or "linear".
    schedule: RwSignal<String>,
    batch_size: RwSignal<String>,
    epochs: RwSignal<String>,
    input_size: RwSignal<String>,
    train_subset: RwSignal<String>,
    test_subset: RwSignal<String>,
    seed: RwSignal<String>,
    /// Workers on the CPU backend: not a training setting (the run is the same, to rounding).
    workers: RwSignal<String>,
}

/// What *Quick look* gives up against *Seed settings*, in words (Fashion-MNIST's 60,000
/// training images).
fn quick_look_note() -> String {
    format!(
        "Quick look learns without a GPU: about 6 minutes and 84 % test accuracy on a 2-core CPU. Against the seed's run it trades {}.",
        TrainConfig::quick_look().trade_offs(60_000).join(", ")
    )
}

impl Settings {
    fn new(config: &TrainConfig) -> Self {
        let settings = Self {
            learning_rate: RwSignal::new(String::new()),
            momentum: RwSignal::new(String::new()),
            init: RwSignal::new(String::new()),
            schedule: RwSignal::new(String::new()),
            batch_size: RwSignal::new(String::new()),
            epochs: RwSignal::new(String::new()),
            input_size: RwSignal::new(String::new()),
            train_subset: RwSignal::new(String::new()),
            test_subset: RwSignal::new(String::new()),
            seed: RwSignal::new(String::new()),
            workers: RwSignal::new(crate::worker::default_workers().to_string()),
        };
        settings.fill(config);
        settings
    }

    fn fill(&self, config: &TrainConfig) {
        let subset = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
        self.learning_rate.set(config.learning_rate.to_string());
        self.momentum.set(config.momentum.to_string());
        self.init.set(init_value(config.init).to_owned());
        self.schedule.set(schedule_value(config.schedule).to_owned());
        self.batch_size.set(config.batch_size.to_string());
        self.epochs.set(config.epochs.to_string());
        self.input_size.set(config.input_size.to_string());
        self.train_subset.set(subset(config.train_subset));
        self.test_subset.set(subset(config.test_subset));
        self.seed.set(config.seed.to_string());
    }

    fn read(&self) -> Result<TrainConfig, String> {
        fn number<T: FromStr>(name: &str, text: RwSignal<String>) -> Result<T, String> {
            let text = text.get_untracked();
            text.trim().parse().map_err(|_| format!("{name}: “{text}” is not a number"))
        }
        fn subset(name: &str, text: RwSignal<String>) -> Result<Option<usize>, String> {
            if text.with_untracked(|t| t.trim().is_empty()) { Ok(None) } else { number(name, text).map(Some) }
        }
        let config = TrainConfig {
            learning_rate: number("Learning rate", self.learning_rate)?,
            batch_size: number("Batch size", self.batch_size)?,
            epochs: number("Epochs", self.epochs)?,
            input_size: number("Input size", self.input_size)?,
            train_subset: subset("Training images", self.train_subset)?,
            test_subset: subset("Test images", self.test_subset)?,
            seed: number("Seed", self.seed)?,
            momentum: number("Momentum", self.momentum)?,
            init: if self.init.get_untracked() == init_value(WeightInit::He) { WeightInit::He } else { WeightInit::Glorot },
            schedule: if self.schedule.get_untracked() == schedule_value(Schedule::Linear) { Schedule::Linear } else { Schedule::Constant },
        };
        config.validate().map_err(|error| capitalise(&error.to_string()))?;
        Ok(config)
    }

    fn read_workers(&self) -> Result<usize, String> {
        let text = self.workers.get_untracked();
        match text.trim().parse::<usize>() {
            Ok(workers) if (1..=MAX_WORKERS).contains(&workers) => Ok(workers),
            _ => Err(format!("Workers: “{text}” is not a whole number from 1 to {MAX_WORKERS}")),
        }
    }
}

/// The initialisation's value in the settings' select.
fn init_value(init: WeightInit) -> &'static str {
    match init {
        WeightInit::Glorot => "glorot",
        WeightInit::He => "he",
    }
}

/// The schedule's value in the settings' select.
fn schedule_value(schedule: Schedule) -> &'static str {
    match schedule {
        Schedule::Constant => "constant",
        Schedule::Linear => "linear",
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[component]
pub fn TrainingPanel(loader: RwSignal<Loader>, session: Session) -> impl IntoView {
    let settings = Settings::new(&TrainConfig::default());
    let progress = session.progress;
    let message = RwSignal::new(None::<String>);
    let frame_gap = RwSignal::new(FrameGapMeter::default());
    // Memos: views that depend only on the phase are not rebuilt on every step.
    let phase_memo = Memo::new(move |_| progress.with(|p| p.phase));
    let phase = move || phase_memo.get();

    let train = move |_| {
        let (config, workers) = match settings.read().and_then(|config| Ok((config, settings.read_workers()?))) {
            Ok(read) => read,
            Err(error) => return message.set(Some(error)),
        };
        session.workers.set(workers);
        let sent = loader.with_untracked(|loader| {
            let (Some(train), Some(test)) = (loader.split(SplitName::Train), loader.split(SplitName::Test)) else {
                return Err("Load the four Fashion-MNIST files first (training and test images and labels).".to_owned());
            };
            session.start_training(config, train, test)
        });
        match sent {
            Ok(()) => {
                message.set(None);
                watch_frames(progress, frame_gap);
            }
            Err(error) => message.set(Some(error)),
        }
    };
    let send = move |command: Command| session.control(command);

    view! {
        <section class="training" id="train">
            <h2>"Train"</h2>
            // Locked while a run goes (paused too): what it shows is what the run uses.
            <fieldset class="settings" disabled=move || phase().is_running()>
                <Field label="Learning rate" value=settings.learning_rate step="any" />
                <Choice
                    label="Rate schedule"
                    value=settings.schedule
                    options=vec![
                        (schedule_value(Schedule::Constant), "constant", Schedule::Constant.label()),
                        (schedule_value(Schedule::Linear), "linear, to 0", Schedule::Linear.label()),
                    ]
                />
                <Field label="Momentum" value=settings.momentum step="any" />
                <Choice
                    label="Initial weights"
                    value=settings.init
                    options=vec![
                        (init_value(WeightInit::Glorot), WeightInit::Glorot.label(), WeightInit::Glorot.label()),
                        (init_value(WeightInit::He), WeightInit::He.label(), WeightInit::He.label()),
                    ]
                />
                <Field label="Batch size" value=settings.batch_size step="1" />
                <Field label="Epochs" value=settings.epochs step="1" />
                <Field label="Input size" value=settings.input_size step="1" />
                <Field label="Training images" value=settings.train_subset step="1" placeholder="all" />
                <Field label="Test images" value=settings.test_subset step="1" placeholder="all" />
                <Field label="Seed" value=settings.seed step="1" />
                <Field label="Workers (CPU)" value=settings.workers step="1" />
                <div class="presets">
                    <button type="button" on:click=move |_| settings.fill(&TrainConfig::default())>"Seed settings"</button>
                    <button type="button" on:click=move |_| settings.fill(&TrainConfig::quick_look())>"Quick look"</button>
                </div>
                <p class="preset-note">{quick_look_note()}</p>
            </fieldset>
            <div class="controls">
                <button class="primary" on:click=train disabled=move || phase().is_running()>"Train"</button>
                <button
                    disabled=move || !phase().is_running()
                    on:click=move |_| { send(if phase() == Phase::Paused { Command::Resume } else { Command::Pause }); }
                >
                    {move || if phase() == Phase::Paused { "Resume" } else { "Pause" }}
                </button>
                <button disabled=move || !phase().is_running() on:click=move |_| { send(Command::Stop); }>"Stop"</button>
            </div>
            {move || message.get().map(|text| view! { <p class="status error">{text}</p> })}
            <Show when=move || phase() != Phase::Idle>
                <RunView progress frame_gap loader />
            </Show>
        </section>
    }
}

#[component]
fn Field(label: &'static str, value: RwSignal<String>, step: &'static str, #[prop(optional)] placeholder: &'static str) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input type="number" min="0" step=step placeholder=placeholder bind:value=value />
        </label>
    }
}

/// A setting chosen from a list: `options` are `(value, text, title)`.
#[component]
fn Choice(label: &'static str, value: RwSignal<String>, options: Vec<(&'static str, &'static str, &'static str)>) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <select prop:value=move || value.get() on:change=move |event| value.set(event_target_value(&event))>
                {options.into_iter().map(|(option, text, title)| view! { <option value=option title=title>{text}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// Measures the longest gap between animation frames while a run is under way: the page's
/// responsiveness, which the worker is there to keep.
fn watch_frames(progress: RwSignal<TrainingProgress>, frame_gap: RwSignal<FrameGapMeter>) {
    let meter = Rc::new(RefCell::new(FrameGapMeter::default()));
    frame_gap.set(FrameGapMeter::default());
    let callback: FrameCallback = Rc::default();
    let next = callback.clone();
    *callback.borrow_mut() = Some(Closure::new(move |now: f64| {
        let running = progress.with_untracked(|p| p.phase.is_running());
        let (before, after) = {
            let mut meter = meter.borrow_mut();
            let before = *meter;
            meter.frame(now);
            (before, *meter)
        };
        if after.longest_ms > before.longest_ms || after.frames % 60 == 0 || !running {
            frame_gap.set(after);
        }
        if running {
            request_frame(&next);
        } else {
            // Ends the loop (and the cycle between the closure and itself).
            next.borrow_mut().take();
        }
    }));
    request_frame(&callback);
}

/// A `requestAnimationFrame` callback that can ask for the next frame itself.
type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut(f64)>>>>;

fn request_frame(callback: &FrameCallback) {
    if let (Some(window), Some(callback)) = (web_sys::window(), callback.borrow().as_ref()) {
        let _ = window.request_animation_frame(callback.as_ref().unchecked_ref());
    }
}

/// Everything about the current (or last) run.
#[component]
fn RunView(progress: RwSignal<TrainingProgress>, frame_gap: RwSignal<FrameGapMeter>, loader: RwSignal<Loader>) -> impl IntoView {
    let status = move || {
        progress.with(|p| match p.phase {
            Phase::Idle => String::new(),
            Phase::Starting => "Starting the worker and its device, handing it the data…".to_owned(),
            Phase::Training => "Training".to_owned(),
            Phase::Testing => match p.testing {
                Some((epoch, done, total)) => format!("Testing epoch {epoch} on the test split: {done} / {total} images"),
                None => "Testing".to_owned(),
            },
            Phase::Paused => "Paused".to_owned(),
            Phase::Finished => match p.history.len() {
                1 => "Finished: 1 epoch".to_owned(),
                n => format!("Finished: {n} epochs"),
            },
            Phase::Stopped => match p.history.len() {
                0 => "Stopped before the first epoch ended: no model was kept".to_owned(),
                n => format!("Stopped after {n} full epochs; the model of epoch {n} is kept"),
            },
            Phase::Failed => format!("Training failed: {}", p.error.clone().unwrap_or_default()),
        })
    };
    let status_class = move || if progress.with(|p| p.phase) == Phase::Failed { "run-status status error" } else { "run-status status" };
    let engine = Memo::new(move |_| progress.with(|p| p.engine.clone()));
    let workers = Memo::new(move |_| progress.with(|p| p.workers.clone()));
    let latest = Memo::new(move |_| progress.with(|p| p.latest_epoch().cloned()));

    view! {
        <p class=status_class data-phase=move || format!("{:?}", progress.with(|p| p.phase))>{status}</p>
        {move || progress.with(|p| p.notice.clone()).map(|text| view! { <p class="status warning run-notice">{text}</p> })}
        {move || engine.get().map(|engine| view! { <p class="worker-engine">"Worker: " {engine}</p> })}
        {move || workers.get().map(|(count, note)| {
            let line = match count {
                1 => "Training on 1 worker".to_owned(),
                n => format!("Training on {n} workers, data-parallel: each computes the gradients of its slice of every batch"),
            };
            view! { <p class="worker-count">{line} {note.map(|note| format!(" ({note})"))}</p> }
        })}
        <Bars progress />
        <Figures progress frame_gap />
        <SeedRunEstimate progress />
        <Charts progress />
        {move || latest.get().map(|report| view! { <EpochResults report loader /> })}
    }
}

#[component]
fn Bars(progress: RwSignal<TrainingProgress>) -> impl IntoView {
    let epoch_label = move || {
        progress.with(|p| match &p.last_step {
            Some(step) => format!("Epoch {} of {} · step {} of {}", step.epoch, p.epochs, step.step_in_epoch, step.steps_per_epoch),
            None => format!("Epoch 1 of {}", p.epochs.max(1)),
        })
    };
    view! {
        <div class="bars">
            <label>{epoch_label}<progress class="epoch-progress" max="1" value=move || progress.with(|p| p.epoch_fraction())></progress></label>
            <label>
                {move || format!("Overall {:.0} %", progress.with(|p| p.overall_fraction()) * 100.0)}
                <progress class="overall-progress" max="1" value=move || progress.with(|p| p.overall_fraction())></progress>
            </label>
        </div>
    }
}

#[component]
fn Figures(progress: RwSignal<TrainingProgress>, frame_gap: RwSignal<FrameGapMeter>) -> impl IntoView {
    fn percent(value: f32) -> String {
        format!("{:.1} %", value * 100.0)
    }
    let figure = move |name: &'static str, class: &'static str, value: Signal<String>| {
        view! { <div class=format!("figure {class}")><span class="name">{name}</span><span class="value">{value}</span></div> }
    };
    let step = move |f: fn(&crate::train::StepReport) -> String| {
        Signal::derive(move || progress.with(|p| p.last_step.as_ref().map(f).unwrap_or_else(|| "–".into())))
    };
    view! {
        <div class="figures">
            {figure("Loss (this step)", "loss", step(|s| format!("{:.4}", s.loss)))}
            {figure("Loss (epoch mean)", "epoch-loss", step(|s| format!("{:.4}", s.epoch_loss)))}
            {figure("Train accuracy (epoch)", "train-accuracy", step(|s| percent(s.epoch_accuracy)))}
            {figure("Test accuracy", "test-accuracy", Signal::derive(move || progress.with(|p| p.latest_epoch().map_or("–".into(), |e| percent(e.test_accuracy)))))}
            {figure("Images / s", "images-per-second", Signal::derive(move || progress.with(|p| p.images_per_second().map_or("–".into(), |r| format!("{r:.1}")))))}
            {figure("Time left", "eta", Signal::derive(move || progress.with(|p| match p.phase {
                Phase::Finished | Phase::Stopped | Phase::Failed => "–".into(),
                _ => p.eta_seconds().map_or("–".into(), format_duration),
            })))}
            {figure("Longest frame gap", "frame-gap", Signal::derive(move || frame_gap.with(|m| if m.frames > 1 { format!("{:.0} ms", m.longest_ms) } else { "–".into() })))}
        </div>
    }
}

/// What the seed's own run would cost here, from this run's measured rate.
#[component]
fn SeedRunEstimate(progress: RwSignal<TrainingProgress>) -> impl IntoView {
    let estimate = Memo::new(move |_| progress.with(|p| p.seed_run_seconds().map(|seconds| (seconds, p.input_size))));
    move || {
        estimate.get().map(|(seconds, size)| {
            let scaled = if size == crate::train::SEED_INPUT_SIZE { String::new() } else { format!(", scaled from this run's {size}×{size}") };
            view! {
                <p class="seed-estimate">
                    {format!(
                        "The seed's own run (5 epochs of 60,000 images at 96×96) would take about {} on this device at this rate{scaled}; on a GPU, minutes.",
                        format_duration(seconds)
                    )}
                </p>
            }
        })
    }
}

#[component]
fn Charts(progress: RwSignal<TrainingProgress>) -> impl IntoView {
    let epochs = move || progress.with(|p| p.epochs.max(1)) as f64;
    let loss = move || {
        progress.with(|p| {
            let points: Vec<(f64, f64)> = p.loss_curve.iter().map(|&(x, y)| (x, f64::from(y))).collect();
            let test: Vec<(f64, f64)> = p.history.iter().map(|e| (e.epoch as f64, f64::from(e.test_loss))).collect();
            // Fit the curve: early on every loss sits near ln 10 ≈ 2.30.
            let values = || points.iter().chain(&test).map(|&(_, y)| y);
            let y_max = (values().fold(0.0f64, f64::max).min(10.0) * 10.0 + 0.5).ceil() / 10.0;
            let y_min = ((values().fold(f64::INFINITY, f64::min) * 10.0 - 0.5).floor() / 10.0).clamp(0.0, y_max - 0.1);
            let series = vec![
                Series { label: "train (per step)", class: "train", points, dots: false },
                Series { label: "test (per epoch)", class: "test", points: test, dots: true },
            ];
            view! { <Chart title="Loss" x_max=epochs() y_min y_max y_format=|v| format!("{v:.1}") series /> }
        })
    };
    let accuracy = move || {
        progress.with(|p| {
            let points: Vec<(f64, f64)> = p.accuracy_curve.iter().map(|&(x, y)| (x, f64::from(y))).collect();
            let test: Vec<(f64, f64)> = p.history.iter().map(|e| (e.epoch as f64, f64::from(e.test_accuracy))).collect();
            let series = vec![
                Series { label: "train (running, per epoch)", class: "train", points, dots: false },
                Series { label: "test (per epoch)", class: "test", points: test, dots: true },
            ];
            view! { <Chart title="Accuracy" x_max=epochs() y_min=0.0 y_max=1.0 y_format=|v| format!("{:.0} %", v * 100.0) series /> }
        })
    };
    view! { <div class="charts">{loss}{accuracy}</div> }
}

/// The test pass of the latest epoch: confusion matrix, per-class accuracy, mistakes.
#[component]
fn EpochResults(report: EpochReport, loader: RwSignal<Loader>) -> impl IntoView {
    let classes = report.confusion.class_accuracy();
    let counts = report.confusion.counts;
    let row_max: Vec<u32> = counts.iter().map(|row| row.iter().sum::<u32>().max(1)).collect();
    let mistakes = report.mistakes.clone();
    view! {
        <div class="results">
            <h3>"After epoch " {report.epoch} ": " {format!("{:.1} %", report.test_accuracy * 100.0)} " of " {report.confusion.total()} " test images right"</h3>
            <div class="result-panels">
                <table class="confusion">
                    <caption>"Confusion matrix (rows: true class, columns: predicted)"</caption>
                    <tr><th></th>{CLASS_NAMES.iter().map(|name| view! { <th class="col" title=*name>{short(name)}</th> }).collect_view()}</tr>
                    {counts.iter().enumerate().map(|(truth, row)| view! {
                        <tr>
                            <th class="row">{CLASS_NAMES[truth]}</th>
                            {row.iter().enumerate().map(|(predicted, &count)| {
                                let share = f64::from(count) / f64::from(row_max[truth]);
                                let hue = if truth == predicted { "47, 111, 222" } else { "179, 38, 30" };
                                let style = format!("background: rgba({hue}, {:.2})", share.sqrt() * 0.85);
                                let class = if share > 0.45 { "cell strong" } else { "cell" };
                                view! { <td class=class style=style>{count}</td> }
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </table>
                <ul class="class-accuracy">
                    {classes.iter().enumerate().map(|(class, accuracy)| {
                        let value = accuracy.unwrap_or(0.0);
                        let text = accuracy.map_or("no images".into(), |a| format!("{:.1} %", a * 100.0));
                        view! {
                            <li>
                                <span class="class-name">{CLASS_NAMES[class]}</span>
                                <span class="bar"><span style=format!("width: {:.1}%", value * 100.0)></span></span>
                                <span class="class-value">{text}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </div>
            <h4>"Most confident mistakes"</h4>
            <div class="mistakes">
                {move || loader.with(|loader| {
                    let test = loader.split(SplitName::Test)?;
                    Some(mistakes.iter().filter(|m| m.index < test.len()).map(|m| view! {
                        <figure class="sample mistake">
                            <GreyImage pixels=test.image(m.index).to_vec() />
                            <figcaption>
                                <span class="truth">{CLASS_NAMES[usize::from(m.truth)]}</span>
                                " → "
                                <span class="predicted">{CLASS_NAMES[usize::from(m.predicted)]}</span>
                                {format!(" {:.0} %", m.confidence * 100.0)}
                            </figcaption>
                        </figure>
                    }).collect_view())
                })}
            </div>
        </div>
    }
}

/// A column header short enough for ten columns on a phone.
fn short(name: &str) -> String {
    name.split(['/', ' ']).next().unwrap_or(name).chars().take(5).collect()
}
