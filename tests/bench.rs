//! The benchmark's measuring code on the CPU device with real images: every figure is there
//! and consistent, and too little data or bad settings are refused with a message.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Instant;

use burn::tensor::Device;
use futures_lite::future::block_on;
use googlenet_web::bench::{self, median, BenchConfig, BenchStage};
use googlenet_web::data::{parse_idx, Dataset};

fn real_training_images(count: usize) -> Dataset {
    let read = |name: &str| parse_idx(&std::fs::read(format!("{}/{name}", common::FASHION_MNIST_DIR)).unwrap(), true).unwrap().data;
    let (images, labels) = (read("train-images-idx3-ubyte.gz"), read("train-labels-idx1-ubyte.gz"));
    Dataset::new(images[..count * 784].to_vec(), labels[..count].to_vec()).unwrap()
}

#[test]
fn the_benchmark_measures_training_and_inference_on_real_images() {
    let config = BenchConfig { input_size: 32, batch_sizes: vec![4, 8], timed_steps: 2, inference_runs: 5 };
    assert_eq!(config.images_needed(), 24);
    let data = real_training_images(24);
    let clock = Instant::now();
    let mut stages = Vec::new();
    let report = block_on(bench::run(&config, "CPU".into(), &Device::flex(), &mut (), data.split(), || clock.elapsed().as_secs_f64() * 1e3, |stage| {
        stages.push(stage)
    }))
    .expect("the benchmark runs");

    assert_eq!(report.input_size, 32);
    assert_eq!(report.inference.runs, 5);
    let inference = &report.inference;
    assert!(inference.min_ms > 0.0 && inference.min_ms <= inference.median_ms && inference.median_ms <= inference.max_ms, "{inference:?}");
    assert_eq!(report.training.iter().map(|figure| figure.batch_size).collect::<Vec<_>>(), [4, 8]);
    for figure in &report.training {
        assert_eq!(figure.timed_steps, 2);
        let expected = (figure.batch_size * 2) as f64 / figure.seconds;
        assert!((figure.images_per_second - expected).abs() < 1e-9 && figure.images_per_second > 0.0, "{figure:?}");
        assert!((figure.gflops - figure.images_per_second * 1.66 * (32.0 * 32.0) / (96.0 * 96.0)).abs() < 1e-9);
    }
    // 8 classifications (3 untimed), then 3 steps at each batch size.
    assert_eq!(stages.len(), 8 + 3 + 3);
    assert_eq!(stages.last(), Some(&BenchStage::Training { batch_size: 8, step: 3, of: 3 }));

    // The JSON the page and `--bin bench` print reads back (to the last digit or so).
    let json = serde_json::to_string(&report).unwrap();
    let back: bench::BenchReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.training.len(), 2);
    assert!((back.training[1].images_per_second - report.training[1].images_per_second).abs() < 1e-9);
    assert!(json.contains("\"median_ms\"") && json.contains("\"images_per_second\""), "{json}");
}

#[test]
fn too_few_images_or_bad_settings_are_refused() {
    let data = real_training_images(10);
    let run = |config: BenchConfig| block_on(bench::run(&config, String::new(), &Device::flex(), &mut (), data.split(), || 0.0, |_| {})).unwrap_err();
    let needs_more = run(BenchConfig { input_size: 32, batch_sizes: vec![8], timed_steps: 1, inference_runs: 1 });
    assert_eq!(needs_more, "the benchmark needs 16 training images; 10 are loaded");
    assert!(run(BenchConfig { batch_sizes: vec![], ..BenchConfig::default() }).contains("batch sizes"));
    assert!(run(BenchConfig { timed_steps: 0, ..BenchConfig::default() }).contains("at least one step"));
    assert!(run(BenchConfig { input_size: 8, ..BenchConfig::default() }).contains("input size"));
}

#[test]
fn the_median_of_odd_and_even_counts() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert!(median(&[]).is_nan());
}
