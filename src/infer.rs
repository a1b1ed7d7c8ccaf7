//! Classifying single pictures: a drawing, an uploaded image, a test image.
//!
//! A picture becomes a Fashion-MNIST image the way the dataset's were made (Xiao et al. 2017):
//! the garment light on a dark background, trimmed to its bounding box, scaled so its longer
//! side is 28 pixels (aspect ratio kept) and centred in the 28×28 frame. The model then sees it
//! exactly as it saw its training images ([`crate::data::images_to_input`]).

use burn::tensor::activation::softmax;
use burn::tensor::Device;

use crate::data::{images_to_input, CLASS_NAMES, IMAGE_SIDE};
use crate::engine::read_floats;
use crate::model::GoogLeNet;

/// Pixels in a 28×28 frame.
pub const FRAME_LEN: usize = IMAGE_SIDE * IMAGE_SIDE;

/// A greyscale picture, one byte per pixel, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreyPicture {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GreyPicture {
    /// From canvas `ImageData` bytes (RGBA): the luminance, over black where transparent.
    pub fn from_rgba(rgba: &[u8], width: usize, height: usize) -> Self {
        let pixels = rgba
            .chunks_exact(4)
            .map(|p| {
                let luma = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                (luma * f32::from(p[3]) / 255.0).round() as u8
            })
            .collect();
        Self { width, height, pixels }
    }

    /// A photo or scan: made light-on-dark if its border is light (a garment photographed on
    /// white), its background level taken off, and faint noise (JPEG) below 8 % dropped.
    pub fn normalised_photo(mut self) -> Self {
        let border = self.border_mean();
        if border > 127.0 {
            self.pixels.iter_mut().for_each(|p| *p = 255 - *p);
        }
        let background = self.border_mean();
        let peak = self.pixels.iter().copied().max().map_or(0.0, f32::from);
        let range = (peak - background).max(1.0);
        for p in &mut self.pixels {
            let level = (f32::from(*p) - background) / range;
            *p = if level < 0.08 { 0 } else { (level * 255.0).round().clamp(0.0, 255.0) as u8 };
        }
        self
    }

    /// A drawing as the dataset shows garments: every dark region that strokes enclose (not
    /// reachable from the picture's edge without crossing a stroke) is filled with the
    /// strokes' brightest level. Fashion-MNIST's garments are solid shapes, photographed, so a
    /// bag drawn as its outline would otherwise look like nothing the model has seen.
    pub fn with_outlines_filled(mut self) -> Self {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || self.pixels.len() != w * h {
            return self;
        }
        // Flood the background from every dark pixel of the edge (4-connected).
        let mut outside = vec![false; w * h];
        let mut stack: Vec<usize> = (0..w).flat_map(|x| [x, (h - 1) * w + x]).chain((0..h).flat_map(|y| [y * w, y * w + w - 1])).collect();
        while let Some(at) = stack.pop() {
            if outside[at] || self.pixels[at] > 0 {
                continue;
            }
            outside[at] = true;
            let (x, y) = (at % w, at / w);
            if x > 0 {
                stack.push(at - 1);
            }
            if x + 1 < w {
                stack.push(at + 1);
            }
            if y > 0 {
                stack.push(at - w);
            }
            if y + 1 < h {
                stack.push(at + w);
            }
        }
        let level = self.pixels.iter().copied().max().unwrap_or(0);
        for (pixel, outside) in self.pixels.iter_mut().zip(outside) {
            if *pixel == 0 && !outside {
                *pixel = level;
            }
        }
        self
    }

    fn border_mean(&self) -> f32 {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || self.pixels.len() != w * h {
            return 0.0;
        }
        let border = (0..w).flat_map(|x| [(x, 0), (x, h - 1)]).chain((0..h).flat_map(|y| [(0, y), (w - 1, y)]));
        let (sum, count) = border.fold((0.0, 0.0), |(sum, count), (x, y)| (sum + f32::from(self.pixels[y * w + x]), count + 1.0));
        if count == 0.0 { 0.0 } else { sum / count }
    }

    /// The 28×28 Fashion-MNIST frame, or `None` when nothing is drawn (every pixel dark).
    pub fn to_frame(&self) -> Option<Vec<u8>> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 || self.pixels.len() != w * h {
            return None;
        }
        // The bounding box of every pixel that is not pure background.
        let lit = |x: usize, y: usize| self.pixels[y * w + x] > 0;
        let rows: Vec<usize> = (0..h).filter(|&y| (0..w).any(|x| lit(x, y))).collect();
        let columns: Vec<usize> = (0..w).filter(|&x| (0..h).any(|y| lit(x, y))).collect();
        let (top, bottom) = (*rows.first()?, *rows.last()?);
        let (left, right) = (*columns.first()?, *columns.last()?);
        let (box_w, box_h) = (right - left + 1, bottom - top + 1);

        // The longer side becomes 28; the shorter keeps the aspect ratio.
        let scale = IMAGE_SIDE as f64 / box_w.max(box_h) as f64;
        let out_w = ((box_w as f64 * scale).round() as usize).clamp(1, IMAGE_SIDE);
        let out_h = ((box_h as f64 * scale).round() as usize).clamp(1, IMAGE_SIDE);
        let cropped: Vec<f32> = (top..=bottom)
            .flat_map(|y| (left..=right).map(move |x| (y, x)))
            .map(|(y, x)| f32::from(self.pixels[y * w + x]))
            .collect();
        let horizontal = resample_rows(&cropped, box_w, box_h, out_w);
        let scaled = transpose(&resample_rows(&transpose(&horizontal, out_w, box_h), box_h, out_w, out_h), out_h, out_w);

        let mut frame = vec![0u8; FRAME_LEN];
        // Centred; an odd leftover pixel goes left / top, as in the dataset's own images.
        let (x0, y0) = ((IMAGE_SIDE - out_w).div_ceil(2), (IMAGE_SIDE - out_h).div_ceil(2));
        for y in 0..out_h {
            for x in 0..out_w {
                frame[(y0 + y) * IMAGE_SIDE + x0 + x] = scaled[y * out_w + x].round().clamp(0.0, 255.0) as u8;
            }
        }
        Some(frame)
    }
}

/// Resizes each of `rows` rows from `from` to `to` samples by area averaging: every output
/// sample is the mean of the input it covers (partly covered samples count by their share).
fn resample_rows(input: &[f32], from: usize, rows: usize, to: usize) -> Vec<f32> {
    let step = from as f64 / to as f64;
    let mut output = Vec::with_capacity(rows * to);
    for row in input.chunks_exact(from).take(rows) {
        for i in 0..to {
            let (start, end) = (i as f64 * step, (i + 1) as f64 * step);
            let (mut sum, mut weight) = (0.0f64, 0.0f64);
            let mut j = start.floor() as usize;
            while (j as f64) < end && j < from {
                let cover = (end.min(j as f64 + 1.0) - start.max(j as f64)).max(0.0);
                sum += f64::from(row[j]) * cover;
                weight += cover;
                j += 1;
            }
            output.push(if weight > 0.0 { (sum / weight) as f32 } else { 0.0 });
        }
    }
    output
}

fn transpose(input: &[f32], width: usize, height: usize) -> Vec<f32> {
    (0..width).flat_map(|x| (0..height).map(move |y| input[y * width + x])).collect()
}

/// What the model thinks one image is.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Softmax probabilities, one per class, in [`CLASS_NAMES`] order.
    pub probabilities: [f32; 10],
}

impl Prediction {
    /// The most probable class and its probability.
    pub fn best(&self) -> (usize, f32) {
        self.probabilities
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::MIN), |best, (class, p)| if p > best.1 { (class, p) } else { best })
    }

    pub fn best_name(&self) -> &'static str {
        CLASS_NAMES[self.best().0]
    }
}

/// Classifies whole 28×28 frames (back to back in `frames`), resized to `input_size` on
/// `device` as in training; reads the probabilities back asynchronously, once.
pub async fn classify(model: &GoogLeNet, input_size: usize, frames: &[u8], device: &Device) -> Result<Vec<Prediction>, String> {
    if frames.is_empty() || !frames.len().is_multiple_of(FRAME_LEN) {
        return Err(format!("{} bytes are not whole 28×28 images", frames.len()));
    }
    let logits = model.forward(images_to_input(frames, input_size, device));
    let values = read_floats(softmax(logits, 1)).await.map_err(|error| format!("could not read the prediction back: {error}"))?;
    Ok(values
        .chunks_exact(10)
        .map(|row| Prediction { probabilities: std::array::from_fn(|class| row[class]) })
        .collect())
}
