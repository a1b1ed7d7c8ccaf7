//! The hyper-parameters a user can edit, with the seed's values as defaults.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The seed's training hyper-parameters (D2L §5.9).
pub const SEED_LEARNING_RATE: f64 = 0.05;
pub const SEED_BATCH_SIZE: usize = 128;
pub const SEED_EPOCHS: usize = 5;
pub const SEED_INPUT_SIZE: usize = 96;

/// Input sizes the network accepts: below 16 the stride-2 stem and four pools leave nothing.
pub const INPUT_SIZES: std::ops::RangeInclusive<usize> = 16..=512;
pub const BATCH_SIZES: std::ops::RangeInclusive<usize> = 1..=1024;
pub const EPOCHS: std::ops::RangeInclusive<usize> = 1..=100;

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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("the learning rate must be a number above 0 and at most 10")]
    LearningRate,
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

    /// SGD steps per epoch; the last batch of an epoch may be smaller, as in Keras's `fit`.
    pub fn steps_per_epoch(&self, train_len: usize) -> usize {
        train_len.div_ceil(self.batch_size)
    }
}
