//! What the seed (D2L §5.9, tf.keras) says the network is, for native and browser tests alike.
#![allow(dead_code)]

pub const TOTAL_PARAMS: usize = 5_977_530;

/// `net.summary()`: b1, b2, b3, b4, b5, dense.
pub const BLOCK_PARAMS: [usize; 6] = [3_200, 114_944, 552_432, 2_809_168, 2_487_536, 10_250];

/// The seed's printed block outputs for a `(1, 96, 96, 1)` input, in NCHW.
pub fn block_outputs_96() -> Vec<Vec<usize>> {
    vec![vec![1, 64, 24, 24], vec![1, 192, 12, 12], vec![1, 480, 6, 6], vec![1, 832, 3, 3], vec![1, 1024], vec![1, 10]]
}

/// Each Inception block of the seed: its name, the output channels of its four branches,
/// and the side of its (square) feature maps for a 96×96 input.
pub const INCEPTIONS_96: [(&str, [usize; 4], usize); 9] = [
    ("3a", [64, 128, 32, 32], 12),
    ("3b", [128, 192, 96, 64], 12),
    ("4a", [192, 208, 48, 64], 6),
    ("4b", [160, 224, 64, 64], 6),
    ("4c", [128, 256, 64, 64], 6),
    ("4d", [112, 288, 64, 64], 6),
    ("4e", [256, 320, 128, 128], 6),
    ("5a", [256, 320, 128, 128], 3),
    ("5b", [384, 384, 128, 128], 3),
];

/// The four branch shapes and the concat shape of every Inception block, batch 1.
pub fn inception_shapes(side_of: impl Fn(usize) -> usize) -> Vec<(Vec<[usize; 4]>, [usize; 4])> {
    INCEPTIONS_96
        .iter()
        .map(|&(_, channels, side96)| {
            let side = side_of(side96);
            let branches = channels.iter().map(|&c| [1, c, side, side]).collect();
            (branches, [1, channels.iter().sum(), side, side])
        })
        .collect()
}

/// Fashion-MNIST as Debian's dataset-fashion-mnist installs it.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// `bytes` gzipped, as Fashion-MNIST files are published.
#[cfg(not(target_arch = "wasm32"))]
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An IDX header: the magic number, then the dimensions, all big-endian.
pub fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    std::iter::once(magic).chain(dims.iter().copied()).flat_map(u32::to_be_bytes).collect()
}

/// SplitMix64 bytes: the same "random" file for the same seed, every run.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}
