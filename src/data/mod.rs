//! Fashion-MNIST: IDX files as the user loads them, kept as 28×28 `u8` on the CPU side, and
//! turned into model input batches on the device.

mod idx;
mod loader;
mod preprocess;

pub use idx::{parse_idx, IdxError, IdxFile, IdxKind, MAX_DECODED_BYTES};
pub use loader::{Dataset, FileReport, Loader, Split, SplitName, TEST_SPLIT_SIZE};
pub use preprocess::{images_to_input, labels_to_tensor};

/// Fashion-MNIST's class names, by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The side of a Fashion-MNIST image.
pub const IMAGE_SIDE: usize = 28;

/// Reads a split from a folder as Fashion-MNIST publishes it: `{prefix}-images-idx3-ubyte` and
/// `{prefix}-labels-idx1-ubyte`, gzipped or not (`prefix`: `train` or `t10k`). For the native
/// tools; the page reads what the user picks.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_split(dir: &std::path::Path, prefix: &str) -> Result<Dataset, String> {
    let read = |kind: &str| {
        let names = [format!("{prefix}-{kind}.gz"), format!("{prefix}-{kind}")];
        let path = names.iter().map(|name| dir.join(name)).find(|path| path.exists());
        let path = path.ok_or_else(|| format!("{} has no {}", dir.display(), names[0]))?;
        let bytes = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        parse_idx(&bytes, true).map(|file| file.data).map_err(|error| format!("{}: {error}", path.display()))
    };
    Dataset::new(read("images-idx3-ubyte")?, read("labels-idx1-ubyte")?).ok_or_else(|| format!("the {prefix} images and labels do not pair up"))
}
