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
