//! In headless Chromium on real WebGPU (`wasm-pack test --headless --chrome`; the flags in
//! webdriver.json give a SwiftShader adapter on machines without a GPU).
#![cfg(target_arch = "wasm32")]

mod common;

use burn::tensor::{Device, Tensor};
use googlenet_web::architecture::Architecture;
use googlenet_web::data::{images_to_input, labels_to_tensor, parse_idx};
use googlenet_web::engine::{self, Backend, BackendPreference, Engine};
use googlenet_web::model::GoogLeNetConfig;
use googlenet_web::data::Dataset;
use googlenet_web::train::{
    Command, ModelOrigin, Progress, TrainConfig, TrainStep, TrainingProgress, TrainingRun, Update, WeightsPurpose, SEED_LEARNING_RATE,
};
use googlenet_web::worker::TrainerWorker;
use std::cell::RefCell;
use std::rc::Rc;
use js_sys::{Promise, Uint8Array};
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
        let (next, output) = step.step(model, input.clone(), targets.clone());
        model = next;
        losses.push(output.loss.into_scalar_async::<f32>().await.expect("read the loss back"));
    }
    log(&format!("WebGPU losses: {losses:?}"));
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!((losses[0] - 10f32.ln()).abs() < 0.3, "starts near ln 10: {losses:?}");
    assert!(losses[5] < losses[0] - 0.05, "loss falls: {losses:?}");
}

/// In the wasm the CPU device's own layers run SIMD128 code (natively, SSE2 or plain loops): the
/// max-pools, stride 2 and 1, classifying and training (with their input gradients), one
/// image's 3×3, 5×5 and 7×7 stride-2 convolutions and a batch's of every kernel (with their
/// ReLU and every gradient) must give Burn's `MaxPool2d` and `Conv2d` here too.
#[wasm_bindgen_test]
async fn the_cpu_devices_own_layers_are_burns_in_the_wasm() {
    use burn::module::Param;
    use burn::tensor::activation::relu;
    use burn::tensor::Distribution;
    use googlenet_web::model::{ConvPoolBlockConfig, ConvReluConfig, InceptionConfig};
    let device = Device::flex();
    device.seed(19);
    async fn largest_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar_async::<f32>().await.expect("read back")
    }
    let block = ConvPoolBlockConfig::new(vec![ConvReluConfig::new(3, 6, 1)]).init(&device);
    let p4 = InceptionConfig::new(6, 1, [1, 1], [1, 1], 2).init(&device).branches.swap_remove(3);
    let p4_pool = p4.pool.clone().expect("p4 starts with a pool");
    for [height, width] in [[12usize, 12], [7, 9], [48, 48], [5, 2], [2, 1], [1, 1]] {
        let x = Tensor::<4>::random([2, 3, height, width], Distribution::Normal(0.0, 1.0), &device);
        let reference = block.pool.forward(block.convs[0].forward(x.clone()));
        assert_eq!(largest_difference(block.forward(x), reference).await, 0.0, "{height}×{width}, stride 2");
        let x = relu(Tensor::<4>::random([2, 6, height, width], Distribution::Normal(0.0, 1.0), &device));
        let reference = p4.convs[0].forward(p4_pool.forward(x.clone()));
        assert!(largest_difference(p4.forward(x), reference).await < 1e-6, "{height}×{width}, stride 1");
    }
    // Training's pool keeps each maximum's position: the input gradients must be MaxPool2d's,
    // with ties (a ReLU's zeros) sent to the same one of them.
    let training = Device::flex().autodiff();
    let block = ConvPoolBlockConfig::new(vec![ConvReluConfig::new(3, 6, 1)]).init(&training);
    let p4 = InceptionConfig::new(6, 1, [1, 1], [1, 1], 2).init(&training).branches.swap_remove(3);
    let p4_pool = p4.pool.clone().expect("p4 starts with a pool");
    for [height, width] in [[12usize, 12], [7, 9], [48, 48], [5, 2], [1, 1]] {
        let x = Tensor::<4>::random([2, 3, height, width], Distribution::Normal(0.0, 1.0), &training).require_grad();
        let upstream = Tensor::<4>::random([2, 6, height.div_ceil(2), width.div_ceil(2)], Distribution::Default, &training);
        let (own, reference) = (block.forward(x.clone()), block.pool.forward(block.convs[0].forward(x.clone())));
        let (mut own, mut reference) = ((own * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
        let grads = (x.grad_remove(&mut own).unwrap(), x.grad_remove(&mut reference).unwrap());
        let error = largest_difference(grads.0, grads.1).await;
        assert!(error < 1e-6, "{height}×{width}, stride 2, training: input gradient {error}");
        let x = relu(Tensor::<4>::random([2, 6, height, width], Distribution::Normal(0.0, 1.0), &training)).require_grad();
        let upstream = Tensor::<4>::random([2, 2, height, width], Distribution::Default, &training);
        let (own, reference) = (p4.forward(x.clone()), p4.convs[0].forward(p4_pool.forward(x.clone())));
        let (mut own, mut reference) = ((own * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
        let grads = (x.grad_remove(&mut own).unwrap(), x.grad_remove(&mut reference).unwrap());
        let error = largest_difference(grads.0, grads.1).await;
        assert!(error < 1e-5, "{height}×{width}, stride 1, training: input gradient {error}");
    }
    // One image, and a batch (the training workers' forward pass).
    let cases = [(3, [1, 64, 192, 24]), (3, [1, 5, 7, 3]), (3, [3, 5, 7, 6]), (5, [1, 16, 32, 12]), (5, [1, 4, 16, 1]), (7, [1, 1, 64, 96])];
    for (kernel, [images, cin, cout, side]) in cases {
        // b1's 7×7 convolution has stride 2.
        let mut layer = ConvReluConfig::new(cin, cout, kernel).with_stride(kernel / 4 + 1).init(&device);
        layer.conv.bias = Some(Param::from_tensor(Tensor::random([cout], Distribution::Uniform(-0.5, 0.5), &device)));
        let input = Tensor::<4>::random([images, cin, side, side], Distribution::Normal(0.0, 1.0), &device);
        let error = largest_difference(layer.forward(input.clone()), relu(layer.conv.forward(input))).await;
        assert!(error < 1e-4, "{kernel}×{kernel}, {images} × {cin} → {cout} at {side}×{side}: largest difference {error}");
    }
    // A batch's 3×3 convolution (training), the products in two tasks here, of 9 and 8 images,
    // a batch's 5×5 and 1×1 ones (an Inception block's), and b1's 7×7 stride-2 one with
    // TensorFlow's 'same' padding (2 before, 3 after): outputs and every gradient.
    batch_convolution_is_conv2d(ConvReluConfig::new(4, 6, 3), [17, 4, 12, 12]).await;
    batch_convolution_is_conv2d(ConvReluConfig::new(3, 5, 5), [4, 3, 6, 6]).await;
    batch_convolution_is_conv2d(ConvReluConfig::new(6, 10, 1), [5, 6, 7, 9]).await;
    batch_convolution_is_conv2d(ConvReluConfig::new(1, 8, 7).with_stride(2), [5, 1, 20, 20]).await;
}

/// A batch through `config`'s layer with a bias that is not zero, on the CPU device with
/// autodiff: the output and the input, weight and bias gradients must be `Conv2d`'s and its
/// ReLU's.
async fn batch_convolution_is_conv2d(config: googlenet_web::model::ConvReluConfig, shape: [usize; 4]) {
    use burn::module::Param;
    use burn::tensor::activation::relu;
    use burn::tensor::Distribution;
    let training = Device::flex().autodiff();
    let largest_difference = |a: Tensor<4>, b: Tensor<4>| async move { (a - b).abs().max().into_scalar_async::<f32>().await.expect("read back") };
    let case = format!("{k}×{k}, a batch of {}", shape[0], k = config.kernel);
    let mut layer = config.init(&training);
    let out_channels = layer.out_channels();
    layer.conv.bias = Some(Param::from_tensor(Tensor::random([out_channels], Distribution::Uniform(-0.5, 0.5), &training)));
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &training).require_grad();
    let own = layer.forward(x.clone());
    let upstream = Tensor::<4>::random(own.dims(), Distribution::Default, &training);
    let error = largest_difference(own.clone(), relu(layer.conv.forward(x.clone()))).await;
    assert!(error < 1e-4, "{case}: output {error}");
    // The ReLU of both as ours cut it, so that an output within rounding of zero cannot cut one
    // gradient there and not the other.
    let reference = layer.conv.forward(x.clone()) * own.clone().detach().greater_elem(0.0).float();
    let (mut own, mut reference) = ((own * upstream.clone()).sum().backward(), (reference * upstream).sum().backward());
    let grads = (x.grad_remove(&mut own).unwrap(), x.grad_remove(&mut reference).unwrap());
    let error = largest_difference(grads.0, grads.1).await;
    assert!(error < 1e-4, "{case}: input gradient {error}");
    let weight = layer.conv.weight.val();
    let grads = (weight.grad_remove(&mut own).unwrap(), weight.grad_remove(&mut reference).unwrap());
    let scale = grads.1.clone().abs().max().into_scalar_async::<f32>().await.expect("read back");
    let error = largest_difference(grads.0, grads.1).await / scale;
    assert!(scale > 1e-3 && error < 1e-5, "{case}: weight gradient, relative error {error}");
    let bias = layer.conv.bias.as_ref().expect("a bias").val();
    let grads = (bias.grad_remove(&mut own).unwrap(), bias.grad_remove(&mut reference).unwrap());
    let error = (grads.0 - grads.1).abs().max().into_scalar_async::<f32>().await.expect("read back");
    assert!(error < 1e-4, "{case}: bias gradient {error}");
}

/// Drawing reads where the pointer is to the fraction of a pixel, as the browser reports it
/// (Firefox's positions have fractions; web-sys's `client_x()` would cut them off).
#[wasm_bindgen_test]
fn a_pointer_position_keeps_its_fractions_of_a_pixel() {
    let init = js_sys::Object::new();
    js_sys::Reflect::set(&init, &"clientX".into(), &10.25.into()).unwrap();
    js_sys::Reflect::set(&init, &"clientY".into(), &20.75.into()).unwrap();
    let constructor = js_sys::Reflect::get(&js_sys::global(), &"PointerEvent".into()).unwrap();
    let event = js_sys::Reflect::construct(constructor.unchecked_ref::<js_sys::Function>(), &js_sys::Array::of2(&"pointermove".into(), &init)).unwrap();
    assert_eq!(googlenet_web::app::client_position(event.unchecked_ref()), (10.25, 20.75));
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

/// The first `count` images of the real test split, as a dataset.
fn real_images(count: usize) -> Dataset {
    let images = parse_idx(TEST_IMAGES, true).unwrap().data;
    let labels = parse_idx(TEST_LABELS, true).unwrap().data;
    Dataset::new(images[..count * 784].to_vec(), labels[..count].to_vec()).unwrap()
}

#[wasm_bindgen_test]
async fn a_training_run_on_real_idx_bytes_learns_on_webgpu() {
    let engine = webgpu().await;
    // The seed's 96×96 input and learning rate; 8 real images, 3 epochs of one step, each
    // followed by a test pass over 8 other real images.
    let config = TrainConfig { batch_size: 8, epochs: 3, train_subset: Some(8), ..TrainConfig::default() };
    let images = parse_idx(TEST_IMAGES, true).unwrap().data;
    let labels = parse_idx(TEST_LABELS, true).unwrap().data;
    let test = Dataset::new(images[8 * 784..16 * 784].to_vec(), labels[8..16].to_vec()).unwrap();
    let mut run = TrainingRun::new(config, real_images(8), test, &engine.device).unwrap();
    let mut progress = TrainingProgress::starting();
    progress.apply(Update::Started { train_size: 8, test_size: 8, steps_per_epoch: 1, epochs: 3, resumed_after: 0 });
    let mut seconds = 0.0;
    while let Some(unit) = run.advance().await.expect("a unit of work on WebGPU") {
        seconds += 1.0;
        progress.apply(Update::Progress { progress: unit, train_seconds: seconds, test_seconds: 1.0 });
    }
    let losses: Vec<f32> = progress.history.iter().map(|epoch| epoch.train_loss).collect();
    log(&format!("WebGPU run, epoch losses {losses:?}, test accuracies {:?}", progress.history.iter().map(|e| e.test_accuracy).collect::<Vec<_>>()));
    assert_eq!(progress.history.len(), 3);
    assert!((losses[0] - 10f32.ln()).abs() < 0.3, "starts near ln 10: {losses:?}");
    assert!(losses[2] < losses[0] - 0.03, "the loss falls: {losses:?}");
    for epoch in &progress.history {
        assert_eq!(epoch.confusion.total(), 8);
        assert!(epoch.test_loss.is_finite());
    }
    assert_eq!(progress.loss_curve.len(), 3);
    assert!(progress.images_per_second().is_some());
}

/// Everything the worker reported, shared with the test.
type Heard = Rc<RefCell<Vec<Update>>>;

async fn wait_for(heard: &Heard, what: &str, done: impl Fn(&Update) -> bool) {
    for _ in 0..3000 {
        if heard.borrow().iter().any(&done) {
            return;
        }
        sleep(100).await;
    }
    panic!("the worker never reported {what}: {:?}", heard.borrow());
}

#[wasm_bindgen_test]
async fn the_training_worker_trains_reports_and_obeys_pause_and_stop() {
    let heard: Heard = Rc::default();
    let weights_file: Rc<RefCell<Option<Uint8Array>>> = Rc::default();
    let worker = TrainerWorker::spawn({
        let (heard, weights_file) = (heard.clone(), weights_file.clone());
        move |update, weights| {
            if weights.is_some() {
                weights_file.replace(weights);
            }
            heard.borrow_mut().push(update)
        }
    })
    .expect("a worker starts");
    // The CPU backend keeps this quick; WebGPU training is the test above.
    let config = TrainConfig { batch_size: 4, epochs: 2, input_size: 32, train_subset: Some(8), test_subset: Some(6), ..TrainConfig::default() };
    let data = real_images(16);
    worker.start(config.clone(), BackendPreference::Cpu, 1, data.split(), data.split());
    wait_for(&heard, "the end of the run", |u| matches!(u, Update::Finished { .. } | Update::Failed { .. })).await;

    let updates = heard.take();
    log(&format!("worker updates: {}", updates.len()));
    assert_eq!(updates[0], Update::Ready);
    assert!(matches!(&updates[1], Update::Engine { backend: Backend::Cpu, .. }), "{:?}", updates[1]);
    assert_eq!(updates[2], Update::Workers { count: 1, note: None });
    assert_eq!(updates[3], Update::Started { train_size: 8, test_size: 6, steps_per_epoch: 2, epochs: 2, resumed_after: 0 });
    let units: String = updates
        .iter()
        .filter_map(|u| match u {
            Update::Progress { progress: Progress::Step(_), .. } => Some('S'),
            Update::Progress { progress: Progress::Testing { .. }, .. } => Some('t'),
            Update::Progress { progress: Progress::Epoch(_), .. } => Some('E'),
            _ => None,
        })
        .collect();
    assert_eq!(units, "SStESStE", "two steps, then a test pass of two batches (4 + 2 images), per epoch");
    assert_eq!(updates.last(), Some(&Update::Finished { stopped: false }));
    // Each epoch made its model the one to classify with, and autosaved it.
    let trained = |u: &Update| matches!(u, Update::Model { info: Some(info) } if info.origin == ModelOrigin::Trained);
    assert_eq!(updates.iter().filter(|u| trained(u)).count(), 2);
    let autosaves = updates.iter().filter(|u| matches!(u, Update::Weights { purpose: WeightsPurpose::Autosave, .. })).count();
    assert_eq!(autosaves, 2);
    let mut progress = TrainingProgress::starting();
    updates.into_iter().for_each(|u| progress.apply(u));
    assert_eq!(progress.history.len(), 2);
    assert!(progress.history.iter().all(|e| e.confusion.total() == 6 && e.test_loss.is_finite()));

    let autosave = weights_file.take().expect("the last epoch was autosaved");
    assert!(autosave.length() as usize > common::TOTAL_PARAMS * 4);

    // Classify real test frames with the trained model.
    let frames = data.split().images[..3 * 784].to_vec();
    worker.send(&Command::Classify { id: 7, frames: frames.clone(), backend: BackendPreference::Cpu });
    wait_for(&heard, "predictions", |u| matches!(u, Update::Predictions { id: 7, .. } | Update::ClassifyFailed { .. })).await;
    let first = match heard.take().pop() {
        Some(Update::Predictions { probabilities, milliseconds, .. }) => {
            log(&format!("3 images classified in the worker in {milliseconds:.0} ms"));
            probabilities
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-4));

    // Its weights, downloaded and loaded back, classify the same.
    worker.send(&Command::SaveWeights { purpose: WeightsPurpose::Download });
    wait_for(&heard, "the weights", |u| matches!(u, Update::Weights { .. } | Update::WeightsFailed { .. })).await;
    let file = weights_file.take().expect("the weights file rides beside the update");
    worker.load_weights(ModelOrigin::File { name: "saved.safetensors".into() }, BackendPreference::Cpu, &file);
    wait_for(&heard, "the loaded model", |u| matches!(u, Update::Model { .. } | Update::WeightsFailed { .. })).await;
    assert!(matches!(heard.borrow().last(), Some(Update::Model { info: Some(info) }) if info.input_size == 32 && info.epochs == Some(2)));
    // A bad file is refused and the model stays.
    worker.load_weights(ModelOrigin::File { name: "bad.safetensors".into() }, BackendPreference::Cpu, &file.subarray(0, 1000));
    wait_for(&heard, "the refusal", |u| matches!(u, Update::WeightsFailed { .. })).await;
    assert!(matches!(heard.borrow().last(), Some(Update::WeightsFailed { message }) if message.contains("cut short")));
    heard.take();
    worker.send(&Command::Classify { id: 8, frames, backend: BackendPreference::Cpu });
    wait_for(&heard, "predictions", |u| matches!(u, Update::Predictions { id: 8, .. } | Update::ClassifyFailed { .. })).await;
    assert!(matches!(heard.take().pop(), Some(Update::Predictions { probabilities, .. }) if probabilities == first));

    // A long run, paused after its first step, resumed, then stopped.
    let long = TrainConfig { epochs: 50, ..config };
    worker.start(long, BackendPreference::Cpu, 1, data.split(), data.split());
    let step = |u: &Update| matches!(u, Update::Progress { progress: Progress::Step(_), .. });
    wait_for(&heard, "a first step", step).await;
    worker.send(&Command::Pause);
    wait_for(&heard, "the pause", |u| *u == Update::Paused).await;
    let steps_when_paused = heard.borrow().iter().filter(|u| step(u)).count();
    sleep(1500).await;
    assert_eq!(heard.borrow().iter().filter(|u| step(u)).count(), steps_when_paused, "no step while paused");
    worker.send(&Command::Resume);
    wait_for(&heard, "the resume", |u| *u == Update::Resumed).await;
    worker.send(&Command::Stop);
    wait_for(&heard, "the stop", |u| matches!(u, Update::Finished { .. })).await;
    assert_eq!(heard.borrow().last(), Some(&Update::Finished { stopped: true }));
}

/// Every step's loss and every epoch's test loss, from a worker's updates.
fn unit_losses(updates: &[Update]) -> Vec<(usize, f32)> {
    updates
        .iter()
        .filter_map(|u| match u {
            Update::Progress { progress: Progress::Step(step), .. } => Some((step.epoch, step.loss)),
            Update::Progress { progress: Progress::Epoch(report), .. } => Some((report.epoch, report.test_loss)),
            _ => None,
        })
        .collect()
}

/// A run in the training worker on `workers` workers (CPU backend), to its end.
async fn run_on_workers(config: &TrainConfig, workers: usize, lose_replica_after_steps: Option<usize>) -> Vec<Update> {
    let heard: Heard = Rc::default();
    let worker = TrainerWorker::spawn({
        let heard = heard.clone();
        move |update, _| heard.borrow_mut().push(update)
    })
    .expect("a worker starts");
    let data = real_images(32);
    worker.start(config.clone(), BackendPreference::Cpu, workers, data.split(), data.split());
    if let Some(steps) = lose_replica_after_steps {
        let step = |u: &Update| matches!(u, Update::Progress { progress: Progress::Step(_), .. });
        for _ in 0..3000 {
            if heard.borrow().iter().filter(|u| step(u)).count() >= steps {
                break;
            }
            sleep(20).await;
        }
        worker.send(&Command::LoseReplica);
    }
    wait_for(&heard, "the end of the run", |u| matches!(u, Update::Finished { .. } | Update::Failed { .. })).await;
    heard.take()
}

/// Data-parallel training in the page: the training worker coordinates replica workers, each
/// computing the gradients of its slice of every batch. The run must be the one-worker run's,
/// to float tolerance, and go on as if nothing happened when a replica crashes.
#[wasm_bindgen_test]
async fn a_run_on_three_workers_trains_as_one_worker_does_and_survives_a_lost_replica() {
    // Batches of 10 (slices of 4, 3, 3), the last of each epoch of 4 (slices of 2, 1, 1).
    let config = TrainConfig { batch_size: 10, epochs: 2, input_size: 32, train_subset: Some(24), test_subset: Some(8), ..TrainConfig::default() };
    let alone = run_on_workers(&config, 1, None).await;
    let shared = run_on_workers(&config, 3, None).await;
    assert!(shared.contains(&Update::Workers { count: 3, note: None }), "{shared:?}");
    assert_eq!(shared.last(), Some(&Update::Finished { stopped: false }));
    let close = |a: &[(usize, f32)], b: &[(usize, f32)]| {
        a.len() == b.len() && a.iter().zip(b).all(|((ea, la), (eb, lb))| ea == eb && (la - lb).abs() < 1e-4)
    };
    let (alone_losses, shared_losses) = (unit_losses(&alone), unit_losses(&shared));
    log(&format!("one worker: {alone_losses:?}\nthree workers: {shared_losses:?}"));
    assert_eq!(alone_losses.len(), 2 * (3 + 1));
    assert!(close(&shared_losses, &alone_losses), "{shared_losses:?} against {alone_losses:?}");

    // A replica crashes after the second step: it is replaced, the step done again, and the
    // run comes out the same.
    let lost = run_on_workers(&config, 3, Some(2)).await;
    assert_eq!(lost.iter().filter(|u| matches!(u, Update::ReplicaReplaced { .. })).count(), 1, "{lost:?}");
    assert!(!lost.iter().any(|u| matches!(u, Update::Failed { .. } | Update::Crashed { .. })), "{lost:?}");
    assert!(close(&unit_losses(&lost), &alone_losses), "{:?} against {alone_losses:?}", unit_losses(&lost));
}

/// Logits of the first `count` real test images at 32×32, read back asynchronously.
async fn logits(model: &googlenet_web::model::GoogLeNet, count: usize, device: &Device) -> Vec<f32> {
    let images = parse_idx(TEST_IMAGES, true).unwrap().data[..count * 784].to_vec();
    let data = model.forward(images_to_input(&images, 32, device)).into_data_async().await.expect("readback");
    data.try_to_vec::<f32>().unwrap()
}

#[wasm_bindgen_test]
async fn weights_saved_from_webgpu_load_back_with_the_same_logits() {
    use googlenet_web::model::weights;
    let device = webgpu().await.device;
    let model = GoogLeNetConfig::new().init(&device);
    let before = logits(&model, 3, &device).await;
    // Saved through an asynchronous copy to the CPU: a record taken from WebGPU tensors panics.
    let cpu = weights::to_cpu(&model).await.expect("the weights read back");
    let bytes = weights::save(&cpu, 32, &[]).expect("saved");
    let (on_cpu, _) = weights::load(&bytes, &Device::flex()).expect("loads on the CPU");
    let (on_webgpu, info) = weights::load(&bytes, &device).expect("loads on WebGPU");
    assert_eq!(info.input_size, 32);
    let after = logits(&on_webgpu, 3, &device).await;
    let cpu_logits = logits(&on_cpu, 3, &Device::flex()).await;
    let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    log(&format!("WebGPU save → load: largest logit change {:.2e}; WebGPU vs CPU {:.2e}", gap(&before, &after), gap(&before, &cpu_logits)));
    assert_eq!(before.len(), 30);
    assert!(gap(&before, &after) <= 1e-4, "{before:?} vs {after:?}");
    assert!(gap(&before, &cpu_logits) <= 1e-3, "the same weights on the CPU: {cpu_logits:?}");
}

#[wasm_bindgen_test]
async fn real_test_images_drawn_on_a_canvas_get_the_same_predictions() {
    use googlenet_web::infer::{classify, GreyPicture, FRAME_LEN};
    use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};
    let count = 8;
    let images = parse_idx(TEST_IMAGES, true).unwrap().data[..count * FRAME_LEN].to_vec();
    let document = web_sys::window().unwrap().document().unwrap();
    let canvas = |side: u32| {
        let canvas: HtmlCanvasElement = document.create_element("canvas").unwrap().unchecked_into();
        canvas.set_width(side);
        canvas.set_height(side);
        let context: CanvasRenderingContext2d = canvas.get_context("2d").unwrap().unwrap().unchecked_into();
        (canvas, context)
    };
    let (small, small_context) = canvas(28);
    let (_, pad) = canvas(280);
    pad.set_image_smoothing_enabled(false);
    let mut framed = Vec::new();
    for image in images.chunks_exact(FRAME_LEN) {
        // The image painted on the drawing pad, ten canvas pixels per image pixel, read back
        // the way the pad is read.
        let rgba: Vec<u8> = image.iter().flat_map(|&v| [v, v, v, 255]).collect();
        let data = ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&rgba), 28, 28).unwrap();
        small_context.put_image_data(&data, 0.0, 0.0).unwrap();
        pad.draw_image_with_html_canvas_element_and_dw_and_dh(&small, 0.0, 0.0, 280.0, 280.0).unwrap();
        let read = pad.get_image_data(0.0, 0.0, 280.0, 280.0).unwrap();
        framed.extend(GreyPicture::from_rgba(&read.data(), 280, 280).to_frame().expect("not blank"));
    }
    let identical = images.chunks_exact(FRAME_LEN).zip(framed.chunks_exact(FRAME_LEN)).filter(|(a, b)| a == b).count();
    log(&format!("{identical} of {count} test images came back from the canvas pixel for pixel"));
    assert!(identical >= count * 3 / 4);

    let device = Device::flex();
    device.seed(42);
    let model = GoogLeNetConfig::new().init(&device);
    let direct = classify(&model, 32, &images, &device).await.unwrap();
    let drawn = classify(&model, 32, &framed, &device).await.unwrap();
    let frames = images.chunks_exact(FRAME_LEN).zip(framed.chunks_exact(FRAME_LEN));
    for ((a, b), (image, frame)) in direct.iter().zip(&drawn).zip(frames) {
        if image == frame {
            assert_eq!(a, b, "same pixels, same probabilities");
        }
        assert!(a.probabilities.iter().zip(&b.probabilities).all(|(x, y)| (x - y).abs() < 1e-3));
    }
}

/// A file from the crate root, as wasm-bindgen's test server serves it.
async fn fetch_bytes(path: &str) -> Vec<u8> {
    let response = JsFuture::from(web_sys::window().unwrap().fetch_with_str(path)).await.expect("the test server answers");
    let response: web_sys::Response = response.dyn_into().unwrap();
    assert!(response.ok(), "{path}: HTTP {}; `cargo test --test native_trainer` writes it (scripts/test.sh runs it first)", response.status());
    let buffer = JsFuture::from(response.array_buffer().unwrap()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

#[wasm_bindgen_test]
async fn native_trainer_weights_give_the_same_logits_on_webgpu() {
    use googlenet_web::model::weights;
    // Written by `train` natively on the CPU, with the logits the native loader got from them.
    let file = fetch_bytes("/tests/generated/native-trainer.safetensors").await;
    let record: serde_json::Value = serde_json::from_slice(&fetch_bytes("/tests/generated/native-trainer-logits.json").await).unwrap();
    let native: Vec<f32> = serde_json::from_value(record["logits"].clone()).unwrap();
    let count = native.len() / 10;
    let frames = parse_idx(TEST_IMAGES, true).unwrap().data[..count * 784].to_vec();
    let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);

    // The page's loader on WebGPU.
    let device = webgpu().await.device;
    let (model, info) = weights::load(&file, &device).expect("the page loads the trainer's file");
    assert_eq!((info.input_size, count), (32, 8));
    let browser = logits(&model, count, &device).await;
    log(&format!("native trainer's file: largest logit gap, WebGPU vs native CPU: {:.2e}", gap(&browser, &native)));
    assert!(gap(&browser, &native) <= 1e-3, "{browser:?} vs {native:?}");

    // And through the worker, as *Load weights…* does it.
    let heard: Heard = Rc::default();
    let worker = TrainerWorker::spawn({
        let heard = heard.clone();
        move |update, _| heard.borrow_mut().push(update)
    })
    .expect("a worker starts");
    let origin = ModelOrigin::File { name: "native-trainer.safetensors".into() };
    worker.load_weights(origin, BackendPreference::WebGpu, &Uint8Array::from(&file[..]));
    wait_for(&heard, "the loaded model", |u| matches!(u, Update::Model { .. } | Update::WeightsFailed { .. })).await;
    assert!(matches!(heard.borrow().last(), Some(Update::Model { info: Some(info) }) if info.epochs == Some(2)), "{:?}", heard.borrow());
    worker.send(&Command::Classify { id: 1, frames, backend: BackendPreference::WebGpu });
    wait_for(&heard, "predictions", |u| matches!(u, Update::Predictions { .. } | Update::ClassifyFailed { .. })).await;
    let Some(Update::Predictions { probabilities, .. }) = heard.take().pop() else { panic!("no predictions") };
    let softmax = |row: &[f32]| {
        let top = row.iter().cloned().fold(f32::MIN, f32::max);
        let sum: f32 = row.iter().map(|x| (x - top).exp()).sum();
        row.iter().map(|x| (x - top).exp() / sum).collect::<Vec<_>>()
    };
    let expected: Vec<f32> = native.chunks(10).flat_map(softmax).collect();
    let got: Vec<f32> = probabilities.iter().flatten().copied().collect();
    assert!(gap(&got, &expected) <= 1e-4, "{got:?} vs {expected:?}");
}

/// Asks the worker for its memory: `(wasm bytes, device bytes in use, device bytes reserved)`.
async fn worker_memory(worker: &TrainerWorker, heard: &Heard) -> (u64, Option<u64>, Option<u64>) {
    heard.borrow_mut().clear();
    worker.send(&Command::Memory);
    wait_for(heard, "the memory figures", |u| matches!(u, Update::Memory { .. })).await;
    let found = heard.borrow().iter().find_map(|u| match u {
        Update::Memory { wasm_bytes, device_in_use, device_reserved } => Some((*wasm_bytes, *device_in_use, *device_reserved)),
        _ => None,
    });
    found.expect("a Memory update")
}

#[wasm_bindgen_test]
async fn ten_train_stop_cycles_on_webgpu_do_not_grow_memory() {
    let heard: Heard = Rc::default();
    let worker = TrainerWorker::spawn({
        let heard = heard.clone();
        move |update, _| heard.borrow_mut().push(update)
    })
    .expect("a worker starts");
    let config = TrainConfig { batch_size: 4, epochs: 50, input_size: 32, train_subset: Some(16), test_subset: Some(4), ..TrainConfig::default() };
    let data = real_images(16);
    let step = |u: &Update| matches!(u, Update::Progress { progress: Progress::Step(_), .. });
    let mut figures = Vec::new();
    for _ in 0..10 {
        heard.borrow_mut().clear();
        worker.start(config.clone(), BackendPreference::WebGpu, 1, data.split(), data.split());
        wait_for(&heard, "a step", |u| step(u) || matches!(u, Update::Failed { .. })).await;
        worker.send(&Command::Stop);
        wait_for(&heard, "the stop", |u| matches!(u, Update::Finished { .. } | Update::Failed { .. })).await;
        assert!(heard.borrow().iter().any(|u| *u == Update::Finished { stopped: true }), "{:?}", heard.borrow());
        figures.push(worker_memory(&worker, &heard).await);
    }
    let line = figures
        .iter()
        .map(|(wasm, in_use, reserved)| format!("{:.1}/{:.1}/{:.1}", *wasm as f64 / 1e6, in_use.unwrap_or(0) as f64 / 1e6, reserved.unwrap_or(0) as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(" ");
    log(&format!("MEMORY_CYCLES wasm/device in use/device reserved, MB, after each of 10 cycles: {line}"));
    // (CubeCL counts the bytes *in use* per stream and reports none between runs here; what
    // is reserved is what the GPU holds.)
    let (wasm_2, _, reserved_2) = figures[2];
    let (wasm_9, _, reserved_9) = figures[9];
    // WebAssembly memory never shrinks: it must stop growing once the first runs have sized it.
    assert!(wasm_9 <= wasm_2 + (16 << 20), "{line}");
    // Each run's model and optimiser state replaces the last run's on the device: the pools
    // reserve no more after ten runs than after three.
    let (reserved_2, reserved_9) = (reserved_2.expect("WebGPU pools"), reserved_9.expect("WebGPU pools"));
    assert!(reserved_9 <= reserved_2 + reserved_2 / 10, "{line}");
}

/// The GPU lost in the middle of epoch 2 (the test hook destroys the worker's device, as a
/// driver reset would): the worker reports the loss, and nothing else — no failed run, no
/// panic. A new worker, given epoch 1's autosave, resumes on a new device and finishes
/// epochs 2 and 3.
#[wasm_bindgen_test]
async fn a_lost_gpu_is_reported_and_a_new_worker_resumes_from_the_checkpoint() {
    let heard: Heard = Rc::default();
    let weights_file: Rc<RefCell<Option<Uint8Array>>> = Rc::default();
    let spawn = || {
        let (heard, weights_file) = (heard.clone(), weights_file.clone());
        TrainerWorker::spawn(move |update, weights| {
            if weights.is_some() {
                weights_file.replace(weights);
            }
            heard.borrow_mut().push(update)
        })
        .expect("a worker starts")
    };
    let config = TrainConfig { batch_size: 4, epochs: 3, input_size: 32, train_subset: Some(8), test_subset: Some(4), ..TrainConfig::default() };
    let data = real_images(16);
    let worker = spawn();
    worker.start(config.clone(), BackendPreference::WebGpu, 1, data.split(), data.split());
    let autosave = |u: &Update| matches!(u, Update::Weights { purpose: WeightsPurpose::Autosave, .. });
    wait_for(&heard, "epoch 1's autosave", |u| autosave(u) || matches!(u, Update::Failed { .. })).await;
    let checkpoint = weights_file.take().expect("epoch 1's weights file");
    worker.send(&Command::LoseDevice);
    wait_for(&heard, "the lost device", |u| matches!(u, Update::DeviceLost { .. } | Update::Failed { .. } | Update::Crashed { .. })).await;
    // Whatever the run was doing when the device went fails now, and must not be reported
    // as anything but the loss.
    sleep(1000).await;
    let before = heard.take();
    log(&format!("lost: {:?}", before.iter().filter(|u| matches!(u, Update::DeviceLost { .. })).collect::<Vec<_>>()));
    assert!(before.iter().any(|u| matches!(u, Update::DeviceLost { message } if message.contains("Destroyed"))), "{before:?}");
    assert!(!before.iter().any(|u| matches!(u, Update::Failed { .. } | Update::Crashed { .. })), "{before:?}");
    assert!(!before.iter().any(|u| matches!(u, Update::Finished { .. })), "the run was lost mid-way: {before:?}");
    drop(worker);

    let worker = spawn();
    worker.resume(config, BackendPreference::WebGpu, 1, data.split(), data.split(), 1, &checkpoint);
    wait_for(&heard, "the end of the resumed run", |u| matches!(u, Update::Finished { .. } | Update::Failed { .. } | Update::Crashed { .. })).await;
    let after = heard.take();
    assert!(after.contains(&Update::Started { train_size: 8, test_size: 4, steps_per_epoch: 2, epochs: 3, resumed_after: 1 }), "{after:?}");
    // It classifies with the checkpoint's model until epoch 2 ends.
    assert!(after.iter().any(|u| matches!(u, Update::Model { info: Some(info) } if info.epochs == Some(1))), "{after:?}");
    let epochs: Vec<usize> = after
        .iter()
        .filter_map(|u| match u {
            Update::Progress { progress: Progress::Epoch(report), .. } => Some(report.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(epochs, [2, 3]);
    let first_step = after.iter().find_map(|u| match u {
        Update::Progress { progress: Progress::Step(step), .. } => Some(step.epoch),
        _ => None,
    });
    assert_eq!(first_step, Some(2));
    assert_eq!(after.last(), Some(&Update::Finished { stopped: false }));
}
