//! What a test pass measures: a confusion matrix, and the mistakes worth looking at.

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) over a test pass: rows are the truth.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub counts: [[u32; 10]; 10],
}

impl ConfusionMatrix {
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u32 {
        (0..10).map(|class| self.counts[class][class]).sum()
    }

    /// Fraction of all images classified correctly; 0 before any.
    pub fn accuracy(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => f64::from(self.correct()) / f64::from(total),
        }
    }

    /// Per true class: the fraction recognised, `None` for a class with no test images.
    pub fn class_accuracy(&self) -> [Option<f64>; 10] {
        std::array::from_fn(|class| {
            let row: u32 = self.counts[class].iter().sum();
            (row > 0).then(|| f64::from(self.counts[class][class]) / f64::from(row))
        })
    }
}

/// A test image the model got wrong.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mistake {
    /// Index into the test split.
    pub index: usize,
    pub truth: u8,
    pub predicted: u8,
    /// The softmax probability of the predicted class.
    pub confidence: f32,
}

/// Keeps the `limit` most confident mistakes: the instructive ones.
pub fn most_confident(mut mistakes: Vec<Mistake>, limit: usize) -> Vec<Mistake> {
    mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.index.cmp(&b.index)));
    mistakes.truncate(limit);
    mistakes
}

/// A reproducible shuffle (SplitMix64 + Fisher–Yates). Written out rather than taken from
/// `rand` because `rand`'s generators may change between versions, and a seed must give the
/// same run after an upgrade.
#[derive(Clone, Debug)]
pub struct Shuffler {
    state: u64,
}

impl Shuffler {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // The modulo bias is below 2^-40 for any split size: irrelevant for a shuffle.
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
