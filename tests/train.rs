//! The training step on real Fashion-MNIST images, on Burn's CPU device.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::Device;
use googlenet_web::data::{images_to_input, labels_to_tensor, parse_idx};
use googlenet_web::model::GoogLeNetConfig;
use googlenet_web::train::{TrainStep, SEED_LEARNING_RATE};

fn load(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(format!("{}/{name}", common::FASHION_MNIST_DIR)).expect("run scripts/setup.sh");
    parse_idx(&bytes, true).unwrap().data
}

#[test]
fn sgd_steps_on_a_fixed_real_batch_make_the_loss_fall() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let batch = 16;
    let images = load("train-images-idx3-ubyte.gz");
    let labels = load("train-labels-idx1-ubyte.gz");
    // 64×64 keeps the test quick on two cores; the seed's 96×96 is checked in the browser.
    let input = images_to_input(&images[..batch * 784], 64, &device);
    let targets = labels_to_tensor(&labels[..batch], &device);
    assert_eq!(input.dims(), [batch, 1, 64, 64]);

    let mut model = GoogLeNetConfig::new().init(&device);
    let mut step = TrainStep::new(SEED_LEARNING_RATE, &device);
    let mut losses = Vec::new();
    for _ in 0..8 {
        let (next, output) = step.step(model, input.clone(), targets.clone());
        model = next;
        losses.push(output.loss.into_scalar::<f32>());
    }
    eprintln!("losses: {losses:?}");
    assert!((losses[0] - 10f32.ln()).abs() < 0.3, "starts near ln 10: {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(losses[7] < losses[0] - 0.05, "loss falls: {losses:?}");
}

#[test]
fn preprocessing_scales_pixels_and_resizes_to_the_model_input() {
    let device = Device::flex();
    let images = load("t10k-images-idx3-ubyte.gz");
    let input = images_to_input(&images[..2 * 784], 96, &device);
    assert_eq!(input.dims(), [2, 1, 96, 96]);
    let values = input.into_data().try_to_vec::<f32>().unwrap();
    let max = values.iter().fold(0.0f32, |m, &v| m.max(v));
    assert!(values.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(max > 0.9, "a garment has bright pixels: max {max}");
    // The border of a Fashion-MNIST image is black, and stays black when resized.
    assert_eq!(values[0], 0.0);
}
