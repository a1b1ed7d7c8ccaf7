//! Every kind of bad file a user can give the page, by name, with the message the page shows
//! for it: data files through the loader (as dropped on *1 · Data*), weight files through the
//! weights reader (as given to *Load weights…*). Each gets its own message, and what was loaded
//! before stays. The table in docs/bad-inputs.md is generated from this list: run with
//! `UPDATE_BAD_INPUTS=1` after changing a case or a message.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::Device;
use googlenet_web::data::{Loader, SplitName, MAX_DECODED_BYTES};
use googlenet_web::model::{weights, GoogLeNetConfig};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{name}", common::FASHION_MNIST_DIR)).expect("run scripts/setup.sh")
}

use common::{gzip, idx_header as header, random_bytes as random};

fn images(count: u32, rows: u32, cols: u32, data: usize) -> Vec<u8> {
    let mut bytes = header(0x803, &[count, rows, cols]);
    bytes.resize(bytes.len() + data, 0);
    bytes
}

/// (file name, what it is, bytes) for the data drop zone.
fn bad_data_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let real = read("t10k-images-idx3-ubyte.gz");
    vec![
        ("empty.gz", "an empty file", vec![]),
        ("labels.gz", "raw IDX named .gz", header(0x801, &[1]).into_iter().chain([3]).collect()),
        ("corrupt.gz", "a gzip header, then garbage", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff]),
        ("t10k-images-idx3-ubyte.gz", "the real test images, cut in half (an interrupted download)", real[..real.len() / 2].to_vec()),
        ("bomb.gz", "a gzip bomb: 100 kB that inflates past the size limit", gzip(&vec![0; MAX_DECODED_BYTES + 1])),
        ("short", "a 6-byte header", vec![0, 0, 8, 3, 0, 0]),
        ("images-short", "an image header without its column count", header(0x803, &[1, 28])),
        ("wrong-magic", "magic 0x00000802 (not images, not labels)", header(0x802, &[1, 28, 28])),
        ("photo.png", "a PNG image", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c".to_vec()),
        ("random.bin", "4 kB of random bytes", random(4096, 1)),
        ("cifar-like", "32×32 images", images(1, 32, 32, 1024)),
        ("truncated", "2 images declared, 1 present", images(2, 28, 28, 784)),
        ("huge-count", "4,294,967,295 images declared in a 1 kB file", images(u32::MAX, 28, 28, 784)),
        ("trailing", "1 image and 6 bytes more", images(1, 28, 28, 790)),
        ("labels-10", "labels 1, 9, 10", header(0x801, &[3]).into_iter().chain([1, 9, 10]).collect()),
        ("model.safetensors", "a weights file dropped on the data", weights_file(96)),
    ]
}

fn weights_file(input_size: usize) -> Vec<u8> {
    weights::save(&GoogLeNetConfig::new().init(&Device::flex()), input_size, &[]).unwrap()
}

/// (file name, what it is, bytes) for *Load weights…*.
fn bad_weight_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let good = weights_file(96);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0; 16]);
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut odd_size = good.clone();
    let patched = String::from_utf8(good[8..8 + header_len].to_vec()).unwrap().replace("\"input_size\":\"96\"", "\"input_size\":\"9x\"");
    odd_size[8..8 + header_len].copy_from_slice(patched.as_bytes());
    let other = {
        let data = vec![0u8; 16];
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
        safetensors::serialize([("encoder.weight", view)], None).unwrap()
    };
    let rgb = weights::save(&GoogLeNetConfig::new().with_in_channels(3).init(&Device::flex()), 96, &[]).unwrap();
    let wide = weights::save(&GoogLeNetConfig::new().with_num_classes(100).init(&Device::flex()), 96, &[]).unwrap();
    vec![
        ("empty.safetensors", "an empty file", vec![]),
        ("half.safetensors", "a weights file cut in half", good[..good.len() / 2].to_vec()),
        ("header.safetensors", "a weights file cut inside its header", good[..100].to_vec()),
        ("tiny.safetensors", "3 bytes", b"abc".to_vec()),
        ("random.safetensors", "100 kB of random bytes", random(100_000, 7)),
        ("photo.png", "a PNG image", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c".to_vec()),
        ("t10k-labels-idx1-ubyte.gz", "a Fashion-MNIST file", read("t10k-labels-idx1-ubyte.gz")),
        ("padded.safetensors", "weights with 16 bytes after the data", trailing),
        ("rgb.safetensors", "GoogLeNet weights for RGB images", rgb),
        ("cifar100.safetensors", "GoogLeNet weights for 100 classes", wide),
        ("encoder.safetensors", "a safetensors file of another network", other),
        ("odd-size.safetensors", "our weights with input size \"9x\"", odd_size),
    ]
}

fn table() -> String {
    // The real test split is loaded first; no bad file may change it.
    let mut loader = Loader::default();
    loader.add("t10k-images-idx3-ubyte.gz", &read("t10k-images-idx3-ubyte.gz"));
    loader.add("t10k-labels-idx1-ubyte.gz", &read("t10k-labels-idx1-ubyte.gz"));
    let first_image = loader.split(SplitName::Test).unwrap().image(0).to_vec();

    let mut rows = Vec::new();
    let mut messages = std::collections::HashSet::new();
    for (name, what, bytes) in bad_data_files() {
        let message = loader.add(name, &bytes).outcome.expect_err(name);
        let test = loader.split(SplitName::Test).expect("the test split stays loaded");
        assert_eq!((test.len(), test.image(0)), (10_000, &first_image[..]), "{name} changed the loaded data");
        assert!(messages.insert(("data", message.clone())), "{name}: the same message as another file: {message}");
        rows.push(format!("| data | `{name}` | {what} | {message} |"));
    }
    for (name, what, bytes) in bad_weight_files() {
        let message = match weights::load(&bytes, &Device::flex()) {
            Ok(_) => panic!("{name} was accepted"),
            Err(error) => error.to_string(),
        };
        assert!(messages.insert(("weights", message.clone())), "{name}: the same message as another file: {message}");
        rows.push(format!("| weights | `{name}` | {what} | {message} |"));
    }
    format!(
        "# Bad files and what the page says\n\n\
         Generated by `tests/bad_inputs.rs` (`UPDATE_BAD_INPUTS=1 cargo test --test bad_inputs`), which also\n\
         checks that every message is different and that the data loaded before stays loaded.\n\
         Data files are dropped on *1 · Data*; weight files are given to *Load weights…* in *3 · Classify*,\n\
         where a refused file leaves the model in use as it was (the worker replaces its model only\n\
         after a file has been read whole).\n\n\
         | where | file | what it is | message |\n| --- | --- | --- | --- |\n{}\n",
        rows.join("\n")
    )
}

#[test]
fn every_bad_file_gets_its_own_message_and_the_table_is_current() {
    let table = table();
    let rows = table.lines().filter(|line| line.starts_with("| data") || line.starts_with("| weights")).count();
    assert!(rows >= 20, "{rows} bad files");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/bad-inputs.md");
    if std::env::var_os("UPDATE_BAD_INPUTS").is_some() {
        std::fs::write(path, &table).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == table, "docs/bad-inputs.md is out of date: run UPDATE_BAD_INPUTS=1 cargo test --test bad_inputs");
}
