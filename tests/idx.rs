//! The IDX reader on the real Fashion-MNIST files, and on each kind of bad file.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use googlenet_web::data::{parse_idx, IdxError, IdxKind, MAX_DECODED_BYTES};

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/{name}", common::FASHION_MNIST_DIR);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/setup.sh)"))
}

use common::{gzip, idx_header as header};

#[test]
fn reads_all_four_real_files_with_their_counts() {
    for (name, kind, count) in [
        ("train-images-idx3-ubyte.gz", IdxKind::Images, 60_000),
        ("train-labels-idx1-ubyte.gz", IdxKind::Labels, 60_000),
        ("t10k-images-idx3-ubyte.gz", IdxKind::Images, 10_000),
        ("t10k-labels-idx1-ubyte.gz", IdxKind::Labels, 10_000),
    ] {
        let file = parse_idx(&read(name), true).unwrap();
        assert_eq!((file.kind, file.count), (kind, count), "{name}");
        let item = if kind == IdxKind::Images { 784 } else { 1 };
        assert_eq!(file.data.len(), count * item, "{name}");
    }
    // Fashion-MNIST is balanced: 6,000 training images of each class.
    let labels = parse_idx(&read("train-labels-idx1-ubyte.gz"), true).unwrap();
    for class in 0..10u8 {
        assert_eq!(labels.data.iter().filter(|&&l| l == class).count(), 6_000);
    }
}

#[test]
fn reads_raw_idx_as_well_as_gzip() {
    let labels = parse_idx(&read("t10k-labels-idx1-ubyte.gz"), true).unwrap();
    let raw: Vec<u8> = header(0x801, &[10_000]).into_iter().chain(labels.data.iter().copied()).collect();
    assert_eq!(parse_idx(&raw, false).unwrap(), labels);
}

#[test]
fn each_bad_file_gets_its_own_error() {
    let images = |count: u32, rows: u32, cols: u32, data: usize| {
        let mut bytes = header(0x803, &[count, rows, cols]);
        bytes.resize(bytes.len() + data, 0);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, bool, IdxError)> = vec![
        ("empty", vec![], false, IdxError::Empty),
        ("named .gz, not gzip", images(1, 28, 28, 784), true, IdxError::NotGzip),
        ("corrupt gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff], true, IdxError::CorruptGzip(String::new())),
        ("header cut short", vec![0, 0, 8, 3, 0, 0], false, IdxError::TruncatedHeader(6)),
        ("image header cut short", header(0x803, &[1, 28]), false, IdxError::TruncatedHeader(12)),
        ("wrong magic", header(0x0000_0802, &[1, 28, 28]), false, IdxError::WrongMagic(0x802)),
        ("PNG file", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(), false, IdxError::WrongMagic(0x8950_4E47)),
        ("32×32 images", images(1, 32, 32, 1024), false, IdxError::WrongDimensions { rows: 32, cols: 32 }),
        ("truncated data", images(2, 28, 28, 784), false, IdxError::Truncated { declared: 2, expected: 1568, actual: 784 }),
        ("trailing bytes", images(1, 28, 28, 790), false, IdxError::TrailingBytes { extra: 6 }),
        (
            "label 10",
            header(0x801, &[3]).into_iter().chain([1, 9, 10]).collect(),
            false,
            IdxError::LabelOutOfRange { index: 2, label: 10 },
        ),
        ("too large", gzip(&vec![0; MAX_DECODED_BYTES + 1]), true, IdxError::TooLarge),
    ];
    for (name, bytes, gz_name, expected) in cases {
        let error = parse_idx(&bytes, gz_name).expect_err(name);
        match expected {
            IdxError::CorruptGzip(_) => assert!(matches!(error, IdxError::CorruptGzip(_)), "{name}: {error}"),
            expected => assert_eq!(error, expected, "{name}"),
        }
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn the_loader_pairs_real_files_by_count_and_keeps_data_when_a_bad_file_arrives() {
    use googlenet_web::data::{Loader, SplitName};
    let mut loader = Loader::default();
    // Names say nothing: the loader goes by magic and counts.
    loader.add("a.gz", &read("t10k-labels-idx1-ubyte.gz"));
    assert_eq!(loader.split(SplitName::Test), None);
    assert_eq!(loader.unpaired(), ["10000 labels have no image file with the same count"]);
    loader.add("b.gz", &read("t10k-images-idx3-ubyte.gz"));
    let test = loader.split(SplitName::Test).expect("test split paired");
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.class_counts(), [1_000; 10]);
    assert_eq!(test.image(0).len(), 784);
    let (first_image, first_label) = (test.image(0).to_vec(), test.labels[0]);
    assert!(loader.unpaired().is_empty());

    let report = loader.add("broken.gz", b"not gzip at all");
    assert_eq!(report.outcome, Err("the file is named .gz but is not gzip data".to_owned()));
    let test = loader.split(SplitName::Test).expect("the bad file changed nothing");
    assert_eq!((test.len(), test.image(0), test.labels[0]), (10_000, &first_image[..], first_label));
    assert_eq!(loader.split(SplitName::Train), None);
    assert_eq!(loader.reports().len(), 3);

    // A bad file under the name of a good one: the page must not forget where the data came from.
    let report = loader.add("b.gz", b"\x1f\x8b broken");
    let message = report.outcome.unwrap_err();
    assert!(message.ends_with("the b.gz loaded before (10000 images) stays loaded"), "{message}");
    assert_eq!(loader.split(SplitName::Test).map(|split| split.len()), Some(10_000));
}
