//! From 28×28 bytes to model input: pixels / 255, resized bilinearly on the device.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::IMAGE_SIDE;

/// `pixels` holds whole 28×28 images back to back. Only the small 28×28 batch crosses to the
/// device; the resize to `input_size` happens there (a 96×96 f32 copy of the training set
/// would be 2 GiB of the wasm heap).
///
/// # Shapes
/// - output: `[pixels.len() / 784, 1, input_size, input_size]`, values in 0..=1
pub fn images_to_input(pixels: &[u8], input_size: usize, device: &Device) -> Tensor<4> {
    let count = pixels.len() / (IMAGE_SIDE * IMAGE_SIDE);
    let scaled: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let images = Tensor::<4>::from_data(TensorData::new(scaled, [count, 1, IMAGE_SIDE, IMAGE_SIDE]), device);
    if input_size == IMAGE_SIDE {
        return images;
    }
    // TensorFlow's `image.resize` (the seed's) is bilinear with half-pixel centres.
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(false)
        .with_output_size([input_size, input_size]);
    interpolate(images, options)
}

/// # Shapes
/// - output: `[labels.len()]`
pub fn labels_to_tensor(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let count = labels.len();
    Tensor::from_data(TensorData::new(labels, [count]), device)
}
