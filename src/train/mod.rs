//! Training: the seed's SGD step, a whole run driven one unit of work at a time (so a worker
//! can pause, stop and report between units), what it measures, and the messages between the
//! page and the worker that trains.

mod config;
pub mod data_parallel;
mod metrics;
mod progress;
mod protocol;
mod run;
mod step;

pub use config::{
    ConfigError, Schedule, TrainConfig, WeightInit, BATCH_SIZES, EPOCHS, INPUT_SIZES, SEED_BATCH_SIZE, SEED_EPOCHS, SEED_INPUT_SIZE,
    SEED_LEARNING_RATE,
};
pub use metrics::{most_confident, ConfusionMatrix, Mistake, Shuffler};
pub use progress::{format_duration, FrameGapMeter, Phase, TrainingProgress};
pub use protocol::{Command, FeatureMaps, ModelInfo, ModelOrigin, Update, WeightsPurpose};
pub use run::{EpochReport, Progress, StepReport, TrainError, TrainingRun, MISTAKES_KEPT, REPLICA_LOSSES_PER_STEP};
pub use step::{StepOutput, TrainStep};
