//! In headless Chromium on real WebGPU (`wasm-pack test --headless --chrome`; the flags in
//! webdriver.json give a SwiftShader adapter on machines without a GPU).
#![cfg(target_arch = "wasm32")]

mod common;

use burn::tensor::Device;
use googlenet_web::architecture::Architecture;
use googlenet_web::data::{images_to_input, labels_to_tensor, parse_idx};
use googlenet_web::engine::{self, Backend, BackendPreference, Engine};
use googlenet_web::model::GoogLeNetConfig;
use googlenet_web::train::{TrainStep, SEED_LEARNING_RATE};
use js_sys::Promise;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Real Fashion-MNIST test-split files, as the user would load them.
const TEST_IMAGES: &[u8] = include_bytes!("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");

async fn webgpu() -> Engine {
    let engine = engine::start(BackendPreference::WebGpu).await;
    assert_eq!(engine.backend, Backend::WebGpu, "{}", engine.summary());
    engine
}

fn log(text: &str) {
    web_sys::console::log_1(&text.into());
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

#[wasm_bindgen_test]
async fn webgpu_runs_the_model_not_the_cpu_fallback() {
    let engine = webgpu().await;
    let adapter = engine.adapter.clone().expect("the browser describes its adapter");
    log(&format!("adapter: {adapter}"));
    assert_ne!(engine.device, Device::flex());
    assert!(engine.summary().starts_with("Running on WebGPU"));
}

#[wasm_bindgen_test]
async fn auto_prefers_the_cpu_over_a_software_adapter() {
    let forced = webgpu().await;
    let auto = engine::start(BackendPreference::Auto).await;
    let software = forced.adapter.as_ref().is_some_and(|adapter| adapter.is_fallback);
    let expected = if software { Backend::Cpu } else { Backend::WebGpu };
    assert_eq!(auto.backend, expected, "{}", auto.summary());
    if software {
        assert!(auto.summary().contains("software fallback"), "{}", auto.summary());
    }
    assert_eq!(engine::start(BackendPreference::Cpu).await.backend, Backend::Cpu);
}

#[wasm_bindgen_test]
async fn a_forward_pass_on_webgpu_gives_the_seed_shapes() {
    let engine = webgpu().await;
    let model = GoogLeNetConfig::new().init(&engine.device);
    let (view, logits) = Architecture::trace(&model, 1, 96, &engine.device);
    let logits = logits.into_data_async().await.expect("read the logits back").try_to_vec::<f32>().unwrap();
    assert_eq!(logits.len(), 10);
    assert!(logits.iter().all(|v| v.is_finite()));
    assert_eq!(view.total_params, common::TOTAL_PARAMS);
    assert_eq!(view.blocks.iter().map(|b| b.output.clone()).collect::<Vec<_>>(), common::block_outputs_96());
    let inceptions: Vec<_> = view
        .blocks
        .iter()
        .flat_map(|b| &b.inceptions)
        .map(|i| (i.branches.iter().map(|b| b.output).collect::<Vec<_>>(), i.concat))
        .collect();
    assert_eq!(inceptions, common::inception_shapes(|side| side));
}

#[wasm_bindgen_test]
async fn sgd_steps_on_webgpu_make_the_loss_fall_on_real_images() {
    let engine = webgpu().await;
    let device = engine.device.clone().autodiff();
    device.seed(3);
    let batch = 8;
    let images = parse_idx(TEST_IMAGES, true).unwrap();
    let labels = parse_idx(TEST_LABELS, true).unwrap();
    let input = images_to_input(&images.data[..batch * 784], 96, &device);
    let targets = labels_to_tensor(&labels.data[..batch], &device);

    let mut model = GoogLeNetConfig::new().init(&device);
    let mut step = TrainStep::new(SEED_LEARNING_RATE, &device);
    let mut losses = Vec::new();
    for _ in 0..6 {
        let (next, loss) = step.step(model, input.clone(), targets.clone());
        model = next;
        losses.push(loss.into_scalar_async::<f32>().await.expect("read the loss back"));
    }
    log(&format!("WebGPU losses: {losses:?}"));
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!((losses[0] - 10f32.ln()).abs() < 0.3, "starts near ln 10: {losses:?}");
    assert!(losses[5] < losses[0] - 0.05, "loss falls: {losses:?}");
}

#[wasm_bindgen_test]
async fn the_app_shows_every_inception_branch_shape() {
    use leptos::prelude::*;
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    leptos::mount::mount_to(root.clone().unchecked_into(), || view! { <googlenet_web::app::App backend=BackendPreference::WebGpu /> })
        .forget();

    let texts = |selector: &str| {
        let nodes = root.query_selector_all(selector).unwrap();
        (0..nodes.length()).filter_map(|i| nodes.item(i)?.text_content()).collect::<Vec<String>>()
    };
    for _ in 0..600 {
        if texts(".branch-shape").len() == 36 {
            break;
        }
        sleep(100).await;
    }
    let shape = |s: [usize; 4]| format!("[{}, {}, {}, {}]", s[0], s[1], s[2], s[3]);
    let expected = common::inception_shapes(|side| side);
    let branches: Vec<String> = expected.iter().flat_map(|(b, _)| b.iter().map(|&s| shape(s))).collect();
    let concats: Vec<String> = expected.iter().map(|&(_, c)| shape(c)).collect();
    assert_eq!(texts(".branch-shape"), branches);
    assert_eq!(texts(".concat-shape"), concats);
    assert_eq!(texts(".total-params"), ["5,977,530"]);
    let status = texts(".status");
    assert!(status.iter().any(|s| s.starts_with("Running on WebGPU")), "{status:?}");
}
