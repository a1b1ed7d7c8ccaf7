//! GoogLeNet as in D2L §5.9 (tf.keras port): b1..b5 and a dense head, for 1-channel
//! 96×96 Fashion-MNIST images and 10 classes — 5,977,530 parameters.
//!
//! Every layer mirrors its Keras counterpart: 'same' padding is TensorFlow's (the odd pixel
//! goes bottom/right, which Burn's `PaddingConfig2d::Same` also does), weights are
//! Glorot-uniform and biases zero. Burn is NCHW where Keras is NHWC.

mod blocks;
mod cpu_ops;
mod googlenet;
mod inception;
mod layout;
mod trace;
pub mod weights;
mod weights_file;

pub use blocks::{ConvRelu, ConvReluConfig, ConvPoolBlock, ConvPoolBlockConfig, Layer};
pub use googlenet::{GoogLeNet, GoogLeNetConfig, BLOCK_NAMES};
pub use inception::{Branch, BranchConfig, Inception, InceptionConfig, InceptionStage, InceptionStageConfig};
pub use trace::{BlockTrace, ForwardTrace, InceptionTrace};
