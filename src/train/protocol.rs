//! The messages between the page and the worker that owns the model. Plain data, sent as
//! JSON; the dataset's bytes travel beside the `Start` message, not inside it.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::run::Progress;
use crate::engine::{Backend, BackendPreference};

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Train a fresh model on the training and test splits sent with this message.
    Start { config: TrainConfig, backend: BackendPreference },
    Pause,
    Resume,
    /// Ends the run after the current unit of work; the model keeps what it learned.
    Stop,
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Update {
    /// The worker listens for commands.
    Ready,
    /// The worker's device, as [`crate::engine::Engine::summary`] words it.
    Engine { backend: Backend, summary: String },
    Started { train_size: usize, test_size: usize, steps_per_epoch: usize, epochs: usize },
    /// One unit of work is done; `train_seconds` is the time spent in SGD steps so far
    /// (pauses and test passes excluded), `test_seconds` the time in test passes.
    Progress { progress: Progress, train_seconds: f64, test_seconds: f64 },
    Paused,
    Resumed,
    /// The run is over: every epoch done, or stopped by the user.
    Finished { stopped: bool },
    /// The run could not start or could not go on; the message is for the page.
    Failed { message: String },
}

// `to_json` cannot fail: plain structs with string keys always serialise (serde_json writes a
// non-finite float as `null`; a diverged loss is reported as an error before it gets here).
impl Command {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("commands are plain data")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| format!("unreadable command: {error}"))
    }
}

impl Update {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("updates are plain data")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| format!("unreadable update: {error}"))
    }
}
