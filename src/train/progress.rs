//! The page's picture of a training run, folded from the worker's [`Update`]s: what the
//! progress bars, figures and charts show. DOM-free, so it is tested natively.

use super::config::{SEED_EPOCHS, SEED_INPUT_SIZE};
use super::protocol::Update;
use super::run::{EpochReport, Progress, StepReport};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// No run yet.
    #[default]
    Idle,
    /// Sent `Start`; the worker is loading the data and starting its device.
    Starting,
    Training,
    Testing,
    Paused,
    Finished,
    Stopped,
    Failed,
}

impl Phase {
    pub fn is_running(self) -> bool {
        matches!(self, Self::Starting | Self::Training | Self::Testing | Self::Paused)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingProgress {
    pub phase: Phase,
    /// The worker's device, in words.
    pub engine: Option<String>,
    /// How many workers train (data-parallel on the CPU backend), and why fewer than asked.
    pub workers: Option<(usize, Option<String>)>,
    /// The run's input side (what its images/s were measured at).
    pub input_size: usize,
    pub train_size: usize,
    pub test_size: usize,
    pub steps_per_epoch: usize,
    pub epochs: usize,
    pub last_step: Option<StepReport>,
    /// `(epoch, done, total)` of the test pass under way.
    pub testing: Option<(usize, usize, usize)>,
    /// One report per finished epoch.
    pub history: Vec<EpochReport>,
    /// `(epochs, loss)` after every step; x counts epochs, fractions within one.
    pub loss_curve: Vec<(f64, f32)>,
    /// `(epochs, running training accuracy of the epoch)` after every step.
    pub accuracy_curve: Vec<(f64, f32)>,
    pub images_trained: usize,
    pub train_seconds: f64,
    pub test_seconds: f64,
    pub error: Option<String>,
    /// What interrupted the run and how it went on (a lost GPU), for the page to say.
    pub notice: Option<String>,
    /// `(train_seconds, test_seconds)` when each epoch of `history` ended: where a resumed
    /// run's clock starts again.
    epoch_end_seconds: Vec<(f64, f64)>,
    /// Time spent before the worker that reports now took over (a resumed run's worker
    /// starts its clock at zero).
    seconds_before: (f64, f64),
}

impl TrainingProgress {
    /// The state right after the page sent `Start`.
    pub fn starting() -> Self {
        Self { phase: Phase::Starting, ..Self::default() }
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Ready => {}
            Update::Engine { summary, .. } => self.engine = Some(summary),
            Update::Workers { count, note } => self.workers = Some((count, note)),
            Update::ReplicaReplaced { message } => self.notice = Some(message),
            Update::Started { train_size, test_size, steps_per_epoch, epochs, resumed_after: _ } => {
                self.train_size = train_size;
                self.test_size = test_size;
                self.steps_per_epoch = steps_per_epoch;
                self.epochs = epochs;
                self.phase = Phase::Training;
            }
            Update::Progress { progress, train_seconds, test_seconds } => {
                self.train_seconds = self.seconds_before.0 + train_seconds;
                self.test_seconds = self.seconds_before.1 + test_seconds;
                self.progress(progress);
            }
            Update::Paused => self.phase = Phase::Paused,
            Update::Resumed => self.phase = if self.testing.is_some() { Phase::Testing } else { Phase::Training },
            Update::Finished { stopped } => {
                self.phase = if stopped { Phase::Stopped } else { Phase::Finished };
                self.testing = None;
            }
            Update::Failed { message } => {
                self.phase = Phase::Failed;
                self.error = Some(message);
            }
            // The model in use and its predictions are the classifier's business.
            Update::Model { .. }
            | Update::Predictions { .. }
            | Update::ClassifyFailed { .. }
            | Update::Weights { .. }
            | Update::WeightsFailed { .. }
            | Update::Activations { .. }
            | Update::Filters { .. }
            | Update::InsideFailed { .. }
            | Update::Benchmarking { .. }
            | Update::Benchmarked { .. }
            | Update::BenchmarkFailed { .. }
            | Update::Memory { .. }
            | Update::DeviceLost { .. }
            | Update::Crashed { .. } => {}
        }
    }

    fn progress(&mut self, progress: Progress) {
        let paused = self.phase == Phase::Paused;
        match progress {
            Progress::Step(step) => {
                let x = (step.epoch - 1) as f64 + step.step_in_epoch as f64 / step.steps_per_epoch as f64;
                self.loss_curve.push((x, step.loss));
                self.accuracy_curve.push((x, step.epoch_accuracy));
                self.images_trained += step.batch_size;
                self.last_step = Some(step);
                if !paused {
                    self.phase = Phase::Training;
                }
            }
            Progress::Testing { epoch, done, total } => {
                self.testing = Some((epoch, done, total));
                if !paused {
                    self.phase = Phase::Testing;
                }
            }
            Progress::Epoch(report) => {
                self.testing = None;
                self.history.push(*report);
                self.epoch_end_seconds.push((self.train_seconds, self.test_seconds));
                if !paused {
                    self.phase = Phase::Training;
                }
            }
        }
    }

    /// Goes back to the end of epoch `completed` (0: the start), where a run interrupted later
    /// resumes from its checkpoint: what came after is dropped from the figures and charts,
    /// and `notice` says why.
    pub fn resume_after(&mut self, completed: usize, notice: String) {
        let completed = completed.min(self.history.len());
        self.history.truncate(completed);
        self.epoch_end_seconds.truncate(completed);
        let end = completed as f64 + 1e-9;
        self.loss_curve.retain(|&(x, _)| x <= end);
        self.accuracy_curve.retain(|&(x, _)| x <= end);
        self.images_trained = completed * self.train_size;
        self.seconds_before = self.epoch_end_seconds.last().copied().unwrap_or_default();
        (self.train_seconds, self.test_seconds) = self.seconds_before;
        self.last_step = None;
        self.testing = None;
        self.error = None;
        self.phase = Phase::Starting;
        self.notice = Some(notice);
    }

    pub fn latest_epoch(&self) -> Option<&EpochReport> {
        self.history.last()
    }

    /// Fraction of the current epoch's SGD steps done.
    pub fn epoch_fraction(&self) -> f64 {
        match (&self.last_step, self.history.last()) {
            // The epoch of the last step is over and tested: the next has not begun.
            (Some(step), Some(epoch)) if epoch.epoch == step.epoch => 0.0,
            (Some(step), _) => step.step_in_epoch as f64 / step.steps_per_epoch as f64,
            (None, _) => 0.0,
        }
    }

    /// Fraction of all SGD steps done.
    pub fn overall_fraction(&self) -> f64 {
        let total = self.steps_per_epoch * self.epochs;
        match &self.last_step {
            Some(step) if total > 0 => ((step.epoch - 1) * step.steps_per_epoch + step.step_in_epoch) as f64 / total as f64,
            _ => 0.0,
        }
    }

    /// Training throughput (test passes and pauses excluded).
    pub fn images_per_second(&self) -> Option<f64> {
        (self.train_seconds > 0.0 && self.images_trained > 0).then(|| self.images_trained as f64 / self.train_seconds)
    }

    /// What the seed's whole run (5 epochs of Fashion-MNIST's 60,000 images at 96×96, each
    /// with a test pass of 10,000) would take at this run's measured rate, in seconds. The rate
    /// is scaled from this run's input size by (96 / size)^1.5: in the page, 96×96 trains 5.2×
    /// slower than 32×32 for 9× the pixels (bigger products use the cores better;
    /// BENCHMARKS.md). A test image costs a third of a training one.
    pub fn seed_run_seconds(&self) -> Option<f64> {
        const TRAIN_IMAGES: f64 = 60_000.0;
        const TEST_IMAGES: f64 = 10_000.0;
        let rate = self.images_per_second()?;
        if self.input_size == 0 {
            return None;
        }
        let seed_rate = rate / (SEED_INPUT_SIZE as f64 / self.input_size as f64).powf(1.5);
        Some(SEED_EPOCHS as f64 * (TRAIN_IMAGES / seed_rate + TEST_IMAGES / (3.0 * seed_rate)))
    }

    /// Seconds left: the remaining training images at the measured rate, plus the remaining
    /// test images at the measured test rate (before the first test pass: 3× the training
    /// rate, as a forward pass is about a third of a step).
    pub fn eta_seconds(&self) -> Option<f64> {
        let rate = self.images_per_second()?;
        let epochs_tested = self.history.len();
        let trained = self.images_trained;
        let train_left = (self.epochs * self.train_size).saturating_sub(trained);
        let tested_now = self.testing.map_or(0, |(_, done, _)| done);
        let tested = epochs_tested * self.test_size + tested_now;
        let test_left = (self.epochs * self.test_size).saturating_sub(tested);
        let test_rate = if tested > 0 && self.test_seconds > 0.0 { tested as f64 / self.test_seconds } else { 3.0 * rate };
        Some(train_left as f64 / rate + test_left as f64 / test_rate)
    }
}

/// The longest gap between two animation frames of the page: how long the page could not
/// respond. Fed from `requestAnimationFrame` timestamps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameGapMeter {
    last: Option<f64>,
    pub longest_ms: f64,
    pub frames: u32,
}

impl FrameGapMeter {
    pub fn frame(&mut self, now_ms: f64) {
        if let Some(last) = self.last {
            self.longest_ms = self.longest_ms.max(now_ms - last);
        }
        self.last = Some(now_ms);
        self.frames += 1;
    }
}

/// "12 s", "3 min 05 s", "1 h 02 min": a duration as a person reads it.
pub fn format_duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60),
    }
}
