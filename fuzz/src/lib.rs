//! The app's parsers, compiled from the app's own files (`#[path]`): what is fuzzed is what
//! ships.

/// `src/data/idx.rs` takes the image side from its parent module.
pub const IMAGE_SIDE: usize = 28;

#[path = "../../src/data/idx.rs"]
pub mod idx;

#[path = "../../src/model/weights_file.rs"]
pub mod weights_file;

/// GoogLeNet's tensors as its weight files name them, with their shapes, in the model's order
/// (`tests/weights.rs` checks this list against the model).
pub fn googlenet_tensors() -> Vec<(String, Vec<usize>)> {
    include_str!("../googlenet-tensors.txt")
        .lines()
        .map(|line| {
            let (name, shape) = line.split_once(' ').expect("name and shape");
            (name.to_owned(), shape.split(',').map(|d| d.parse().expect("a dimension")).collect())
        })
        .collect()
}
