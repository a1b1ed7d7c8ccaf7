//! Classifying single pictures: the drawing canvas's path (RGBA at 10× scale → 28×28 frame)
//! gives the model what the test split gives it, and pictures are framed like Fashion-MNIST.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::Device;
use futures_lite::future::block_on;
use googlenet_web::data::parse_idx;
use googlenet_web::infer::{classify, GreyPicture, FRAME_LEN};
use googlenet_web::model::GoogLeNetConfig;

fn test_split(count: usize) -> (Vec<u8>, Vec<u8>) {
    let read = |name: &str| {
        let bytes = std::fs::read(format!("{}/{name}", common::FASHION_MNIST_DIR)).expect("run scripts/setup.sh");
        parse_idx(&bytes, true).unwrap().data
    };
    (read("t10k-images-idx3-ubyte.gz")[..count * FRAME_LEN].to_vec(), read("t10k-labels-idx1-ubyte.gz")[..count].to_vec())
}

/// A 28×28 image as the drawing pad holds it: 280×280 RGBA, every pixel a 10×10 square.
fn as_canvas(image: &[u8]) -> Vec<u8> {
    (0..280 * 280).flat_map(|i| {
        let v = image[(i / 280 / 10) * 28 + (i % 280) / 10];
        [v, v, v, 255]
    }).collect()
}

#[test]
fn real_test_images_through_the_canvas_path_get_the_same_predictions() {
    let count = 24;
    let (images, _) = test_split(count);
    let framed: Vec<u8> = images
        .chunks_exact(FRAME_LEN)
        .flat_map(|image| GreyPicture::from_rgba(&as_canvas(image), 280, 280).to_frame().expect("not blank"))
        .collect();
    // Fashion-MNIST's images already fill their frame: trimming and rescaling gives them back,
    // except where an image's bounding box and its centring disagree by a pixel.
    let identical = images.chunks_exact(FRAME_LEN).zip(framed.chunks_exact(FRAME_LEN)).filter(|(a, b)| a == b).count();
    assert!(identical >= count * 3 / 4, "only {identical} of {count} frames came back pixel for pixel");

    let device = Device::flex();
    // Seeded: the same untrained model every run (the shared CPU generator is only drawn from
    // here in this test binary).
    device.seed(42);
    let model = GoogLeNetConfig::new().init(&device);
    let direct = block_on(classify(&model, 64, &images, &device)).unwrap();
    let through_canvas = block_on(classify(&model, 64, &framed, &device)).unwrap();
    for (index, ((a, b), (image, frame))) in
        direct.iter().zip(&through_canvas).zip(images.chunks_exact(FRAME_LEN).zip(framed.chunks_exact(FRAME_LEN))).enumerate()
    {
        if image == frame {
            assert_eq!(a, b, "image {index}: same pixels, same probabilities");
        }
        // An image a pixel off (its bounding box was 27 high) gets nearly the same answer. The
        // class itself may differ: an untrained model's ten probabilities are all close to 10 %.
        let largest_gap = a.probabilities.iter().zip(&b.probabilities).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(largest_gap < 1e-3, "image {index}: probabilities moved by {largest_gap}");
    }
}

#[test]
fn a_blank_pad_has_no_frame() {
    assert_eq!(GreyPicture { width: 280, height: 280, pixels: vec![0; 280 * 280] }.to_frame(), None);
    assert_eq!(GreyPicture { width: 0, height: 0, pixels: vec![] }.to_frame(), None);
}

#[test]
fn a_small_drawing_off_centre_fills_the_frame_centred() {
    // A 40×20 bar (wider than tall) drawn in the top-left corner of the pad.
    let mut pixels = vec![0u8; 280 * 280];
    for y in 10..30 {
        for x in 5..45 {
            pixels[y * 280 + x] = 255;
        }
    }
    let frame = GreyPicture { width: 280, height: 280, pixels }.to_frame().unwrap();
    let lit: Vec<(usize, usize)> = (0..FRAME_LEN).filter(|&i| frame[i] > 0).map(|i| (i % 28, i / 28)).collect();
    let (min_x, max_x) = (lit.iter().map(|p| p.0).min().unwrap(), lit.iter().map(|p| p.0).max().unwrap());
    let (min_y, max_y) = (lit.iter().map(|p| p.1).min().unwrap(), lit.iter().map(|p| p.1).max().unwrap());
    assert_eq!((min_x, max_x), (0, 27), "the longer side spans the frame");
    assert_eq!((min_y, max_y), (7, 20), "the shorter keeps the 2:1 aspect and is centred");
    assert!(lit.iter().all(|&(x, y)| frame[y * 28 + x] == 255));
}

#[test]
fn a_photo_on_white_is_turned_light_on_dark() {
    // A dark 20×30 garment on a white 60×60 photo, with a little JPEG-like noise.
    let mut pixels = vec![250u8; 60 * 60];
    for (i, p) in pixels.iter_mut().enumerate() {
        *p -= (i % 7) as u8;
    }
    for y in 15..45 {
        for x in 20..40 {
            pixels[y * 60 + x] = 40;
        }
    }
    let frame = GreyPicture { width: 60, height: 60, pixels }.normalised_photo().to_frame().unwrap();
    let lit: Vec<usize> = (0..FRAME_LEN).filter(|&i| frame[i] > 0).collect();
    assert!(lit.iter().all(|&i| frame[i] > 200), "the garment is light");
    assert_eq!(frame[0], 0, "the background is black");
    // 30 tall → 28; 20 wide → 19 (rounded), centred.
    let columns: Vec<usize> = lit.iter().map(|i| i % 28).collect();
    assert_eq!((columns.iter().min(), columns.iter().max()), (Some(&5), Some(&23)));
}

#[test]
fn canvas_pixels_read_as_luminance() {
    let rgba = [255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 0, 255, 0, 0, 255];
    let picture = GreyPicture::from_rgba(&rgba, 2, 2);
    assert_eq!(picture.pixels, vec![255, 0, 0, 76]);
}

#[test]
fn a_drawn_outline_is_filled_as_a_solid_garment_and_open_strokes_are_not() {
    // A bag's outline: a 3-pixel frame from (40, 60) to (240, 240) on the 280×280 pad, and a
    // handle above it that does not close (a gap of dark pixels joins its inside to the edge).
    let mut pixels = vec![0u8; 280 * 280];
    let mut set = |x: usize, y: usize, level: u8| pixels[y * 280 + x] = level;
    for i in 0..3 {
        for x in 40..=240 {
            set(x, 60 + i, 200);
            set(x, 238 + i, 250);
        }
        for y in 60..=240 {
            set(40 + i, y, 200);
            set(238 + i, y, 200);
        }
        for y in 20..60 {
            set(100 + i, y, 200);
        }
    }
    let filled = GreyPicture { width: 280, height: 280, pixels: pixels.clone() }.with_outlines_filled();
    assert_eq!(filled.pixels[150 * 280 + 140], 250, "inside the box: the strokes' brightest level");
    assert_eq!(filled.pixels[40 * 280 + 140], 0, "beside the open handle: still background");
    assert_eq!(filled.pixels[10 * 280 + 10], 0, "outside: background");
    let lit_before = pixels.iter().filter(|&&p| p > 0).count();
    let lit_after = filled.pixels.iter().filter(|&&p| p > 0).count();
    assert_eq!(lit_after - lit_before, 195 * 175, "exactly the box's inside is filled");
    // Open strokes (a trouser drawn as two legs) are left as they are.
    let mut legs = vec![0u8; 280 * 280];
    for y in 40..250 {
        legs[y * 280 + 100] = 255;
        legs[y * 280 + 180] = 255;
    }
    assert_eq!(GreyPicture { width: 280, height: 280, pixels: legs.clone() }.with_outlines_filled().pixels, legs);
}
