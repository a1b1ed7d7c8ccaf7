//! The hyper-parameters a user can edit, with the seed's values as defaults.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The seed's training hyper-parameters (D2L §5.9).
pub const SEED_LEARNING_RATE: f64 = 0.05;
pub const SEED_BATCH_SIZE: usize = 128;
pub const SEED_EPOCHS: usize = 5;
pub const SEED_INPUT_SIZE: usize = 96;

/// *Quick look*'s share of the 60,000 training images: what fits in about ten minutes with
/// its test pass on a 2-core CPU in the page.
pub const QUICK_LOOK_TRAINING_IMAGES: usize = 44_800;

/// Input sizes the network accepts: below 16 the stride-2 stem and four pools leave nothing.
pub const INPUT_SIZES: std::ops::RangeInclusive<usize> = 16..=512;
pub const BATCH_SIZES: std::ops::RangeInclusive<usize> = 1..=1024;
pub const EPOCHS: std::ops::RangeInclusive<usize> = 1..=100;

/// How the weights of a fresh model are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightInit {
    /// Keras's default, the seed's: Glorot (Xavier) uniform, limit √(6 / (fan in + fan out)).
    #[default]
    Glorot,
    /// He (Kaiming) uniform, limit √(6 / fan in): made for ReLU networks. It keeps the signal's
    /// scale through GoogLeNet's 22 layers, where Glorot's halves it layer after layer and the
    /// loss sits at ln 10 for the first thousands of images (BENCHMARKS.md, issue 17).
    He,
}

impl WeightInit {
    pub fn label(self) -> &'static str {
        match self {
            Self::Glorot => "Glorot (the seed's)",
            Self::He => "He",
        }
    }
}

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// The seed's: the same rate for every step.
    #[default]
    Constant,
    /// From the learning rate at the first step down to 0 after the last, in proportion to
    /// the images trained: large steps while the weights are far off, small ones at the end.
    Linear,
}

impl Schedule {
    pub fn label(self) -> &'static str {
        match self {
            Self::Constant => "constant (the seed's)",
            Self::Linear => "falling linearly to 0",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub epochs: usize,
    /// Side of the square input the 28×28 images are resized to.
    pub input_size: usize,
    /// Train on the first `n` training images only (quick runs); `None`: all of them.
    pub train_subset: Option<usize>,
    /// Test on the first `n` test images only; `None`: the full test split.
    pub test_subset: Option<usize>,
    /// Seeds the weight initialisation and each epoch's shuffle: a run can be repeated.
    pub seed: u64,
    /// SGD's momentum: 0 is the seed's plain SGD. The velocity is `momentum · v + g` and the
    /// step `lr · v` (Keras's and PyTorch's SGD without dampening).
    #[serde(default)]
    pub momentum: f64,
    /// How a fresh model's weights are drawn (a run that starts from a file keeps the file's).
    #[serde(default)]
    pub init: WeightInit,
    /// How the learning rate moves over the run.
    #[serde(default)]
    pub schedule: Schedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: SEED_LEARNING_RATE,
            batch_size: SEED_BATCH_SIZE,
            epochs: SEED_EPOCHS,
            input_size: SEED_INPUT_SIZE,
            train_subset: None,
            test_subset: None,
            seed: 42,
            momentum: 0.0,
            init: WeightInit::Glorot,
            schedule: Schedule::Constant,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("the learning rate must be a number above 0 and at most 10")]
    LearningRate,
    #[error("the momentum must be at least 0 and below 1 (0 is plain SGD)")]
    Momentum,
    #[error("the batch size must be between {} and {}", BATCH_SIZES.start(), BATCH_SIZES.end())]
    BatchSize,
    #[error("the number of epochs must be between {} and {}", EPOCHS.start(), EPOCHS.end())]
    Epochs,
    #[error("the input size must be between {} and {} pixels", INPUT_SIZES.start(), INPUT_SIZES.end())]
    InputSize,
    #[error("a subset must hold at least one image")]
    EmptySubset,
    #[error("load a training split first (training images and labels)")]
    NoTrainingData,
    #[error("load the test split first (t10k images and labels): every epoch ends with a test")]
    NoTestData,
}

impl TrainConfig {
    /// Checks every field; subsets larger than a split simply use the whole split.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return Err(ConfigError::LearningRate);
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(ConfigError::Momentum);
        }
        if !BATCH_SIZES.contains(&self.batch_size) {
            return Err(ConfigError::BatchSize);
        }
        if !EPOCHS.contains(&self.epochs) {
            return Err(ConfigError::Epochs);
        }
        if !INPUT_SIZES.contains(&self.input_size) {
            return Err(ConfigError::InputSize);
        }
        if self.train_subset == Some(0) || self.test_subset == Some(0) {
            return Err(ConfigError::EmptySubset);
        }
        Ok(())
    }

    /// How many training and test images a run on splits of these sizes uses.
    pub fn sizes(&self, train_len: usize, test_len: usize) -> (usize, usize) {
        let limit = |subset: Option<usize>, len: usize| subset.map_or(len, |n| n.min(len));
        (limit(self.train_subset, train_len), limit(self.test_subset, test_len))
    }

    /// The learning rate of the step that starts after `trained` of the run's `total` training
    /// images (every epoch's images counted).
    pub fn learning_rate_at(&self, trained: usize, total: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.learning_rate,
            Schedule::Linear => self.learning_rate * (1.0 - trained as f64 / total.max(1) as f64).max(0.0),
        }
    }

    /// SGD steps per epoch; the last batch of an epoch may be smaller, as in Keras's `fit`.
    pub fn steps_per_epoch(&self, train_len: usize) -> usize {
        train_len.div_ceil(self.batch_size)
    }
}

impl TrainConfig {
    /// *Quick look*: the best of the short runs measured in the page on a 2-core CPU
    /// (BENCHMARKS.md, "A quick run that teaches"): 32×32 inputs, 44,800 training images, one
    /// epoch at batch 32, SGD with momentum 0.9 from He-initialised weights, the learning rate
    /// falling linearly from 0.01 to 0, tested on all 10,000 test images: 84.5 % in 7.6 minutes
    /// there. With the seed's Glorot weights and plain SGD, GoogLeNet (no batch normalisation)
    /// sits on a plateau at ln 10 for most of a short run; He's initialisation starts it
    /// learning from the first steps.
    pub fn quick_look() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.9,
            init: WeightInit::He,
            schedule: Schedule::Linear,
            batch_size: 32,
            epochs: 1,
            input_size: 32,
            train_subset: Some(QUICK_LOOK_TRAINING_IMAGES),
            test_subset: None,
            ..Self::default()
        }
    }

    /// What this run gives up against the seed's (D2L's) settings, one phrase per setting
    /// that differs, e.g. "32×32 input instead of 96×96"; empty for the seed's own run.
    pub fn trade_offs(&self, train_len: usize) -> Vec<String> {
        let seed = Self::default();
        let mut differences = Vec::new();
        if self.input_size != seed.input_size {
            differences.push(format!("{0}×{0} input instead of {1}×{1}", self.input_size, seed.input_size));
        }
        let (used, _) = self.sizes(train_len, 0);
        if used < train_len {
            differences.push(format!("{} of {} training images", group_thousands(used), group_thousands(train_len)));
        }
        if self.epochs != seed.epochs {
            let plural = if self.epochs == 1 { "" } else { "s" };
            differences.push(format!("{} epoch{plural} instead of {}", self.epochs, seed.epochs));
        }
        if self.batch_size != seed.batch_size {
            differences.push(format!("batch {} instead of {}", self.batch_size, seed.batch_size));
        }
        if self.learning_rate != seed.learning_rate {
            differences.push(format!("learning rate {} instead of {}", self.learning_rate, seed.learning_rate));
        }
        if self.momentum != seed.momentum {
            differences.push(format!("momentum {} instead of plain SGD", self.momentum));
        }
        if self.init != seed.init {
            differences.push(format!("{} initialisation instead of Glorot", self.init.label()));
        }
        if self.schedule != seed.schedule {
            differences.push(format!("the learning rate {} instead of constant", self.schedule.label()));
        }
        if self.test_subset.is_some_and(|n| n < 10_000) {
            differences.push(format!("tested on {} images, not all", group_thousands(self.test_subset.unwrap_or(0))));
        }
        differences
    }
}

/// 16000 → "16,000".
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
