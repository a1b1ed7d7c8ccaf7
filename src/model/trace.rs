//! Shapes recorded during a real forward pass, for the architecture view and the tests.

/// What one forward pass produced, block by block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardTrace {
    /// The input batch: `[batch, channels, height, width]`.
    pub input: [usize; 4],
    /// b1..b5 and the dense head, in order.
    pub blocks: Vec<BlockTrace>,
}

/// One top-level block's output and, for b3..b5, what each of its Inception blocks produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTrace {
    pub name: &'static str,
    /// `[batch, channels, height, width]`, or `[batch, features]` for b5 and the dense head.
    pub output: Vec<usize>,
    pub inceptions: Vec<InceptionTrace>,
}

/// One Inception block: its input, the four branch outputs, and their concatenation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InceptionTrace {
    pub input: [usize; 4],
    pub branches: Vec<[usize; 4]>,
    pub concat: [usize; 4],
}

impl ForwardTrace {
    /// Every Inception block of the network, in order (3a, 3b, 4a..4e, 5a, 5b).
    pub fn inceptions(&self) -> impl Iterator<Item = &InceptionTrace> {
        self.blocks.iter().flat_map(|block| block.inceptions.iter())
    }

    pub fn block(&self, name: &str) -> Option<&BlockTrace> {
        self.blocks.iter().find(|block| block.name == name)
    }
}
