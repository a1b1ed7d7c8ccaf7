//! The CPU device's 3×3 convolutions, with a weight gradient that is one matrix product.
//!
//! Burn computes a convolution's weight gradient as another convolution, with the output
//! gradient as its kernel. On the CPU backend (burn-flex) that is one matrix product per input
//! channel, each packing the whole output gradient again, with nine output columns (3×3): the
//! weight gradients were the largest part of a training step (BENCHMARKS.md). Here the same
//! gradient is the im2col form, `grad · columnsᵀ`: one product of the output gradient
//! `[out, batch·height·width]` with the input's shifted copies `[in·k·k, batch·height·width]`,
//! made for a few images at a time so the copies stay small.
//!
//! The forward pass is the same im2col form (`weight · columns`, a few images at a time), where
//! burn-flex's convolution reorders the whole input to channels-last on one core first.
//!
//! It is a backend extension (Burn's `#[backend_extension]`) with its own backward step; the
//! input's gradient is Burn's own. Only the CPU backend has it: WebGPU keeps `Conv2d`. It works
//! for any odd kernel; the model uses it for the 3×3 ones, where it measured faster
//! (`ConvRelu`), and for one image's 5×5 ones.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Shape, Slice, Tensor, TensorData};

use super::values;

/// How many floats the shifted copies of one batch chunk may take (32 MB).
const COLUMNS_LIMIT: usize = 8 << 20;

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

fn options(padding: usize) -> ConvOptions<2> {
    ConvOptions::new([1, 1], [padding, padding], [1, 1], 1)
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

        if let Some(node) = node_x {
            let grad = Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options(padding));
            grads.register::<Flex>(node.id, grad);
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, Flex::conv2d_bias_backward(x.clone(), bias, grad.clone()));
        }
        if let Some(node) = node_weight {
            let kernel = weight.shape()[2];
            grads.register::<Flex>(node.id, weight_gradient(x, grad, kernel, padding));
        }
    }
}

/// The weight gradient of a stride-1 convolution with a `kernel`×`kernel` kernel and `padding`:
/// `Σ over images and positions of grad[out] · x[in] shifted by the kernel offset`, as matrix
/// products of the output gradient with the input's [`shifted_copies`], a few images at a time.
///
/// # Shapes
/// - x: `[batch, in, height, width]`
/// - grad: `[batch, out, out_height, out_width]`
/// - output: `[out, in, kernel, kernel]`
pub(crate) fn weight_gradient(x: FloatTensor<Flex>, grad: FloatTensor<Flex>, kernel: usize, padding: usize) -> FloatTensor<Flex> {
    let [batch, channels, height, width] = x.shape().dims();
    let [_, out_channels, out_height, out_width] = grad.shape().dims();
    let per_image = channels * kernel * kernel * out_height * out_width;
    let chunk = (COLUMNS_LIMIT / per_image).clamp(1, batch.max(1));
    let x = x.to_contiguous();
    let input = values(&x);
    let device = x.device();
    let mut total: Option<FloatTensor<Flex>> = None;
    for first in (0..batch).step_by(chunk) {
        let images = chunk.min(batch - first);
        let image = channels * height * width;
        let copies = shifted_copies(&input[first * image..(first + images) * image], [images, channels, height, width], kernel, padding);
        let positions = images * out_height * out_width;
        let columns = Flex::float_from_data(TensorData::new(copies, [channels * kernel * kernel, positions]), &device);
        let grad = Flex::float_slice(grad.clone(), &[Slice::from(first..first + images)]);
        let grad = Flex::float_reshape(Flex::float_swap_dims(grad, 0, 1), Shape::new([out_channels, positions]));
        let part = Flex::float_matmul(grad, Flex::float_transpose(columns));
        total = Some(match total {
            Some(total) => Flex::float_add(total, part),
            None => part,
        });
    }
    let shape = Shape::new([out_channels, channels, kernel, kernel]);
    match total {
        Some(total) => Flex::float_reshape(total, shape),
        // No images: no gradient.
        None => Flex::float_zeros(shape, &device, x.dtype().into()),
    }
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

/// A batch's stride-1 convolution as matrix products, a few images at a time: `weight [out,
/// in·k·k] · shifted copies [in·k·k, images·positions]`, then each image's outputs (plus the
/// bias) copied to their place. burn-flex's convolution first reorders the whole input to
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
    let (image, positions, rows) = (channels * height * width, out_height * out_width, channels * kernel * kernel);
    let x = x.to_contiguous();
    let input = values(&x);
    let bias = bias.to_contiguous();
    let bias = values(&bias);
    let device = x.device();
    let weight = Flex::float_reshape(weight, Shape::new([out_channels, rows]));
    let chunk = (COLUMNS_LIMIT / (rows * positions).max(1)).clamp(1, batch.max(1));
    let mut output = vec![0.0f32; batch * out_channels * positions];
    for (first, outputs) in (0..batch).step_by(chunk).zip(output.chunks_mut(chunk * out_channels * positions)) {
        let images = chunk.min(batch - first);
        let copies = shifted_copies(&input[first * image..(first + images) * image], [images, channels, height, width], kernel, padding);
        let columns = Flex::float_from_data(TensorData::new(copies, [rows, images * positions]), &device);
        // [out, images·positions]
        let product = Flex::float_matmul(weight.clone(), columns).to_contiguous();
        let product = values(&product);
        // Run (image, out) of the output is run (out, image) of the product.
        let place = |(run, into): (usize, &mut [f32])| {
            let (image, out) = (run / out_channels, run % out_channels);
            let from = &product[(out * images + image) * positions..(out * images + image + 1) * positions];
            for (into, &value) in into.iter_mut().zip(from) {
                *into = value + bias[out];
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            outputs.par_chunks_mut(positions).enumerate().for_each(place);
        }
        #[cfg(target_arch = "wasm32")]
        outputs.chunks_mut(positions).enumerate().for_each(place);
    }
    Flex::float_from_data(TensorData::new(output, [batch, out_channels, out_height, out_width]), &device)
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
