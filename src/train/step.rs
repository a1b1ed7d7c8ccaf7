//! One SGD step, as the seed trains: softmax cross-entropy on logits, plain SGD.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::model::GoogLeNet;

/// The optimiser state and loss of a training run. The model passes through each step, as
/// Burn's optimisers take and return it.
pub struct TrainStep {
    optimizer: ModuleOptimizer,
    loss: CrossEntropyLoss,
    pub learning_rate: f64,
}

/// What one step measured, still on the device.
pub struct StepOutput {
    /// Mean cross-entropy of the batch. Shape `[1]`.
    pub loss: Tensor<1>,
    /// How many images of the batch the model (before the update) classified correctly.
    /// Shape `[1]`.
    pub correct: Tensor<1, Int>,
}

impl StepOutput {
    /// `[loss, correct]` in one tensor: a browser reads both back in one round trip.
    pub fn packed(self) -> Tensor<1> {
        Tensor::cat(vec![self.loss, self.correct.float()], 0)
    }
}

impl TrainStep {
    pub fn new(learning_rate: f64, device: &Device) -> Self {
        Self {
            optimizer: SgdConfig::new().init(),
            loss: CrossEntropyLossConfig::new().init(device),
            learning_rate,
        }
    }

    /// One forward, backward and update. The model must live on an autodiff device. The
    /// outputs stay on the device: read them only as often as the UI needs (asynchronously
    /// in a browser).
    ///
    /// # Shapes
    /// - images: `[batch, channels, height, width]`
    /// - labels: `[batch]`
    pub fn step(&mut self, model: GoogLeNet, images: Tensor<4>, labels: Tensor<1, Int>) -> (GoogLeNet, StepOutput) {
        let batch = labels.dims()[0];
        let logits = model.forward(images);
        let correct = logits.clone().argmax(1).reshape([batch]).equal(labels.clone()).int().sum();
        let loss = self.loss.forward(logits, labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = self.optimizer.step(self.learning_rate, model, grads);
        (model, StepOutput { loss: loss.detach(), correct })
    }
}
