//! 3×3 stride-1 'same' convolutions by Winograd's minimal filtering F(4×4, 3×3) (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each 4×4 block of outputs
//! from a 6×6 tile of the input with 36 multiplications where the shifted copies take 144.
//!
//! The tiles of every channel are transformed (`V = Bᵀ d B`), the kernels too (`U = G g Gᵀ`),
//! and the 36 elements of a tile are 36 matrix products, `M[ξ] = U[ξ] [out, in] · V[ξ] [in,
//! tiles]`, whose results are transformed back (`Y = Aᵀ M A`). Four times fewer
//! multiplications than [the shifted copies](super::conv) on b2's and b3's planes (24×24,
//! 12×12), 2.25 times fewer on b4's (6×6, four tiles whose blocks pass the plane's edge); the
//! 3×3 convolutions are two thirds of the network's multiplications. Used for their outputs,
//! their input gradients (a 3×3 'same' convolution of the output gradient with the kernels
//! turned 180° and their input and output swapped) and their weight gradients (36 products of
//! the transformed output gradient and tiles, summed over the tiles).
//!
//! Every transform is separable and runs over all of a task's tiles at once: first along each
//! row of a plane (a tile column's six values from its inputs), then down the columns as
//! whole slices of the task's tiles, which lie image after image as the products take them.
//!
//! Only on planes of [`LEAST_SIDE`] or more (b5's 3×3 planes keep the shifted copies).
//! Activations are laid out channels first, `[channels, batch, height, width]`. On planes of
//! [`TASK_SIDE`] or more a task is a few images a thread, as in [`super::conv`]; smaller planes
//! take the whole batch at once. Either way each image's outputs are the same sums whatever
//! its batch, so the replicas of a data-parallel run, each with its slice of the batch, compute
//! what one worker does with the whole batch.

use std::ops::{Add, Mul, Range, Sub};

use super::{for_each_task, for_each_task_runs, product, relu, sum_of_shares, threads, zeros, Operand};

/// The least side of the planes a 3×3 convolution takes by Winograd's algorithm. A 6×6 plane
/// is four tiles whose blocks pass its edge: 144 products for its 36 outputs, where the
/// shifted copies take 324. b5's 3×3 planes would take 64 for 9 (81).
pub(super) const LEAST_SIDE: usize = 6;

/// The least side of the planes whose convolutions take a task of a few images a thread.
/// Smaller ones (b4's 6×6 at 96×96, b2's 8×8 at 32×32) take the whole batch at once, its
/// channels shared between the threads: a few images of four tiles each would make the
/// products only a few dozen columns wide.
const TASK_SIDE: usize = 12;

/// The side of a tile's block of outputs.
const M: usize = 4;

/// The side of a tile: its outputs and the kernel's reach, one on each side.
const N: usize = M + 2;

/// The elements of a transformed tile.
const TILE: usize = N * N;

/// What the tiles' transforms add: one value (along a row of a plane) or eight (down the
/// columns of all a task's tiles at once).
trait Value: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<f32, Output = Self> {}

impl Value for f32 {}

impl Value for Eight {}

/// Eight values of a slice, added as one: two SIMD128 vectors in the wasm, whose `opt-level =
/// "z"` neither vectorises nor always inlines the loops of an array.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
struct Eight(core::arch::wasm32::v128, core::arch::wasm32::v128);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Eight {
    const ZERO: Eight = Eight(core::arch::wasm32::f32x4(0.0, 0.0, 0.0, 0.0), core::arch::wasm32::f32x4(0.0, 0.0, 0.0, 0.0));

    /// The first eight of `from`.
    #[inline(always)]
    fn load(from: &[f32]) -> Eight {
        use core::arch::wasm32::{v128, v128_load};
        let from = &from[..8];
        // SAFETY: `from` holds eight values (sliced just above); `v128_load` takes unaligned
        // addresses.
        unsafe { Eight(v128_load(from.as_ptr().cast::<v128>()), v128_load(from.as_ptr().add(4).cast::<v128>())) }
    }

    /// Into the first eight of `into`.
    #[inline(always)]
    fn store(self, into: &mut [f32]) {
        use core::arch::wasm32::{v128, v128_store};
        let into = &mut into[..8];
        // SAFETY: `into` holds eight values (sliced just above); `v128_store` takes unaligned
        // addresses.
        unsafe {
            v128_store(into.as_mut_ptr().cast::<v128>(), self.0);
            v128_store(into.as_mut_ptr().add(4).cast::<v128>(), self.1);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Add for Eight {
    type Output = Eight;
    #[inline(always)]
    fn add(self, other: Eight) -> Eight {
        use core::arch::wasm32::f32x4_add;
        Eight(f32x4_add(self.0, other.0), f32x4_add(self.1, other.1))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Sub for Eight {
    type Output = Eight;
    #[inline(always)]
    fn sub(self, other: Eight) -> Eight {
        use core::arch::wasm32::f32x4_sub;
        Eight(f32x4_sub(self.0, other.0), f32x4_sub(self.1, other.1))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Mul<f32> for Eight {
    type Output = Eight;
    #[inline(always)]
    fn mul(self, factor: f32) -> Eight {
        use core::arch::wasm32::{f32x4_mul, f32x4_splat};
        Eight(f32x4_mul(self.0, f32x4_splat(factor)), f32x4_mul(self.1, f32x4_splat(factor)))
    }
}

/// Eight values of a slice, added as one: LLVM makes vector operations of these loops.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Clone, Copy)]
struct Eight([f32; 8]);

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Eight {
    const ZERO: Eight = Eight([0.0; 8]);

    /// The first eight of `from`.
    #[inline(always)]
    fn load(from: &[f32]) -> Eight {
        Eight(first_of(from))
    }

    /// Into the first eight of `into`.
    #[inline(always)]
    fn store(self, into: &mut [f32]) {
        into[..8].copy_from_slice(&self.0);
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Add for Eight {
    type Output = Eight;
    #[inline(always)]
    fn add(mut self, other: Eight) -> Eight {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a += b);
        self
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Sub for Eight {
    type Output = Eight;
    #[inline(always)]
    fn sub(mut self, other: Eight) -> Eight {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a -= b);
        self
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Mul<f32> for Eight {
    type Output = Eight;
    #[inline(always)]
    fn mul(mut self, factor: f32) -> Eight {
        self.0.iter_mut().for_each(|a| *a *= factor);
        self
    }
}

/// `Bᵀ d` of a column `d` of a tile (or `d B` of a row), the products' common terms shared.
/// Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0],
/// [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]] (interpolation points 0, ±1, ±2 and ∞).
#[inline(always)]
fn by_bt<T: Value>([d0, d1, d2, d3, d4, d5]: [T; N]) -> [T; N] {
    let (a, b) = (d4 - d2 * 4.0, d3 - d1 * 4.0);
    let (c, e) = (d4 - d2, (d3 - d1) * 2.0);
    [d0 * 4.0 - d2 * 5.0 + d4, a + b, a - b, c + e, c - e, d1 * 4.0 - d3 * 5.0 + d5]
}

/// `A e` of a column `e` of a block of output gradients (or `e Aᵀ` of a row), with A the
/// transpose of [`by_at`]'s Aᵀ.
#[inline(always)]
fn by_a<T: Value>([e0, e1, e2, e3]: [T; M]) -> [T; N] {
    let (a, b) = (e0 + e2, e1 + e3);
    let (c, d) = (e0 + e2 * 4.0, e1 * 2.0 + e3 * 8.0);
    [e0, a + b, a - b, c + d, c - d, e3]
}

/// `Aᵀ m` of a column `m` of a tile's products (or `m A` of a row), which takes them back to a
/// block of outputs. Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1,
/// −1, 8, −8, 1]].
#[inline(always)]
fn by_at<T: Value>([m0, m1, m2, m3, m4, m5]: [T; N]) -> [T; M] {
    let (a, b) = (m1 + m2, m1 - m2);
    let (c, d) = (m3 + m4, m3 - m4);
    [m0 + a + c, b + d * 2.0, a + c * 4.0, b + d * 8.0 + m5]
}

/// `G g` of a column `g` of a kernel (or `g Gᵀ` of a row), which takes a kernel to a tile.
/// G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1⁄24, 1⁄12, ⅙], [1⁄24, −1⁄12, ⅙], [0, 0, 1]].
#[inline(always)]
fn by_g<T: Value>([g0, g1, g2]: [T; 3]) -> [T; N] {
    let sum = g0 + g2;
    let (a, b) = (g0 * (1.0 / 24.0) + g2 * (1.0 / 6.0), g1 * (1.0 / 12.0));
    [g0 * 0.25, (sum + g1) * (-1.0 / 6.0), (sum - g1) * (-1.0 / 6.0), a + b, a - b, g2]
}

/// `Gᵀ u` of a column `u` of a tile's gradient (or `u G` of a row), which takes it back to a
/// kernel's.
#[inline(always)]
fn by_gt<T: Value>([u0, u1, u2, u3, u4, u5]: [T; N]) -> [T; 3] {
    let (a, b) = (u1 + u2, u2 - u1);
    let (c, d) = (u3 + u4, u3 - u4);
    [u0 * 0.25 - a * (1.0 / 6.0) + c * (1.0 / 24.0), b * (1.0 / 6.0) + d * (1.0 / 12.0), (c - a) * (1.0 / 6.0) + u5]
}

/// The first `K` of `values`.
#[inline(always)]
fn first_of<const K: usize>(values: &[f32]) -> [f32; K] {
    let mut first = [0.0f32; K];
    first.copy_from_slice(&values[..K]);
    first
}

/// `into[s][a + t] = transform(from[at[0] + t], …, from[at[K − 1] + t])[i]` for `t` in
/// `0..len`, where `(s, a) = to[i]`: a transform of a column of `K` slices, each `len` values
/// long (all the task's tiles at once), eight values at a time. Index loops, which the wasm's
/// `opt-level = "z"` keeps as they are.
#[inline(always)]
fn over_slices<const K: usize, const R: usize>(
    transform: impl Fn([Eight; K]) -> [Eight; R],
    from: &[f32],
    at: [usize; K],
    into: &mut [&mut [f32]],
    to: [(usize, usize); R],
    len: usize,
) {
    let mut start = 0;
    while start + 8 <= len {
        let mut values = [Eight::ZERO; K];
        for k in 0..K {
            values[k] = Eight::load(&from[at[k] + start..]);
        }
        let results = transform(values);
        for i in 0..R {
            let (slice, at) = to[i];
            results[i].store(&mut into[slice][at + start..]);
        }
        start += 8;
    }
    if start < len {
        let rest = len - start;
        let mut values = [Eight::ZERO; K];
        for k in 0..K {
            let mut padded = [0.0f32; 8];
            padded[..rest].copy_from_slice(&from[at[k] + start..at[k] + len]);
            values[k] = Eight::load(&padded);
        }
        let results = transform(values);
        for i in 0..R {
            let mut padded = [0.0f32; 8];
            results[i].store(&mut padded);
            let (slice, at) = to[i];
            into[slice][at + start..at + len].copy_from_slice(&padded[..rest]);
        }
    }
}

/// `G g Gᵀ` of `count` 3×3 kernels `g`, kernel `k`'s nine values `kernel(k)`: `[36, count]`.
/// A share of the kernels a thread (b4's are 170,000 kernels a step, three times): gathered
/// as `[9, kernels]`, then separably (`G g` a column at a time, then `(G g) Gᵀ` a row at a
/// time) as whole slices of the share.
fn transform_kernels(count: usize, kernel: impl Fn(usize) -> [f32; 9] + Send + Sync) -> Vec<f32> {
    let mut transformed = zeros(TILE * count);
    for_each_task_runs(&mut transformed, [TILE, count, 1], count.div_ceil(threads()), |share, mut runs| {
        let len = share.len();
        let mut planes = vec![0.0f32; 9 * len];
        for (index, k) in share.enumerate() {
            for (j, value) in kernel(k).into_iter().enumerate() {
                planes[j * len + index] = value;
            }
        }
        // half[y][x] = (G g)[y][x].
        let mut half = vec![0.0f32; N * 3 * len];
        for x in 0..3 {
            over_slices(by_g::<Eight>, &planes, [x, 3 + x, 6 + x].map(|k| k * len), &mut [&mut half], std::array::from_fn(|y| (0, (y * 3 + x) * len)), len);
        }
        for y in 0..N {
            over_slices(by_g::<Eight>, &half, [0, 1, 2].map(|x| (y * 3 + x) * len), &mut runs, std::array::from_fn(|x| (y * N + x, 0)), len);
        }
    });
    transformed
}

/// The transformed kernels of a forward pass: `weight` is `[out, in, 3, 3]`; the result
/// `[36, out, in]`.
pub(super) fn kernels(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transform_kernels(outputs * inputs, |kernel| first_of(&weight[kernel * 9..]))
}

/// The transformed kernels of the input gradient: each kernel of `weight` (`[out, in, 3, 3]`)
/// turned 180°, with its input and output swapped: `[36, in, out]`.
pub(super) fn gradient_kernels(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transform_kernels(outputs * inputs, |kernel| {
        let (input, out) = (kernel / outputs, kernel % outputs);
        let mut values: [f32; 9] = first_of(&weight[(out * inputs + input) * 9..]);
        values.reverse();
        values
    })
}

/// The tiles of a plane of `height`×`width`: `(tile rows, tile columns)`.
fn tiles_of(height: usize, width: usize) -> (usize, usize) {
    (height.div_ceil(M), width.div_ceil(M))
}

/// The 3×3 'same' convolution of `input` (`[in, batch, height, width]`) with the transformed
/// `kernels` (`[36, out, in]`), then, given a `bias`, the bias and the ReLU: `[out, batch,
/// height, width]`.
pub(super) fn convolve(input: &[f32], kernels: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize, bias: Option<&[f32]>) -> Vec<f32> {
    if height.min(width) < TASK_SIDE {
        return convolve_batch(input, kernels, [inputs, batch, height, width], outputs, bias);
    }
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let tiles = tile_rows * tile_columns;
    let per_task = images_per_task(batch, tiles, inputs + outputs);
    let mut output = zeros(outputs * batch * height * width);
    for_each_task_runs(&mut output, [outputs, batch, height * width], per_task, |images, runs| {
        let columns = images.len() * tiles;
        let mut transformed = vec![0.0f32; TILE * inputs * columns];
        transform_tiles(input, [inputs, batch, height, width], images, 0..inputs, &mut elements(&mut transformed));
        let mut products = vec![0.0f32; TILE * outputs * columns];
        for (element, products) in products.chunks_exact_mut(outputs * columns).enumerate() {
            let kernels = Operand::Plain(&kernels[element * outputs * inputs..], inputs);
            let tiles = Operand::Plain(&transformed[element * inputs * columns..], columns);
            product(products, kernels, tiles, [outputs, inputs, columns], false);
        }
        let mut scratch = Vec::new();
        for (out, run) in runs.into_iter().enumerate() {
            untransform(&products, [outputs, columns], out, run, [height, width], bias.map(|bias| bias[out]), &mut scratch);
        }
    });
    output
}

/// The weight gradient of a 3×3 'same' convolution of `input` (`[in, batch, height, width]`)
/// whose output gradient (through the ReLU) is `grad` (`[out, batch·height·width]`):
/// `[out, in, 3, 3]`. With `Y = Aᵀ (U ⊙ V) A` for each tile, the gradient of `U` is the sum
/// over tiles of `(A dY Aᵀ) ⊙ V`: for each of the 36 elements a product `Ŷ[ξ] [out, tiles] ·
/// V[ξ]ᵀ [tiles, in]`, where the shifted copies' product is four times larger; then the
/// kernels' `Gᵀ dU G`. Each thread sums its share of the tasks in order, and the shares are
/// added in order: the same sum on every run.
pub(super) fn weight_gradient(input: &[f32], grad: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize) -> Vec<f32> {
    if height.min(width) < TASK_SIDE {
        return weight_gradient_batch(input, grad, [inputs, batch, height, width], outputs);
    }
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let tiles = tile_rows * tile_columns;
    let per_task = images_per_task(batch, tiles, inputs + outputs);
    let tasks = batch.div_ceil(per_task);
    let shares = threads().min(tasks).max(1);
    let share = |share: usize| {
        let mut sum = vec![0.0f32; TILE * outputs * inputs];
        for task in share * tasks / shares..(share + 1) * tasks / shares {
            let images = task * per_task..((task + 1) * per_task).min(batch);
            let columns = images.len() * tiles;
            let mut transformed = vec![0.0f32; TILE * inputs * columns];
            transform_tiles(input, [inputs, batch, height, width], images.clone(), 0..inputs, &mut elements(&mut transformed));
            let mut gradients = vec![0.0f32; TILE * outputs * columns];
            transform_gradient(grad, [outputs, batch, height, width], images, 0..outputs, &mut elements(&mut gradients));
            let accumulate = task > share * tasks / shares;
            for (element, sum) in sum.chunks_exact_mut(outputs * inputs).enumerate() {
                let gradients = Operand::Plain(&gradients[element * outputs * columns..], columns);
                let tiles = Operand::Transposed(&transformed[element * inputs * columns..], columns);
                product(sum, gradients, tiles, [outputs, columns, inputs], accumulate);
            }
        }
        sum
    };
    kernel_gradient(&sum_of_shares(shares, TILE * outputs * inputs, share), [outputs, inputs])
}

/// The tiles of a whole batch of small planes transformed ([`transform_tiles`]), a share of
/// the channels a thread: `[36, in, batch·tiles]`, the tiles as a task lays them.
fn transform_batch(input: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let columns = batch * tile_rows * tile_columns;
    let mut transformed = zeros(TILE * inputs * columns);
    for_each_task_runs(&mut transformed, [TILE, inputs, columns], inputs.div_ceil(threads()), |channels, mut runs| {
        transform_tiles(input, shape, 0..batch, channels, &mut runs);
    });
    transformed
}

/// [`convolve`] of a whole batch of small planes at once: its tiles transformed a share of the
/// input channels a thread, then a share of the output channels a thread (their products over
/// all the batch's tiles, and their outputs). Each output is the same sum as a task's: the
/// batch's size changes only how wide the products are.
fn convolve_batch(input: &[f32], kernels: &[f32], shape: [usize; 4], outputs: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let transformed = transform_batch(input, shape);
    let columns = transformed.len() / (TILE * inputs).max(1);
    let planes = batch * height * width;
    let per_task = outputs.div_ceil(threads()).max(1);
    let mut output = zeros(outputs * planes);
    for_each_task(&mut output, per_task * planes, |task, part| {
        let (first, count) = (task * per_task, part.len() / planes.max(1));
        let mut products = vec![0.0f32; TILE * count * columns];
        for (element, products) in products.chunks_exact_mut(count * columns).enumerate() {
            let kernels = Operand::Plain(&kernels[(element * outputs + first) * inputs..], inputs);
            let tiles = Operand::Plain(&transformed[element * inputs * columns..], columns);
            product(products, kernels, tiles, [count, inputs, columns], false);
        }
        let mut scratch = Vec::new();
        for (out, run) in part.chunks_exact_mut(planes.max(1)).enumerate() {
            untransform(&products, [count, columns], out, run, [height, width], bias.map(|bias| bias[first + out]), &mut scratch);
        }
    });
    output
}

/// [`weight_gradient`] of a whole batch of small planes at once: its tiles transformed a share
/// of the input channels a thread, then a share of the output channels a thread (their
/// gradients' transforms, and their products summed over all the batch's tiles).
fn weight_gradient_batch(input: &[f32], grad: &[f32], shape: [usize; 4], outputs: usize) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let transformed = transform_batch(input, shape);
    let columns = transformed.len() / (TILE * inputs).max(1);
    let mut sums = zeros(TILE * outputs * inputs);
    for_each_task_runs(&mut sums, [TILE, outputs, inputs], outputs.div_ceil(threads()), |outs, sums| {
        let count = outs.len();
        let mut gradients = vec![0.0f32; TILE * count * columns];
        transform_gradient(grad, [outputs, batch, height, width], 0..batch, outs, &mut elements(&mut gradients));
        for (element, sum) in sums.into_iter().enumerate() {
            let gradients = Operand::Plain(&gradients[element * count * columns..], columns);
            let tiles = Operand::Transposed(&transformed[element * inputs * columns..], columns);
            product(sum, gradients, tiles, [count, columns, inputs], false);
        }
    });
    kernel_gradient(&sums, [outputs, inputs])
}

/// `Gᵀ dU G` of each kernel's `dU` (`sums`, `[36, out, in]`): the kernels' gradient, `[out, in,
/// 3, 3]`. A share of the kernels a thread, separably as whole slices of the share: dU is
/// N×N, its elements `count` apart; half[y][j] = (Gᵀ dU)[y][j], then planes[y][x] the result's.
fn kernel_gradient(sums: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    let count = outputs * inputs;
    let per_task = count.div_ceil(threads()).max(1);
    let mut gradient = zeros(9 * count);
    for_each_task(&mut gradient, 9 * per_task, |task, part| {
        let (first, len) = (task * per_task, part.len() / 9);
        let mut half = vec![0.0f32; 3 * N * len];
        for j in 0..N {
            let at = std::array::from_fn(|i| (i * N + j) * count + first);
            over_slices(by_gt::<Eight>, sums, at, &mut [&mut half], [0, 1, 2].map(|y| (0, (y * N + j) * len)), len);
        }
        let mut planes = vec![0.0f32; 9 * len];
        for y in 0..3 {
            over_slices(by_gt::<Eight>, &half, std::array::from_fn(|j| (y * N + j) * len), &mut [&mut planes], [0, 1, 2].map(|x| (0, (y * 3 + x) * len)), len);
        }
        // Back to [out, in, 3, 3].
        for (index, into) in part.chunks_exact_mut(9).enumerate() {
            for (k, into) in into.iter_mut().enumerate() {
                *into = planes[k * len + index];
            }
        }
    });
    gradient
}

/// `A dY Aᵀ` of every 4×4 block `dY` of the output gradient `grad` (`[out, batch·height·width]`)
/// for the `images` and the output channels `outputs`, zero past the planes' edges: into the
/// 36 slices of `into`, each `[outputs, images·tiles]`, the tiles in the order
/// [`transform_tiles`] lays them. Separably: each row's `dY Aᵀ` (a tile column's six
/// values from its four), then `A (dY Aᵀ)` of all the task's tiles as whole slices.
fn transform_gradient(grad: &[f32], [_, batch, height, width]: [usize; 4], images: Range<usize>, outputs: Range<usize>, into: &mut [&mut [f32]]) {
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    // h[j][r][tile]: element j of `dY Aᵀ` of row r of every tile, rows past the planes zero.
    let mut h = vec![0.0f32; N * M * columns];
    let mut row = vec![0.0f32; M * tile_columns];
    for (index, out) in outputs.enumerate() {
        let planes = &grad[(out * batch + images.start) * height * width..(out * batch + images.end) * height * width];
        if height % M != 0 {
            h.fill(0.0);
        }
        for (image, plane) in planes.chunks_exact(height * width).enumerate() {
            for (y, line) in plane.chunks_exact(width).enumerate() {
                row[..width].copy_from_slice(line);
                let first = (y % M) * columns + image * tiles + (y / M) * tile_columns;
                for (tile, block) in row.chunks_exact(M).enumerate() {
                    let values = by_a(first_of(block));
                    for (j, value) in values.into_iter().enumerate() {
                        h[j * M * columns + first + tile] = value;
                    }
                }
            }
        }
        for j in 0..N {
            let at = std::array::from_fn(|r| (j * M + r) * columns);
            let to = std::array::from_fn(|i| (i * N + j, index * columns));
            over_slices(by_a::<Eight>, &h, at, into, to, columns);
        }
    }
}

/// The 36 element slices of a transform laid out `[36, rows, columns]`.
fn elements(transformed: &mut [f32]) -> Vec<&mut [f32]> {
    let element = transformed.len() / TILE;
    transformed.chunks_exact_mut(element.max(1)).collect()
}

/// How many images one task takes: enough for [`PRODUCT_COLUMNS`] tiles in its products where
/// the batch allows, as many tasks for each thread, and its scratch (36 values a tile for each
/// of `channels`, inputs and outputs) within [`SCRATCH_LIMIT`].
fn images_per_task(batch: usize, tiles: usize, channels: usize) -> usize {
    let threads = threads();
    let least = PRODUCT_COLUMNS.div_ceil(tiles.max(1));
    let most = (SCRATCH_LIMIT / (TILE * channels * tiles).max(1)).max(1);
    let mut tasks = threads * (batch / (least * threads)).max(1);
    while batch.div_ceil(tasks) > most {
        tasks += threads;
    }
    batch.div_ceil(tasks).max(1)
}

/// How many columns (tiles) a task's products have at least, where the batch allows.
const PRODUCT_COLUMNS: usize = 512;

/// How many floats one thread's scratch (transformed tiles and products) may take (16 MB).
const SCRATCH_LIMIT: usize = 4 << 20;

/// `Bᵀ d B` of every 6×6 tile `d` of the `images` in the input channels `channels` (tiles four
/// apart, starting one before the input, zero outside it): into the 36 slices of `into`, each
/// `[channels, images·tiles]`.
///
/// Separably, for each channel: `d B` of every input row once (a tile column's six values
/// from its six inputs), kept for each row `y` of the tiles that row is in (`h`); then `Bᵀ (d
/// B)` of all the task's tiles at once, as whole slices.
fn transform_tiles(input: &[f32], [_, batch, height, width]: [usize; 4], images: Range<usize>, channels: Range<usize>, into: &mut [&mut [f32]]) {
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    // An input row with its padding: input columns −1 ..= M·tile_columns.
    let mut row = vec![0.0f32; M * tile_columns + N - M];
    // h[j][y][tile]: element j of `d B` of row y of every tile. Every value is written.
    let mut h = vec![0.0f32; N * N * columns];
    for (index, channel) in channels.enumerate() {
        let channel_planes = &input[(channel * batch + images.start) * height * width..(channel * batch + images.end) * height * width];
        for (image, plane) in channel_planes.chunks_exact(height * width).enumerate() {
            // Padded row p (input row p − 1) is row p mod M of tile row p / M, and, when
            // that is less than N − M, row p mod M + M of the tile row above.
            for padded in 0..M * tile_rows + N - M {
                match padded.checked_sub(1).filter(|&y| y < height) {
                    Some(y) => {
                        row[1..1 + width].copy_from_slice(&plane[y * width..(y + 1) * width]);
                        row[1 + width..].fill(0.0);
                    }
                    None => row.fill(0.0),
                }
                let (y, tile_row) = (padded % M, padded / M);
                let below = (tile_row < tile_rows).then(|| y * columns + image * tiles + tile_row * tile_columns);
                let above = (y + M < N && tile_row > 0).then(|| (y + M) * columns + image * tiles + (tile_row - 1) * tile_columns);
                for (tile, d) in row.windows(N).step_by(M).enumerate() {
                    let values = by_bt(first_of(d));
                    for (j, value) in values.into_iter().enumerate() {
                        if let Some(at) = below {
                            h[j * N * columns + at + tile] = value;
                        }
                        if let Some(at) = above {
                            h[j * N * columns + at + tile] = value;
                        }
                    }
                }
            }
        }
        for j in 0..N {
            let at = std::array::from_fn(|y| (j * N + y) * columns);
            let to = std::array::from_fn(|i| (i * N + j, index * columns));
            over_slices(by_bt::<Eight>, &h, at, into, to, columns);
        }
    }
}

/// `Aᵀ m A` of output channel `out`'s products `m` (36 a tile; `products` is `[36, outputs,
/// columns]`), each 4×4 block written to its place in `run` (the channel's planes of the task's
/// images), plus `bias` through the ReLU where given. As whole slices of all the task's tiles
/// (`Aᵀ m`, then `(Aᵀ m) A`, into `scratch`), then each output row's blocks.
fn untransform(products: &[f32], [outputs, columns]: [usize; 2], out: usize, run: &mut [f32], [height, width]: [usize; 2], bias: Option<f32>, scratch: &mut Vec<f32>) {
    let (tile_rows, tile_columns) = tiles_of(height, width);
    let place = |value: f32| match bias {
        Some(bias) => relu(value + bias),
        None => value,
    };
    scratch.resize((M * N + M * M) * columns, 0.0);
    let (t, u) = scratch.split_at_mut(M * N * columns);
    // t[r][j] = (Aᵀ m)[r][j].
    for j in 0..N {
        let at = std::array::from_fn(|i| ((i * N + j) * outputs + out) * columns);
        let to = std::array::from_fn(|r| (0, (r * N + j) * columns));
        over_slices(by_at::<Eight>, products, at, &mut [&mut *t], to, columns);
    }
    // u[r][c] = (Aᵀ m A)[r][c] = Σ_j Aᵀ[c][j] t[r][j].
    for r in 0..M {
        let at = std::array::from_fn(|j| (r * N + j) * columns);
        let to = std::array::from_fn(|c| (0, (r * M + c) * columns));
        over_slices(by_at::<Eight>, t, at, &mut [&mut *u], to, columns);
    }
    // Each output row M·ty + r: its tiles' blocks (u[r][0], …, u[r][M − 1]).
    let tiles = tile_rows * tile_columns;
    for (image, plane) in run.chunks_exact_mut(height * width).enumerate() {
        for (y, line) in plane.chunks_exact_mut(width).enumerate() {
            let (r, first) = (y % M, image * tiles + (y / M) * tile_columns);
            for (tile, block) in line.chunks_mut(M).enumerate() {
                for (c, into) in block.iter_mut().enumerate() {
                    *into = place(u[(r * M + c) * columns + first + tile]);
                }
            }
        }
    }
}
