//! The CPU device's 3×3 and 5×5 convolutions, b1's 7×7 stride-2 one and their ReLU, forward
//! and backward, as matrix products of the input's shifted copies (im2col). The 3×3 ones on
//! planes of 6×6 and more compute their outputs and both gradients by Winograd's F(6×6, 3×3)
//! or F(4×4, 3×3) instead ([`winograd`]).
//!
//! - Forward: `weight [out, in·k·k] · copies [in·k·k, images·positions]`. burn-flex's
//!   convolution first reorders the whole input to channels-last on one core.
//! - The weight's gradient: `grad [out, images·positions] · copiesᵀ`. Burn computes it as
//!   another convolution, with the output gradient as its kernel: on burn-flex one matrix
//!   product per input channel, each packing the whole output gradient again, with nine output
//!   columns; it was the largest part of a training step (BENCHMARKS.md).
//! - The input's gradient: `weightᵀ [in·k·k, out] · grad`, each row added back where its copy
//!   came from (col2im). burn-flex's transposed convolution makes the same product one image at
//!   a time, a few dozen columns wide in the network's last blocks.
//!
//! Each is a few images a task and a task a thread, every product on its thread with gemm's
//! kernels ([`product`]): gemm splitting one large product between the threads was measured
//! slower (BENCHMARKS.md), and a task's copies stay small.
//!
//! Activations are laid out channels first, `[channels, batch, height, width]` (the model's
//! `ChannelsFirst`): a channel's planes for a task's images are one run, in the input as in
//! the output, and the output gradient is already the matrix `[out, batch·positions]` that
//! both gradients' products read.
//!
//! The ReLU is cut as the outputs are placed, and its gradient's mask is applied as the output
//! gradient is laid out for both products, with the bias's gradient summed in the same pass.
//!
//! It is a backend extension (Burn's `#[backend_extension]`) with its own backward step. Only
//! the CPU backend has it: WebGPU keeps `Conv2d`. It works for any square kernel, stride and
//! padding ([`Window`]); the model runs every convolution but the 1×1 ones with it
//! (`ConvRelu`).

use std::ops::Range;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

#[cfg(not(target_arch = "wasm32"))]
use super::PARALLEL_COPIES;
use super::pointwise::products_with_relu;
use super::winograd;
use super::{for_each_task_runs, product, relu, sum_of_shares, threads, through_relu, values, zeros, Operand};

/// How many floats the scratch of all tasks at once may take (8 MB): shifted copies and products.
const COLUMNS_LIMIT: usize = 2 << 20;

/// How many columns a product of one task has at least, where the batch allows: gemm is slow
/// for a few dozen.
const PRODUCT_COLUMNS: usize = 1024;

/// Where a square kernel goes over a square input, on both axes: every `stride`-th position,
/// with `before` zeros before the input and `after` after it. TensorFlow's 'same' padding puts
/// the odd one after (b1's 7×7 stride-2 convolution of 96×96: 2 before, 3 after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) stride: usize,
    pub(crate) before: usize,
    pub(crate) after: usize,
}

impl Window {
    /// The output's side for an input side `size` and a `kernel`.
    fn out(self, size: usize, kernel: usize) -> usize {
        (size + self.before + self.after - kernel) / self.stride + 1
    }

    /// The output positions `first..end` (of `out`) whose input position `at · stride + offset
    /// − before` lies inside an input of `size`, for the kernel offset `offset` (`first == end`
    /// where there are none).
    fn inside(self, size: usize, offset: usize, out: usize) -> (usize, usize) {
        let first = self.before.saturating_sub(offset).div_ceil(self.stride).min(out);
        let end = (size + self.before).saturating_sub(offset).div_ceil(self.stride).min(out);
        (first, end.max(first))
    }

    /// Whether a `kernel`×`kernel` convolution over this window, of planes `side` high, is a
    /// 3×3 stride-1 'same' one on planes of [`winograd::LEAST_SIDE`] or more, whose output and
    /// both gradients a batch computes by Winograd's algorithm ([`winograd`]).
    fn winograd(self, kernel: usize, side: usize) -> bool {
        side >= winograd::LEAST_SIDE && kernel == 3 && self == Window { stride: 1, before: 1, after: 1 }
    }
}

#[backend_extension(Autodiff, Flex)]
pub trait ConvReluBackend: Backend {
    /// A convolution over `window`, plus `bias`, then ReLU.
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self>;
}

impl ConvReluBackend for Flex {
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self> {
        // [channels, batch, height, width]
        match x.shape()[1] {
            1 => one_image(x, weight, bias, window),
            _ => images(x, weight, bias, window),
        }
    }
}

impl<C: CheckpointStrategy> ConvReluBackend for Autodiff<Flex, C> {
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        window: Window,
    ) -> FloatTensor<Self> {
        match ConvReluBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let output = <Flex as ConvReluBackend>::conv2d_relu(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), window);
                // The output's ReLU cut for the backward step: the same values the next layer
                // keeps as its input, so nothing more is kept.
                prep.finish((x_state, weight_state, window, output.clone()), output)
            }
            // Nothing to differentiate: the forward pass without autodiff.
            OpsKind::UnTracked(prep) => prep.finish(<Flex as ConvReluBackend>::conv2d_relu(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                window,
            )),
        }
    }
}

#[derive(Debug)]
struct ConvReluBackward;

impl Backward<Flex, 3> for ConvReluBackward {
    /// The input, the weight, the window, the output (after the ReLU).
    type State = (NodeId, NodeId, Window, FloatTensor<Flex>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, window, output) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(weight_state);

        let device = x.device();
        let shape = x.shape().dims::<4>();
        let weight_shape = weight.shape();
        let [out_channels, kernel] = [weight_shape[0], weight_shape[2]];
        // Channels first, the gradient is already the matrix [out, batch·positions]: through
        // the ReLU it is masked, and each row summed for the bias. The gradient as it came is
        // let go as soon as that is done.
        let (grad, bias_gradient) = {
            let (grad, output) = (grad.to_contiguous(), output.to_contiguous());
            through_relu(values(&grad), values(&output), out_channels)
        };
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(bias_gradient, [out_channels]), &device));
        }
        if let Some(node) = node_x {
            let gradient = input_gradient(values(&weight), &grad, shape, out_channels, kernel, window);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, shape), &device));
        }
        if let Some(node) = node_weight {
            let gradient = weight_gradient(values(&x), &grad, shape, out_channels, kernel, window);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, weight_shape), &device));
        }
    }
}

/// The input gradient of a convolution over `window`: `weightᵀ [in·k·k, out] · grad
/// [out, images·positions]` for each task's images, each row then added back to the input
/// positions it was copied from ([`add_shifted`]), a task of a few images a thread.
/// burn-flex's (a transposed convolution) makes the same product one image at a time: a few
/// dozen columns wide in the network's last blocks, where gemm is slow.
///
/// # Shapes
/// - weight: `[out, in, kernel, kernel]`
/// - grad: `[out, batch·out_height·out_width]`, through the ReLU ([`through_relu`])
/// - output: `[in, batch, height, width]`
fn input_gradient(weight: &[f32], grad: &[f32], [channels, batch, height, width]: [usize; 4], out_channels: usize, kernel: usize, window: Window) -> Vec<f32> {
    if window.winograd(kernel, height) {
        return winograd::input_gradient(grad, weight, [out_channels, batch, height, width], channels);
    }
    let (positions, rows) = sizes([height, width], channels, kernel, window);
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let mut gradient = zeros(channels * batch * height * width);
    for_each_task_runs(&mut gradient, [channels, batch, height * width], per_task, |images, runs| {
        let grad = Operand::Plain(&grad[images.start * positions..], batch * positions);
        let mut shifted = vec![0.0f32; rows * images.len() * positions];
        product(&mut shifted, Operand::Transposed(weight, rows), grad, [rows, out_channels, images.len() * positions], false);
        add_shifted(&mut shifted, runs, [images.len(), height, width], kernel, window);
    });
    gradient
}

/// The weight gradient of a convolution over `window`: `Σ over images and positions of
/// grad[out] · x[in] at the kernel offset`, the products `grad [out,
/// images·positions] · shifted copiesᵀ`, a task of a few images at a time. Each thread sums its
/// share of the tasks in order, and the shares are added in order: the same sum on every run.
///
/// # Shapes
/// - x: `[in, batch, height, width]`
/// - grad: `[out, batch·out_height·out_width]`, through the ReLU ([`through_relu`])
/// - output: `[out, in, kernel, kernel]`
fn weight_gradient(input: &[f32], grad: &[f32], [channels, batch, height, width]: [usize; 4], out_channels: usize, kernel: usize, window: Window) -> Vec<f32> {
    if window.winograd(kernel, height) {
        return winograd::weight_gradient(input, grad, [channels, batch, height, width], out_channels);
    }
    let (positions, rows) = sizes([height, width], channels, kernel, window);
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let tasks = batch.div_ceil(per_task);
    let shares = threads().min(tasks).max(1);
    let share = |share: usize| {
        let mut sum = vec![0.0f32; out_channels * rows];
        for task in share * tasks / shares..(share + 1) * tasks / shares {
            let images = task * per_task..((task + 1) * per_task).min(batch);
            let grad = Operand::Plain(&grad[images.start * positions..], batch * positions);
            let columns = images.len() * positions;
            let copies = shifted_copies(input, [channels, batch, height, width], images, kernel, window);
            let accumulate = task > share * tasks / shares;
            product(&mut sum, grad, Operand::Transposed(&copies, columns), [out_channels, columns, rows], accumulate);
        }
        sum
    };
    sum_of_shares(shares, out_channels * rows, share)
}

/// A convolution's positions in an output plane, and rows of shifted copies
/// (`in·kernel·kernel`).
fn sizes([height, width]: [usize; 2], channels: usize, kernel: usize, window: Window) -> (usize, usize) {
    (window.out(height, kernel) * window.out(width, kernel), channels * kernel * kernel)
}

/// How many of a batch's images one task takes: enough for [`PRODUCT_COLUMNS`] columns in its
/// product where the batch allows, as many tasks for each thread, and a task's scratch (`rows`
/// values a column) within its thread's share of [`COLUMNS_LIMIT`].
fn images_per_task(batch: usize, positions: usize, rows: usize) -> usize {
    let threads = threads();
    let least = PRODUCT_COLUMNS.div_ceil(positions.max(1));
    let most = (COLUMNS_LIMIT / threads / (rows * positions).max(1)).max(1);
    let mut tasks = threads * (batch / (least * threads)).max(1);
    while batch.div_ceil(tasks) > most {
        tasks += threads;
    }
    batch.div_ceil(tasks).max(1)
}

/// Adds each row of `shifted` (`[in·kernel·kernel, images·out_height·out_width]`, laid out as
/// [`shifted_copies`] makes them) back to the input positions its values were copied from:
/// into `runs`, each channel's planes of these images (`images·height·width` values a
/// channel). The transpose of [`shifted_copies`] (col2im).
///
/// A stride-1 'same' window ([`Shift`]) adds each row to its channel's run as one shifted
/// slice, after clearing the row's values that came from outside their plane: a few dozen long
/// additions a channel, where adding row by row made one short one per output row (3 to 24
/// values in this network).
fn add_shifted(shifted: &mut [f32], runs: Vec<&mut [f32]>, [images, height, width]: [usize; 3], kernel: usize, window: Window) {
    let (out_height, out_width) = (window.out(height, kernel), window.out(width, kernel));
    let (positions, stride) = (out_height * out_width, window.stride);
    if let Some(shifts) = Shift::all(window, [height, width], kernel) {
        // A channel's kernel·kernel rows, added in order to its run.
        let one_channel = |(rows, run): (&mut [f32], &mut [f32])| {
            for (row, shift) in rows.chunks_exact_mut(images * positions).zip(&shifts) {
                shift.clear_outside(row, [height, width]);
                let (from, into) = shift.overlap(row.len());
                run[into].iter_mut().zip(&row[from]).for_each(|(into, &value)| *into += value);
            }
        };
        let rows = shifted.chunks_exact_mut((kernel * kernel * images * positions).max(1));
        #[cfg(not(target_arch = "wasm32"))]
        if runs.len() * images * height * width >= PARALLEL_COPIES {
            use rayon::prelude::*;
            rows.zip(runs).collect::<Vec<_>>().into_par_iter().for_each(one_channel);
            return;
        }
        rows.zip(runs).for_each(one_channel);
        return;
    }
    // Plane (channel, image) of the input, from the channel's kernel·kernel rows.
    let one_plane = |(channel, image, plane): (usize, usize, &mut [f32])| {
        for (dy, dx) in (0..kernel).flat_map(|dy| (0..kernel).map(move |dx| (dy, dx))) {
            let row = (channel * kernel + dy) * kernel + dx;
            let from = &shifted[(row * images + image) * positions..(row * images + image + 1) * positions];
            let ((first_y, end_y), (first, end)) = (window.inside(height, dy, out_height), window.inside(width, dx, out_width));
            if first == end {
                continue;
            }
            for y in first_y..end_y {
                let (target, from) = ((y * stride + dy - window.before) * width, &from[y * out_width + first..y * out_width + end]);
                let at = target + first * stride + dx - window.before;
                match stride {
                    1 => plane[at..at + from.len()].iter_mut().zip(from).for_each(|(into, &value)| *into += value),
                    _ => plane[at..].iter_mut().step_by(stride).zip(from).for_each(|(into, &value)| *into += value),
                }
            }
        }
    };
    #[cfg(not(target_arch = "wasm32"))]
    if runs.len() * images * height * width >= PARALLEL_COPIES {
        use rayon::prelude::*;
        planes(runs, height * width).collect::<Vec<_>>().into_par_iter().for_each(one_plane);
        return;
    }
    planes(runs, height * width).for_each(one_plane);
}

/// For a stride-1 window whose output is as large as its input (the 3×3 and 5×5 'same'
/// convolutions), the copy of one kernel offset `(dy, dx)` is a run of planes as a whole,
/// shifted by `(dy − before)·width + dx − before` values, except where a value's source lies
/// outside its own plane (in the padding): there it is zero. So a row of shifted copies is one
/// long copy, and the few rows and columns that crossed a plane's edge cleared after it.
struct Shift {
    /// Where each value's source lies, from the value.
    by: isize,
    /// The rows and columns of a plane whose source lies inside it.
    rows: Range<usize>,
    columns: Range<usize>,
}

impl Shift {
    /// Each kernel offset's shift, `(dy, dx)` in row-major order, where `window` is stride 1
    /// and keeps the size of `[height, width]` planes; `None` otherwise.
    fn all(window: Window, [height, width]: [usize; 2], kernel: usize) -> Option<Vec<Shift>> {
        let same = window.stride == 1 && window.out(height, kernel) == height && window.out(width, kernel) == width;
        same.then(|| {
            (0..kernel)
                .flat_map(|dy| (0..kernel).map(move |dx| (dy, dx)))
                .map(|(dy, dx)| {
                    let ((first_y, end_y), (first_x, end_x)) = (window.inside(height, dy, height), window.inside(width, dx, width));
                    let offset = |at: usize| at as isize - window.before as isize;
                    Shift { by: offset(dy) * width as isize + offset(dx), rows: first_y..end_y, columns: first_x..end_x }
                })
                .collect()
        })
    }

    /// The values `from` of a run `len` long that have a source in it, and their sources
    /// `into`, `from` shifted by [`Self::by`].
    fn overlap(&self, len: usize) -> (Range<usize>, Range<usize>) {
        let len = len as isize;
        let (first, end) = ((-self.by).clamp(0, len), (len - self.by).clamp(0, len));
        match first < end {
            true => ((first as usize..end as usize), ((first + self.by) as usize..(end + self.by) as usize)),
            // No source inside the run (a kernel wider than the planes).
            false => (0..0, 0..0),
        }
    }

    /// Sets to zero the values of `run` (planes of `[height, width]` back to back) whose
    /// source lies outside their plane: whole rows, then single columns (one or two), value by
    /// value rather than as many short fills.
    fn clear_outside(&self, run: &mut [f32], [height, width]: [usize; 2]) {
        let (rows, columns) = (self.rows.clone(), self.columns.clone());
        for plane in run.chunks_exact_mut(height * width) {
            plane[..rows.start * width].fill(0.0);
            plane[rows.end * width..].fill(0.0);
            for x in (0..columns.start).chain(columns.end..width) {
                plane[rows.start * width..rows.end * width].iter_mut().skip(x).step_by(width).for_each(|value| *value = 0.0);
            }
        }
    }
}

/// Each channel's run of planes cut into `(channel, image, plane)`.
fn planes(runs: Vec<&mut [f32]>, plane: usize) -> impl Iterator<Item = (usize, usize, &mut [f32])> {
    runs.into_iter()
        .enumerate()
        .flat_map(move |(channel, run)| run.chunks_exact_mut(plane).enumerate().map(move |(image, plane)| (channel, image, plane)))
}

/// The shifted copies of the input's `images` for a `kernel`×`kernel` convolution over
/// `window` (im2col): row `(in, dy, dx)` holds, for every image and output position `(y, x)`,
/// the input at `(y · stride + dy − before, x · stride + dx − before)`, zero outside it. Made
/// directly, a run of a row at a time (rows of copies on every core natively): Burn's slices of
/// a padded copy, concatenated, went through a strided copy of every element. A stride-1 'same'
/// window's row is one copy of the channel's run ([`Shift`]), where copying output row by output
/// row made one short copy each.
///
/// # Shapes
/// - input: `[in, batch, height, width]`, contiguous
/// - output: `[in·kernel·kernel, images·out_height·out_width]`
fn shifted_copies(input: &[f32], [channels, batch, height, width]: [usize; 4], images: Range<usize>, kernel: usize, window: Window) -> Vec<f32> {
    let (out_height, out_width) = (window.out(height, kernel), window.out(width, kernel));
    let (positions, stride, plane) = (out_height * out_width, window.stride, height * width);
    let mut columns = vec![0.0f32; channels * kernel * kernel * images.len() * positions];
    let shifts = Shift::all(window, [height, width], kernel);
    let one_row = |(row, copies): (usize, &mut [f32])| {
        let (channel, dy, dx) = (row / (kernel * kernel), row / kernel % kernel, row % kernel);
        // The channel's planes of these images, one after the other.
        let planes = &input[(channel * batch + images.start) * plane..(channel * batch + images.end) * plane];
        if let Some(shifts) = &shifts {
            let shift = &shifts[row % (kernel * kernel)];
            let (into, from) = shift.overlap(copies.len());
            copies[into].copy_from_slice(&planes[from]);
            shift.clear_outside(copies, [height, width]);
            return;
        }
        let ((first_y, end_y), (first, end)) = (window.inside(height, dy, out_height), window.inside(width, dx, out_width));
        if first == end {
            return;
        }
        for (shifted, plane) in copies.chunks_exact_mut(positions).zip(planes.chunks_exact(plane)) {
            for y in first_y..end_y {
                let at = (y * stride + dy - window.before) * width + first * stride + dx - window.before;
                let into = &mut shifted[y * out_width + first..y * out_width + end];
                match stride {
                    1 => into.copy_from_slice(&plane[at..at + into.len()]),
                    _ => into.iter_mut().zip(plane[at..].iter().step_by(stride)).for_each(|(into, &value)| *into = value),
                }
            }
        }
    };
    // On every core natively, when there is enough to share (one image's small layers cost
    // more to split than to copy).
    #[cfg(not(target_arch = "wasm32"))]
    if columns.len() >= PARALLEL_COPIES {
        use rayon::prelude::*;
        columns.par_chunks_mut(images.len() * positions).enumerate().for_each(one_row);
        return columns;
    }
    columns.chunks_mut(images.len() * positions).enumerate().for_each(one_row);
    columns
}

/// A batch's convolution as matrix products, a task of a few images a thread: `weight
/// [out, in·k·k] · shifted copies [in·k·k, images·positions]`, then each row of the product
/// (plus the bias, through the ReLU) copied to its channel's run for these images. burn-flex's
/// convolution first reorders the whole input to channels-last on one core, and writes each
/// output value apart.
///
/// Never inlined: inlined into [`ConvReluBackend::conv2d_relu`] of the `web`
/// build (`opt-level = "z"`), it made the page's classification of one image, which does not
/// run it, 1.5 ms slower (25.3–25.8 against 23.5–24.0 ms; BENCHMARKS.md).
///
/// # Shapes
/// - x: `[in, batch, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[out, batch, out_height, out_width]`
#[inline(never)]
fn images(x: FloatTensor<Flex>, weight: FloatTensor<Flex>, bias: FloatTensor<Flex>, window: Window) -> FloatTensor<Flex> {
    let [channels, batch, height, width] = x.shape().dims();
    let [out_channels, _, kernel, _] = weight.shape().dims();
    let (out_height, out_width) = (window.out(height, kernel), window.out(width, kernel));
    let (positions, rows) = sizes([height, width], channels, kernel, window);
    let (x, weight, bias) = (x.to_contiguous(), weight.to_contiguous(), bias.to_contiguous());
    let (input, weight, bias) = (values(&x), values(&weight), values(&bias));
    if window.winograd(kernel, height) {
        let output = winograd::forward(input, weight, [channels, batch, height, width], out_channels, bias);
        return Flex::float_from_data(TensorData::new(output, [out_channels, batch, out_height, out_width]), &x.device());
    }
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let mut output = zeros(out_channels * batch * positions);
    for_each_task_runs(&mut output, [out_channels, batch, positions], per_task, |images, runs| {
        let columns = images.len() * positions;
        let copies = shifted_copies(input, [channels, batch, height, width], images, kernel, window);
        // [out, images·positions]: row `out` is output channel `out`'s run for these images.
        let mut products = vec![0.0f32; out_channels * columns];
        product(&mut products, Operand::Plain(weight, rows), Operand::Plain(&copies, columns), [out_channels, rows, columns], false);
        for ((run, from), &bias) in runs.into_iter().zip(products.chunks_exact(columns)).zip(bias) {
            for (into, &value) in run.iter_mut().zip(from) {
                *into = relu(value + bias);
            }
        }
    });
    Flex::float_from_data(TensorData::new(output, [out_channels, batch, out_height, out_width]), &x.device())
}

/// One image's convolution as one matrix product, `weight [out, in·k·k] · columns`,
/// then the bias and the ReLU ([`products_with_relu`], as a 1×1 convolution's): Burn's
/// convolution reorders the whole weight and the input on every call, which a single image
/// (classifying) does not amortise. The columns are its [`shifted_copies`].
///
/// # Shapes
/// - x: `[in, 1, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[out, 1, out_height, out_width]`
fn one_image(x: FloatTensor<Flex>, weight: FloatTensor<Flex>, bias: FloatTensor<Flex>, window: Window) -> FloatTensor<Flex> {
    let [channels, _, height, width] = x.shape().dims();
    let [out_channels, _, kernel, _] = weight.shape().dims();
    let (out_height, out_width) = (window.out(height, kernel), window.out(width, kernel));
    let (x, weight, bias) = (x.to_contiguous(), weight.to_contiguous(), bias.to_contiguous());
    let columns = shifted_copies(values(&x), [channels, 1, height, width], 0..1, kernel, window);
    let output = products_with_relu(&columns, values(&weight), values(&bias), [out_channels, channels * kernel * kernel, out_height * out_width]);
    Flex::float_from_data(TensorData::new(output, [out_channels, 1, out_height, out_width]), &x.device())
}

/// A convolution over `window` with a bias, then ReLU, of activations laid out channels
/// first, on the CPU device (with or without autodiff), whose gradients are
/// [`input_gradient`] and [`weight_gradient`].
/// With the ReLU in the op, its cut is made in the pass that places the outputs, and undone in
/// the one that lays out the gradient ([`through_relu`]): Burn's ReLU is a pass of its own each
/// way, on one core, and keeps the values before the cut for the backward step.
///
/// # Shapes
/// - x: `[in, batch, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[out, batch, (height + before + after − kernel) / stride + 1, (width + …) / stride
///   + 1]`
pub(crate) fn conv2d_relu(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, window: Window) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvReluBackend>::conv2d_relu(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        window,
    ))
}
