//! The CPU device's 3×3 max-pools with TensorFlow 'same' padding (stride 1 or 2).
//!
//! burn-flex's max-pool works out each output's window with six integer divisions and pads
//! asymmetric 'same' inputs with a copy; a profile of a training step put a fifth of the
//! CPU's time in it (BENCHMARKS.md). Here each axis's windows are worked out once per call,
//! clipped to the input (what −∞ padding gives), and each plane is pooled separably: rows,
//! then columns (six comparisons an output where a window has nine).
//! Training keeps each output's position in its plane (`i32`), and the backward step is
//! burn-flex's own scatter of the output gradient to those positions.

use std::ops::Range;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::ops::{FloatTensorOps, IntTensorOps, ModuleOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Shape, Tensor, TensorData};

const KERNEL: usize = 3;

/// A plane's row maxima (value, column) and an output row's maxima (value, position), kept
/// from plane to plane.
type Scratch = (Vec<(f32, u32)>, Vec<(f32, usize)>);

/// How many input values a group of planes pooled without positions holds, at least (one
/// plane when planes are larger): small planes (6×6, 3×3) pooled one by one cost more in
/// calls than in comparisons.
const GROUP: usize = 1 << 14;

/// The larger of two values, or a NaN: what burn-flex's max-pool gives.
#[inline]
fn larger(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

/// `into[i] = larger(into[i], from[i])` for every `i` (the slices are as long): four at a time
/// in the wasm, with SIMD128's `f32x4.max` (which, like [`larger`], gives a NaN when either is).
/// The wasm is built at `opt-level = "z"`, where LLVM neither vectorises loops nor always
/// inlines an iterator's steps, hence the plain index loops here and below.
#[inline]
fn max_into(into: &mut [f32], from: &[f32]) {
    assert_eq!(into.len(), from.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = {
        use core::arch::wasm32::{f32x4_max, v128, v128_load, v128_store};
        let whole = into.len() / 4 * 4;
        let (to, from) = (into.as_mut_ptr(), from.as_ptr());
        let mut at = 0;
        while at < whole {
            // SAFETY: `at + 4 <= whole <= len` of both slices (asserted equal above);
            // `v128_load` and `v128_store` take unaligned addresses.
            unsafe {
                let larger = f32x4_max(v128_load(to.add(at).cast::<v128>()), v128_load(from.add(at).cast::<v128>()));
                v128_store(to.add(at).cast::<v128>(), larger);
            }
            at += 4;
        }
        whole
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for at in done..into.len() {
        into[at] = larger(into[at], from[at]);
    }
}

/// The pool of whole planes (`[height, width]` each, back to back in `planes`) when no
/// positions are kept (classifying): the same maxima as [`pool_plane`], comparing values only,
/// over all the planes at once (their windows' maxima as whole-slice [`max_into`]s, then the
/// values next to a plane's or a row's edge worked out again).
fn max_planes(
    planes: &[f32],
    [height, width]: [usize; 2],
    stride: usize,
    rows: &[Range<usize>],
    columns: &[Range<usize>],
    output: &mut [f32],
) {
    let size = planes.len();
    if stride == 1 {
        // Each value's maximum over its rows y − 1, y, y + 1: all planes against themselves
        // shifted by a row; then each plane's first and last rows again (the shift crossed
        // into the planes beside them).
        let mut maxima = planes.to_vec();
        if height > 1 {
            max_into(&mut maxima[width..], &planes[..size - width]);
            max_into(&mut maxima[..size - width], &planes[width..]);
            for plane in 0..size / (height * width) {
                let (first, last) = (plane * height * width, ((plane + 1) * height - 1) * width);
                maxima[first..first + width].copy_from_slice(&planes[first..first + width]);
                max_into(&mut maxima[first..first + width], &planes[first + width..first + 2 * width]);
                maxima[last..last + width].copy_from_slice(&planes[last..last + width]);
                max_into(&mut maxima[last..last + width], &planes[last - width..last]);
            }
        }
        // Then over its columns x − 1, x, x + 1, and each row's two ends again.
        output.copy_from_slice(&maxima);
        if width > 1 {
            max_into(&mut output[..size - 1], &maxima[1..]);
            max_into(&mut output[1..], &maxima[..size - 1]);
            for row in 0..size / width {
                let (start, end) = (row * width, (row + 1) * width - 1);
                output[start] = larger(maxima[start], maxima[start + 1]);
                output[end] = larger(maxima[end - 1], maxima[end]);
            }
        }
        return;
    }
    // [planes · out_height, width]: each output row's maximum over its input rows.
    let mut maxima = Vec::with_capacity(size / height * rows.len());
    for plane in 0..size / (height * width) {
        for window in rows {
            let (start, first) = (maxima.len(), (plane * height + window.start) * width);
            maxima.extend_from_slice(&planes[first..first + width]);
            for y in window.start + 1..window.end {
                let row = (plane * height + y) * width;
                max_into(&mut maxima[start..], &planes[row..row + width]);
            }
        }
    }
    // Then over each output's columns: a window of three is x, x + 1, x + 2 from its start,
    // the maximum of all rows shifted by none, one and two; a window at a row's end is shorter.
    let mut threes = maxima.clone();
    let count = maxima.len();
    if count > 2 {
        max_into(&mut threes[..count - 1], &maxima[1..]);
        max_into(&mut threes[..count - 2], &maxima[2..]);
    }
    let out_width = columns.len();
    for row in 0..count / width {
        let (input, first_output) = (row * width, row * out_width);
        for x in 0..out_width {
            let Range { start, end } = columns[x];
            output[first_output + x] = if end - start == KERNEL {
                threes[input + start]
            } else {
                maxima[input + start + 1..input + end].iter().fold(maxima[input + start], |best, &value| larger(best, value))
            };
        }
    }
}

#[backend_extension(Autodiff, Flex)]
pub trait SameMaxPoolBackend: Backend {
    /// A 3×3 max-pool with 'same' padding and stride `stride`.
    fn max_pool_3x3_same(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self>;
}

impl SameMaxPoolBackend for Flex {
    fn max_pool_3x3_same(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        pool(&x, stride, false).0
    }
}

impl<C: CheckpointStrategy> SameMaxPoolBackend for Autodiff<Flex, C> {
    fn max_pool_3x3_same(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        match SameMaxPool.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                let (output, positions) = pool(&input, stride, true);
                let positions = positions.expect("asked for the positions");
                prep.finish((input, positions, stride), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool(&x.into_primitive(), stride, false).0),
        }
    }
}

#[derive(Debug)]
struct SameMaxPool;

impl Backward<Flex, 1> for SameMaxPool {
    /// The input (for its shape), each output's position in its plane, the stride.
    type State = (FloatTensor<Flex>, IntTensor<Flex>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (input, positions, stride) = ops.state;
        if let Some(node) = node {
            // burn-flex adds each output's gradient at its position: the kernel, stride and
            // padding arguments are not read.
            let backward = Flex::max_pool2d_with_indices_backward(
                input,
                [KERNEL; 2],
                [stride; 2],
                [0, 0],
                [1, 1],
                false,
                grad,
                positions,
            );
            grads.register::<Flex>(node.id, backward.x_grad);
        }
    }
}

/// The input rows (or columns) each output of a 3×3 'same' pool reads along one axis of
/// `size`: TensorFlow pads `max((out − 1)·stride + 3 − size, 0)` in all, the odd one after,
/// and padding never wins a max, so each window is clipped to the input.
fn windows(size: usize, stride: usize) -> Vec<Range<usize>> {
    let out = size.div_ceil(stride);
    let before = (((out - 1) * stride + KERNEL).saturating_sub(size)) / 2;
    (0..out)
        .map(|o| {
            let start = (o * stride).saturating_sub(before);
            start..(o * stride + KERNEL - before).min(size)
        })
        .collect()
}

/// One plane's pool, separably: first each input row's maximum over each output's columns
/// (with its column, into `scratch.0`), then each output row's maximum over its rows (into
/// `scratch.1`). Each output's value, and in `positions` its position in the plane: the first
/// largest in row-major order, or the last NaN, as burn-flex reports it (training keeps them).
fn pool_plane(
    plane: &[f32],
    width: usize,
    rows: &[Range<usize>],
    columns: &[Range<usize>],
    scratch: &mut Scratch,
    output: &mut [f32],
    positions: &mut [i32],
) {
    let out_width = columns.len();
    let (row_maxima, best) = scratch;
    row_maxima.clear();
    for row in plane.chunks_exact(width) {
        row_maxima.extend(columns.iter().map(|columns| {
            let mut best = (row[columns.start], columns.start as u32);
            for (x, &value) in row.iter().enumerate().take(columns.end).skip(columns.start + 1) {
                if value > best.0 || value.is_nan() {
                    best = (value, x as u32);
                }
            }
            best
        }));
    }
    for (out_y, rows) in rows.iter().enumerate() {
        let output = &mut output[out_y * out_width..(out_y + 1) * out_width];
        let first = &row_maxima[rows.start * out_width..(rows.start + 1) * out_width];
        best.clear();
        best.extend(first.iter().map(|&(value, x)| (value, rows.start * width + x as usize)));
        for y in rows.start + 1..rows.end {
            let row = &row_maxima[y * out_width..(y + 1) * out_width];
            for (best, &(value, x)) in best.iter_mut().zip(row) {
                if value > best.0 || value.is_nan() {
                    *best = (value, y * width + x as usize);
                }
            }
        }
        for (out, (value, _)) in output.iter_mut().zip(best.iter()) {
            *out = *value;
        }
        for (at, (_, position)) in positions[out_y * out_width..(out_y + 1) * out_width].iter_mut().zip(best.iter()) {
            *at = *position as i32;
        }
    }
}

/// The pool of every plane of `x` (`[batch, channels, height, width]`, f32), on every core
/// natively, and each output's position when `with_positions` (each plane on its own; without
/// positions, groups of planes).
fn pool(x: &FloatTensor<Flex>, stride: usize, with_positions: bool) -> (FloatTensor<Flex>, Option<IntTensor<Flex>>) {
    let x = x.to_contiguous();
    let [batch, channels, height, width] = x.shape().dims();
    let (rows, columns) = (windows(height, stride), windows(width, stride));
    let (plane_in, plane_out) = (height * width, rows.len() * columns.len());
    let (start, _) = x.layout().contiguous_offsets().expect("made contiguous above");
    let input = &x.storage::<f32>()[start..start + batch * channels * plane_in];
    let mut output = vec![0.0f32; batch * channels * plane_out];
    let mut positions = vec![0i32; if with_positions { output.len() } else { 0 }];
    let one = |scratch: &mut Scratch, (index, output): (usize, &mut [f32]), positions: &mut [i32]| {
        let plane = &input[index * plane_in..(index + 1) * plane_in];
        pool_plane(plane, width, &rows, &columns, scratch, output, positions);
    };
    // Without positions, groups of whole planes: one group in the wasm.
    let per_group = if cfg!(target_arch = "wasm32") { batch * channels } else { GROUP.div_ceil(plane_in.max(1)) }.max(1);
    let group = |(output, planes): (&mut [f32], &[f32])| max_planes(planes, [height, width], stride, &rows, &columns, output);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        match with_positions {
            true => output
                .par_chunks_mut(plane_out)
                .enumerate()
                .zip(positions.par_chunks_mut(plane_out))
                .for_each_init(Scratch::default, |scratch, (plane, at)| one(scratch, plane, at)),
            false => output.par_chunks_mut(per_group * plane_out).zip(input.par_chunks(per_group * plane_in)).for_each(group),
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        match with_positions {
            true => {
                let mut scratch = Scratch::default();
                let outputs = output.chunks_mut(plane_out).enumerate();
                outputs.zip(positions.chunks_mut(plane_out)).for_each(|(plane, at)| one(&mut scratch, plane, at));
            }
            false => output.chunks_mut(per_group * plane_out).zip(input.chunks(per_group * plane_in)).for_each(group),
        }
    }
    let shape = Shape::new([batch, channels, rows.len(), columns.len()]);
    let device = x.device();
    let output = Flex::float_from_data(TensorData::new(output, shape.clone()), &device);
    let positions = with_positions.then(|| Flex::int_from_data(TensorData::new(positions, shape), &device));
    (output, positions)
}

/// A 3×3 max-pool with TensorFlow 'same' padding and `stride`, on the CPU device (with or
/// without autodiff).
///
/// # Shapes
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, ceil(height / stride), ceil(width / stride)]`
pub(crate) fn max_pool_3x3_same(x: Tensor<4>, stride: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SameMaxPoolBackend>::max_pool_3x3_same(x.into_dispatch(), stride))
}
