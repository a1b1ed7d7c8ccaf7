//! The CPU device's own forms of two layers, where burn-flex's are slow for this network
//! (BENCHMARKS.md has the profiles): Burn backend extensions (`#[backend_extension]`) for
//! `Flex` and `Autodiff<Flex>`, each with its own backward step. WebGPU keeps Burn's
//! `Conv2d` and `MaxPool2d`; tests check both forms give the same outputs and gradients.
//!
//! - [`conv`]: the 3×3 convolutions as shifted copies and one matrix product, a few images at
//!   a time, forward and for the weight gradient (and one image's 5×5 ones, classifying).
//! - [`pool`]: the 3×3 'same' max-pools, whole slices at a time without branches (SSE2
//!   natively, SIMD128 in the wasm), without burn-flex's divisions per output.

pub(crate) mod conv;
pub(crate) mod pool;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};

/// The values of a CPU tensor made contiguous (`to_contiguous`), in row-major order.
fn values(x: &FloatTensor<Flex>) -> &[f32] {
    // A contiguous layout has offsets: every caller passes a tensor from `to_contiguous`.
    let (start, _) = x.layout().contiguous_offsets().expect("a contiguous tensor");
    &x.storage::<f32>()[start..start + x.shape().num_elements()]
}
