//! Weight files: a save → load round trip gives the same logits, and every kind of bad file is
//! refused with its own error while nothing else changes.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::{Device, Tensor};
use futures_lite::future::block_on;
use googlenet_web::data::{images_to_input, parse_idx};
use googlenet_web::model::weights::{self, WeightsError, INPUT_SIZE_KEY};
use googlenet_web::model::{GoogLeNet, GoogLeNetConfig};

/// The first `count` real test images, 28×28 bytes back to back.
fn test_images(count: usize) -> Vec<u8> {
    let bytes = std::fs::read(format!("{}/t10k-images-idx3-ubyte.gz", common::FASHION_MNIST_DIR)).expect("run scripts/setup.sh");
    parse_idx(&bytes, true).unwrap().data[..count * 784].to_vec()
}

fn logits(model: &GoogLeNet, images: &[u8], input_size: usize, device: &Device) -> Vec<f32> {
    let output: Tensor<2> = model.forward(images_to_input(images, input_size, device));
    output.into_data().try_to_vec::<f32>().unwrap()
}

fn saved_model() -> (GoogLeNet, Vec<u8>) {
    let device = Device::flex();
    let model = GoogLeNetConfig::new().init(&device);
    let cpu = block_on(weights::to_cpu(&model)).unwrap();
    let bytes = weights::save(&cpu, 32, &[("epochs", "3".into())]).unwrap();
    (model, bytes)
}

#[test]
fn save_then_load_gives_identical_logits_on_the_cpu() {
    let device = Device::flex();
    let (model, bytes) = saved_model();
    let images = test_images(4);
    let (loaded, info) = weights::load(&bytes, &device).unwrap();
    assert_eq!(info.input_size, 32);
    assert_eq!(info.metadata.get("epochs").map(String::as_str), Some("3"));
    assert_eq!(info.metadata.get("format").map(String::as_str), Some(weights::FORMAT));
    let (before, after) = (logits(&model, &images, 32, &device), logits(&loaded, &images, 32, &device));
    assert_eq!(before.len(), 40);
    assert_eq!(before, after, "the loaded model must compute exactly what the saved one did");
    // A fresh model computes something else: the comparison above can fail.
    let fresh = GoogLeNetConfig::new().init(&device);
    assert_ne!(logits(&fresh, &images, 32, &device), before);
}

#[test]
fn the_file_is_safetensors_named_by_layer() {
    let (_, bytes) = saved_model();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    // b1..b5 and the dense head: every conv and the dense layer, weight and bias.
    let total: usize = file.tensors().iter().map(|(_, view)| view.shape().iter().product::<usize>()).sum();
    assert_eq!(total, common::TOTAL_PARAMS);
    assert!(names.contains(&"dense.weight") && names.contains(&"dense.bias"), "{names:?}");
    assert_eq!(file.tensor("dense.weight").unwrap().shape(), &[1024, 10]);
    assert_eq!(file.tensor("b1.convs.0.conv.weight").unwrap().shape(), &[64, 1, 7, 7]);
    // Block 3a, branch p2, its 3×3 convolution: 96 → 128 channels.
    assert_eq!(file.tensor("b3.blocks.0.branches.1.convs.1.conv.weight").unwrap().shape(), &[128, 96, 3, 3]);
    assert!(bytes.len() > common::TOTAL_PARAMS * 4);
}

fn refusal(bytes: &[u8]) -> WeightsError {
    match weights::load(bytes, &Device::flex()) {
        Ok(_) => panic!("a bad file was accepted"),
        Err(error) => error,
    }
}

#[test]
fn an_empty_file_is_refused() {
    assert_eq!(refusal(&[]), WeightsError::Empty);
}

#[test]
fn a_file_cut_short_is_refused_as_truncated() {
    let (_, bytes) = saved_model();
    let half = refusal(&bytes[..bytes.len() / 2]);
    assert!(matches!(&half, WeightsError::Truncated(detail) if detail.contains(&format!("of {} bytes", bytes.len()))), "{half}");
    let in_header = refusal(&bytes[..200]);
    assert!(matches!(in_header, WeightsError::Truncated(_)), "{in_header}");
    let last_byte = refusal(&bytes[..bytes.len() - 1]);
    assert!(matches!(last_byte, WeightsError::Truncated(_)), "{last_byte}");
}

#[test]
fn random_bytes_are_not_a_weights_file() {
    let random = common::random_bytes(100_000, 7);
    assert!(matches!(refusal(&random), WeightsError::NotWeights(_)));
    assert!(matches!(refusal(b"abc"), WeightsError::NotWeights(_)));
    // An image, a dataset file: things a user might pick by mistake.
    let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    assert!(matches!(refusal(&png), WeightsError::NotWeights(_)));
    let idx = std::fs::read(format!("{}/t10k-labels-idx1-ubyte.gz", common::FASHION_MNIST_DIR)).unwrap();
    assert!(matches!(refusal(&idx), WeightsError::NotWeights(_)));
}

#[test]
fn bytes_after_the_data_are_refused() {
    let (_, mut bytes) = saved_model();
    bytes.extend_from_slice(&[0; 16]);
    let error = refusal(&bytes);
    assert!(matches!(&error, WeightsError::NotWeights(detail) if detail.contains("16 bytes follow")), "{error}");
}

#[test]
fn weights_of_another_shape_are_refused_by_name() {
    // GoogLeNet for RGB images: same tensors, b1's first convolution three times as wide.
    let rgb = GoogLeNetConfig::new().with_in_channels(3).init(&Device::flex());
    let bytes = weights::save(&rgb, 96, &[]).unwrap();
    let error = refusal(&bytes);
    assert!(
        matches!(&error, WeightsError::OtherModel(detail) if detail.contains("b1.convs.0.conv.weight") && detail.contains("[64, 3, 7, 7]")),
        "{error}"
    );
    // …and for 100 classes: the dense head does not fit.
    let wide = GoogLeNetConfig::new().with_num_classes(100).init(&Device::flex());
    let error = refusal(&weights::save(&wide, 96, &[]).unwrap());
    assert!(matches!(&error, WeightsError::OtherModel(detail) if detail.contains("dense")), "{error}");
}

#[test]
fn a_file_of_other_tensors_is_refused() {
    // A valid safetensors file whose tensors belong to some other network.
    let data = vec![0u8; 16];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
    let bytes = safetensors::serialize([("encoder.weight", view)], None).unwrap();
    let error = refusal(&bytes);
    assert!(matches!(&error, WeightsError::OtherModel(detail) if detail.contains("not in the file")), "{error}");
}

#[test]
fn an_unusable_input_size_is_refused() {
    let model = GoogLeNetConfig::new().init(&Device::flex());
    let mut bytes = weights::save(&model, 96, &[]).unwrap();
    // Rewrite "96" as "9x" in the header: same length, so the container stays valid.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let patched = header.replace(&format!("\"{INPUT_SIZE_KEY}\":\"96\""), &format!("\"{INPUT_SIZE_KEY}\":\"9x\""));
    assert_ne!(patched, header);
    bytes[8..8 + header_len].copy_from_slice(patched.as_bytes());
    assert!(matches!(refusal(&bytes), WeightsError::OtherModel(detail) if detail.contains("9x")));
}

#[test]
fn a_file_with_one_tensor_too_many_is_refused_by_name() {
    let (_, bytes) = saved_model();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let extra = [0u8; 4];
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = file.tensors();
    tensors.push(("aux_classifier.bias".into(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &extra).unwrap()));
    let bytes = safetensors::serialize(tensors, None).unwrap();
    let error = refusal(&bytes);
    assert_eq!(error.to_string(), "these are the weights of another model: the file has 1 tensor this GoogLeNet does not (the first: `aux_classifier.bias`)");
}

/// The fuzz target checks headers against a list of GoogLeNet's tensors kept beside it (it
/// builds without Burn); that list must be the model's.
#[test]
fn the_fuzz_targets_list_of_tensors_is_the_models() {
    let model = GoogLeNetConfig::new().init(&Device::flex());
    let table: String = weights::tensor_table(&model)
        .into_iter()
        .map(|(name, shape)| format!("{name} {}\n", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(",")))
        .collect();
    assert_eq!(table.lines().count(), 116);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/googlenet-tensors.txt");
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    if kept != table {
        let fresh = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated/googlenet-tensors.txt");
        std::fs::create_dir_all(std::path::Path::new(fresh).parent().unwrap()).unwrap();
        std::fs::write(fresh, &table).unwrap();
        panic!("{path} is not the model's list of tensors: the model's is in {fresh}");
    }
}

/// A header may declare a tensor that ends near 2^64 bytes: the length checks must neither
/// overflow nor accept it.
#[test]
fn a_header_declaring_exabytes_is_refused() {
    let end = u64::MAX - 3;
    let header = format!(r#"{{"dense.bias":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{end}]}}}}"#, (end / 4));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 64]);
    let error = refusal(&bytes);
    assert!(matches!(error, WeightsError::NotWeights(_) | WeightsError::Truncated(_)), "{error}");
}
