//! The CPU device's 1×1 convolutions and their ReLU (37 of the network's 57 convolutions),
//! forward and backward, on the input as the matrix `[in, images·positions]`, which is how
//! channels-first activations lie (the model's `ChannelsFirst`): `relu(weight [out, in] ·
//! columns + bias)`, its output `[out, images·positions]` channels first too.
//!
//! - Forward: the output's rows shared between the threads, each share one product on its
//!   thread, the bias and the ReLU applied to the share as it is made.
//! - Backward: the output gradient through the ReLU and the bias's gradient in one pass
//!   ([`through_relu`]); the input's gradient `weightᵀ · grad`, its rows shared between the
//!   threads; the weight's gradient `grad · columnsᵀ`, each thread's share of the columns
//!   summed, the shares added in order (the same sum on every run).
//!
//! Written with Burn's ops, it was one matrix product that gemm split between the threads (a
//! product per thread measured twice as fast, BENCHMARKS.md), then a bias added and a ReLU,
//! each a pass of its own on one core, and as many passes back.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

use super::{for_each_task, product, relu, sum_of_shares, threads, through_relu, values, zeros, Operand};

#[backend_extension(Autodiff, Flex)]
pub trait PointwiseConvBackend: Backend {
    /// `relu(weight [out, in] · columns [in, n] + bias [out])`, `[out, n]`.
    fn pointwise_relu(columns: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl PointwiseConvBackend for Flex {
    fn pointwise_relu(columns: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let [inputs, n] = columns.shape().dims();
        let outputs = weight.shape()[0];
        let (columns, weight, bias) = (columns.to_contiguous(), weight.to_contiguous(), bias.to_contiguous());
        let output = products_with_relu(values(&columns), values(&weight), values(&bias), [outputs, inputs, n]);
        Flex::float_from_data(TensorData::new(output, [outputs, n]), &columns.device())
    }
}

/// `relu(weight [out, in] · columns [in, n] + bias [out])`, the output's rows shared between
/// the threads, each share one product on its thread and then its bias and ReLU. Also one
/// image's 3×3 and 5×5 convolutions (classifying), on their shifted copies.
pub(super) fn products_with_relu(columns: &[f32], weight: &[f32], bias: &[f32], [outputs, inputs, n]: [usize; 3]) -> Vec<f32> {
    let mut output = zeros(outputs * n);
    let per_task = outputs.div_ceil(threads()).max(1);
    for_each_task(&mut output, per_task * n, |task, rows| {
        let first = task * per_task;
        let count = rows.len() / n.max(1);
        product(rows, Operand::Plain(&weight[first * inputs..], inputs), Operand::Plain(columns, n), [count, inputs, n], false);
        for (row, &bias) in rows.chunks_exact_mut(n.max(1)).zip(&bias[first..first + count]) {
            row.iter_mut().for_each(|value| *value = relu(*value + bias));
        }
    });
    output
}

impl<C: CheckpointStrategy> PointwiseConvBackend for Autodiff<Flex, C> {
    fn pointwise_relu(columns: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match PointwiseRelu
            .prepare::<C>([columns.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let columns_state = prep.checkpoint(&columns);
                let weight_state = prep.checkpoint(&weight);
                let output = <Flex as PointwiseConvBackend>::pointwise_relu(columns.into_primitive(), weight.into_primitive(), bias.into_primitive());
                prep.finish((columns_state, weight_state, output.clone()), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as PointwiseConvBackend>::pointwise_relu(columns.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
        }
    }
}

#[derive(Debug)]
struct PointwiseRelu;

impl Backward<Flex, 3> for PointwiseRelu {
    /// The columns, the weight, the output (after the ReLU).
    type State = (NodeId, NodeId, FloatTensor<Flex>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_columns, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (columns_state, weight_state, output) = ops.state;
        let columns = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(columns_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<Flex>>(weight_state);
        let device = columns.device();
        let [inputs, n] = columns.shape().dims();
        let outputs = weight.shape()[0];
        // The gradient as it came is let go as soon as it is through the ReLU.
        let (grad, bias_gradient) = {
            let (grad, output) = (grad.to_contiguous(), output.to_contiguous());
            through_relu(values(&grad), values(&output), outputs)
        };
        let (columns, weight) = (columns.to_contiguous(), weight.to_contiguous());
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(bias_gradient, [outputs]), &device));
        }
        if let Some(node) = node_columns {
            let gradient = columns_gradient(values(&weight), &grad, [outputs, inputs, n]);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, [inputs, n]), &device));
        }
        if let Some(node) = node_weight {
            let gradient = weight_gradient(values(&columns), &grad, [outputs, inputs, n]);
            grads.register::<Flex>(node.id, Flex::float_from_data(TensorData::new(gradient, [outputs, inputs]), &device));
        }
    }
}

/// `weightᵀ [in, out] · grad [out, n]`, the rows shared between the threads.
fn columns_gradient(weight: &[f32], grad: &[f32], [outputs, inputs, n]: [usize; 3]) -> Vec<f32> {
    let mut gradient = zeros(inputs * n);
    let per_task = inputs.div_ceil(threads()).max(1);
    for_each_task(&mut gradient, per_task * n, |task, rows| {
        let count = rows.len() / n.max(1);
        product(rows, Operand::Transposed(&weight[task * per_task..], inputs), Operand::Plain(grad, n), [count, outputs, n], false);
    });
    gradient
}

/// `grad [out, n] · columnsᵀ [n, in]`: each thread sums its share of the columns, and the shares
/// are added in order.
fn weight_gradient(columns: &[f32], grad: &[f32], [outputs, inputs, n]: [usize; 3]) -> Vec<f32> {
    let shares = threads().min(n).max(1);
    let share = |share: usize| {
        let (first, end) = (share * n / shares, (share + 1) * n / shares);
        let mut sum = vec![0.0f32; outputs * inputs];
        product(&mut sum, Operand::Plain(&grad[first..], n), Operand::Transposed(&columns[first..], n), [outputs, end - first, inputs], false);
        sum
    };
    sum_of_shares(shares, outputs * inputs, share)
}

/// `relu(weight [out, in] · columns [in, n] + bias [out])` on the CPU device (with or without
/// autodiff).
pub(crate) fn pointwise_relu(columns: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as PointwiseConvBackend>::pointwise_relu(
        columns.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}
