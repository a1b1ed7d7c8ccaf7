//! The CPU device's 3×3 convolutions, forward and backward, as matrix products of the
//! input's shifted copies (im2col).
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
//! It is a backend extension (Burn's `#[backend_extension]`) with its own backward step. Only
//! the CPU backend has it: WebGPU keeps `Conv2d`. It works for any odd kernel; the model uses it
//! for the 3×3 ones, where it measured faster (`ConvRelu`), and for one image's 5×5 ones.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Shape, Tensor, TensorData};

use super::{product, values, Operand};

/// How many floats the scratch of all tasks at once may take (8 MB): shifted copies and products.
const COLUMNS_LIMIT: usize = 2 << 20;

/// How many columns a product of one task has at least, where the batch allows: gemm is slow
/// for a few dozen.
const PRODUCT_COLUMNS: usize = 1024;

/// How many floats of shifted copies are made on every core natively, at least.
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_COPIES: usize = 1 << 18;

#[backend_extension(Autodiff, Flex)]
pub trait Stride1ConvBackend: Backend {
    /// A stride-1 convolution with `padding` zeros on every side, plus `bias`.
    fn conv2d_stride1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: usize,
    ) -> FloatTensor<Self>;
}

impl Stride1ConvBackend for Flex {
    fn conv2d_stride1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: usize,
    ) -> FloatTensor<Self> {
        match x.shape()[0] {
            1 => one_image(x, weight, bias, padding),
            _ => images(x, weight, bias, padding),
        }
    }
}

impl<C: CheckpointStrategy> Stride1ConvBackend for Autodiff<Flex, C> {
    fn conv2d_stride1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: usize,
    ) -> FloatTensor<Self> {
        match Stride1Conv
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let bias_state = prep.checkpoint(&bias);
                let output = <Flex as Stride1ConvBackend>::conv2d_stride1(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), padding);
                prep.finish((x_state, weight_state, bias_state, padding), output)
            }
            // Nothing to differentiate: the forward pass without autodiff.
            OpsKind::UnTracked(prep) => prep.finish(<Flex as Stride1ConvBackend>::conv2d_stride1(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                padding,
            )),
        }
    }
}

#[derive(Debug)]
struct Stride1Conv;

impl Backward<Flex, 3> for Stride1Conv {
    /// The input, the weight, the bias, the padding.
    type State = (NodeId, NodeId, NodeId, usize);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, bias_state, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(bias_state);

        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, Flex::conv2d_bias_backward(x.clone(), bias, grad.clone()));
        }
        let device = x.device();
        let shape = x.shape().dims::<4>();
        let weight_shape = weight.shape();
        let (x, weight, grad) = (x.to_contiguous(), weight.to_contiguous(), grad.to_contiguous());
        if let Some(node) = node_x {
            let gradient = input_gradient(values(&weight), values(&grad), shape, weight_shape[0], weight_shape[2], padding);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, shape), &device));
        }
        if let Some(node) = node_weight {
            let gradient = weight_gradient(values(&x), values(&grad), shape, weight_shape[0], weight_shape[2], padding);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, weight_shape), &device));
        }
    }
}

/// The input gradient of a stride-1 convolution with `padding`: `weightᵀ [in·k·k, out] · grad
/// [out, images·positions]`, each row then added back to the input positions it was copied from
/// ([`add_shifted`]), a task of a few images a thread. burn-flex's (a transposed convolution)
/// makes the same product one image at a time: a few dozen columns wide in the network's last
/// blocks, where gemm is slow.
///
/// # Shapes
/// - weight: `[out, in, kernel, kernel]`, grad: `[batch, out, out_height, out_width]`
/// - output: `[batch, in, height, width]`
fn input_gradient(weight: &[f32], grad: &[f32], [batch, channels, height, width]: [usize; 4], out_channels: usize, kernel: usize, padding: usize) -> Vec<f32> {
    let (image, positions, rows) = sizes([channels, height, width], kernel, padding);
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let mut gradient = vec![0.0f32; batch * image];
    for_each_task(&mut gradient, per_task * image, |task, into| {
        let (first, images) = (task * per_task, into.len() / image);
        let grad = as_matrix(&grad[first * out_channels * positions..(first + images) * out_channels * positions], images, positions);
        let mut shifted = vec![0.0f32; rows * images * positions];
        product(&mut shifted, Operand::Transposed(weight), Operand::Plain(&grad), [rows, out_channels, images * positions], false);
        add_shifted(&shifted, into, [images, channels, height, width], kernel, padding);
    });
    gradient
}

/// The weight gradient of a stride-1 convolution with `padding`: `Σ over images and positions
/// of grad[out] · x[in] shifted by the kernel offset`, the products `grad [out,
/// images·positions] · shifted copiesᵀ`, a task of a few images at a time. Each thread sums its
/// share of the tasks in order, and the shares are added in order: the same sum on every run.
///
/// # Shapes
/// - x: `[batch, in, height, width]`, grad: `[batch, out, out_height, out_width]`
/// - output: `[out, in, kernel, kernel]`
fn weight_gradient(input: &[f32], grad: &[f32], [batch, channels, height, width]: [usize; 4], out_channels: usize, kernel: usize, padding: usize) -> Vec<f32> {
    let (image, positions, rows) = sizes([channels, height, width], kernel, padding);
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let tasks = batch.div_ceil(per_task);
    let shares = threads().min(tasks).max(1);
    let share = |share: usize| {
        let mut sum = vec![0.0f32; out_channels * rows];
        for task in share * tasks / shares..(share + 1) * tasks / shares {
            let (first, images) = (task * per_task, per_task.min(batch - task * per_task));
            let grad = as_matrix(&grad[first * out_channels * positions..(first + images) * out_channels * positions], images, positions);
            let copies = shifted_copies(&input[first * image..(first + images) * image], [images, channels, height, width], kernel, padding);
            let accumulate = task > share * tasks / shares;
            product(&mut sum, Operand::Plain(&grad), Operand::Transposed(&copies), [out_channels, images * positions, rows], accumulate);
        }
        sum
    };
    #[cfg(not(target_arch = "wasm32"))]
    let sums: Vec<Vec<f32>> = {
        use rayon::prelude::*;
        (0..shares).into_par_iter().map(share).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let sums: Vec<Vec<f32>> = (0..shares).map(share).collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0f32; out_channels * rows]);
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(total, &value)| *total += value);
    }
    total
}

/// A stride-1 convolution's values an input image, positions an output plane, and rows of
/// shifted copies (`in·kernel·kernel`).
fn sizes([channels, height, width]: [usize; 3], kernel: usize, padding: usize) -> (usize, usize, usize) {
    let (out_height, out_width) = (height + 2 * padding + 1 - kernel, width + 2 * padding + 1 - kernel);
    (channels * height * width, out_height * out_width, channels * kernel * kernel)
}

/// How many threads share the tasks: rayon's natively, one in the wasm.
fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads().max(1);
    #[cfg(target_arch = "wasm32")]
    1
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

/// Runs `task(index, part)` for each part of `into`, `part` values long (the last may be
/// shorter): on every core natively.
fn for_each_task(into: &mut [f32], part: usize, task: impl Fn(usize, &mut [f32]) + Send + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        into.par_chunks_mut(part.max(1)).enumerate().for_each(|(index, part)| task(index, part));
    }
    #[cfg(target_arch = "wasm32")]
    into.chunks_mut(part.max(1)).enumerate().for_each(|(index, part)| task(index, part));
}

/// `[images, channels, positions]` values as the matrix `[channels, images·positions]`: run
/// `(channel, image)` of the matrix is run `(image, channel)` of the values.
fn as_matrix(values: &[f32], images: usize, positions: usize) -> Vec<f32> {
    let channels = values.len() / (images * positions).max(1);
    let mut matrix = vec![0.0f32; values.len()];
    let one_run = |(run, into): (usize, &mut [f32])| {
        let (channel, image) = (run / images, run % images);
        into.copy_from_slice(&values[(image * channels + channel) * positions..(image * channels + channel + 1) * positions]);
    };
    #[cfg(not(target_arch = "wasm32"))]
    if matrix.len() >= PARALLEL_COPIES {
        use rayon::prelude::*;
        matrix.par_chunks_mut(positions).enumerate().for_each(one_run);
        return matrix;
    }
    matrix.chunks_mut(positions).enumerate().for_each(one_run);
    matrix
}

/// Adds each row of `shifted` (`[in·kernel·kernel, images·out_height·out_width]`, laid out as
/// [`shifted_copies`] makes them) back to the input positions its values were copied from, into
/// `input` (`[images, in, height, width]`): the transpose of [`shifted_copies`] (col2im).
fn add_shifted(shifted: &[f32], input: &mut [f32], [images, channels, height, width]: [usize; 4], kernel: usize, padding: usize) {
    let (out_height, out_width) = (height + 2 * padding + 1 - kernel, width + 2 * padding + 1 - kernel);
    let positions = out_height * out_width;
    // Plane (image, channel) of the input, from the channel's kernel·kernel rows.
    let one_plane = |(plane_index, plane): (usize, &mut [f32])| {
        let (image, channel) = (plane_index / channels, plane_index % channels);
        for (dy, dx) in (0..kernel).flat_map(|dy| (0..kernel).map(move |dx| (dy, dx))) {
            let row = (channel * kernel + dy) * kernel + dx;
            let from = &shifted[(row * images + image) * positions..(row * images + image + 1) * positions];
            // Output columns whose input column x + dx − padding lies inside the input.
            let (first, end) = (padding.saturating_sub(dx), (width + padding).saturating_sub(dx).min(out_width));
            if first >= end {
                continue;
            }
            for (y, from) in from.chunks_exact(out_width).enumerate() {
                let Some(target) = (y + dy).checked_sub(padding).filter(|&target| target < height) else {
                    continue;
                };
                let into = &mut plane[target * width + first + dx - padding..target * width + end + dx - padding];
                into.iter_mut().zip(&from[first..end]).for_each(|(into, &value)| *into += value);
            }
        }
    };
    #[cfg(not(target_arch = "wasm32"))]
    if input.len() >= PARALLEL_COPIES {
        use rayon::prelude::*;
        input.par_chunks_mut(height * width).enumerate().for_each(one_plane);
        return;
    }
    input.chunks_mut(height * width).enumerate().for_each(one_plane);
}

/// The input's shifted copies for a stride-1 `kernel`×`kernel` convolution with `padding`
/// (im2col): row `(in, dy, dx)` holds, for every image and output position, the input at that
/// position shifted by `(dy − padding, dx − padding)`, zero outside it. Made directly, a run of
/// a row at a time (rows of copies on every core natively): Burn's slices of a padded copy,
/// concatenated, went through a strided copy of every element.
///
/// # Shapes
/// - input: `[images, in, height, width]`, contiguous
/// - output: `[in·kernel·kernel, images·out_height·out_width]`
fn shifted_copies(input: &[f32], [images, channels, height, width]: [usize; 4], kernel: usize, padding: usize) -> Vec<f32> {
    let (out_height, out_width) = (height + 2 * padding + 1 - kernel, width + 2 * padding + 1 - kernel);
    let positions = out_height * out_width;
    let mut columns = vec![0.0f32; channels * kernel * kernel * images * positions];
    let one_row = |(row, copies): (usize, &mut [f32])| {
        let (channel, dy, dx) = (row / (kernel * kernel), row / kernel % kernel, row % kernel);
        // Output columns whose input column x + dx − padding lies inside the input.
        let (first, end) = (padding.saturating_sub(dx), (width + padding).saturating_sub(dx).min(out_width));
        if first >= end {
            return;
        }
        for (image, shifted) in copies.chunks_exact_mut(positions).enumerate() {
            let plane = &input[(image * channels + channel) * height * width..(image * channels + channel + 1) * height * width];
            for (y, shifted) in shifted.chunks_exact_mut(out_width).enumerate() {
                let Some(source) = (y + dy).checked_sub(padding).filter(|&source| source < height) else {
                    continue;
                };
                let source = &plane[source * width + first + dx - padding..source * width + end + dx - padding];
                shifted[first..end].copy_from_slice(source);
            }
        }
    };
    // On every core natively, when there is enough to share (one image's small layers cost
    // more to split than to copy).
    #[cfg(not(target_arch = "wasm32"))]
    if columns.len() >= PARALLEL_COPIES {
        use rayon::prelude::*;
        columns.par_chunks_mut(images * positions).enumerate().for_each(one_row);
        return columns;
    }
    columns.chunks_mut(images * positions).enumerate().for_each(one_row);
    columns
}

/// A batch's stride-1 convolution as matrix products, a task of a few images a thread: `weight
/// [out, in·k·k] · shifted copies [in·k·k, images·positions]`, then each image's outputs (plus
/// the bias) copied to their place. burn-flex's convolution first reorders the whole input to
/// channels-last on one core, and writes each output value apart.
///
/// Never inlined: inlined into [`Stride1ConvBackend::conv2d_stride1`] of the `web` build
/// (`opt-level = "z"`), it made the page's classification of one image, which does not run
/// it, 1.5 ms slower (25.3–25.8 against 23.5–24.0 ms; BENCHMARKS.md).
///
/// # Shapes
/// - x: `[batch, in, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[batch, out, out_height, out_width]`
#[inline(never)]
fn images(x: FloatTensor<Flex>, weight: FloatTensor<Flex>, bias: FloatTensor<Flex>, padding: usize) -> FloatTensor<Flex> {
    let [batch, channels, height, width] = x.shape().dims();
    let [out_channels, _, kernel, _] = weight.shape().dims();
    let (out_height, out_width) = (height + 2 * padding + 1 - kernel, width + 2 * padding + 1 - kernel);
    let (image, positions, rows) = sizes([channels, height, width], kernel, padding);
    let (x, weight, bias) = (x.to_contiguous(), weight.to_contiguous(), bias.to_contiguous());
    let (input, weight, bias) = (values(&x), values(&weight), values(&bias));
    let per_task = images_per_task(batch, positions, rows + out_channels);
    let mut output = vec![0.0f32; batch * out_channels * positions];
    for_each_task(&mut output, per_task * out_channels * positions, |task, outputs| {
        let (first, images) = (task * per_task, outputs.len() / (out_channels * positions));
        let copies = shifted_copies(&input[first * image..(first + images) * image], [images, channels, height, width], kernel, padding);
        // [out, images·positions]
        let mut products = vec![0.0f32; out_channels * images * positions];
        product(&mut products, Operand::Plain(weight), Operand::Plain(&copies), [out_channels, rows, images * positions], false);
        // Run (image, out) of the output is run (out, image) of the products.
        for (run, into) in outputs.chunks_mut(positions).enumerate() {
            let (image, out) = (run / out_channels, run % out_channels);
            let from = &products[(out * images + image) * positions..(out * images + image + 1) * positions];
            for (into, &value) in into.iter_mut().zip(from) {
                *into = value + bias[out];
            }
        }
    });
    Flex::float_from_data(TensorData::new(output, [batch, out_channels, out_height, out_width]), &x.device())
}

/// One image's stride-1 convolution as one matrix product, `weight [out, in·k·k] · columns`:
/// Burn's convolution reorders the whole weight and the input on every call, which a single
/// image (classifying) does not amortise. The columns are its [`shifted_copies`].
///
/// # Shapes
/// - x: `[1, in, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[1, out, out_height, out_width]`
fn one_image(x: FloatTensor<Flex>, weight: FloatTensor<Flex>, bias: FloatTensor<Flex>, padding: usize) -> FloatTensor<Flex> {
    let [_, channels, height, width] = x.shape().dims();
    let [out_channels, _, kernel, _] = weight.shape().dims();
    let (out_height, out_width) = (height + 2 * padding + 1 - kernel, width + 2 * padding + 1 - kernel);
    let x = x.to_contiguous();
    let input = values(&x);
    let columns = shifted_copies(input, [1, channels, height, width], kernel, padding);
    let positions = out_height * out_width;
    let device = x.device();
    let columns = Flex::float_from_data(TensorData::new(columns, [channels * kernel * kernel, positions]), &device);
    let weight = Flex::float_reshape(weight, Shape::new([out_channels, channels * kernel * kernel]));
    let output = Flex::float_matmul(weight, columns);
    let output = Flex::float_add(output, Flex::float_reshape(bias, Shape::new([out_channels, 1])));
    Flex::float_reshape(output, Shape::new([1, out_channels, out_height, out_width]))
}

/// A stride-1 convolution with `padding` on every side and a bias, on the CPU device (with or
/// without autodiff), whose weight gradient is [`weight_gradient`].
///
/// # Shapes
/// - x: `[batch, in, height, width]`, weight: `[out, in, kernel, kernel]`, bias: `[out]`
/// - output: `[batch, out, height + 2·padding − kernel + 1, width + 2·padding − kernel + 1]`
pub(crate) fn conv2d_stride1(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, padding: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Stride1ConvBackend>::conv2d_stride1(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        padding,
    ))
}
