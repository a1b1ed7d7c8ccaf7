//! The Inception block (four parallel branches concatenated on channels) and stages of them.

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{Device, Tensor};

use super::blocks::{on_cpu, pool_layer, same_max_pool, ConvRelu, ConvReluConfig, Layer};
use super::layout::{in_device_layout, Activations, ChannelsFirst};

/// One branch: an optional 3×3 stride-1 max-pool, then ReLU convolutions.
#[derive(Config, Debug)]
pub struct BranchConfig {
    #[config(default = false)]
    pub pool_first: bool,
    pub convs: Vec<ConvReluConfig>,
}

#[derive(Module, Debug)]
pub struct Branch {
    pub pool: Option<MaxPool2d>,
    pub convs: Vec<ConvRelu>,
}

impl BranchConfig {
    pub fn init(&self, device: &Device) -> Branch {
        Branch {
            pool: self.pool_first.then(|| same_max_pool(3, 1)),
            convs: self.convs.iter().map(|conv| conv.init(device)).collect(),
        }
    }
}

impl Branch {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height, width]` (every layer keeps the spatial size)
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        in_device_layout(input, |x| self.forward_as(x), |x| self.forward_as(x))
    }

    pub(crate) fn forward_as<A: Activations>(&self, input: A) -> A {
        let x = match &self.pool {
            Some(pool) => input.pool(pool),
            None => input,
        };
        self.convs.iter().fold(x, |x, conv| x.conv(conv))
    }

    pub fn layers(&self) -> Vec<Layer> {
        self.pool.iter().map(pool_layer).chain(self.convs.iter().map(ConvRelu::layer)).collect()
    }
}

/// An Inception block, named by its output channels as in the seed's `Inception(c1, c2, c3, c4)`:
/// 1×1 (`c1`); 1×1 → 3×3 (`c2`); 1×1 → 5×5 (`c3`); 3×3 max-pool → 1×1 (`c4`).
#[derive(Config, Debug)]
pub struct InceptionConfig {
    pub in_channels: usize,
    pub c1: usize,
    pub c2: [usize; 2],
    pub c3: [usize; 2],
    pub c4: usize,
}

#[derive(Module, Debug)]
pub struct Inception {
    /// The four branches, in the seed's order p1..p4.
    pub branches: Vec<Branch>,
}

impl InceptionConfig {
    /// The four branch configurations, in the seed's order.
    pub fn branches(&self) -> [BranchConfig; 4] {
        let conv = |in_channels, out_channels, kernel| ConvReluConfig::new(in_channels, out_channels, kernel);
        let input = self.in_channels;
        [
            BranchConfig::new(vec![conv(input, self.c1, 1)]),
            BranchConfig::new(vec![conv(input, self.c2[0], 1), conv(self.c2[0], self.c2[1], 3)]),
            BranchConfig::new(vec![conv(input, self.c3[0], 1), conv(self.c3[0], self.c3[1], 5)]),
            BranchConfig::new(vec![conv(input, self.c4, 1)]).with_pool_first(true),
        ]
    }

    pub fn out_channels(&self) -> usize {
        self.c1 + self.c2[1] + self.c3[1] + self.c4
    }

    pub fn init(&self, device: &Device) -> Inception {
        Inception { branches: self.branches().iter().map(|branch| branch.init(device)).collect() }
    }
}

impl Inception {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, c1 + c2[1] + c3[1] + c4, height, width]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        in_device_layout(input, |x| self.forward_as(x), |x| self.forward_as(x))
    }

    pub(crate) fn forward_as<A: Activations>(&self, input: A) -> A {
        A::cat(self.forward_branches_as(input))
    }

    /// Each branch's output before the concatenation, in the seed's order.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, c_i, height, width]` for each branch `i`
    pub fn forward_branches(&self, input: Tensor<4>) -> Vec<Tensor<4>> {
        match on_cpu(&input.device()) {
            true => self.forward_branches_as(ChannelsFirst::of(input)).into_iter().map(Activations::into_images_first).collect(),
            false => self.forward_branches_as(input),
        }
    }

    /// On the CPU device ([`ChannelsFirst`]) the 1×1 heads of p1, p2 and p3 are matrix
    /// products of the input as it lies, and the concatenation is a copy of each branch.
    pub(crate) fn forward_branches_as<A: Activations>(&self, input: A) -> Vec<A> {
        self.branches.iter().map(|branch| branch.forward_as(input.clone())).collect()
    }
}

/// Inception blocks in sequence, then an optional 3×3 stride-2 max-pool: the seed's b3, b4, b5.
#[derive(Config, Debug)]
pub struct InceptionStageConfig {
    pub blocks: Vec<InceptionConfig>,
    pub pool_after: bool,
}

#[derive(Module, Debug)]
pub struct InceptionStage {
    pub blocks: Vec<Inception>,
    pub pool: Option<MaxPool2d>,
}

impl InceptionStageConfig {
    /// A stage of Inception blocks given as the seed writes them, `(c1, (c2), (c3), c4)`,
    /// each block's input channels taken from the one before.
    pub fn from_seed(in_channels: usize, blocks: &[(usize, [usize; 2], [usize; 2], usize)], pool_after: bool) -> Self {
        let mut channels = in_channels;
        let blocks = blocks
            .iter()
            .map(|&(c1, c2, c3, c4)| {
                let block = InceptionConfig::new(channels, c1, c2, c3, c4);
                channels = block.out_channels();
                block
            })
            .collect();
        Self::new(blocks, pool_after)
    }

    pub fn out_channels(&self) -> usize {
        self.blocks.last().map_or(0, InceptionConfig::out_channels)
    }

    pub fn init(&self, device: &Device) -> InceptionStage {
        InceptionStage {
            blocks: self.blocks.iter().map(|block| block.init(device)).collect(),
            pool: self.pool_after.then(|| same_max_pool(3, 2)),
        }
    }
}

impl InceptionStage {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, ceil(height / 2), ceil(width / 2)]` with the pool,
    ///   `[batch, out_channels, height, width]` without
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        in_device_layout(input, |x| self.forward_as(x), |x| self.forward_as(x))
    }

    pub(crate) fn forward_as<A: Activations>(&self, input: A) -> A {
        let x = self.blocks.iter().fold(input, |x, block| block.forward_as(x));
        self.pool_output(x)
    }

    pub(crate) fn pool_output<A: Activations>(&self, x: A) -> A {
        match &self.pool {
            Some(pool) => x.pool(pool),
            None => x,
        }
    }
}
