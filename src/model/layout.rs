//! A batch's activations between layers, in the layout of the device that runs them.
//!
//! - **Images first**, `[batch, channels, height, width]`: Burn's layout, what the model takes
//!   and gives, and what WebGPU runs with Burn's `Conv2d` and `MaxPool2d`.
//! - **Channels first**, `[channels, batch, height, width]` ([`ChannelsFirst`]): what the CPU
//!   device runs with the model's own ops (`cpu_ops`). There a 1×1 convolution is one matrix
//!   product of the input as it lies (`[in, batch·height·width]`), a k×k one's shifted copies
//!   and outputs are whole runs of a channel, and a concatenation on channels is one copy of
//!   each branch. Images first, each 1×1 convolution's input and output was reordered, forward
//!   and backward (BENCHMARKS.md).
//!
//! The blocks are written once, over [`Activations`]; the model turns its input into the
//! device's layout once, and its features back at the end.

use burn::nn::pool::{AdaptiveAvgPool2d, MaxPool2d};
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

use super::blocks::{max_pool, on_cpu, ConvRelu};

/// What a block does with a batch's activations, in either layout.
pub(crate) trait Activations: Clone + Sized {
    /// A convolution and its ReLU.
    fn conv(self, conv: &ConvRelu) -> Self;
    /// A max-pool (each plane on its own: the same in both layouts).
    fn pool(self, pool: &MaxPool2d) -> Self;
    /// Branches side by side on channels (an Inception block's output).
    fn cat(branches: Vec<Self>) -> Self;
    /// `[batch, channels, height, width]`, whatever the layout.
    fn dims(&self) -> [usize; 4];
    /// The activations as Burn lays them out, `[batch, channels, height, width]`.
    fn into_images_first(self) -> Tensor<4>;
    /// Each plane's average: the features `[batch, channels]` (the end of b5).
    fn features(self, pool: &AdaptiveAvgPool2d) -> Tensor<2>;
}

/// Burn's layout: Burn's layers (WebGPU).
impl Activations for Tensor<4> {
    fn conv(self, conv: &ConvRelu) -> Self {
        relu(conv.conv.forward(self))
    }

    fn pool(self, pool: &MaxPool2d) -> Self {
        pool.forward(self)
    }

    fn cat(branches: Vec<Self>) -> Self {
        Tensor::cat(branches, 1)
    }

    fn dims(&self) -> [usize; 4] {
        Tensor::dims(self)
    }

    fn into_images_first(self) -> Tensor<4> {
        self
    }

    fn features(self, pool: &AdaptiveAvgPool2d) -> Tensor<2> {
        pool.forward(self).flatten(1, 3)
    }
}

/// A batch's activations laid out `[channels, batch, height, width]`: the CPU device's layout
/// (the module's text says why). For one image, or one channel, it is the same memory as
/// Burn's layout.
#[derive(Clone, Debug)]
pub(crate) struct ChannelsFirst(pub(crate) Tensor<4>);

impl ChannelsFirst {
    /// `[batch, channels, height, width]` laid out channels first: one copy (none for one image
    /// or one channel), and one for its gradient.
    pub(crate) fn of(images_first: Tensor<4>) -> Self {
        let [batch, channels, height, width] = images_first.dims();
        match batch == 1 || channels == 1 {
            true => ChannelsFirst(images_first.reshape([channels, batch, height, width])),
            // A reshape of the swapped view is a contiguous copy: every op after it reads it as
            // it lies.
            false => ChannelsFirst(images_first.swap_dims(0, 1).reshape([channels, batch * height, width]).reshape([channels, batch, height, width])),
        }
    }
}

impl Activations for ChannelsFirst {
    fn conv(self, conv: &ConvRelu) -> Self {
        conv.forward_channels_first(self)
    }

    fn pool(self, pool: &MaxPool2d) -> Self {
        ChannelsFirst(max_pool(pool, self.0))
    }

    fn cat(branches: Vec<Self>) -> Self {
        ChannelsFirst(Tensor::cat(branches.into_iter().map(|branch| branch.0).collect(), 0))
    }

    fn dims(&self) -> [usize; 4] {
        let [channels, batch, height, width] = self.0.dims();
        [batch, channels, height, width]
    }

    fn into_images_first(self) -> Tensor<4> {
        let [channels, batch, height, width] = self.0.dims();
        match batch == 1 || channels == 1 {
            true => self.0.reshape([batch, channels, height, width]),
            false => self.0.swap_dims(0, 1),
        }
    }

    fn features(self, pool: &AdaptiveAvgPool2d) -> Tensor<2> {
        // [channels, batch, 1, 1] → [batch, channels]
        let [channels, batch, _, _] = self.0.dims();
        pool.forward(self.0).reshape([channels, batch]).swap_dims(0, 1)
    }
}

/// `forward` run in the layout of `input`'s device, from and back to Burn's: channels first on
/// the CPU device, images first elsewhere. For the blocks' own `forward`, which take and give
/// Burn's layout.
pub(crate) fn in_device_layout(
    input: Tensor<4>,
    channels_first: impl FnOnce(ChannelsFirst) -> ChannelsFirst,
    images_first: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Tensor<4> {
    match on_cpu(&input.device()) {
        true => channels_first(ChannelsFirst::of(input)).into_images_first(),
        false => images_first(input),
    }
}
