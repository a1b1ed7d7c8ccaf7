//! A small SVG line chart: a few hundred points per run do not need a charting crate's
//! weight in the wasm.

use leptos::prelude::*;

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 38.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// More points than pixels only cost time: long curves are thinned to this many.
const MAX_POINTS: usize = 600;

/// One series: a line, or dots (e.g. one test accuracy per epoch).
#[derive(Clone, Debug)]
pub struct Series {
    pub label: &'static str,
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
    pub dots: bool,
}

/// x runs from 0 to `x_max` (epochs), y from `y_min` to `y_max`.
#[component]
pub fn Chart(title: &'static str, x_max: f64, y_min: f64, y_max: f64, y_format: fn(f64) -> String, series: Vec<Series>) -> impl IntoView {
    let x_max = x_max.max(1.0);
    let (y_min, y_max) = if y_max > y_min && y_min.is_finite() { (y_min, y_max) } else { (0.0, 1.0) };
    let x = move |value: f64| LEFT + value / x_max * (WIDTH - LEFT - 4.0);
    let y = move |value: f64| TOP + (1.0 - (value - y_min) / (y_max - y_min)) * (HEIGHT - TOP - BOTTOM);
    let ticks: Vec<usize> = (0..=x_max.ceil() as usize).collect();
    view! {
        <figure class="chart">
            <figcaption>
                {title}
                {series.iter().map(|s| view! { <span class=format!("legend {}", s.class)>{s.label}</span> }).collect_view()}
            </figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=title>
                <line class="axis" x1=LEFT y1=y(y_min) x2=WIDTH - 4.0 y2=y(y_min) />
                <line class="axis" x1=LEFT y1=y(y_min) x2=LEFT y2=TOP />
                {[y_max, (y_min + y_max) / 2.0, y_min].map(|tick| view! {
                    <text class="tick" x=LEFT - 4.0 y=y(tick) + 4.0 text-anchor="end">{y_format(tick)}</text>
                })}
                {ticks.into_iter().map(|epoch| view! {
                    <text class="tick" x=x(epoch as f64) y=HEIGHT - 5.0 text-anchor="middle">{epoch}</text>
                }).collect_view()}
                {series.into_iter().map(|s| {
                    let stride = s.points.len().div_ceil(MAX_POINTS).max(1);
                    let points: Vec<(f64, f64)> = s.points.iter().copied().step_by(stride).chain(s.points.last().copied()).collect();
                    if s.dots {
                        points.into_iter().map(|(px, py)| view! {
                            <circle class=format!("dot {}", s.class) cx=x(px) cy=y(py.clamp(y_min, y_max)) r="3.5" />
                        }).collect_view().into_any()
                    } else {
                        let path = points.iter().map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py.clamp(y_min, y_max)))).collect::<Vec<_>>().join(" ");
                        view! { <polyline class=format!("line {}", s.class) points=path /> }.into_any()
                    }
                }).collect_view()}
            </svg>
            <span class="x-label">"epochs"</span>
        </figure>
    }
}
