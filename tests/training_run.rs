//! A whole training run on real Fashion-MNIST, on Burn's CPU device, as the worker drives it;
//! the page's progress model fed with its updates; the messages between page and worker.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::Device;
use futures_lite::future::block_on;
use googlenet_web::data::{parse_idx, Dataset};
use googlenet_web::engine::BackendPreference;
use googlenet_web::train::{
    Command, ConfigError, ConfusionMatrix, FrameGapMeter, Phase, Progress, Shuffler, TrainConfig, TrainError,
    TrainingProgress, TrainingRun, Update, MISTAKES_KEPT,
};

/// The CPU device's random generator is shared by every thread: tests that seed it and build a
/// model take turns, or one test's draws would land between another's seed and init.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn device_turn() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn load(images: &str, labels: &str) -> Dataset {
    let read = |name: &str| {
        let bytes = std::fs::read(format!("{}/{name}", common::FASHION_MNIST_DIR)).expect("run scripts/setup.sh");
        parse_idx(&bytes, true).unwrap().data
    };
    Dataset::new(read(images), read(labels)).expect("images and labels pair")
}

fn train_split() -> Dataset {
    load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
}

fn test_split() -> Dataset {
    load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
}

#[test]
fn a_short_run_on_real_images_learns_and_tests_after_every_epoch() {
    let _turn = device_turn();
    // 32 training images, 6 epochs of 2 steps; 40 test images in batches of 16 (16, 16, 8).
    // 32×32 input keeps it quick on two cores; the seed's 96×96 runs in the browser test.
    let config = TrainConfig {
        batch_size: 16,
        epochs: 6,
        input_size: 32,
        train_subset: Some(32),
        test_subset: Some(40),
        ..TrainConfig::default()
    };
    let test = test_split();
    let test_labels = test.split().labels[..40].to_vec();
    let mut run = TrainingRun::new(config, train_split(), test, &Device::flex()).unwrap();
    assert_eq!(run.sizes(), (32, 40));
    assert_eq!(run.steps_per_epoch(), 2);

    let mut progress = TrainingProgress::starting();
    progress.apply(Update::Started { train_size: 32, test_size: 40, steps_per_epoch: 2, epochs: 6, resumed_after: 0 });
    let mut kinds = String::new();
    let mut seconds = 0.0;
    while let Some(unit) = block_on(run.advance()).unwrap() {
        kinds.push(match unit {
            Progress::Step(_) => 'S',
            Progress::Testing { .. } => 't',
            Progress::Epoch(_) => 'E',
        });
        seconds += 1.0;
        progress.apply(Update::Progress { progress: unit, train_seconds: seconds, test_seconds: 0.5 });
    }
    progress.apply(Update::Finished { stopped: false });
    assert!(run.is_finished());
    assert_eq!(kinds, "SSttE".repeat(6), "two steps, then the test pass in three batches, per epoch");

    let losses: Vec<f32> = progress.history.iter().map(|epoch| epoch.train_loss).collect();
    eprintln!("epoch train losses: {losses:?}");
    assert!((losses[0] - 10f32.ln()).abs() < 0.3, "starts near ln 10: {losses:?}");
    assert!(losses.windows(2).all(|pair| pair[1] < pair[0]), "the training loss falls every epoch: {losses:?}");
    assert!(losses[5] < losses[0] - 0.02, "{losses:?}");

    for epoch in &progress.history {
        assert_eq!(epoch.confusion.total(), 40, "every test image counted once");
        let row_totals: Vec<u32> = epoch.confusion.counts.iter().map(|row| row.iter().sum()).collect();
        let mut expected = [0u32; 10];
        test_labels.iter().for_each(|&label| expected[usize::from(label)] += 1);
        assert_eq!(row_totals, expected, "rows are the true classes of the test images");
        assert!((epoch.test_accuracy - epoch.confusion.accuracy() as f32).abs() < 1e-6);
        assert!(epoch.test_loss.is_finite() && epoch.test_loss > 0.0);
        let wrong = 40 - epoch.confusion.correct() as usize;
        assert_eq!(epoch.mistakes.len(), wrong.min(MISTAKES_KEPT));
        for mistake in &epoch.mistakes {
            assert_eq!(mistake.truth, test_labels[mistake.index]);
            assert_ne!(mistake.truth, mistake.predicted);
            assert!((0.1..=1.0).contains(&mistake.confidence), "the top of ten probabilities: {mistake:?}");
        }
        assert!(epoch.mistakes.windows(2).all(|pair| pair[0].confidence >= pair[1].confidence));
    }

    assert_eq!(progress.phase, Phase::Finished);
    assert_eq!(progress.loss_curve.len(), 12);
    assert_eq!(progress.loss_curve.last().unwrap().0, 6.0, "x counts epochs");
    assert_eq!(progress.images_trained, 6 * 32);
    assert_eq!(progress.overall_fraction(), 1.0);
    assert_eq!(progress.eta_seconds(), Some(0.0));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let _turn = device_turn();
    let config = TrainConfig { batch_size: 8, epochs: 1, input_size: 32, train_subset: Some(8), test_subset: Some(8), ..TrainConfig::default() };
    let first_loss = |config: &TrainConfig| {
        let mut run = TrainingRun::new(config.clone(), train_split(), test_split(), &Device::flex()).unwrap();
        match block_on(run.advance()).unwrap() {
            Some(Progress::Step(step)) => step.loss,
            other => panic!("a step comes first, not {other:?}"),
        }
    };
    assert_eq!(first_loss(&config), first_loss(&config));
    assert_ne!(first_loss(&config), first_loss(&TrainConfig { seed: 7, ..config }));
}

#[test]
fn bad_settings_and_missing_splits_are_refused_with_their_own_message() {
    let _turn = device_turn();
    let cases = [
        (TrainConfig { learning_rate: 0.0, ..TrainConfig::default() }, ConfigError::LearningRate),
        (TrainConfig { learning_rate: f64::NAN, ..TrainConfig::default() }, ConfigError::LearningRate),
        (TrainConfig { batch_size: 0, ..TrainConfig::default() }, ConfigError::BatchSize),
        (TrainConfig { batch_size: 5000, ..TrainConfig::default() }, ConfigError::BatchSize),
        (TrainConfig { epochs: 0, ..TrainConfig::default() }, ConfigError::Epochs),
        (TrainConfig { input_size: 8, ..TrainConfig::default() }, ConfigError::InputSize),
        (TrainConfig { train_subset: Some(0), ..TrainConfig::default() }, ConfigError::EmptySubset),
    ];
    for (config, error) in cases {
        assert_eq!(config.validate(), Err(error.clone()), "{config:?}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(TrainConfig::default().validate(), Ok(()));

    let empty = Dataset::default();
    let refused = |train: Dataset, test: Dataset| TrainingRun::new(TrainConfig::default(), train, test, &Device::flex()).err();
    assert_eq!(refused(empty.clone(), test_split()), Some(TrainError::Config(ConfigError::NoTrainingData)));
    assert_eq!(refused(train_split(), empty), Some(TrainError::Config(ConfigError::NoTestData)));
    assert_eq!(Dataset::new(vec![0; 784], vec![1, 2]), None, "one image, two labels");
    assert_eq!(Dataset::new(vec![0; 784], vec![10]), None, "label 10 is no class");
}

#[test]
fn the_seed_defaults_and_subsets() {
    let config = TrainConfig::default();
    assert_eq!((config.learning_rate, config.batch_size, config.epochs, config.input_size), (0.05, 128, 5, 96));
    assert_eq!(config.sizes(60_000, 10_000), (60_000, 10_000));
    assert_eq!(config.steps_per_epoch(60_000), 469, "468 full batches and one of 96, as Keras's fit");
    let quick = TrainConfig { train_subset: Some(1000), test_subset: Some(20_000), ..config };
    assert_eq!(quick.sizes(60_000, 10_000), (1000, 10_000), "a subset larger than the split is the split");
}

#[test]
fn the_shuffle_is_a_reproducible_permutation() {
    let order = |seed| {
        let mut items: Vec<usize> = (0..1000).collect();
        Shuffler::new(seed).shuffle(&mut items);
        items
    };
    let shuffled = order(42);
    assert_eq!(shuffled, order(42));
    assert_ne!(shuffled, order(43));
    assert_ne!(shuffled, (0..1000).collect::<Vec<_>>());
    let mut sorted = shuffled.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
}

#[test]
fn the_confusion_matrix_gives_per_class_accuracy() {
    let mut matrix = ConfusionMatrix::default();
    for (truth, predicted) in [(0, 0), (0, 6), (6, 6), (6, 6), (6, 0), (9, 9)] {
        matrix.add(truth, predicted);
    }
    assert_eq!((matrix.total(), matrix.correct()), (6, 4));
    assert!((matrix.accuracy() - 4.0 / 6.0).abs() < 1e-12);
    let classes = matrix.class_accuracy();
    assert_eq!(classes[0], Some(0.5));
    assert!((classes[6].unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(classes[9], Some(1.0));
    assert_eq!(classes[1], None, "no trousers among the test images");
}

#[test]
fn messages_between_page_and_worker_survive_json() {
    let start = Command::Start { config: TrainConfig { train_subset: Some(512), ..TrainConfig::default() }, backend: BackendPreference::WebGpu, resume_after: 2, workers: 2 };
    assert_eq!(Command::from_json(&start.to_json()), Ok(start));
    let lost = Update::DeviceLost { message: "Destroyed: device destroyed".into() };
    assert_eq!(Update::from_json(&lost.to_json()), Ok(lost));
    assert!(Command::from_json("{\"Start\":{}}").is_err());
    let update = Update::Progress { progress: Progress::Testing { epoch: 2, done: 256, total: 10_000 }, train_seconds: 1.5, test_seconds: 0.25 };
    assert_eq!(Update::from_json(&update.to_json()), Ok(update));
}

#[test]
fn progress_estimates_time_left_from_measured_rates() {
    let mut progress = TrainingProgress::starting();
    progress.apply(Update::Started { train_size: 1000, test_size: 500, steps_per_epoch: 10, epochs: 2, resumed_after: 0 });
    assert_eq!(progress.phase, Phase::Training);
    assert_eq!(progress.eta_seconds(), None, "no rate before the first step");
    let step = googlenet_web::train::StepReport {
        epoch: 1,
        step_in_epoch: 5,
        steps_per_epoch: 10,
        batch_size: 500,
        loss: 2.0,
        batch_accuracy: 0.2,
        epoch_loss: 2.1,
        epoch_accuracy: 0.15,
    };
    progress.apply(Update::Progress { progress: Progress::Step(step), train_seconds: 10.0, test_seconds: 0.0 });
    // 50 images/s; 1500 training images left (30 s) and 1000 test images at 150/s (6.67 s).
    assert_eq!(progress.images_per_second(), Some(50.0));
    assert!((progress.eta_seconds().unwrap() - (30.0 + 1000.0 / 150.0)).abs() < 1e-9);
    assert_eq!(progress.epoch_fraction(), 0.5);
    assert_eq!(progress.overall_fraction(), 0.25);

    progress.apply(Update::Paused);
    assert_eq!(progress.phase, Phase::Paused);
    assert!(progress.phase.is_running());
    progress.apply(Update::Resumed);
    assert_eq!(progress.phase, Phase::Training);
    progress.apply(Update::Finished { stopped: true });
    assert_eq!(progress.phase, Phase::Stopped);
    assert!(!progress.phase.is_running());
}

#[test]
fn the_frame_gap_meter_keeps_the_longest_gap() {
    let mut meter = FrameGapMeter::default();
    for now in [0.0, 16.7, 33.3, 120.0, 136.7] {
        meter.frame(now);
    }
    assert_eq!(meter.frames, 5);
    assert!((meter.longest_ms - 86.7).abs() < 1e-9);
}

#[test]
fn durations_read_as_a_person_says_them() {
    use googlenet_web::train::format_duration;
    assert_eq!(format_duration(12.4), "12 s");
    assert_eq!(format_duration(185.0), "3 min 05 s");
    assert_eq!(format_duration(3725.0), "1 h 02 min");
    assert_eq!(format_duration(-1.0), "0 s");
}

#[test]
fn a_run_can_start_from_saved_weights() {
    use burn::module::Module;
    use googlenet_web::model::weights;
    let _turn = device_turn();
    let config = TrainConfig { batch_size: 8, epochs: 1, input_size: 32, train_subset: Some(16), test_subset: Some(8), ..TrainConfig::default() };
    let first_losses = |run: &mut TrainingRun| {
        (0..2)
            .map(|_| match block_on(run.advance()).unwrap() {
                Some(Progress::Step(step)) => step.loss,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<f32>>()
    };
    // A run with another seed: other initial weights, saved before it trains.
    let other = TrainingRun::new(TrainConfig { seed: 7, ..config.clone() }, train_split(), test_split(), &Device::flex()).unwrap();
    let saved = weights::save(&block_on(weights::to_cpu(&other.model().valid())).unwrap(), 32, &[]).unwrap();
    let mut reference = other;
    let reference_losses = first_losses(&mut reference);

    // The same weights loaded from the file, in a run with the same seed (so the same shuffle),
    // match the original step for step: the loaded weights are the ones trained, and their
    // gradients flow.
    let (model, _) = weights::load(&saved, &Device::flex()).unwrap();
    let mut resumed = TrainingRun::new(TrainConfig { seed: 7, ..config.clone() }, train_split(), test_split(), &Device::flex())
        .unwrap()
        .starting_from(model);
    assert_eq!(first_losses(&mut resumed), reference_losses);
    let fresh = first_losses(&mut TrainingRun::new(config, train_split(), test_split(), &Device::flex()).unwrap());
    assert_ne!(fresh, reference_losses, "a run from other weights starts elsewhere");
}

/// What the page does when the worker's GPU is lost after epoch 1 of 3: a new worker loads
/// epoch 1's autosaved weights file and resumes. Epochs 2 and 3 come out as if nothing had
/// happened: same shuffles, same weights, same losses.
#[test]
fn a_run_resumed_from_its_checkpoint_trains_as_if_never_interrupted() {
    use burn::module::Module;
    use googlenet_web::model::weights;
    let _turn = device_turn();
    let config = TrainConfig { batch_size: 8, epochs: 3, input_size: 32, train_subset: Some(24), test_subset: Some(8), ..TrainConfig::default() };
    let device = Device::flex();
    // Every unit's loss (steps) or test loss (epoch ends), and the checkpoint after epoch 1
    // (when the run has an epoch 1).
    let drive = |run: &mut TrainingRun| {
        let (mut losses, mut checkpoint) = (Vec::new(), None);
        while let Some(unit) = block_on(run.advance()).unwrap() {
            match unit {
                Progress::Step(step) => losses.push((step.epoch, step.loss)),
                Progress::Epoch(report) => {
                    losses.push((report.epoch, report.test_loss));
                    if report.epoch == 1 {
                        let cpu = block_on(weights::to_cpu(&run.model().valid())).unwrap();
                        checkpoint = Some(weights::save(&cpu, 32, &[("epochs", "1".into())]).unwrap());
                    }
                }
                Progress::Testing { .. } => {}
            }
        }
        (losses, checkpoint)
    };
    let mut whole = TrainingRun::new(config.clone(), train_split(), test_split(), &device).unwrap();
    let (uninterrupted, checkpoint) = drive(&mut whole);
    assert_eq!(uninterrupted.len(), 3 * (3 + 1));

    let (model, _) = weights::load(&checkpoint.expect("epoch 1 was saved"), &device).unwrap();
    let mut resumed = TrainingRun::new(config.clone(), train_split(), test_split(), &device).unwrap().starting_from(model).resuming_after(1);
    assert_eq!(resumed.epochs_done(), 1);
    let (after, _) = drive(&mut resumed);
    assert_eq!(after, uninterrupted[4..], "epochs 2 and 3 as in the uninterrupted run");

    // Resuming from the checkpoint but with epoch 1's order again (no resuming_after) trains
    // on other batches: the comparison above can fail.
    let (model, _) = weights::load(&weights::save(&block_on(weights::to_cpu(&resumed.model().valid())).unwrap(), 32, &[]).unwrap(), &device).unwrap();
    let mut restarted = TrainingRun::new(TrainConfig { epochs: 1, ..config }, train_split(), test_split(), &device).unwrap().starting_from(model);
    let (first_epoch_order, _) = drive(&mut restarted);
    assert_ne!(first_epoch_order[..3], uninterrupted[4..7]);
}

/// The page's figures when a run resumes after epoch 1: epoch 2's partial steps are gone
/// from the charts, the clock goes on from epoch 1's end, and the notice says what happened.
#[test]
fn progress_rewinds_to_the_checkpoint_when_a_run_resumes() {
    use googlenet_web::train::StepReport;
    let _turn = device_turn();
    let mut progress = TrainingProgress::starting();
    progress.apply(Update::Started { train_size: 16, test_size: 8, steps_per_epoch: 2, epochs: 3, resumed_after: 0 });
    let step = |epoch, step_in_epoch| StepReport {
        epoch,
        step_in_epoch,
        steps_per_epoch: 2,
        batch_size: 8,
        loss: 2.0,
        batch_accuracy: 0.1,
        epoch_loss: 2.0,
        epoch_accuracy: 0.1,
    };
    let mut run = TrainingRun::new(
        TrainConfig { batch_size: 8, epochs: 1, input_size: 16, train_subset: Some(16), test_subset: Some(8), ..TrainConfig::default() },
        train_split(),
        test_split(),
        &Device::flex(),
    )
    .unwrap();
    let epoch_report = loop {
        if let Some(Progress::Epoch(report)) = block_on(run.advance()).unwrap() {
            break report;
        }
    };
    progress.apply(Update::Progress { progress: Progress::Step(step(1, 1)), train_seconds: 1.0, test_seconds: 0.0 });
    progress.apply(Update::Progress { progress: Progress::Step(step(1, 2)), train_seconds: 2.0, test_seconds: 0.0 });
    progress.apply(Update::Progress { progress: Progress::Epoch(epoch_report), train_seconds: 2.0, test_seconds: 0.5 });
    progress.apply(Update::Progress { progress: Progress::Step(step(2, 1)), train_seconds: 3.0, test_seconds: 0.5 });
    assert_eq!((progress.loss_curve.len(), progress.images_trained), (3, 24));

    progress.resume_after(1, "The GPU device was lost".into());
    assert_eq!(progress.phase, Phase::Starting);
    assert_eq!(progress.history.len(), 1);
    assert_eq!(progress.loss_curve.len(), 2, "epoch 2's step is dropped");
    assert_eq!((progress.images_trained, progress.train_seconds, progress.test_seconds), (16, 2.0, 0.5));
    assert_eq!(progress.notice.as_deref(), Some("The GPU device was lost"));
    // The new worker's clock starts at zero: its seconds add to those before.
    progress.apply(Update::Started { train_size: 16, test_size: 8, steps_per_epoch: 2, epochs: 3, resumed_after: 1 });
    progress.apply(Update::Progress { progress: Progress::Step(step(2, 1)), train_seconds: 1.5, test_seconds: 0.0 });
    assert_eq!((progress.train_seconds, progress.images_trained), (3.5, 24));
    assert_eq!(progress.images_per_second(), Some(24.0 / 3.5));
}

/// *Quick look* is a valid run that says what it gives up against the seed, and the seed's
/// own settings give up nothing.
#[test]
fn the_quick_look_preset_names_what_it_trades_away_against_the_seed() {
    let quick = TrainConfig::quick_look();
    assert_eq!(quick.validate(), Ok(()));
    assert_eq!(quick.sizes(60_000, 10_000), (44_800, 10_000), "every test image is tested");
    assert_eq!(
        quick.trade_offs(60_000),
        [
            "32×32 input instead of 96×96",
            "44,800 of 60,000 training images",
            "1 epoch instead of 5",
            "batch 32 instead of 128",
            "learning rate 0.01 instead of 0.05",
            "momentum 0.9 instead of plain SGD",
            "He initialisation instead of Glorot",
            "the learning rate falling linearly to 0 instead of constant",
        ]
    );
    assert!(TrainConfig::default().trade_offs(60_000).is_empty());
    let subset = TrainConfig { epochs: 2, test_subset: Some(500), ..TrainConfig::default() };
    assert_eq!(subset.trade_offs(60_000), ["2 epochs instead of 5", "tested on 500 images, not all"]);
}

/// The seed's run at this run's rate: 5 × (60,000 + 10,000 / 3) images at 96×96, the rate
/// scaled from 32×32 by 3^1.5.
#[test]
fn the_seed_runs_cost_is_estimated_from_the_measured_rate() {
    use googlenet_web::train::StepReport;
    let mut progress = TrainingProgress::starting();
    progress.input_size = 32;
    assert_eq!(progress.seed_run_seconds(), None, "no rate yet");
    progress.apply(Update::Started { train_size: 5200, test_size: 8, steps_per_epoch: 100, epochs: 1, resumed_after: 0 });
    let step = StepReport {
        epoch: 1,
        step_in_epoch: 100,
        steps_per_epoch: 100,
        batch_size: 52,
        loss: 2.0,
        batch_accuracy: 0.1,
        epoch_loss: 2.0,
        epoch_accuracy: 0.1,
    };
    // One report for 52 images in 1.3 s: 40 images/s at 32×32, 40 / 5.196 at 96×96.
    progress.apply(Update::Progress { progress: Progress::Step(step), train_seconds: 1.3, test_seconds: 0.0 });
    let seed_rate = 40.0 / 27f64.sqrt();
    let expected = 5.0 * (60_000.0 + 10_000.0 / 3.0) / seed_rate;
    let estimate = progress.seed_run_seconds().unwrap();
    assert!((estimate - expected).abs() < 1.0, "{estimate} s, expected {expected} s (about 11 h)");
    assert_eq!(googlenet_web::train::format_duration(estimate), "11 h 25 min");
}
