//! The CPU device's own forms of three layers, where burn-flex's are slow for this network
//! (BENCHMARKS.md has the profiles): Burn backend extensions (`#[backend_extension]`) for
//! `Flex` and `Autodiff<Flex>`, each with its own backward step. They take and give
//! activations laid out channels first, `[channels, batch, height, width]` (the model's
//! `layout`). WebGPU keeps Burn's `Conv2d` and `MaxPool2d`; tests check both forms give the
//! same outputs and gradients.
//!
//! - [`conv`]: the 3×3, 5×5 and 7×7 stride-2 convolutions and their ReLU as shifted copies
//!   and matrix products, a task of a few images a thread, forward and both gradients.
//! - `winograd`: the 3×3 ones' outputs and gradients on planes of 6×6 and more, by
//!   Winograd's F(6×6, 3×3) or F(4×4, 3×3), for [`conv`].
//! - [`pointwise`]: the 1×1 convolutions and their ReLU as matrix products, a share of the rows
//!   or columns a thread.
//! - [`product`]: one matrix product on the calling thread, with gemm's kernels.
//! - [`pool`]: the 3×3 'same' max-pools, whole slices at a time without branches (AVX or SSE2
//!   natively, SIMD128 in the wasm), without burn-flex's divisions per output.

pub(crate) mod conv;
pub(crate) mod pointwise;
pub(crate) mod pool;
mod winograd;

use std::ops::Range;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};

/// The values of a CPU tensor made contiguous (`to_contiguous`), in row-major order.
fn values(x: &FloatTensor<Flex>) -> &[f32] {
    // A contiguous layout has offsets: every caller passes a tensor from `to_contiguous`.
    let (start, _) = x.layout().contiguous_offsets().expect("a contiguous tensor");
    &x.storage::<f32>()[start..start + x.shape().num_elements()]
}

/// One operand of [`product`]: a stored row-major matrix, read as that matrix or as its
/// transpose, with how far apart its rows lie (its width, or more when it is some columns of a
/// wider matrix).
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    Plain(&'a [f32], usize),
    Transposed(&'a [f32], usize),
}

/// `into [m, n] = a [m, k] · b [k, n]` (`+=` when `accumulate`), row-major, on the calling
/// thread with gemm's kernels: the callers share the work between threads, a product each.
pub(crate) fn product(into: &mut [f32], a: Operand, b: Operand, [m, k, n]: [usize; 3], accumulate: bool) {
    // (values, column stride, row stride, whether the values reach) of a `rows`×`columns` operand.
    let read = |operand: Operand<'_>, rows: usize, columns: usize| match operand {
        Operand::Plain(values, stride) => (values.as_ptr(), 1, stride, stride >= columns && values.len() >= (rows.max(1) - 1) * stride + columns),
        Operand::Transposed(values, stride) => (values.as_ptr(), stride, 1, stride >= rows && values.len() >= (columns.max(1) - 1) * stride + rows),
    };
    let (a, a_columns, a_rows, a_fits) = read(a, m, k);
    let (b, b_columns, b_rows, b_fits) = read(b, k, n);
    assert!(into.len() >= m * n && a_fits && b_fits, "a product's operands are smaller than its sizes");
    // SAFETY: the three slices hold the values the sizes and strides above reach (asserted just
    // above), and `into` does not overlap them (a `&mut` borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            into.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a,
            a_columns as isize,
            a_rows as isize,
            b,
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

/// How many floats a layout pass (shifted copies, a gradient through the ReLU) takes at least
/// to be made on every core natively.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const PARALLEL_COPIES: usize = 1 << 18;

/// `len` zeros: natively, the large ones written on every core. The native binaries keep freed
/// memory for the next step (`src/allocator.rs`), so a large buffer is not fresh zero pages
/// from the system but one that `vec!` clears on the calling thread, while the other cores
/// wait: a step's outputs and gradients were 4 % of its time that way (BENCHMARKS.md).
pub(crate) fn zeros<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    if len >= PARALLEL_COPIES {
        use rayon::prelude::*;
        let mut zeros = Vec::with_capacity(len);
        zeros.par_extend(rayon::iter::repeat_n(T::default(), len));
        return zeros;
    }
    vec![T::default(); len]
}

/// TensorFlow's 'same' padding along one axis of `size` for a `kernel` at `stride`: `ceil(size
/// / stride)` outputs, `max((out − 1)·stride + kernel − size, 0)` zeros in all, `[before,
/// after]`, the odd one after (b1's 7×7 stride-2 convolution of 96: 2 before, 3 after).
pub(crate) fn same_padding(size: usize, kernel: usize, stride: usize) -> [usize; 2] {
    let out = size.div_ceil(stride).max(1);
    let padding = ((out - 1) * stride + kernel).saturating_sub(size);
    [padding / 2, padding - padding / 2]
}

/// How many threads share the tasks: rayon's natively, one in the wasm.
pub(crate) fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads().max(1);
    #[cfg(target_arch = "wasm32")]
    1
}

/// Runs `task(index, part)` for each part of `into`, `part` values long (the last may be
/// shorter): on every core natively.
pub(crate) fn for_each_task(into: &mut [f32], part: usize, task: impl Fn(usize, &mut [f32]) + Send + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        into.par_chunks_mut(part.max(1)).enumerate().for_each(|(index, part)| task(index, part));
    }
    #[cfg(target_arch = "wasm32")]
    into.chunks_mut(part.max(1)).enumerate().for_each(|(index, part)| task(index, part));
}

/// Runs `task(images, runs)` for each task of `per_task` images of a batch laid out `[rows,
/// batch, unit]` in `values` (channels first): `runs` are the task's run of each row,
/// `images.len()·unit` values each. On every core natively.
pub(crate) fn for_each_task_runs(values: &mut [f32], [rows, batch, unit]: [usize; 3], per_task: usize, task: impl Fn(Range<usize>, Vec<&mut [f32]>) + Send + Sync) {
    let per_task = per_task.max(1);
    let mut parts: Vec<Vec<&mut [f32]>> = (0..batch.div_ceil(per_task)).map(|_| Vec::with_capacity(rows)).collect();
    for row in values.chunks_exact_mut((batch * unit).max(1)).take(rows) {
        let mut rest = row;
        for part in &mut parts {
            let len = (per_task * unit).min(rest.len());
            let (run, after) = std::mem::take(&mut rest).split_at_mut(len);
            part.push(run);
            rest = after;
        }
    }
    let one = |(index, runs): (usize, Vec<&mut [f32]>)| task(index * per_task..((index + 1) * per_task).min(batch), runs);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        parts.into_par_iter().enumerate().for_each(one);
    }
    #[cfg(target_arch = "wasm32")]
    parts.into_iter().enumerate().for_each(one);
}

/// The output gradient through the ReLU (zero where the output was cut), as it lies: `[rows,
/// …]`, channels first (a row a channel), and the sum of each row: the bias's gradient. Once
/// for both of a convolution's gradients; on every core natively, each value written once.
pub(crate) fn through_relu(grad: &[f32], output: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
    // As Burn's ReLU: the gradient passes where the output is positive or NaN.
    let pass = |(&grad, &output): (&f32, &f32)| if output > 0.0 || output.is_nan() { grad } else { 0.0 };
    let row = (grad.len() / rows.max(1)).max(1);
    let mut masked = Vec::with_capacity(grad.len());
    #[cfg(not(target_arch = "wasm32"))]
    if grad.len() >= PARALLEL_COPIES {
        use rayon::prelude::*;
        masked.par_extend(grad.par_iter().zip(output).map(pass));
        let sums = masked.par_chunks(row).map(sum_of).collect();
        return (masked, sums);
    }
    masked.extend(grad.iter().zip(output).map(pass));
    let sums = masked.chunks(row).map(sum_of).collect();
    (masked, sums)
}

/// Burn's ReLU of one value: NaN passes, as in PyTorch.
#[inline]
pub(crate) fn relu(value: f32) -> f32 {
    if value > 0.0 || value.is_nan() {
        value
    } else {
        0.0
    }
}

/// The sum of `values`, eight running sums at a time (so that it vectorises).
fn sum_of(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, &value)| *lane += value);
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The sum of `share(0)`, …, `share(shares − 1)`, each `len` values: the shares computed on
/// every core natively, then added in order, so that a run gives the same sum every time.
pub(crate) fn sum_of_shares(shares: usize, len: usize, share: impl Fn(usize) -> Vec<f32> + Send + Sync) -> Vec<f32> {
    #[cfg(not(target_arch = "wasm32"))]
    let sums: Vec<Vec<f32>> = {
        use rayon::prelude::*;
        (0..shares).into_par_iter().map(share).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let sums: Vec<Vec<f32>> = (0..shares).map(share).collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0f32; len]);
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(total, &value)| *total += value);
    }
    total
}
