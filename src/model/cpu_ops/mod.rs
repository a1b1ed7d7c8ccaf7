//! The CPU device's own forms of two layers, where burn-flex's are slow for this network
//! (BENCHMARKS.md has the profiles): Burn backend extensions (`#[backend_extension]`) for
//! `Flex` and `Autodiff<Flex>`, each with its own backward step. WebGPU keeps Burn's
//! `Conv2d` and `MaxPool2d`; tests check both forms give the same outputs and gradients.
//!
//! - [`conv`]: the 3×3 convolutions as shifted copies and matrix products, a task of a few
//!   images a thread, forward and both gradients (and one image's 5×5 ones, classifying).
//! - [`product`]: one matrix product on the calling thread, with gemm's kernels.
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

/// One operand of [`product`]: a row-major matrix's values, read as that matrix or as its
/// transpose.
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    Plain(&'a [f32]),
    Transposed(&'a [f32]),
}

/// `into [m, n] = a [m, k] · b [k, n]` (`+=` when `accumulate`), row-major, on the calling
/// thread with gemm's kernels: the callers share the work between threads, a product each.
pub(crate) fn product(into: &mut [f32], a: Operand, b: Operand, [m, k, n]: [usize; 3], accumulate: bool) {
    // (values, column stride, row stride) of the matrix read.
    let (a, a_columns, a_rows) = match a {
        Operand::Plain(values) => (values, 1, k),
        Operand::Transposed(values) => (values, m, 1),
    };
    let (b, b_columns, b_rows) = match b {
        Operand::Plain(values) => (values, 1, n),
        Operand::Transposed(values) => (values, k, 1),
    };
    assert!(into.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "a product's operands are smaller than its sizes");
    // SAFETY: the three slices hold the m·n, m·k and k·n values the strides above reach (asserted
    // just above), and `into` does not overlap them (a `&mut` borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            into.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_columns as isize,
            a_rows as isize,
            b.as_ptr(),
            b_columns as isize,
            b_rows as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
