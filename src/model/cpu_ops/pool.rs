//! The CPU device's 3×3 max-pools with TensorFlow 'same' padding (stride 1 or 2).
//!
//! burn-flex's max-pool works out each output's window with six integer divisions and pads
//! asymmetric 'same' inputs with a copy; a profile of a training step put a fifth of the
//! CPU's time in it (BENCHMARKS.md). Here each axis's windows are worked out once per call,
//! clipped to the input (what −∞ padding gives), and planes are pooled separably: rows, then
//! columns, whole slices at a time (maxima of slices shifted by a row or a column), with SIMD
//! (AVX or SSE2 natively, SIMD128 in the wasm).
//! Training keeps each output's position in its plane (`i32`), and the backward step adds each
//! output's gradient at its position.

use std::ops::Range;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

use super::{for_each_task, same_padding, values, zeros};

const KERNEL: usize = 3;

/// How many input values a group of planes holds, at least (one plane when planes are
/// larger): small planes (6×6, 3×3) pooled one by one cost more in calls than in comparisons.
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
/// positions are kept (classifying): the same maxima as [`pool_planes`], comparing values only,
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
                prep.finish((input.shape().dims(), positions), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool(&x.into_primitive(), stride, false).0),
        }
    }
}

#[derive(Debug)]
struct SameMaxPool;

impl Backward<Flex, 1> for SameMaxPool {
    /// The input's shape, each output's position in its plane.
    type State = ([usize; 4], Vec<i32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (shape, positions) = ops.state;
        if let Some(node) = node {
            let grad = grad.to_contiguous();
            let gradient = scatter(values(&grad), &positions, shape, grad.shape().dims());
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, shape), &grad.device()));
        }
    }
}

/// The input gradient of a pool: each output's gradient added at its position in its plane
/// (`positions`, from [`pool`]), planes of the input `[.., .., height, width]` and of the
/// output `[.., .., out_height, out_width]` in the same order; groups of whole planes on every
/// core natively. burn-flex's (`max_pool2d_with_indices_backward`) was 1.5 % of a native step
/// (BENCHMARKS.md).
fn scatter(grad: &[f32], positions: &[i32], [batch, channels, height, width]: [usize; 4], [_, _, out_height, out_width]: [usize; 4]) -> Vec<f32> {
    let (plane_in, plane_out) = (height * width, out_height * out_width);
    let mut gradient = zeros(batch * channels * plane_in);
    let per_group = GROUP.div_ceil(plane_in.max(1));
    for_each_task(&mut gradient, per_group * plane_in, |group, planes| {
        let first = group * per_group * plane_out;
        let (grad, positions) = (&grad[first..], &positions[first..]);
        for (plane, into) in planes.chunks_exact_mut(plane_in.max(1)).enumerate() {
            let outputs = plane * plane_out..(plane + 1) * plane_out;
            for (&grad, &at) in grad[outputs.clone()].iter().zip(&positions[outputs]) {
                into[at as usize] += grad;
            }
        }
    });
    gradient
}

/// The input row (or column) each output of a 3×3 'same' pool is centred on, along one axis
/// of `size`: TensorFlow's padding ([`same_padding`]) is one before or none.
fn centres(size: usize, stride: usize) -> Vec<usize> {
    let [before, _] = same_padding(size, KERNEL, stride);
    (0..size.div_ceil(stride)).map(|o| o * stride + 1 - before).collect()
}

/// The input rows (or columns) each output reads: padding never wins a max, so each window
/// is clipped to the input. At stride 2 too they are stride-1 windows, around every other
/// row, which lets both strides pool whole rows at a time.
fn windows(size: usize, stride: usize) -> Vec<Range<usize>> {
    centres(size, stride).into_iter().map(|centre| centre.saturating_sub(1)..(centre + 2).min(size)).collect()
}

/// Each output's best of `N` candidates taken in order (`values[k][i]`, at `positions[k][i]`):
/// a later one wins when it is larger or a NaN, as in burn-flex's max-pool, so the first
/// largest, or the last NaN. Over whole slices, eight or four at a time without branches (the
/// maxima of noisy values mispredict them): AVX or SSE2 natively, SIMD128 in the wasm. LLVM
/// keeps a branch per comparison in the scalar loop, which left training's pool at 4.5–8 ns a
/// value natively.
#[inline]
fn best_of<const N: usize>(best: &mut [f32], at: &mut [i32], values: [&[f32]; N], positions: [&[i32]; N]) {
    let count = best.len();
    let at = &mut at[..count];
    let values = values.map(|values| &values[..count]);
    let positions = positions.map(|positions| &positions[..count]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = {
        use core::arch::wasm32::{f32x4_gt, f32x4_ne, v128, v128_bitselect, v128_load, v128_or, v128_store};
        let whole = count / 4 * 4;
        let mut i = 0;
        while i < whole {
            // SAFETY: `i + 4 <= whole <= count`, and every slice is `count` long (sliced
            // above); `v128_load` and `v128_store` take unaligned addresses.
            unsafe {
                let load = |values: &[f32]| v128_load(values.as_ptr().add(i).cast::<v128>());
                let load_at = |positions: &[i32]| v128_load(positions.as_ptr().add(i).cast::<v128>());
                let (mut value, mut position) = (load(values[0]), load_at(positions[0]));
                for k in 1..N {
                    let candidate = load(values[k]);
                    let take = v128_or(f32x4_gt(candidate, value), f32x4_ne(candidate, candidate));
                    value = v128_bitselect(candidate, value, take);
                    position = v128_bitselect(load_at(positions[k]), position, take);
                }
                v128_store(best.as_mut_ptr().add(i).cast::<v128>(), value);
                v128_store(at.as_mut_ptr().add(i).cast::<v128>(), position);
            }
            i += 4;
        }
        whole
    };
    // AVX's eight at a time where the processor has it, then SSE2's four, which every x86-64
    // processor has (LLVM would not vectorise the scalar loop below: it keeps a branch per
    // comparison).
    #[cfg(target_arch = "x86_64")]
    let done = {
        use core::arch::x86_64::{
            __m128i, _mm_and_ps, _mm_and_si128, _mm_andnot_ps, _mm_andnot_si128, _mm_castps_si128, _mm_cmpgt_ps, _mm_cmpunord_ps,
            _mm_loadu_ps, _mm_loadu_si128, _mm_or_ps, _mm_or_si128, _mm_storeu_ps, _mm_storeu_si128,
        };
        let whole = count / 4 * 4;
        let mut i = match std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the processor has AVX (detected just above).
            true => unsafe { best_of_avx(best, at, values, positions) },
            false => 0,
        };
        while i < whole {
            // SAFETY: SSE2 is part of x86-64; `i + 4 <= whole <= count`, and every slice is
            // `count` long (sliced above); the `loadu`/`storeu` forms take unaligned addresses.
            unsafe {
                let load = |values: &[f32]| _mm_loadu_ps(values.as_ptr().add(i));
                let load_at = |positions: &[i32]| _mm_loadu_si128(positions.as_ptr().add(i).cast::<__m128i>());
                let (mut value, mut position) = (load(values[0]), load_at(positions[0]));
                for k in 1..N {
                    let candidate = load(values[k]);
                    let take = _mm_or_ps(_mm_cmpgt_ps(candidate, value), _mm_cmpunord_ps(candidate, candidate));
                    value = _mm_or_ps(_mm_and_ps(take, candidate), _mm_andnot_ps(take, value));
                    let take = _mm_castps_si128(take);
                    position = _mm_or_si128(_mm_and_si128(take, load_at(positions[k])), _mm_andnot_si128(take, position));
                }
                _mm_storeu_ps(best.as_mut_ptr().add(i), value);
                _mm_storeu_si128(at.as_mut_ptr().add(i).cast::<__m128i>(), position);
            }
            i += 4;
        }
        whole
    };
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    let done = 0;
    for i in done..count {
        let (mut value, mut position) = (values[0][i], positions[0][i]);
        for k in 1..N {
            let (candidate, candidate_at) = (values[k][i], positions[k][i]);
            let take = (candidate > value) | candidate.is_nan();
            value = if take { candidate } else { value };
            position = if take { candidate_at } else { position };
        }
        best[i] = value;
        at[i] = position;
    }
}

/// [`best_of`]'s values and positions eight at a time with AVX, up to the last whole eight:
/// how many it did. A blend per candidate, where SSE2 takes three operations (training's pools
/// were 6 % of a native step with SSE2 alone, BENCHMARKS.md).
///
/// # Safety
/// The processor must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn best_of_avx<const N: usize>(best: &mut [f32], at: &mut [i32], values: [&[f32]; N], positions: [&[i32]; N]) -> usize {
    use core::arch::x86_64::{_mm256_blendv_ps, _mm256_cmp_ps, _mm256_loadu_ps, _mm256_or_ps, _mm256_storeu_ps, _CMP_GT_OQ, _CMP_UNORD_Q};
    let count = best.len();
    assert!(at.len() >= count && values.iter().all(|values| values.len() >= count) && positions.iter().all(|positions| positions.len() >= count));
    let whole = count / 8 * 8;
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 8 <= whole <= count`, and every slice holds `count` values (asserted
        // above); the `loadu`/`storeu` forms take unaligned addresses. Positions travel as the
        // bits of floats: a blend moves bits and never reads them as numbers.
        unsafe {
            let (mut value, mut position) = (_mm256_loadu_ps(values[0].as_ptr().add(i)), _mm256_loadu_ps(positions[0].as_ptr().add(i).cast::<f32>()));
            for k in 1..N {
                let candidate = _mm256_loadu_ps(values[k].as_ptr().add(i));
                let take = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(candidate, value), _mm256_cmp_ps::<_CMP_UNORD_Q>(candidate, candidate));
                value = _mm256_blendv_ps(value, candidate, take);
                position = _mm256_blendv_ps(position, _mm256_loadu_ps(positions[k].as_ptr().add(i).cast::<f32>()), take);
            }
            _mm256_storeu_ps(best.as_mut_ptr().add(i), value);
            _mm256_storeu_ps(at.as_mut_ptr().add(i).cast::<f32>(), position);
        }
        i += 8;
    }
    whole
}

/// Stride-1 window maxima along lines of `length` laid end to end in `values` (each value's
/// position in `positions`), `step` apart: lines are rows when `step` is 1 (`length` their
/// width), planes' columns when `step` is a row (`length` the height). Each window is the
/// line's values before, at and after a value, clipped to the line. As whole slices shifted by
/// `step`, the best of the three in one pass; a line's two ends are pairs.
fn line_maxima(values: &[f32], positions: &[i32], step: usize, length: usize, best: &mut [f32], at: &mut [i32]) {
    let size = values.len();
    if length == 1 {
        best.copy_from_slice(values);
        at.copy_from_slice(positions);
        return;
    }
    // Inside a line: the best of i − step, i and i + step, in that order.
    let here = step..size - step;
    best_of::<3>(
        &mut best[here.clone()],
        &mut at[here.clone()],
        [&values[..size - 2 * step], &values[here.clone()], &values[2 * step..]],
        [&positions[..size - 2 * step], &positions[here], &positions[2 * step..]],
    );
    // A line's ends: the pairs (0, 1) and (length − 2, length − 1). Down columns (`step` more
    // than 1) a plane's first and last rows are `step` values side by side: slices again (on
    // b4's 6×6 planes they are a third of the values).
    let line = step * length;
    if step > 1 {
        for start in (0..size).step_by(line) {
            let (first, last) = (start..start + step, start + line - step..start + line);
            let (before_last, second) = (last.start - step..last.start, first.end..first.end + step);
            best_of::<2>(&mut best[first.clone()], &mut at[first.clone()], [&values[first.clone()], &values[second.clone()]], [&positions[first], &positions[second]]);
            best_of::<2>(&mut best[last.clone()], &mut at[last.clone()], [&values[before_last.clone()], &values[last.clone()]], [&positions[before_last], &positions[last]]);
        }
        return;
    }
    let pair = |first: usize| {
        let (a, b) = (values[first], values[first + 1]);
        match b > a || b.is_nan() {
            true => (b, positions[first + 1]),
            false => (a, positions[first]),
        }
    };
    for start in (0..size).step_by(line) {
        let last = start + line - 1;
        (best[start], at[start]) = pair(start);
        (best[last], at[last]) = pair(last - 1);
    }
}

/// Whole planes' pool (`[height, width]` each, back to back in `planes`) with each output's
/// position in its plane (training keeps them): the first largest in row-major order, or the
/// last NaN, as burn-flex reports it. Separably, each pass over all the planes at once: every
/// row's stride-1 window maxima and their positions, the columns around `column_centres` kept;
/// then every column's, the rows around `row_centres` kept (TensorFlow's stride-2 windows are
/// the stride-1 ones around every other row and column, clipped the same way).
fn pool_planes(
    planes: &[f32],
    [height, width]: [usize; 2],
    row_centres: &[usize],
    column_centres: &[usize],
    output: &mut [f32],
    positions: &mut [i32],
) {
    let (size, out_width) = (planes.len(), column_centres.len());
    let plane_in = height * width;
    // Positions in the group first; each plane's start is taken off at the end.
    let inputs: Vec<i32> = (0..size as i32).collect();
    let (mut best, mut at) = (vec![0.0f32; size], vec![0i32; size]);
    line_maxima(planes, &inputs, 1, width, &mut best, &mut at);
    if out_width != width {
        let (mut kept, mut kept_at) = (vec![0.0f32; size / width * out_width], vec![0i32; size / width * out_width]);
        for (row, (kept, kept_at)) in kept.chunks_exact_mut(out_width).zip(kept_at.chunks_exact_mut(out_width)).enumerate() {
            let (best, at) = (&best[row * width..(row + 1) * width], &at[row * width..(row + 1) * width]);
            for (o, &x) in column_centres.iter().enumerate() {
                (kept[o], kept_at[o]) = (best[x], at[x]);
            }
        }
        (best, at) = (kept, kept_at);
    }
    // Then down each plane's columns: lines `out_width` apart, `height` long.
    let (mut column_best, mut column_at) = (vec![0.0f32; best.len()], vec![0i32; best.len()]);
    line_maxima(&best, &at, out_width, height, &mut column_best, &mut column_at);
    let plane_out = row_centres.len() * out_width;
    for (plane, (output, positions)) in output.chunks_exact_mut(plane_out).zip(positions.chunks_exact_mut(plane_out)).enumerate() {
        let first = (plane * plane_in) as i32;
        for (out_y, &y) in row_centres.iter().enumerate() {
            let row = (plane * height + y) * out_width..(plane * height + y + 1) * out_width;
            output[out_y * out_width..(out_y + 1) * out_width].copy_from_slice(&column_best[row.clone()]);
            for (position, &at) in positions[out_y * out_width..(out_y + 1) * out_width].iter_mut().zip(&column_at[row]) {
                *position = at - first;
            }
        }
    }
}

/// The pool of every plane of `x` (`[batch, channels, height, width]`, f32), on every core
/// natively, and each output's position when `with_positions` (none otherwise).
fn pool(x: &FloatTensor<Flex>, stride: usize, with_positions: bool) -> (FloatTensor<Flex>, Vec<i32>) {
    let x = x.to_contiguous();
    let [batch, channels, height, width] = x.shape().dims();
    let (rows, columns) = (windows(height, stride), windows(width, stride));
    let (row_centres, column_centres) = (centres(height, stride), centres(width, stride));
    let (plane_in, plane_out) = (height * width, rows.len() * columns.len());
    let input = values(&x);
    let mut output = zeros(batch * channels * plane_out);
    let mut positions = zeros(if with_positions { output.len() } else { 0 });
    // Groups of whole planes of about `GROUP` values (their scratch stays in the cache), on
    // every core natively; without positions, one group in the wasm.
    let per_group = GROUP.div_ceil(plane_in.max(1));
    let (group_in, group_out) = (per_group * plane_in, per_group * plane_out);
    let values_and_positions = |((output, positions), planes): ((&mut [f32], &mut [i32]), &[f32])| {
        pool_planes(planes, [height, width], &row_centres, &column_centres, output, positions)
    };
    let per_group = if cfg!(target_arch = "wasm32") { (batch * channels).max(1) } else { per_group };
    let (values_in, values_out) = (per_group * plane_in, per_group * plane_out);
    let values_only = |(output, planes): (&mut [f32], &[f32])| max_planes(planes, [height, width], stride, &rows, &columns, output);
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        match with_positions {
            true => output
                .par_chunks_mut(group_out)
                .zip(positions.par_chunks_mut(group_out))
                .zip(input.par_chunks(group_in))
                .for_each(values_and_positions),
            false => output.par_chunks_mut(values_out).zip(input.par_chunks(values_in)).for_each(values_only),
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        match with_positions {
            true => output.chunks_mut(group_out).zip(positions.chunks_mut(group_out)).zip(input.chunks(group_in)).for_each(values_and_positions),
            false => output.chunks_mut(values_out).zip(input.chunks(values_in)).for_each(values_only),
        }
    }
    let output = Flex::float_from_data(TensorData::new(output, [batch, channels, rows.len(), columns.len()]), &x.device());
    (output, positions)
}

/// A 3×3 max-pool with TensorFlow 'same' padding and `stride`, on the CPU device (with or
/// without autodiff). Each plane is pooled on its own: the first two axes may be `[batch,
/// channels]` or, channels first, `[channels, batch]`.
///
/// # Shapes
/// - x: `[batch, channels, height, width]`
/// - output: `[batch, channels, ceil(height / stride), ceil(width / stride)]`
pub(crate) fn max_pool_3x3_same(x: Tensor<4>, stride: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SameMaxPoolBackend>::max_pool_3x3_same(x.into_dispatch(), stride))
}
