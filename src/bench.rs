//! The benchmark: training images per second at several batch sizes, and single-image
//! inference latency, measured with the app's own training run and classifier on real
//! Fashion-MNIST images. DOM-free: the worker runs it in the browser (the Benchmark panel),
//! `--bin bench` natively on wgpu or the CPU, and both print the same JSON.

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::infer;
use crate::model::{weights, GoogLeNetConfig};
use crate::train::data_parallel::ReplicaPool;
use burn::module::Module;
use crate::train::{TrainConfig, TrainingRun, SEED_LEARNING_RATE};
use burn::tensor::Device;

/// A GoogLeNet training step at 96×96 costs about 1.66 GFLOP per image (forward 276 M
/// multiply-adds, backward about twice that).
pub const TRAIN_GFLOP_PER_IMAGE_96: f64 = 1.66;

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// The side images are resized to (the seed trains at 96).
    pub input_size: usize,
    /// Training is measured at each of these batch sizes.
    pub batch_sizes: Vec<usize>,
    /// Timed steps per batch size, after one untimed warm-up step (shaders compile in it).
    pub timed_steps: usize,
    /// Timed single-image classifications, after the first (cold) one and two warm-ups.
    pub inference_runs: usize,
}

impl Default for BenchConfig {
    /// The figures at the seed's input size.
    fn default() -> Self {
        Self { input_size: 96, batch_sizes: vec![16, 32, 128], timed_steps: 3, inference_runs: 30 }
    }
}

impl BenchConfig {
    /// How many training images the benchmark needs: its largest batch for every step.
    pub fn images_needed(&self) -> usize {
        self.batch_sizes.iter().max().copied().unwrap_or(0) * (self.timed_steps + 1)
    }

    pub fn validate(&self) -> Result<(), String> {
        TrainConfig { input_size: self.input_size, ..TrainConfig::default() }.validate().map_err(|error| error.to_string())?;
        if self.batch_sizes.is_empty() || self.batch_sizes.iter().any(|&batch| batch == 0 || batch > 512) {
            return Err("batch sizes must be between 1 and 512".into());
        }
        if self.timed_steps == 0 || self.inference_runs == 0 {
            return Err("time at least one step and one classification".into());
        }
        Ok(())
    }
}

/// Training throughput at one batch size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingFigure {
    pub batch_size: usize,
    /// The untimed first step: kernels compile and autotune in it.
    pub warm_up_seconds: f64,
    pub timed_steps: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    /// Arithmetic done per second, from [`TRAIN_GFLOP_PER_IMAGE_96`] scaled by the input area.
    pub gflops: f64,
}

/// Single-image classification latency, from the request to the probabilities read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferenceFigure {
    /// The first classification on a fresh model: kernels compile in it.
    pub first_ms: f64,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// Everything the benchmark measured on one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The device, as [`crate::engine::Engine::summary`] words it.
    pub device: String,
    pub input_size: usize,
    pub inference: InferenceFigure,
    pub training: Vec<TrainingFigure>,
}

/// Where a running benchmark is, for a progress line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BenchStage {
    Inference { done: usize, of: usize },
    Training { batch_size: usize, step: usize, of: usize },
}

impl BenchStage {
    pub fn describe(&self) -> String {
        match self {
            Self::Inference { done, of } => format!("inference: {done} / {of} classifications"),
            Self::Training { batch_size, step, of } => format!("training at batch {batch_size}: step {step} / {of}"),
        }
    }
}

/// Training GFLOP per image at `input_size`: the cost scales with the input's area.
pub fn train_gflop_per_image(input_size: usize) -> f64 {
    TRAIN_GFLOP_PER_IMAGE_96 * (input_size * input_size) as f64 / (96.0 * 96.0)
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs the benchmark on `device` with real images from `sample` (at least
/// [`BenchConfig::images_needed`] of them). `now` is a clock in milliseconds (the browser's
/// `performance.now`, or `Instant` natively). Inference runs first, so its first figure is a
/// cold start when the device is fresh.
///
/// Training runs data-parallel with `replicas` when there are any (the page's CPU backend on
/// several workers): they are given each run's initial weights, outside the timed steps.
pub async fn run<P: ReplicaPool>(
    config: &BenchConfig,
    device_summary: String,
    device: &Device,
    replicas: &mut P,
    sample: Split<'_>,
    now: impl Fn() -> f64,
    mut on_stage: impl FnMut(BenchStage),
) -> Result<BenchReport, String> {
    config.validate()?;
    if sample.len() < config.images_needed() {
        return Err(format!("the benchmark needs {} training images; {} are loaded", config.images_needed(), sample.len()));
    }

    // Inference: one real test-like image, a fresh model, the page's classifier.
    let model = GoogLeNetConfig::new().init(device);
    let frame = sample.image(0);
    let mut times = Vec::with_capacity(config.inference_runs + 3);
    let total = config.inference_runs + 3;
    for done in 0..total {
        let started = now();
        infer::classify(&model, config.input_size, frame, device).await?;
        times.push(now() - started);
        on_stage(BenchStage::Inference { done: done + 1, of: total });
    }
    let timed = &times[3..];
    let inference = InferenceFigure {
        first_ms: times[0],
        runs: timed.len(),
        median_ms: median(timed),
        min_ms: timed.iter().copied().fold(f64::INFINITY, f64::min),
        max_ms: timed.iter().copied().fold(0.0, f64::max),
    };

    // Training: the app's own run, one fresh model per batch size, stopped before its test pass.
    let mut training = Vec::new();
    for &batch_size in &config.batch_sizes {
        let steps = config.timed_steps + 1;
        let images = batch_size * steps;
        let data = sample.first(images).to_dataset();
        let train_config = TrainConfig {
            batch_size,
            epochs: 1,
            input_size: config.input_size,
            learning_rate: SEED_LEARNING_RATE,
            train_subset: Some(images),
            test_subset: Some(1),
            ..TrainConfig::default()
        };
        // The run is stopped before its test pass: one test image is enough.
        let mut run = TrainingRun::new(train_config, data, sample.first(1).to_dataset(), device).map_err(|error| error.to_string())?;
        if !replicas.is_empty() {
            let cpu = weights::to_cpu(&run.model().valid()).await.map_err(|error| error.to_string())?;
            let bytes = weights::save(&cpu, config.input_size, &[]).map_err(|error| error.to_string())?;
            for index in 0..replicas.len() {
                replicas.replace(index, &bytes).await?;
            }
        }
        // Each step reads its loss back, as the page's training does: the clock stops only
        // when the device has finished the work.
        let started = now();
        run.advance_with(replicas).await.map_err(|error| error.to_string())?;
        on_stage(BenchStage::Training { batch_size, step: 1, of: steps });
        let warm = now();
        for step in 2..=steps {
            run.advance_with(replicas).await.map_err(|error| error.to_string())?;
            on_stage(BenchStage::Training { batch_size, step, of: steps });
        }
        let seconds = (now() - warm) / 1000.0;
        let images_per_second = (batch_size * config.timed_steps) as f64 / seconds;
        training.push(TrainingFigure {
            batch_size,
            warm_up_seconds: (warm - started) / 1000.0,
            timed_steps: config.timed_steps,
            seconds,
            images_per_second,
            gflops: images_per_second * train_gflop_per_image(config.input_size),
        });
    }
    Ok(BenchReport { device: device_summary, input_size: config.input_size, inference, training })
}
