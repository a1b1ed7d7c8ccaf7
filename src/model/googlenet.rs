//! The whole network: b1..b5 and the dense head.

use burn::config::Config;
use burn::module::{Initializer, Module, ModuleMapper, Param};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::blocks::{on_cpu, ConvPoolBlock, ConvPoolBlockConfig, ConvReluConfig};
use super::layout::{Activations, ChannelsFirst};
use super::inception::{InceptionStage, InceptionStageConfig};
use super::trace::{BlockTrace, ForwardTrace, InceptionTrace};

/// The seed's names for the model's top-level parts, in order.
pub const BLOCK_NAMES: [&str; 6] = ["b1", "b2", "b3", "b4", "b5", "dense"];

/// GoogLeNet as the seed builds it. The defaults are the seed's: one input channel
/// (Fashion-MNIST is greyscale), ten classes, 96×96 inputs.
#[derive(Config, Debug)]
pub struct GoogLeNetConfig {
    #[config(default = 1)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    /// The side of the square input images. It changes no parameter (b5 ends in a global
    /// average pool); it is the size training resizes images to.
    #[config(default = 96)]
    pub input_size: usize,
}

#[derive(Module, Debug)]
pub struct GoogLeNet {
    pub b1: ConvPoolBlock,
    pub b2: ConvPoolBlock,
    pub b3: InceptionStage,
    pub b4: InceptionStage,
    pub b5: InceptionStage,
    pub global_pool: AdaptiveAvgPool2d,
    pub dense: Linear,
}

impl GoogLeNetConfig {
    /// b1: a 64-channel 7×7 stride-2 convolution, then a 3×3 stride-2 max-pool.
    pub fn b1(&self) -> ConvPoolBlockConfig {
        ConvPoolBlockConfig::new(vec![ConvReluConfig::new(self.in_channels, 64, 7).with_stride(2)])
    }

    /// b2: a 64-channel 1×1 convolution and a 192-channel 3×3 one, then the max-pool.
    pub fn b2(&self) -> ConvPoolBlockConfig {
        ConvPoolBlockConfig::new(vec![ConvReluConfig::new(64, 64, 1), ConvReluConfig::new(64, 192, 3)])
    }

    /// b3: two Inception blocks (256 and 480 channels), then the max-pool.
    pub fn b3(&self) -> InceptionStageConfig {
        InceptionStageConfig::from_seed(192, &[(64, [96, 128], [16, 32], 32), (128, [128, 192], [32, 96], 64)], true)
    }

    /// b4: five Inception blocks (512, 512, 512, 528, 832 channels), then the max-pool.
    pub fn b4(&self) -> InceptionStageConfig {
        InceptionStageConfig::from_seed(
            480,
            &[
                (192, [96, 208], [16, 48], 64),
                (160, [112, 224], [24, 64], 64),
                (128, [128, 256], [24, 64], 64),
                (112, [144, 288], [32, 64], 64),
                (256, [160, 320], [32, 128], 128),
            ],
            true,
        )
    }

    /// b5: two Inception blocks (832 and 1024 channels); the global average pool follows.
    pub fn b5(&self) -> InceptionStageConfig {
        InceptionStageConfig::from_seed(832, &[(256, [160, 320], [32, 128], 128), (384, [192, 384], [48, 128], 128)], false)
    }

    pub fn init(&self, device: &Device) -> GoogLeNet {
        let b5 = self.b5();
        let mut dense = LinearConfig::new(b5.out_channels(), self.num_classes)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        dense.bias = Some(Param::from_tensor(Tensor::zeros([self.num_classes], device)));
        GoogLeNet {
            b1: self.b1().init(device),
            b2: self.b2().init(device),
            b3: self.b3().init(device),
            b4: self.b4().init(device),
            b5: b5.init(device),
            global_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dense,
        }
    }

    /// [`Self::init`] with He-uniform weights instead of Glorot's, biases still zero: the same
    /// random draws, each weight tensor scaled by √((fan in + fan out) / fan in), which turns
    /// Glorot's limit √(6 / (fan in + fan out)) into He's √(6 / fan in).
    pub fn init_he(&self, device: &Device) -> GoogLeNet {
        /// Rescales every weight (a bias is 1-D and stays zero).
        struct GlorotToHe;
        impl ModuleMapper for GlorotToHe {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let dims = param.val().dims();
                let (fan_in, fan_out) = match D {
                    // Conv2d: [out, in, k, k].
                    4 => (dims[1] * dims[2] * dims[3], dims[0] * dims[2] * dims[3]),
                    // Linear: [in, out].
                    2 => (dims[0], dims[1]),
                    _ => return param,
                };
                let scale = ((fan_in + fan_out) as f64 / fan_in as f64).sqrt();
                param.map(|tensor| tensor.mul_scalar(scale).detach())
            }
        }
        self.init(device).map(&mut GlorotToHe)
    }

    /// The shape of a batch of `batch` input images: `[batch, in_channels, input_size, input_size]`.
    pub fn input_shape(&self, batch: usize) -> [usize; 4] {
        [batch, self.in_channels, self.input_size, self.input_size]
    }
}

impl GoogLeNet {
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.run(input, None)
    }

    /// [`forward`](Self::forward), also recording the shape every block, every Inception
    /// branch and every concatenation produced. Shapes are tensor metadata: recording them
    /// reads nothing back from the device.
    pub fn forward_traced(&self, input: Tensor<4>) -> (Tensor<2>, ForwardTrace) {
        let mut trace = ForwardTrace { input: input.dims(), blocks: Vec::new() };
        let logits = self.run(input, Some(&mut trace));
        (logits, trace)
    }

    /// The four branch outputs of Inception block `index` (0 = 3a, 1 = 3b, 2 = 4a … 8 = 5b):
    /// what the page draws as activation maps. Only the blocks up to it run. `None` past 5b.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: four `[batch, c_i, h, w]`, as in [`ForwardTrace`]'s branches
    pub fn inception_branches(&self, input: Tensor<4>, index: usize) -> Option<Vec<Tensor<4>>> {
        match on_cpu(&input.device()) {
            true => self
                .inception_branches_as(ChannelsFirst::of(input), index)
                .map(|branches| branches.into_iter().map(Activations::into_images_first).collect()),
            false => self.inception_branches_as(input, index),
        }
    }

    fn inception_branches_as<A: Activations>(&self, input: A, index: usize) -> Option<Vec<A>> {
        let mut x = self.b2.forward_as(self.b1.forward_as(input));
        let mut index = index;
        for stage in [&self.b3, &self.b4, &self.b5] {
            if let Some(block) = stage.blocks.get(index) {
                let x = stage.blocks[..index].iter().fold(x, |x, block| block.forward_as(x));
                return Some(block.forward_branches_as(x));
            }
            index -= stage.blocks.len();
            x = stage.forward_as(x);
        }
        None
    }

    /// The stem's 64 7×7 filters, the first layer of b1.
    ///
    /// # Shapes
    /// - output: `[64, in_channels, 7, 7]`
    pub fn stem_filters(&self) -> Tensor<4> {
        self.b1.convs[0].conv.weight.val()
    }

    /// Parameters of b1..b5 and the dense head, in [`BLOCK_NAMES`] order.
    pub fn block_params(&self) -> [usize; 6] {
        [
            self.b1.num_params(),
            self.b2.num_params(),
            self.b3.num_params(),
            self.b4.num_params(),
            self.b5.num_params(),
            self.dense.num_params(),
        ]
    }

    /// The forward pass in the layout of the input's device ([`Activations`]): on the CPU
    /// device the input is laid out channels first once, and the features back at the end.
    fn run(&self, input: Tensor<4>, trace: Option<&mut ForwardTrace>) -> Tensor<2> {
        match on_cpu(&input.device()) {
            true => self.run_as(ChannelsFirst::of(input), trace),
            false => self.run_as(input, trace),
        }
    }

    fn run_as<A: Activations>(&self, input: A, mut trace: Option<&mut ForwardTrace>) -> Tensor<2> {
        let tracing = trace.is_some();
        let mut record = |name: &'static str, output: Vec<usize>, inceptions: Vec<InceptionTrace>| {
            if let Some(trace) = trace.as_deref_mut() {
                trace.blocks.push(BlockTrace { name, output, inceptions });
            }
        };

        let x = self.b1.forward_as(input); // [batch, 64, 24, 24] for 96×96
        record(BLOCK_NAMES[0], x.dims().to_vec(), Vec::new());
        let x = self.b2.forward_as(x); // [batch, 192, 12, 12]
        record(BLOCK_NAMES[1], x.dims().to_vec(), Vec::new());
        let (x, inceptions) = run_stage(&self.b3, x, tracing); // [batch, 480, 6, 6]
        record(BLOCK_NAMES[2], x.dims().to_vec(), inceptions);
        let (x, inceptions) = run_stage(&self.b4, x, tracing); // [batch, 832, 3, 3]
        record(BLOCK_NAMES[3], x.dims().to_vec(), inceptions);
        let (x, inceptions) = run_stage(&self.b5, x, tracing); // [batch, 1024, 3, 3]
        let x = x.features(&self.global_pool); // [batch, 1024]
        record(BLOCK_NAMES[4], x.dims().to_vec(), inceptions);
        let logits = self.dense.forward(x); // [batch, num_classes]
        record(BLOCK_NAMES[5], logits.dims().to_vec(), Vec::new());
        logits
    }
}

/// Runs a stage block by block, recording each block's branch shapes when `tracing`.
fn run_stage<A: Activations>(stage: &InceptionStage, input: A, tracing: bool) -> (A, Vec<InceptionTrace>) {
    if !tracing {
        return (stage.forward_as(input), Vec::new());
    }
    let mut traces = Vec::with_capacity(stage.blocks.len());
    let mut x = input;
    for block in &stage.blocks {
        let input = x.dims();
        let branches = block.forward_branches_as(x);
        let branch_shapes = branches.iter().map(A::dims).collect();
        x = A::cat(branches);
        traces.push(InceptionTrace { input, branches: branch_shapes, concat: x.dims() });
    }
    (stage.pool_output(x), traces)
}
