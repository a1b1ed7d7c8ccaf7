//! Data-parallel SGD: a coordinator and its replicas, each holding the same model.
//!
//! Why: in a browser without a usable GPU, the model trains on Burn's CPU backend, and a
//! WebAssembly module without threads runs on one core. A page can still use every core by
//! running one model per Web Worker. Each step, the coordinator (the training worker, which
//! also owns the run) splits the batch into slices, one per replica, itself included; every
//! replica computes the gradient of its slice's mean loss; the coordinator averages them,
//! weighted by slice size, which is exactly the whole batch's gradient; and every replica
//! applies that same SGD step, so all of them keep the same weights. Nothing but gradients
//! (one `f32` per parameter) crosses between workers, and only once each way per step. With
//! momentum, the coordinator keeps the velocity ([`Velocity`]) and sends it instead of the
//! gradient. The test pass that ends each epoch is shared the same way: every replica
//! classifies a slice of each test batch and sends back its probabilities.
//!
//! This module is the DOM-free part: how a batch is split ([`split_batch`]), how gradients are
//! averaged ([`average`]), what a replica does ([`Replica`]), and what the coordinator asks of
//! the replicas it does not run itself ([`ReplicaPool`]). The Web Workers behind a pool are in
//! `crate::worker`; the native tests use an in-process pool.

use std::ops::Range;

use burn::tensor::Device;
use thiserror::Error;

use super::step::TrainStep;
use crate::data::{images_to_input, labels_to_tensor, IMAGE_SIDE};
use crate::model::{weights, GoogLeNet};

/// Every replica's share of a batch of `batch` images: `replicas` ranges as even as can be
/// (the first ones get one image more), none empty. Fewer ranges than `replicas` when the
/// batch is smaller than that.
pub fn split_batch(batch: usize, replicas: usize) -> Vec<Range<usize>> {
    let parts = replicas.clamp(1, batch.max(1));
    let (base, extra) = (batch / parts, batch % parts);
    let mut start = 0;
    (0..parts)
        .map(|part| {
            let len = base + usize::from(part < extra);
            start += len;
            start - len..start
        })
        .filter(|range| !range.is_empty())
        .collect()
}

/// What one replica computed for its slice of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceGradients {
    /// Images in the slice.
    pub images: usize,
    /// Mean cross-entropy over the slice.
    pub loss: f32,
    /// Images of the slice the model classified correctly (before the update).
    pub correct: f32,
    /// The gradient of `loss`, one value per parameter in the model's visiting order.
    pub values: Vec<f32>,
}

impl SliceGradients {
    /// From [`TrainStep::gradients`]' packed readback, `[loss, correct, gradients…]`.
    pub fn unpack(images: usize, mut packed: Vec<f32>) -> Result<Self, String> {
        if packed.len() < 2 {
            return Err("a replica sent no gradients".into());
        }
        let (loss, correct) = (packed[0], packed[1]);
        packed.drain(..2);
        Ok(Self { images, loss, correct, values: packed })
    }
}

/// The whole batch's figures, from its slices.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGradients {
    pub images: usize,
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    pub correct: f32,
    /// The gradient of the batch's mean loss.
    pub values: Vec<f32>,
}

/// The batch's gradient from its slices': the mean of the slices' gradients weighted by their
/// sizes, so that slices of the mean loss add up to the gradient of the batch's mean loss.
/// Summed in slice order, so every coordinator gets the same values for the same slices.
pub fn average(slices: &[SliceGradients]) -> Result<BatchGradients, String> {
    let images: usize = slices.iter().map(|slice| slice.images).sum();
    let len = slices.first().map(|slice| slice.values.len()).ok_or("no gradients to average")?;
    if images == 0 {
        return Err("no images in the batch".into());
    }
    if let Some(odd) = slices.iter().find(|slice| slice.values.len() != len) {
        return Err(format!("a replica sent {} gradient values where {len} were expected", odd.values.len()));
    }
    let mut values = vec![0.0f32; len];
    let (mut loss, mut correct) = (0.0f64, 0.0f32);
    for slice in slices {
        let weight = slice.images as f32 / images as f32;
        for (sum, value) in values.iter_mut().zip(&slice.values) {
            *sum += weight * value;
        }
        loss += f64::from(slice.loss) * slice.images as f64;
        correct += slice.correct;
    }
    Ok(BatchGradients { images, loss: (loss / images as f64) as f32, correct, values })
}

/// SGD momentum's velocity in a data-parallel run, kept by the coordinator alone: each step it
/// turns the batch's averaged gradient `g` into `v = momentum · v + g`, and every replica steps
/// along `v` with plain SGD. The replicas keep no optimiser state, so a replacement for a lost
/// one needs only the weights. The same arithmetic as [`super::TrainStep::with_momentum`] on
/// one worker, to rounding.
#[derive(Clone, Debug)]
pub struct Velocity {
    momentum: f32,
    values: Vec<f32>,
}

impl Velocity {
    pub fn new(momentum: f64) -> Self {
        Self { momentum: momentum as f32, values: Vec::new() }
    }

    /// Adds the batch's gradient; returns the velocity, the step's direction. The first step's
    /// velocity is the gradient itself.
    pub fn update(&mut self, gradient: &[f32]) -> &[f32] {
        if self.values.len() == gradient.len() {
            for (v, g) in self.values.iter_mut().zip(gradient) {
                *v = self.momentum * *v + g;
            }
        } else {
            self.values = gradient.to_vec();
        }
        &self.values
    }
}

/// One slice of a batch, as it is sent to a replica: 28×28 images back to back and their labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceBatch {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl SliceBatch {
    pub fn images(&self) -> usize {
        self.labels.len()
    }
}

/// A replica: a copy of the model and the optimiser, on its own device. It computes its slice's
/// gradients and applies the averaged ones; the coordinator's own model is one too.
pub struct Replica {
    model: Option<GoogLeNet>,
    step: TrainStep,
    input_size: usize,
    device: Device,
}

impl Replica {
    /// A replica of the model in the weights file `weights` (what the coordinator holds), on
    /// `device` (made autodiff here).
    pub fn from_weights(weights: &[u8], learning_rate: f64, device: &Device) -> Result<Self, String> {
        let device = device.clone().autodiff();
        let (model, file) = weights::load(weights, &device).map_err(|error| format!("the replica could not read its weights: {error}"))?;
        Ok(Self::new(crate::train::run::trainable(model), file.input_size, learning_rate, &device))
    }

    /// A replica of `model`, which must be on `device`, an autodiff device.
    pub fn new(model: GoogLeNet, input_size: usize, learning_rate: f64, device: &Device) -> Self {
        Self { model: Some(model), step: TrainStep::new(learning_rate, device), input_size, device: device.clone() }
    }

    pub fn input_size(&self) -> usize {
        self.input_size
    }

    pub fn model(&self) -> &GoogLeNet {
        // `apply` takes the model and puts the stepped one back before it returns.
        self.model.as_ref().expect("the model is only taken inside apply")
    }

    /// The gradients of `slice`'s mean loss; the weights are unchanged.
    pub async fn gradients(&self, slice: &SliceBatch) -> Result<SliceGradients, String> {
        let images = images_to_input(&slice.pixels, self.input_size, &self.device);
        let labels = labels_to_tensor(&slice.labels, &self.device);
        let packed = self.step.gradients(self.model(), images, labels);
        let values = crate::engine::read_floats(packed).await?;
        SliceGradients::unpack(slice.images(), values)
    }

    /// The softmax probabilities of whole 28×28 images (ten per image), as the test pass
    /// computes them: a share of the test pass that ends each epoch.
    pub async fn probabilities(&self, pixels: &[u8]) -> Result<Vec<f32>, String> {
        let model = burn::module::Module::valid(self.model());
        let images = images_to_input(pixels, self.input_size, &self.device.clone().inner());
        crate::engine::read_floats(burn::tensor::activation::softmax(model.forward(images), 1)).await
    }

    /// One SGD step with the batch's averaged gradients.
    pub fn apply(&mut self, gradients: &[f32]) {
        // Put back at the end of this call (the field is an `Option` only to move the model
        // through the optimiser's step).
        let model = self.model.take().expect("the model is only taken inside apply");
        self.model = Some(self.step.apply(model, gradients));
    }
}

/// A slice's pixels and labels, cut from a batch of 28×28 images.
pub fn cut(pixels: &[u8], labels: &[u8], range: Range<usize>) -> SliceBatch {
    let frame = IMAGE_SIDE * IMAGE_SIDE;
    SliceBatch { pixels: pixels[range.start * frame..range.end * frame].to_vec(), labels: labels[range].to_vec() }
}

/// Why a pool could not give a step's gradients.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ReplicaError {
    /// Replica `index` is gone (its worker crashed or was ended): the coordinator replaces it
    /// and does the step again.
    #[error("replica {index} was lost: {message}")]
    Lost { index: usize, message: String },
    /// The replica answered, but with an error (the same would happen again).
    #[error("replica {index} failed: {message}")]
    Failed { index: usize, message: String },
}

/// The replicas a coordinator does not run itself. Replica `k` of the pool gets slice `k + 1`
/// of every batch (slice 0 is the coordinator's).
#[allow(async_fn_in_trait)]
pub trait ReplicaPool {
    /// How many replicas the pool holds.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands out the slices (at most [`Self::len`], replica `k` gets `slices[k]`), without
    /// waiting: the coordinator computes its own slice meanwhile.
    fn send(&mut self, slices: Vec<SliceBatch>);

    /// The gradients of the slices last sent, in order.
    async fn receive(&mut self) -> Result<Vec<SliceGradients>, ReplicaError>;

    /// Every replica applies the batch's averaged gradients (their next `send` comes after it).
    fn apply(&mut self, gradients: &[f32]);

    /// Hands out slices of a test batch (whole 28×28 images, at most [`Self::len`] slices),
    /// without waiting: replica `k` classifies `slices[k]` with its model.
    fn send_test(&mut self, slices: Vec<Vec<u8>>);

    /// The softmax probabilities of the test slices last sent, in order, ten per image.
    async fn receive_test(&mut self) -> Result<Vec<Vec<f32>>, ReplicaError>;

    /// Replaces replica `index` with a new one holding the weights file `weights` (the
    /// coordinator's model before the step that lost it).
    async fn replace(&mut self, index: usize, weights: &[u8]) -> Result<(), String>;
}

/// No replicas: the coordinator trains alone.
impl ReplicaPool for () {
    fn len(&self) -> usize {
        0
    }
    fn send(&mut self, _: Vec<SliceBatch>) {}
    async fn receive(&mut self) -> Result<Vec<SliceGradients>, ReplicaError> {
        Ok(Vec::new())
    }
    fn apply(&mut self, _: &[f32]) {}
    fn send_test(&mut self, _: Vec<Vec<u8>>) {}
    async fn receive_test(&mut self) -> Result<Vec<Vec<f32>>, ReplicaError> {
        Ok(Vec::new())
    }
    async fn replace(&mut self, _: usize, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// Replicas in this process, one after another: for native tests of the coordinator, and for
/// a device that runs only one thing at a time anyway.
#[derive(Default)]
pub struct LocalReplicas {
    pub replicas: Vec<Replica>,
    sent: Vec<SliceBatch>,
    sent_test: Vec<Vec<u8>>,
    /// Test hook: the number of `receive`s after which replica 0 is lost (once).
    pub lose_after: Option<usize>,
    receives: usize,
    /// Device and learning rate for replacements.
    device: Option<(Device, f64)>,
}

impl LocalReplicas {
    /// `count` replicas of the weights file `weights`, on `device`.
    pub fn from_weights(count: usize, weights: &[u8], learning_rate: f64, device: &Device) -> Result<Self, String> {
        let replicas = (0..count).map(|_| Replica::from_weights(weights, learning_rate, device)).collect::<Result<_, _>>()?;
        Ok(Self { replicas, device: Some((device.clone(), learning_rate)), ..Self::default() })
    }
}

impl ReplicaPool for LocalReplicas {
    fn len(&self) -> usize {
        self.replicas.len()
    }

    fn send(&mut self, slices: Vec<SliceBatch>) {
        self.sent = slices;
    }

    async fn receive(&mut self) -> Result<Vec<SliceGradients>, ReplicaError> {
        self.receives += 1;
        if self.lose_after == Some(self.receives - 1) {
            self.lose_after = None;
            return Err(ReplicaError::Lost { index: 0, message: "lost on purpose (test hook)".into() });
        }
        let mut out = Vec::with_capacity(self.sent.len());
        for (index, (replica, slice)) in self.replicas.iter().zip(&self.sent).enumerate() {
            out.push(replica.gradients(slice).await.map_err(|message| ReplicaError::Failed { index, message })?);
        }
        Ok(out)
    }

    fn apply(&mut self, gradients: &[f32]) {
        for replica in &mut self.replicas {
            replica.apply(gradients);
        }
    }

    fn send_test(&mut self, slices: Vec<Vec<u8>>) {
        self.sent_test = slices;
    }

    async fn receive_test(&mut self) -> Result<Vec<Vec<f32>>, ReplicaError> {
        let mut out = Vec::with_capacity(self.sent_test.len());
        for (index, (replica, pixels)) in self.replicas.iter().zip(&self.sent_test).enumerate() {
            out.push(replica.probabilities(pixels).await.map_err(|message| ReplicaError::Failed { index, message })?);
        }
        Ok(out)
    }

    async fn replace(&mut self, index: usize, weights: &[u8]) -> Result<(), String> {
        let (device, learning_rate) = self.device.clone().ok_or("this pool cannot make replicas")?;
        let replica = Replica::from_weights(weights, learning_rate, &device)?;
        *self.replicas.get_mut(index).ok_or("no such replica")? = replica;
        Ok(())
    }
}
