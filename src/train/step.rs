//! One SGD step, as the seed trains: softmax cross-entropy on logits, plain SGD (or SGD with
//! momentum, a setting of its own).

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::model::GoogLeNet;

/// The optimiser state and loss of a training run. The model passes through each step, as
/// Burn's optimisers take and return it.
pub struct TrainStep {
    /// SGD, with momentum when the run has it: what [`Self::step`] applies.
    optimizer: ModuleOptimizer,
    /// Plain SGD: what [`Self::apply`] applies (data-parallel runs keep momentum's velocity on
    /// the coordinator, [`super::data_parallel::Velocity`], and send the step's direction).
    plain: ModuleOptimizer,
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
    /// Plain SGD, the seed's.
    pub fn new(learning_rate: f64, device: &Device) -> Self {
        Self::with_momentum(learning_rate, 0.0, device)
    }

    /// SGD with `momentum` (0: plain SGD): velocity `v = momentum · v + g`, step `lr · v`, as
    /// Keras's and PyTorch's SGD (Burn's default dampening of 0.1 is set to 0).
    pub fn with_momentum(learning_rate: f64, momentum: f64, device: &Device) -> Self {
        let optimizer = if momentum > 0.0 {
            SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(momentum).with_dampening(0.0)))
                .init()
        } else {
            SgdConfig::new().init()
        };
        Self { optimizer, plain: SgdConfig::new().init(), loss: CrossEntropyLossConfig::new().init(device), learning_rate }
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

    /// The forward and backward half of [`Self::step`], for data-parallel training: the
    /// gradient of the batch's mean loss, every parameter flattened in the model's visiting
    /// order (the same on every replica, whatever its parameter ids), packed after the loss
    /// and the correct count: `[loss, correct, gradients…]`, one readback. `model` is unchanged.
    ///
    /// # Shapes
    /// - images: `[batch, channels, height, width]`
    /// - labels: `[batch]`
    /// - output: `[2 + parameters]`
    pub fn gradients(&self, model: &GoogLeNet, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<1> {
        /// Takes each parameter's gradient out of the graph's, in visiting order.
        struct Flatten<'a> {
            grads: &'a mut GradientsParams,
            tensors: Vec<Tensor<1>>,
        }
        impl ModuleVisitor for Flatten<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let grad = self.grads.remove::<D>(param.id).unwrap_or_else(|| param.val().inner().zeros_like());
                self.tensors.push(grad.flatten(0, D - 1));
            }
        }
        let batch = labels.dims()[0];
        let logits = model.forward(images);
        let correct = logits.clone().argmax(1).reshape([batch]).equal(labels.clone()).int().sum();
        let loss = self.loss.forward(logits, labels);
        let mut grads = GradientsParams::from_grads(loss.backward(), model);
        let mut flatten = Flatten { grads: &mut grads, tensors: vec![loss.detach().inner(), correct.float().inner()] };
        model.visit(&mut flatten);
        Tensor::cat(flatten.tensors, 0)
    }

    /// The update half: one plain SGD step along `gradients` (the batch's gradient, or
    /// momentum's velocity), flattened as [`Self::gradients`] gives them (without the loss and
    /// count in front). Every replica that applies the same values to the same weights ends
    /// with the same weights.
    pub fn apply(&mut self, model: GoogLeNet, gradients: &[f32]) -> GoogLeNet {
        /// Registers each parameter's slice of `values` as its gradient.
        struct Unflatten<'a> {
            values: &'a [f32],
            offset: usize,
            grads: GradientsParams,
        }
        impl ModuleVisitor for Unflatten<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                let shape: [usize; D] = value.dims();
                let len: usize = shape.iter().product();
                let data = TensorData::new(self.values[self.offset..self.offset + len].to_vec(), shape);
                self.offset += len;
                self.grads.register(param.id, Tensor::<D>::from_data(data, &value.device().inner()));
            }
        }
        let mut unflatten = Unflatten { values: gradients, offset: 0, grads: GradientsParams::new() };
        model.visit(&mut unflatten);
        debug_assert_eq!(unflatten.offset, gradients.len(), "one value per parameter");
        self.plain.step(self.learning_rate, model, unflatten.grads)
    }
}
