//! The native trainer (`--bin train`) writes a weights file the page loads unchanged.
//!
//! This test runs the real binary on real Fashion-MNIST images, loads its file the way the
//! page does, and leaves the file and the logits it gives in `tests/generated/`. The browser
//! test `native_trainer_weights_give_the_same_logits_on_webgpu` (tests/web.rs, run after this
//! one by scripts/test.sh) fetches both and checks the browser gets the same logits.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::PathBuf;
use std::process::Command;

use burn::tensor::{Device, Tensor};
use googlenet_web::data::{images_to_input, parse_idx};
use googlenet_web::model::weights;

/// How many real test images the browser compares logits on.
const COMPARED_IMAGES: usize = 8;

#[test]
fn the_native_trainer_writes_weights_the_page_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/generated");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("native-trainer.safetensors");
    let _ = std::fs::remove_file(&out);

    let output = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["--data", common::FASHION_MNIST_DIR, "--device", "cpu", "--epochs", "2", "--batch-size", "32"])
        .args(["--input-size", "32", "--train-images", "256", "--test-images", "64", "--seed", "7"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the trainer runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "train failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for epoch in ["epoch 1/2: train loss", "epoch 2/2: train loss"] {
        assert!(stdout.contains(epoch), "no \"{epoch}\" line in: {stdout}");
    }
    assert!(stdout.contains("test accuracy"), "{stdout}");

    // The page's own loader (`weights::load`, as in the worker's LoadWeights), on the CPU.
    let bytes = std::fs::read(&out).expect("the trainer wrote its file");
    let device = Device::flex();
    let (model, info) = weights::load(&bytes, &device).expect("the page's loader takes the trainer's file");
    assert_eq!(info.input_size, 32);
    assert_eq!(info.metadata.get("epochs").map(String::as_str), Some("2"));

    let images = parse_idx(&std::fs::read(format!("{}/t10k-images-idx3-ubyte.gz", common::FASHION_MNIST_DIR)).unwrap(), true)
        .unwrap()
        .data[..COMPARED_IMAGES * 784]
        .to_vec();
    let logits: Tensor<2> = model.forward(images_to_input(&images, 32, &device));
    let logits = logits.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(logits.len(), COMPARED_IMAGES * 10);
    assert!(logits.iter().all(|value| value.is_finite()), "{logits:?}");
    // Different pictures, different logits: the file holds a working network, not zeros.
    assert!(logits[..10] != logits[10..20], "{logits:?}");
    let record = serde_json::json!({ "input_size": 32, "images": COMPARED_IMAGES, "logits": logits });
    std::fs::write(dir.join("native-trainer-logits.json"), record.to_string()).unwrap();
}
