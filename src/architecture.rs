//! What the architecture view shows — layers, parameters and the shapes of a real forward
//! pass — as plain data, so it is tested without a DOM.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};

use crate::model::{ForwardTrace, GoogLeNet, Inception, InceptionStage, Layer};

/// The whole network as the view draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Architecture {
    /// The traced input: `[batch, channels, height, width]`.
    pub input: [usize; 4],
    pub blocks: Vec<BlockView>,
    pub total_params: usize,
}

/// b1..b5 or the dense head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockView {
    pub name: &'static str,
    /// Layers outside any Inception block, in order (b3..b5: the pool that ends the stage).
    pub layers: Vec<String>,
    pub inceptions: Vec<InceptionView>,
    pub params: usize,
    pub output: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InceptionView {
    /// GoogLeNet's name for the block: 3a, 3b, 4a..4e, 5a, 5b.
    pub name: String,
    pub input: [usize; 4],
    pub branches: Vec<BranchView>,
    pub concat: [usize; 4],
    pub params: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchView {
    pub layers: Vec<String>,
    pub output: [usize; 4],
    pub params: usize,
}

impl Architecture {
    /// Runs `model` once on a random `[1, channels, input_size, input_size]` batch (the seed's
    /// `tf.random.uniform`) and describes it with the shapes that pass produced. The logits
    /// come back too, still on the device: awaiting them is what proves the pass ran.
    pub fn trace(model: &GoogLeNet, in_channels: usize, input_size: usize, device: &Device) -> (Self, Tensor<2>) {
        let input = Tensor::<4>::random([1, in_channels, input_size, input_size], Distribution::Default, device);
        let (logits, trace) = model.forward_traced(input);
        (Self::describe(model, &trace), logits)
    }

    /// Pairs the model's layers and parameters with the shapes of `trace`.
    pub fn describe(model: &GoogLeNet, trace: &ForwardTrace) -> Self {
        let output = |name: &str| trace.block(name).map(|block| block.output.clone()).unwrap_or_default();
        let conv_block = |name, block: &crate::model::ConvPoolBlock| BlockView {
            name,
            layers: block.layers().iter().map(Layer::to_string).collect(),
            inceptions: Vec::new(),
            params: block.num_params(),
            output: output(name),
        };
        let stage = |name: &'static str, number: usize, stage: &InceptionStage, tail: &str| {
            let traces = trace.block(name).map(|block| block.inceptions.as_slice()).unwrap_or_default();
            let inceptions = stage
                .blocks
                .iter()
                .zip(traces)
                .enumerate()
                .map(|(i, (block, trace))| inception_view(format!("{number}{}", (b'a' + i as u8) as char), block, trace))
                .collect();
            BlockView {
                name,
                layers: vec![tail.to_owned()],
                inceptions,
                params: stage.num_params(),
                output: output(name),
            }
        };
        let pool_tail = "3×3 max-pool /2";
        let blocks = vec![
            conv_block("b1", &model.b1),
            conv_block("b2", &model.b2),
            stage("b3", 3, &model.b3, pool_tail),
            stage("b4", 4, &model.b4, pool_tail),
            stage("b5", 5, &model.b5, "global average pool, flatten"),
            BlockView {
                name: "dense",
                layers: vec![format!("dense {} → {}", model.dense.weight.dims()[0], model.dense.weight.dims()[1])],
                inceptions: Vec::new(),
                params: model.dense.num_params(),
                output: output("dense"),
            },
        ];
        Self { input: trace.input, total_params: model.num_params(), blocks }
    }
}

fn inception_view(name: String, block: &Inception, trace: &crate::model::InceptionTrace) -> InceptionView {
    InceptionView {
        name,
        input: trace.input,
        branches: block
            .branches
            .iter()
            .zip(&trace.branches)
            .map(|(branch, &output)| BranchView {
                layers: branch.layers().iter().map(Layer::to_string).collect(),
                output,
                params: branch.num_params(),
            })
            .collect(),
        concat: trace.concat,
        params: block.num_params(),
    }
}

/// `[1, 64, 24, 24]`.
pub fn format_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// `5,977,530`.
pub fn format_count(count: usize) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
