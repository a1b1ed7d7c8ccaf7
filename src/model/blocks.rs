//! The plain layers: a ReLU convolution, a 'same' max-pool, and the conv-then-pool blocks b1, b2.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::cpu_ops::conv::{conv2d_relu, Window};
use super::cpu_ops::same_padding;
use super::layout::{in_device_layout, Activations, ChannelsFirst};
use super::cpu_ops::pointwise::pointwise_relu;
use super::cpu_ops::pool::max_pool_3x3_same;

/// One layer of a block or branch, as the architecture view names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    /// A convolution with 'same' padding followed by ReLU.
    Conv { kernel: usize, stride: usize, channels: usize },
    /// A max-pool with 'same' padding.
    MaxPool { kernel: usize, stride: usize },
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Layer::Conv { kernel, stride: 1, channels } => write!(f, "{kernel}×{kernel} conv {channels}, ReLU"),
            Layer::Conv { kernel, stride, channels } => {
                write!(f, "{kernel}×{kernel} conv {channels} /{stride}, ReLU")
            }
            Layer::MaxPool { kernel, stride } => write!(f, "{kernel}×{kernel} max-pool /{stride}"),
        }
    }
}

/// A convolution with TensorFlow 'same' padding, followed by ReLU (Keras `activation='relu'`).
#[derive(Config, Debug)]
pub struct ConvReluConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    #[config(default = 1)]
    pub stride: usize,
}

#[derive(Module, Debug)]
pub struct ConvRelu {
    pub conv: Conv2d,
}

impl ConvReluConfig {
    /// Glorot-uniform weights and zero biases, as Keras' `Conv2D` defaults.
    pub fn init(&self, device: &Device) -> ConvRelu {
        let mut conv = Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Same)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        conv.bias = Some(Param::from_tensor(Tensor::zeros([self.out_channels], device)));
        ConvRelu { conv }
    }
}

impl ConvRelu {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, ceil(height / stride), ceil(width / stride)]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        in_device_layout(input, |x| x.conv(self), |x| x.conv(self))
    }

    /// The CPU device's form ([`ChannelsFirst`]): a 1×1 convolution is `relu(weight [out, in]
    /// · input [in, batch·height·width] + bias)` as one op ([`pointwise_relu`]); the 3×3, 5×5
    /// and b1's 7×7 stride-2 ones go through [`conv2d_relu`] (see [`cpu_window`]). Both are
    /// much faster to train than burn-flex's `Conv2d`, which computes a 1×1 kernel's weight
    /// gradient as one matrix-vector product per input channel, and others' partly on one
    /// core, with Burn's ReLU apart (BENCHMARKS.md). Any other convolution (none in the model)
    /// goes through `Conv2d`.
    ///
    /// [`cpu_window`]: Self::cpu_window
    ///
    /// # Shapes
    /// - input: `[in_channels, batch, height, width]`
    /// - output: `[out_channels, batch, ceil(height / stride), ceil(width / stride)]`
    pub(crate) fn forward_channels_first(&self, input: ChannelsFirst) -> ChannelsFirst {
        let [channels, batch, height, width] = input.0.dims();
        let out_channels = self.out_channels();
        let Some(bias) = self.conv.bias.as_ref().map(Param::val) else {
            return ChannelsFirst::of(relu(self.conv.forward(input.into_images_first())));
        };
        if self.is_pointwise() {
            let weight = self.conv.weight.val().reshape([out_channels, channels]);
            let output = pointwise_relu(input.0.reshape([channels, batch * height * width]), weight, bias);
            return ChannelsFirst(output.reshape([out_channels, batch, height, width]));
        }
        match self.cpu_window([height, width]) {
            Some(window) => ChannelsFirst(conv2d_relu(input.0, self.conv.weight.val(), bias, window)),
            None => ChannelsFirst::of(relu(self.conv.forward(input.into_images_first()))),
        }
    }

    /// Where the kernel of a 'same' convolution goes over an input of `[height, width]`, when
    /// the CPU device runs it as [`conv2d_relu`] (with its ReLU): the 3×3 and 5×5 ones and b1's
    /// 7×7 stride-2 one.
    fn cpu_window(&self, [height, width]: [usize; 2]) -> Option<Window> {
        let same = matches!(self.conv.padding, PaddingConfig2d::Same);
        let [stride, stride_x] = self.conv.stride;
        let plain = same && stride == stride_x && height == width && self.conv.dilation == [1, 1] && self.conv.groups == 1;
        let taken = matches!((self.conv.kernel_size, stride), ([3, 3], 1) | ([5, 5], 1) | ([7, 7], 2));
        let [before, after] = same_padding(height, self.conv.kernel_size[0], stride);
        (plain && taken).then_some(Window { stride, before, after })
    }

    /// A 1×1 stride-1 convolution: 37 of the network's 57.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.conv.kernel_size == [1, 1] && self.conv.stride == [1, 1] && self.conv.dilation == [1, 1] && self.conv.groups == 1
    }

    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    pub fn layer(&self) -> Layer {
        Layer::Conv {
            kernel: self.conv.kernel_size[0],
            stride: self.conv.stride[0],
            channels: self.out_channels(),
        }
    }
}

/// Whether `device` is Burn's CPU backend (with or without autodiff).
pub(crate) fn on_cpu(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// A `kernel`×`kernel` max-pool with TensorFlow 'same' padding.
pub(crate) fn same_max_pool(kernel: usize, stride: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Same)
        .init()
}

/// `pool` applied to `x` on the CPU device (where [`ChannelsFirst`] runs): a 3×3 'same'
/// max-pool (all of the network's) runs as [`max_pool_3x3_same`], which is much faster than
/// burn-flex's (BENCHMARKS.md). Each plane is pooled on its own, so `x` may be laid out images
/// or channels first.
pub(crate) fn max_pool(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let same = matches!(pool.padding, PaddingConfig2d::Same) && !pool.ceil_mode && pool.dilation == [1, 1];
    let [stride, stride_x] = pool.stride;
    if same && pool.kernel_size == [3, 3] && stride == stride_x {
        return max_pool_3x3_same(x, stride);
    }
    pool.forward(x)
}

pub(crate) fn pool_layer(pool: &MaxPool2d) -> Layer {
    Layer::MaxPool { kernel: pool.kernel_size[0], stride: pool.stride[0] }
}

/// Convolutions in sequence, then a 3×3 stride-2 max-pool: the seed's b1 and b2.
#[derive(Config, Debug)]
pub struct ConvPoolBlockConfig {
    pub convs: Vec<ConvReluConfig>,
}

#[derive(Module, Debug)]
pub struct ConvPoolBlock {
    pub convs: Vec<ConvRelu>,
    pub pool: MaxPool2d,
}

impl ConvPoolBlockConfig {
    pub fn init(&self, device: &Device) -> ConvPoolBlock {
        ConvPoolBlock {
            convs: self.convs.iter().map(|conv| conv.init(device)).collect(),
            pool: same_max_pool(3, 2),
        }
    }

    pub fn out_channels(&self) -> usize {
        self.convs.last().map_or(0, |conv| conv.out_channels)
    }
}

impl ConvPoolBlock {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, ceil(height / (2 · strides)), ceil(width / (2 · strides))]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        in_device_layout(input, |x| self.forward_as(x), |x| self.forward_as(x))
    }

    pub(crate) fn forward_as<A: Activations>(&self, input: A) -> A {
        self.convs.iter().fold(input, |x, conv| x.conv(conv)).pool(&self.pool)
    }

    pub fn layers(&self) -> Vec<Layer> {
        self.convs.iter().map(ConvRelu::layer).chain([pool_layer(&self.pool)]).collect()
    }
}
