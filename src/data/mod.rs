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
