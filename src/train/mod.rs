//! One SGD step, as the seed trains: softmax cross-entropy on logits, plain SGD.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::model::GoogLeNet;

/// The seed's training hyper-parameters.
pub const SEED_LEARNING_RATE: f64 = 0.05;
pub const SEED_BATCH_SIZE: usize = 128;
pub const SEED_EPOCHS: usize = 5;

/// The optimiser state and loss of a training run. The model passes through each step, as
/// Burn's optimisers take and return it.
pub struct TrainStep {
    optimizer: ModuleOptimizer,
    loss: CrossEntropyLoss,
    pub learning_rate: f64,
}

impl TrainStep {
    pub fn new(learning_rate: f64, device: &Device) -> Self {
        Self {
            optimizer: SgdConfig::new().init(),
            loss: CrossEntropyLossConfig::new().init(device),
            learning_rate,
        }
    }

    /// One forward, backward and update. The model must live on an autodiff device. The loss
    /// stays on the device: read it only as often as the UI needs (asynchronously in a browser).
    ///
    /// # Shapes
    /// - images: `[batch, channels, height, width]`
    /// - labels: `[batch]`
    /// - returned loss: `[1]`
    pub fn step(&mut self, model: GoogLeNet, images: Tensor<4>, labels: Tensor<1, Int>) -> (GoogLeNet, Tensor<1>) {
        let logits = model.forward(images);
        let loss = self.loss.forward(logits, labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = self.optimizer.step(self.learning_rate, model, grads);
        (model, loss.detach())
    }
}
