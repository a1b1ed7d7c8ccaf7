//! A whole training run, advanced one unit of work at a time: one SGD step, or one batch of
//! the test pass that ends each epoch. Whoever drives it (the worker, a test, a native
//! trainer) can pause, stop or report between units. Values are read back from the device
//! with `into_data_async` only, once per unit: a synchronous read panics in a browser.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::{ConfigError, TrainConfig, WeightInit};
use super::data_parallel::{average, cut, split_batch, ReplicaError, ReplicaPool, SliceBatch, SliceGradients, Velocity};
use super::metrics::{most_confident, ConfusionMatrix, Mistake, Shuffler};
use super::step::TrainStep;
use crate::data::{images_to_input, labels_to_tensor, Dataset, IMAGE_SIDE};
use crate::model::{GoogLeNet, GoogLeNetConfig};

/// How often one step may lose a replica (and replace it) before the run gives up.
pub const REPLICA_LOSSES_PER_STEP: usize = 3;

/// Mistakes reported after each test pass (the most confident ones).
pub const MISTAKES_KEPT: usize = 48;

/// After one SGD step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 1-based.
    pub epoch: usize,
    /// 1-based, within the epoch.
    pub step_in_epoch: usize,
    pub steps_per_epoch: usize,
    /// Images in this batch (the last of an epoch may be short).
    pub batch_size: usize,
    pub loss: f32,
    pub batch_accuracy: f32,
    /// Mean loss and accuracy over the epoch so far.
    pub epoch_loss: f32,
    pub epoch_accuracy: f32,
}

/// After the test pass that ends an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub test_loss: f32,
    pub test_accuracy: f32,
    pub confusion: ConfusionMatrix,
    /// The most confident mistakes of the test pass.
    pub mistakes: Vec<Mistake>,
}

/// What one unit of work did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Progress {
    Step(StepReport),
    /// Part of the test pass of `epoch` is done.
    Testing { epoch: usize, done: usize, total: usize },
    Epoch(Box<EpochReport>),
}

#[derive(Clone, Debug, PartialEq, Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not read results back from the device: {0}")]
    Readback(String),
    #[error("the loss became {0}: lower the learning rate")]
    Diverged(f32),
    /// A replica of data-parallel training failed, or was lost too often.
    #[error("{0}")]
    Replica(String),
}

/// Running sums over one epoch of training.
#[derive(Clone, Copy, Debug, Default)]
struct EpochSums {
    loss: f64,
    correct: f64,
    images: usize,
}

/// The test pass in progress.
struct TestPass {
    model: GoogLeNet,
    next: usize,
    loss: f64,
    confusion: ConfusionMatrix,
    mistakes: Vec<Mistake>,
}

pub struct TrainingRun {
    config: TrainConfig,
    device: Device,
    /// `None` only inside `train_step`, between `take` and the synchronous SGD step that hands
    /// the model back (no `await` in between): the `expect`s on it cannot fail.
    model: Option<GoogLeNet>,
    step: TrainStep,
    /// Momentum's velocity in data-parallel steps (alone, the step's optimiser keeps it).
    velocity: Option<Velocity>,
    train: Dataset,
    test: Dataset,
    train_len: usize,
    test_len: usize,
    order: Vec<usize>,
    shuffler: Shuffler,
    /// 0-based epoch and step within it of the next unit.
    epoch: usize,
    step_in_epoch: usize,
    sums: EpochSums,
    test_pass: Option<TestPass>,
}

impl TrainingRun {
    /// A fresh model and optimiser on `device` (made autodiff here), for `config`.
    pub fn new(config: TrainConfig, train: Dataset, test: Dataset, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        if train.split().is_empty() {
            return Err(ConfigError::NoTrainingData.into());
        }
        if test.split().is_empty() {
            return Err(ConfigError::NoTestData.into());
        }
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let model_config = GoogLeNetConfig::new().with_input_size(config.input_size);
        let model = match config.init {
            WeightInit::Glorot => model_config.init(&device),
            WeightInit::He => trainable(model_config.init_he(&device)),
        };
        let (train_len, test_len) = config.sizes(train.split().len(), test.split().len());
        let mut run = Self {
            step: TrainStep::with_momentum(config.learning_rate, config.momentum, &device),
            velocity: (config.momentum > 0.0).then(|| Velocity::new(config.momentum)),
            shuffler: Shuffler::new(config.seed),
            order: (0..train_len).collect(),
            config,
            device,
            model: Some(model),
            train,
            test,
            train_len,
            test_len,
            epoch: 0,
            step_in_epoch: 0,
            sums: EpochSums::default(),
            test_pass: None,
        };
        run.shuffler.shuffle(&mut run.order);
        Ok(run)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Training and test images used per epoch.
    pub fn sizes(&self) -> (usize, usize) {
        (self.train_len, self.test_len)
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch(self.train_len)
    }

    pub fn is_finished(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// Trains `model`'s weights (from a file, or an earlier run) instead of fresh ones; the
    /// settings, the shuffle and the optimiser are this run's. `model` is on the device the run
    /// was made for.
    pub fn starting_from(mut self, model: GoogLeNet) -> Self {
        self.model = Some(trainable(model));
        self
    }

    /// Skips the first `completed` epochs (their weights come from a checkpoint, through
    /// [`Self::starting_from`]): the run goes on with epoch `completed + 1`, shuffled as it
    /// would have been had it never stopped. SGD without momentum (the seed's) keeps no other
    /// state, so the rest of the run is the uninterrupted one's; with momentum, the velocity
    /// starts again from zero (a checkpoint holds the weights only).
    pub fn resuming_after(mut self, completed: usize) -> Self {
        let completed = completed.min(self.config.epochs);
        for _ in 0..completed {
            self.shuffler.shuffle(&mut self.order);
        }
        self.epoch = completed;
        self
    }

    /// Epochs trained and tested so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// The model as trained so far (on the autodiff device).
    pub fn model(&self) -> &GoogLeNet {
        // A step takes the model and puts the stepped one back before it returns.
        self.model.as_ref().expect("the model is only taken inside a step")
    }

    pub fn into_model(self) -> GoogLeNet {
        // A step takes the model and puts the stepped one back before it returns.
        self.model.expect("the model is only taken inside a step")
    }

    /// Does the next unit of work: `None` once every epoch is trained and tested.
    pub async fn advance(&mut self) -> Result<Option<Progress>, TrainError> {
        self.advance_with(&mut ()).await
    }

    /// [`Self::advance`], with every SGD step shared out between this run's model and the
    /// `replicas` (data-parallel: see [`super::data_parallel`]). The replicas must hold this
    /// run's weights; they keep them, step after step. With no replicas, the step is
    /// [`TrainStep::step`] itself. The test pass is shared out too: each unit of it is one
    /// batch per worker.
    pub async fn advance_with<P: ReplicaPool>(&mut self, replicas: &mut P) -> Result<Option<Progress>, TrainError> {
        if self.is_finished() {
            return Ok(None);
        }
        if self.step_in_epoch < self.steps_per_epoch() {
            return self.train_step(replicas).await.map(|report| Some(Progress::Step(report)));
        }
        self.test_batch(replicas).await.map(Some)
    }

    /// A lost replica's replacement, holding this run's weights.
    async fn replace_replica<P: ReplicaPool>(&self, index: usize, replicas: &mut P) -> Result<(), TrainError> {
        let cpu = crate::model::weights::to_cpu(self.model()).await.map_err(|error| TrainError::Replica(error.to_string()))?;
        let bytes = crate::model::weights::save(&cpu, self.config.input_size, &[]).map_err(|error| TrainError::Replica(error.to_string()))?;
        replicas.replace(index, &bytes).await.map_err(|error| TrainError::Replica(format!("replica {index} could not be replaced: {error}")))
    }

    /// One step shared with `replicas`: their slices go out first, this model computes the
    /// first slice meanwhile, then every replica and this model apply the averaged gradients.
    /// A lost replica is replaced by one holding this model's weights, and the step done again.
    async fn data_parallel_step<P: ReplicaPool>(
        &mut self,
        pixels: &[u8],
        labels: &[u8],
        scale: f64,
        replicas: &mut P,
    ) -> Result<(f32, f32), TrainError> {
        let mut slices: Vec<SliceBatch> =
            split_batch(labels.len(), replicas.len() + 1).into_iter().map(|range| cut(pixels, labels, range)).collect();
        let own = slices.remove(0);
        let mut local: Option<SliceGradients> = None;
        let mut losses = 0;
        let theirs = loop {
            replicas.send(slices.clone());
            if local.is_none() {
                let images = images_to_input(&own.pixels, self.config.input_size, &self.device);
                let targets = labels_to_tensor(&own.labels, &self.device);
                let packed = self.step.gradients(self.model(), images, targets);
                let values = read_floats(packed).await?;
                local = Some(SliceGradients::unpack(own.images(), values).map_err(TrainError::Replica)?);
            }
            match replicas.receive().await {
                Ok(theirs) => break theirs,
                Err(ReplicaError::Lost { index, .. }) if losses < REPLICA_LOSSES_PER_STEP => {
                    losses += 1;
                    self.replace_replica(index, replicas).await?;
                }
                Err(error) => return Err(TrainError::Replica(error.to_string())),
            }
        };
        let all: Vec<SliceGradients> = local.into_iter().chain(theirs).collect();
        let mut batch = average(&all).map_err(TrainError::Replica)?;
        // The step's direction, written over the batch's gradient: no buffer per step.
        if let Some(velocity) = &mut self.velocity {
            let direction = velocity.update(&batch.values);
            batch.values.copy_from_slice(direction);
        }
        if scale != 1.0 {
            batch.values.iter_mut().for_each(|value| *value *= scale as f32);
        }
        let direction = &batch.values;
        replicas.apply(direction);
        // Put back below, in this step (the field is an `Option` only to move the model
        // through the optimiser's step).
        let model = self.model.take().expect("the model is only taken inside a step");
        self.model = Some(self.step.apply(model, direction));
        Ok((batch.loss, batch.correct))
    }

    async fn train_step<P: ReplicaPool>(&mut self, replicas: &mut P) -> Result<StepReport, TrainError> {
        let start = self.step_in_epoch * self.config.batch_size;
        let end = (start + self.config.batch_size).min(self.train_len);
        let indices = &self.order[start..end];
        let split = self.train.split();
        let pixels: Vec<u8> = indices.iter().flat_map(|&i| split.image(i).iter().copied()).collect();
        let labels: Vec<u8> = indices.iter().map(|&i| split.labels[i]).collect();
        let rate = self.config.learning_rate_at(self.epoch * self.train_len + start, self.config.epochs * self.train_len);
        let (loss, correct) = if replicas.is_empty() {
            self.step.learning_rate = rate;
            let images = images_to_input(&pixels, self.config.input_size, &self.device);
            let targets = labels_to_tensor(&labels, &self.device);
            // Put back below, in this step (the field is an `Option` only to move the model
            // through the optimiser's step).
            let model = self.model.take().expect("the model is only taken inside a step");
            let (model, output) = self.step.step(model, images, targets);
            self.model = Some(model);
            let values = read_floats(output.packed()).await?;
            (values[0], values[1])
        } else {
            // The replicas step at the run's learning rate; the direction they get is scaled to
            // this step's.
            self.step.learning_rate = self.config.learning_rate;
            self.data_parallel_step(&pixels, &labels, rate / self.config.learning_rate, replicas).await?
        };
        if !loss.is_finite() {
            return Err(TrainError::Diverged(loss));
        }

        let batch = labels.len();
        self.sums.loss += f64::from(loss) * batch as f64;
        self.sums.correct += f64::from(correct);
        self.sums.images += batch;
        self.step_in_epoch += 1;
        Ok(StepReport {
            epoch: self.epoch + 1,
            step_in_epoch: self.step_in_epoch,
            steps_per_epoch: self.steps_per_epoch(),
            batch_size: batch,
            loss,
            batch_accuracy: correct / batch as f32,
            epoch_loss: (self.sums.loss / self.sums.images as f64) as f32,
            epoch_accuracy: (self.sums.correct / self.sums.images as f64) as f32,
        })
    }

    /// One unit of the test pass, a batch for this worker and one for each replica; the last
    /// unit closes the epoch.
    async fn test_batch<P: ReplicaPool>(&mut self, replicas: &mut P) -> Result<Progress, TrainError> {
        let start = self.test_pass.as_ref().map_or(0, |pass| pass.next);
        let end = (start + self.config.batch_size * (replicas.len() + 1)).min(self.test_len);
        let frame = IMAGE_SIDE * IMAGE_SIDE;
        let mut slices: Vec<Vec<u8>> = {
            let split = self.test.split();
            split_batch(end - start, replicas.len() + 1)
                .into_iter()
                .map(|range| split.images[(start + range.start) * frame..(start + range.end) * frame].to_vec())
                .collect()
        };
        let own = slices.remove(0);
        if self.test_pass.is_none() {
            self.test_pass = Some(TestPass {
                // A step takes the model and puts the stepped one back before it returns.
                model: self.model.as_ref().expect("the model is only taken inside a step").valid(),
                next: 0,
                loss: 0.0,
                confusion: ConfusionMatrix::default(),
                mistakes: Vec::new(),
            });
        }
        // The replicas' slices go out first; this worker classifies its own meanwhile.
        replicas.send_test(slices.clone());
        let images = images_to_input(&own, self.config.input_size, &self.device.clone().inner());
        // Set just above when it was `None`.
        let model = &self.test_pass.as_ref().expect("made above").model;
        let mut probabilities = read_floats(softmax(model.forward(images), 1)).await?;
        let mut losses = 0;
        loop {
            match replicas.receive_test().await {
                Ok(theirs) => {
                    probabilities.extend(theirs.into_iter().flatten());
                    break;
                }
                Err(ReplicaError::Lost { index, .. }) if losses < REPLICA_LOSSES_PER_STEP => {
                    losses += 1;
                    self.replace_replica(index, replicas).await?;
                    replicas.send_test(slices.clone());
                }
                Err(error) => return Err(TrainError::Replica(error.to_string())),
            }
        }
        if probabilities.len() != (end - start) * 10 {
            return Err(TrainError::Replica(format!("{} probabilities came back for {} test images", probabilities.len(), end - start)));
        }
        let split = self.test.split();
        // Set at the start of this unit, and only taken below, after the last one.
        let pass = self.test_pass.as_mut().expect("made above");
        for (offset, row) in probabilities.chunks_exact(10).enumerate() {
            let index = start + offset;
            let truth = split.labels[index];
            // `chunks_exact(10)` rows are never empty.
            let (predicted, &confidence) =
                row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).expect("ten classes");
            pass.loss -= f64::from(row[usize::from(truth)].max(1e-12)).ln();
            pass.confusion.add(usize::from(truth), predicted);
            if predicted != usize::from(truth) {
                pass.mistakes.push(Mistake { index, truth, predicted: predicted as u8, confidence });
            }
        }
        pass.next = end;
        if end < self.test_len {
            return Ok(Progress::Testing { epoch: self.epoch + 1, done: end, total: self.test_len });
        }

        // Made at the start of the pass and taken only here, after its last unit.
        let pass = self.test_pass.take().expect("a test pass is running");
        let report = EpochReport {
            epoch: self.epoch + 1,
            train_loss: (self.sums.loss / self.sums.images as f64) as f32,
            train_accuracy: (self.sums.correct / self.sums.images as f64) as f32,
            test_loss: (pass.loss / self.test_len as f64) as f32,
            test_accuracy: pass.confusion.accuracy() as f32,
            confusion: pass.confusion,
            mistakes: most_confident(pass.mistakes, MISTAKES_KEPT),
        };
        self.epoch += 1;
        self.step_in_epoch = 0;
        self.sums = EpochSums::default();
        self.shuffler.shuffle(&mut self.order);
        Ok(Progress::Epoch(Box::new(report)))
    }
}

/// `model` with every weight a tracked leaf of the autodiff graph, as a fresh init makes them
/// (a model read from a file is not).
pub(crate) fn trainable(model: GoogLeNet) -> GoogLeNet {
    struct Trainable;
    impl ModuleMapper for Trainable {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.autodiff().require_grad(), mapper)
        }
    }
    model.map(&mut Trainable)
}

async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    crate::engine::read_floats(tensor).await.map_err(TrainError::Readback)
}
