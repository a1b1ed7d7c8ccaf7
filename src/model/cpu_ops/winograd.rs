//! 3×3 stride-1 'same' convolutions by Winograd's minimal filtering F(m×m, 3×3) (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each m×m block of outputs
//! from an n×n tile of the input (n = m + 2) with n² multiplications where the shifted copies
//! take 9m². Two tilings ([`Tiling`]): F(6×6, 3×3), 64 multiplications for 36 outputs (5.06
//! times fewer), and F(4×4, 3×3), 36 for 16 (4 times fewer). Each plane takes the one whose
//! tiles hold fewer values ([`Tiles`]): at 96×96 all three of the network's planes that use
//! the algorithm take F(6×6, 3×3); at 32×32 b2's 8×8 planes take F(4×4, 3×3).
//!
//! The tiles of every channel are transformed (`V = Bᵀ d B`), the kernels too (`U = G g Gᵀ`),
//! and the n² elements of a tile are n² matrix products, `M[ξ] = U[ξ] [out, in] · V[ξ] [in,
//! tiles]`, whose results are transformed back (`Y = Aᵀ M A`). The 3×3 convolutions are two
//! thirds of the network's multiplications. Used for their outputs, their input gradients (a
//! 3×3 'same' convolution of the output gradient with the kernels turned 180° and their input
//! and output swapped) and their weight gradients (n² products of the transformed output
//! gradient and tiles, summed over the tiles).
//!
//! Every transform is separable and runs over all of a task's tiles at once: first along each
//! row of every tile (n values from its inputs), eight tiles at a time, then down the columns
//! as whole slices of the task's tiles, which lie image after image as the products take them.
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
/// is one tile of F(6×6, 3×3): 64 products for its 36 outputs, where the shifted copies take
/// 324. b5's 3×3 planes would be one tile of F(4×4, 3×3), mostly padding: 36 for 9 (81).
pub(super) const LEAST_SIDE: usize = 6;

/// The least side of the planes whose convolutions take a task of a few images a thread.
/// Smaller ones (b4's 6×6 at 96×96, b2's 8×8 at 32×32) take the whole batch at once, its
/// channels shared between the threads: a few images of one to four tiles each would make the
/// products only a few dozen columns wide.
const TASK_SIDE: usize = 12;

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

/// One of Winograd's tilings F(M×M, 3×3): a tile of `N = M + 2` inputs a side gives an M×M
/// block of outputs with N² multiplications. Its five transforms, each of one column of a tile
/// (or one row), with the products' common terms shared.
trait Tiling<const M: usize, const N: usize> {
    /// `Bᵀ d` of a column `d` of a tile of the input (or `d B` of a row).
    fn by_bt<T: Value>(d: [T; N]) -> [T; N];
    /// `A e` of a column `e` of a block of output gradients (or `e Aᵀ` of a row).
    fn by_a<T: Value>(e: [T; M]) -> [T; N];
    /// `Aᵀ m` of a column `m` of a tile's products (or `m A` of a row), which takes them back
    /// to a block of outputs.
    fn by_at<T: Value>(m: [T; N]) -> [T; M];
    /// `G g` of a column `g` of a kernel (or `g Gᵀ` of a row), which takes a kernel to a tile.
    fn by_g<T: Value>(g: [T; 3]) -> [T; N];
    /// `Gᵀ u` of a column `u` of a tile's gradient (or `u G` of a row), which takes it back to
    /// a kernel's.
    fn by_gt<T: Value>(u: [T; N]) -> [T; 3];
}

/// F(4×4, 3×3): interpolation points 0, ±1, ±2 and ∞.
/// - Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1,
///   0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]];
/// - Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]];
/// - G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1⁄24, 1⁄12, ⅙], [1⁄24, −1⁄12, ⅙], [0, 0, 1]].
struct F4;

impl Tiling<4, 6> for F4 {
    #[inline(always)]
    fn by_bt<T: Value>([d0, d1, d2, d3, d4, d5]: [T; 6]) -> [T; 6] {
        let (a, b) = (d4 - d2 * 4.0, d3 - d1 * 4.0);
        let (c, e) = (d4 - d2, (d3 - d1) * 2.0);
        [d0 * 4.0 - d2 * 5.0 + d4, a + b, a - b, c + e, c - e, d1 * 4.0 - d3 * 5.0 + d5]
    }

    #[inline(always)]
    fn by_a<T: Value>([e0, e1, e2, e3]: [T; 4]) -> [T; 6] {
        let (a, b) = (e0 + e2, e1 + e3);
        let (c, d) = (e0 + e2 * 4.0, e1 * 2.0 + e3 * 8.0);
        [e0, a + b, a - b, c + d, c - d, e3]
    }

    #[inline(always)]
    fn by_at<T: Value>([m0, m1, m2, m3, m4, m5]: [T; 6]) -> [T; 4] {
        let (a, b) = (m1 + m2, m1 - m2);
        let (c, d) = (m3 + m4, m3 - m4);
        [m0 + a + c, b + d * 2.0, a + c * 4.0, b + d * 8.0 + m5]
    }

    #[inline(always)]
    fn by_g<T: Value>([g0, g1, g2]: [T; 3]) -> [T; 6] {
        let sum = g0 + g2;
        let (a, b) = (g0 * (1.0 / 24.0) + g2 * (1.0 / 6.0), g1 * (1.0 / 12.0));
        [g0 * 0.25, (sum + g1) * (-1.0 / 6.0), (sum - g1) * (-1.0 / 6.0), a + b, a - b, g2]
    }

    #[inline(always)]
    fn by_gt<T: Value>([u0, u1, u2, u3, u4, u5]: [T; 6]) -> [T; 3] {
        let (a, b) = (u1 + u2, u2 - u1);
        let (c, d) = (u3 + u4, u3 - u4);
        [u0 * 0.25 - a * (1.0 / 6.0) + c * (1.0 / 24.0), b * (1.0 / 6.0) + d * (1.0 / 12.0), (c - a) * (1.0 / 6.0) + u5]
    }
}

/// F(6×6, 3×3), as NNPACK has it: interpolation points 0, ±1, ±2, ±½ and ∞.
/// - Bᵀ = [[1, 0, −21⁄4, 0, 21⁄4, 0, −1, 0], [0, 1, 1, −17⁄4, −17⁄4, 1, 1, 0], [0, −1, 1, 17⁄4,
///   −17⁄4, −1, 1, 0], [0, ½, ¼, −5⁄2, −5⁄4, 2, 1, 0], [0, −½, ¼, 5⁄2, −5⁄4, −2, 1, 0], [0, 2, 4,
///   −5⁄2, −5, ½, 1, 0], [0, −2, 4, 5⁄2, −5, −½, 1, 0], [0, −1, 0, 21⁄4, 0, −21⁄4, 0, 1]];
/// - Aᵀ = [[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, ½, −½, 0], [0, 1, 1, 4, 4, ¼, ¼, 0],
///   [0, 1, −1, 8, −8, ⅛, −⅛, 0], [0, 1, 1, 16, 16, 1⁄16, 1⁄16, 0], [0, 1, −1, 32, −32, 1⁄32,
///   −1⁄32, 1]];
/// - G = [[1, 0, 0], [−2⁄9, −2⁄9, −2⁄9], [−2⁄9, 2⁄9, −2⁄9], [1⁄90, 1⁄45, 2⁄45], [1⁄90, −1⁄45,
///   2⁄45], [32⁄45, 16⁄45, 8⁄45], [32⁄45, −16⁄45, 8⁄45], [0, 0, 1]].
struct F6;

impl Tiling<6, 8> for F6 {
    #[inline(always)]
    fn by_bt<T: Value>([d0, d1, d2, d3, d4, d5, d6, d7]: [T; 8]) -> [T; 8] {
        let (a, b) = (d2 + d6 - d4 * 4.25, d1 + d5 - d3 * 4.25);
        let (c, e) = (d2 * 0.25 - d4 * 1.25 + d6, d1 * 0.5 - d3 * 2.5 + d5 * 2.0);
        let (f, g) = (d2 * 4.0 - d4 * 5.0 + d6, d1 * 2.0 - d3 * 2.5 + d5 * 0.5);
        [d0 - d6 + (d4 - d2) * 5.25, a + b, a - b, c + e, c - e, f + g, f - g, d7 - d1 + (d3 - d5) * 5.25]
    }

    #[inline(always)]
    fn by_a<T: Value>([e0, e1, e2, e3, e4, e5]: [T; 6]) -> [T; 8] {
        let (p1, q1) = (e0 + e2 + e4, e1 + e3 + e5);
        let (p3, q3) = (e0 + e2 * 4.0 + e4 * 16.0, e1 * 2.0 + e3 * 8.0 + e5 * 32.0);
        let (p5, q5) = (e0 + e2 * 0.25 + e4 * 0.0625, e1 * 0.5 + e3 * 0.125 + e5 * 0.03125);
        [e0, p1 + q1, p1 - q1, p3 + q3, p3 - q3, p5 + q5, p5 - q5, e5]
    }

    #[inline(always)]
    fn by_at<T: Value>([m0, m1, m2, m3, m4, m5, m6, m7]: [T; 8]) -> [T; 6] {
        let (a, b) = (m1 + m2, m1 - m2);
        let (c, d) = (m3 + m4, m3 - m4);
        let (e, f) = (m5 + m6, m5 - m6);
        [m0 + a + c + e, b + d * 2.0 + f * 0.5, a + c * 4.0 + e * 0.25, b + d * 8.0 + f * 0.125, a + c * 16.0 + e * 0.0625, b + d * 32.0 + f * 0.03125 + m7]
    }

    #[inline(always)]
    fn by_g<T: Value>([g0, g1, g2]: [T; 3]) -> [T; 8] {
        let sum = g0 + g2;
        let (a, b) = (g0 * (1.0 / 90.0) + g2 * (2.0 / 45.0), g1 * (1.0 / 45.0));
        let (c, d) = (g0 * (32.0 / 45.0) + g2 * (8.0 / 45.0), g1 * (16.0 / 45.0));
        [g0, (sum + g1) * (-2.0 / 9.0), (sum - g1) * (-2.0 / 9.0), a + b, a - b, c + d, c - d, g2]
    }

    #[inline(always)]
    fn by_gt<T: Value>([u0, u1, u2, u3, u4, u5, u6, u7]: [T; 8]) -> [T; 3] {
        let (a, b) = (u1 + u2, u1 - u2);
        let (c, d) = (u3 + u4, u3 - u4);
        let (e, f) = (u5 + u6, u5 - u6);
        [
            u0 - a * (2.0 / 9.0) + c * (1.0 / 90.0) + e * (32.0 / 45.0),
            b * (-2.0 / 9.0) + d * (1.0 / 45.0) + f * (16.0 / 45.0),
            a * (-2.0 / 9.0) + c * (2.0 / 45.0) + e * (8.0 / 45.0) + u7,
        ]
    }
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

/// `G g Gᵀ` of `count` 3×3 kernels `g`, kernel `k`'s nine values `kernel(k)`: `[N², count]`.
/// A share of the kernels a thread (b4's are 170,000 kernels a step, three times): gathered
/// as `[9, kernels]`, then separably (`G g` a column at a time, then `(G g) Gᵀ` a row at a
/// time) as whole slices of the share.
fn transform_kernels<const M: usize, const N: usize, W: Tiling<M, N>>(count: usize, kernel: impl Fn(usize) -> [f32; 9] + Send + Sync) -> Vec<f32> {
    let mut transformed = zeros(N * N * count);
    for_each_task_runs(&mut transformed, [N * N, count, 1], count.div_ceil(threads()), |share, mut runs| {
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
            over_slices(W::by_g::<Eight>, &planes, [x, 3 + x, 6 + x].map(|k| k * len), &mut [&mut half], std::array::from_fn(|y| (0, (y * 3 + x) * len)), len);
        }
        for y in 0..N {
            over_slices(W::by_g::<Eight>, &half, [0, 1, 2].map(|x| (y * 3 + x) * len), &mut runs, std::array::from_fn(|x| (y * N + x, 0)), len);
        }
    });
    transformed
}

/// Which tiling a plane takes: F(6×6, 3×3) where its tiles hold fewer values than F(4×4,
/// 3×3)'s, else F(4×4, 3×3). At 96×96, b2's 24×24 planes are 16 tiles of 64 values against 36
/// of 36, b3's 12×12 four against nine, b4's 6×6 one against four: 1.27, 1.27 and 2.25 times
/// fewer values to transform and multiply. At 32×32, b2's 8×8 planes are four tiles either way
/// and keep F(4×4, 3×3), and so do 16×16 planes (576 values either way).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tiles {
    Four,
    Six,
}

impl Tiles {
    fn of(height: usize, width: usize) -> Tiles {
        let values = |m: usize| height.div_ceil(m) * width.div_ceil(m) * (m + 2) * (m + 2);
        if values(6) < values(4) {
            Tiles::Six
        } else {
            Tiles::Four
        }
    }
}

/// The 3×3 'same' convolution of `input` (`[in, batch, height, width]`) with `weight` (`[out,
/// in, 3, 3]`), then the `bias` and the ReLU: `[out, batch, height, width]`.
pub(super) fn forward(input: &[f32], weight: &[f32], shape: [usize; 4], outputs: usize, bias: &[f32]) -> Vec<f32> {
    let [inputs, _, height, width] = shape;
    match Tiles::of(height, width) {
        Tiles::Four => convolve_with::<4, 6, F4>(input, &kernels::<4, 6, F4>(weight, [outputs, inputs]), shape, outputs, Some(bias)),
        Tiles::Six => convolve_with::<6, 8, F6>(input, &kernels::<6, 8, F6>(weight, [outputs, inputs]), shape, outputs, Some(bias)),
    }
}

/// The input gradient of a 3×3 'same' convolution with `weight` (`[out, in, 3, 3]`) whose
/// output gradient (through the ReLU) is `grad` (`[out, batch, height, width]`): the
/// convolution of `grad` with the kernels turned 180°, `[in, batch, height, width]`.
pub(super) fn input_gradient(grad: &[f32], weight: &[f32], shape: [usize; 4], inputs: usize) -> Vec<f32> {
    let [outputs, _, height, width] = shape;
    match Tiles::of(height, width) {
        Tiles::Four => convolve_with::<4, 6, F4>(grad, &gradient_kernels::<4, 6, F4>(weight, [outputs, inputs]), shape, inputs, None),
        Tiles::Six => convolve_with::<6, 8, F6>(grad, &gradient_kernels::<6, 8, F6>(weight, [outputs, inputs]), shape, inputs, None),
    }
}

/// The weight gradient of a 3×3 'same' convolution of `input` (`[in, batch, height, width]`)
/// whose output gradient (through the ReLU) is `grad` (`[out, batch·height·width]`): `[out,
/// in, 3, 3]` ([`weight_gradient_with`]).
pub(super) fn weight_gradient(input: &[f32], grad: &[f32], shape: [usize; 4], outputs: usize) -> Vec<f32> {
    let [_, _, height, width] = shape;
    match Tiles::of(height, width) {
        Tiles::Four => weight_gradient_with::<4, 6, F4>(input, grad, shape, outputs),
        Tiles::Six => weight_gradient_with::<6, 8, F6>(input, grad, shape, outputs),
    }
}

/// The transformed kernels of a forward pass: `weight` is `[out, in, 3, 3]`; the result
/// `[N², out, in]`.
fn kernels<const M: usize, const N: usize, W: Tiling<M, N>>(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transform_kernels::<M, N, W>(outputs * inputs, |kernel| first_of(&weight[kernel * 9..]))
}

/// The transformed kernels of the input gradient: each kernel of `weight` (`[out, in, 3, 3]`)
/// turned 180°, with its input and output swapped: `[N², in, out]`.
fn gradient_kernels<const M: usize, const N: usize, W: Tiling<M, N>>(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transform_kernels::<M, N, W>(outputs * inputs, |kernel| {
        let (input, out) = (kernel / outputs, kernel % outputs);
        let mut values: [f32; 9] = first_of(&weight[(out * inputs + input) * 9..]);
        values.reverse();
        values
    })
}

/// The tiles of a plane of `height`×`width`: `(tile rows, tile columns)`.
fn tiles_of<const M: usize>(height: usize, width: usize) -> (usize, usize) {
    (height.div_ceil(M), width.div_ceil(M))
}

/// The 3×3 'same' convolution of `input` (`[in, batch, height, width]`) with the transformed
/// `kernels` (`[N², out, in]`), then, given a `bias`, the bias and the ReLU: `[out, batch,
/// height, width]`.
fn convolve_with<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], kernels: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize, bias: Option<&[f32]>) -> Vec<f32> {
    if height.min(width) < TASK_SIDE {
        return convolve_batch::<M, N, W>(input, kernels, [inputs, batch, height, width], outputs, bias);
    }
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
    let tiles = tile_rows * tile_columns;
    let per_task = images_per_task(batch, tiles, N * N, inputs + outputs);
    let mut output = zeros(outputs * batch * height * width);
    for_each_task_runs(&mut output, [outputs, batch, height * width], per_task, |images, runs| {
        let columns = images.len() * tiles;
        let mut transformed = vec![0.0f32; N * N * inputs * columns];
        transform_tiles::<M, N, W>(input, [inputs, batch, height, width], images, 0..inputs, &mut elements::<N>(&mut transformed));
        let mut products = vec![0.0f32; N * N * outputs * columns];
        for (element, products) in products.chunks_exact_mut(outputs * columns).enumerate() {
            let kernels = Operand::Plain(&kernels[element * outputs * inputs..], inputs);
            let tiles = Operand::Plain(&transformed[element * inputs * columns..], columns);
            product(products, kernels, tiles, [outputs, inputs, columns], false);
        }
        let mut scratch = Vec::new();
        for (out, run) in runs.into_iter().enumerate() {
            untransform::<M, N, W>(&products, [outputs, columns], out, run, [height, width], bias.map(|bias| bias[out]), &mut scratch);
        }
    });
    output
}

/// The weight gradient of a 3×3 'same' convolution of `input` (`[in, batch, height, width]`)
/// whose output gradient (through the ReLU) is `grad` (`[out, batch·height·width]`):
/// `[out, in, 3, 3]`. With `Y = Aᵀ (U ⊙ V) A` for each tile, the gradient of `U` is the sum
/// over tiles of `(A dY Aᵀ) ⊙ V`: for each of the N² elements a product `Ŷ[ξ] [out, tiles] ·
/// V[ξ]ᵀ [tiles, in]`, where the shifted copies' product is 4 to 5 times larger; then the
/// kernels' `Gᵀ dU G`. Each thread sums its share of the tasks in order, and the shares are
/// added in order: the same sum on every run.
fn weight_gradient_with<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], grad: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize) -> Vec<f32> {
    if height.min(width) < TASK_SIDE {
        return weight_gradient_batch::<M, N, W>(input, grad, [inputs, batch, height, width], outputs);
    }
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
    let tiles = tile_rows * tile_columns;
    let per_task = images_per_task(batch, tiles, N * N, inputs + outputs);
    let tasks = batch.div_ceil(per_task);
    let shares = threads().min(tasks).max(1);
    let share = |share: usize| {
        let mut sum = vec![0.0f32; N * N * outputs * inputs];
        for task in share * tasks / shares..(share + 1) * tasks / shares {
            let images = task * per_task..((task + 1) * per_task).min(batch);
            let columns = images.len() * tiles;
            let mut transformed = vec![0.0f32; N * N * inputs * columns];
            transform_tiles::<M, N, W>(input, [inputs, batch, height, width], images.clone(), 0..inputs, &mut elements::<N>(&mut transformed));
            let mut gradients = vec![0.0f32; N * N * outputs * columns];
            transform_gradient::<M, N, W>(grad, [outputs, batch, height, width], images, 0..outputs, &mut elements::<N>(&mut gradients));
            let accumulate = task > share * tasks / shares;
            for (element, sum) in sum.chunks_exact_mut(outputs * inputs).enumerate() {
                let gradients = Operand::Plain(&gradients[element * outputs * columns..], columns);
                let tiles = Operand::Transposed(&transformed[element * inputs * columns..], columns);
                product(sum, gradients, tiles, [outputs, columns, inputs], accumulate);
            }
        }
        sum
    };
    kernel_gradient::<M, N, W>(&sum_of_shares(shares, N * N * outputs * inputs, share), [outputs, inputs])
}

/// The tiles of a whole batch of small planes transformed ([`transform_tiles`]), a share of
/// the channels a thread: `[N², in, batch·tiles]`, the tiles as a task lays them.
fn transform_batch<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
    let columns = batch * tile_rows * tile_columns;
    let mut transformed = zeros(N * N * inputs * columns);
    for_each_task_runs(&mut transformed, [N * N, inputs, columns], inputs.div_ceil(threads()), |channels, mut runs| {
        transform_tiles::<M, N, W>(input, shape, 0..batch, channels, &mut runs);
    });
    transformed
}

/// [`convolve`] of a whole batch of small planes at once: its tiles transformed a share of the
/// input channels a thread, then a share of the output channels a thread (their products over
/// all the batch's tiles, and their outputs). Each output is the same sum as a task's: the
/// batch's size changes only how wide the products are.
fn convolve_batch<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], kernels: &[f32], shape: [usize; 4], outputs: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let transformed = transform_batch::<M, N, W>(input, shape);
    let columns = transformed.len() / (N * N * inputs).max(1);
    let planes = batch * height * width;
    let per_task = outputs.div_ceil(threads()).max(1);
    let mut output = zeros(outputs * planes);
    for_each_task(&mut output, per_task * planes, |task, part| {
        let (first, count) = (task * per_task, part.len() / planes.max(1));
        let mut products = vec![0.0f32; N * N * count * columns];
        for (element, products) in products.chunks_exact_mut(count * columns).enumerate() {
            let kernels = Operand::Plain(&kernels[(element * outputs + first) * inputs..], inputs);
            let tiles = Operand::Plain(&transformed[element * inputs * columns..], columns);
            product(products, kernels, tiles, [count, inputs, columns], false);
        }
        let mut scratch = Vec::new();
        for (out, run) in part.chunks_exact_mut(planes.max(1)).enumerate() {
            untransform::<M, N, W>(&products, [count, columns], out, run, [height, width], bias.map(|bias| bias[first + out]), &mut scratch);
        }
    });
    output
}

/// [`weight_gradient`] of a whole batch of small planes at once: its tiles transformed a share
/// of the input channels a thread, then a share of the output channels a thread (their
/// gradients' transforms, and their products summed over all the batch's tiles).
fn weight_gradient_batch<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], grad: &[f32], shape: [usize; 4], outputs: usize) -> Vec<f32> {
    let [inputs, batch, height, width] = shape;
    let transformed = transform_batch::<M, N, W>(input, shape);
    let columns = transformed.len() / (N * N * inputs).max(1);
    let mut sums = zeros(N * N * outputs * inputs);
    for_each_task_runs(&mut sums, [N * N, outputs, inputs], outputs.div_ceil(threads()), |outs, sums| {
        let count = outs.len();
        let mut gradients = vec![0.0f32; N * N * count * columns];
        transform_gradient::<M, N, W>(grad, [outputs, batch, height, width], 0..batch, outs, &mut elements::<N>(&mut gradients));
        for (element, sum) in sums.into_iter().enumerate() {
            let gradients = Operand::Plain(&gradients[element * count * columns..], columns);
            let tiles = Operand::Transposed(&transformed[element * inputs * columns..], columns);
            product(sum, gradients, tiles, [count, columns, inputs], false);
        }
    });
    kernel_gradient::<M, N, W>(&sums, [outputs, inputs])
}

/// `Gᵀ dU G` of each kernel's `dU` (`sums`, `[N², out, in]`): the kernels' gradient, `[out, in,
/// 3, 3]`. A share of the kernels a thread, separably as whole slices of the share: dU is
/// N×N, its elements `count` apart; half[y][j] = (Gᵀ dU)[y][j], then planes[y][x] the result's.
fn kernel_gradient<const M: usize, const N: usize, W: Tiling<M, N>>(sums: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    let count = outputs * inputs;
    let per_task = count.div_ceil(threads()).max(1);
    let mut gradient = zeros(9 * count);
    for_each_task(&mut gradient, 9 * per_task, |task, part| {
        let (first, len) = (task * per_task, part.len() / 9);
        let mut half = vec![0.0f32; 3 * N * len];
        for j in 0..N {
            let at = std::array::from_fn(|i| (i * N + j) * count + first);
            over_slices(W::by_gt::<Eight>, sums, at, &mut [&mut half], [0, 1, 2].map(|y| (0, (y * N + j) * len)), len);
        }
        let mut planes = vec![0.0f32; 9 * len];
        for y in 0..3 {
            over_slices(W::by_gt::<Eight>, &half, std::array::from_fn(|j| (y * N + j) * len), &mut [&mut planes], [0, 1, 2].map(|x| (0, (y * 3 + x) * len)), len);
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

/// `A dY Aᵀ` of every M×M block `dY` of the output gradient `grad` (`[out, batch·height·width]`)
/// for the `images` and the output channels `outputs`, zero past the planes' edges: into the
/// N² slices of `into`, each `[outputs, images·tiles]`, the tiles in the order
/// [`transform_tiles`] lays them. Separably: `dY Aᵀ` of each row of every tile (N values from
/// its M), eight tiles at a time ([`across_tiles`]), then `A (dY Aᵀ)` of all the task's tiles
/// as whole slices.
fn transform_gradient<const M: usize, const N: usize, W: Tiling<M, N>>(grad: &[f32], [_, batch, height, width]: [usize; 4], images: Range<usize>, outputs: Range<usize>, into: &mut [&mut [f32]]) {
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    // Planes whose blocks pass their edge are copied with zeros after them (only the inside is
    // written, so the zeros stay from channel to channel); others are read where they lie.
    let exact = height % M == 0 && width % M == 0;
    let (padded_width, padded_plane) = (M * tile_columns, M * tile_rows * M * tile_columns);
    let mut padded = vec![0.0f32; if exact { 0 } else { images.len() * padded_plane }];
    // Where each tile's first value lies in its planes, in the order the products take them.
    let corners = tile_corners::<M>(columns, [tiles, tile_columns], padded_width, padded_plane);
    // h[j][r][tile]: element j of `dY Aᵀ` of row r of every tile. Every value is written.
    let mut h = vec![0.0f32; N * M * columns];
    for (index, out) in outputs.enumerate() {
        let planes = &grad[(out * batch + images.start) * height * width..(out * batch + images.end) * height * width];
        let blocks = if exact {
            planes
        } else {
            pad_planes(planes, [height, width], &mut padded, [padded_width, padded_plane], 0);
            &padded
        };
        for r in 0..M {
            across_tiles(W::by_a::<Eight>, blocks, &corners, r * padded_width, &mut h, |j| (j * M + r) * columns);
        }
        for j in 0..N {
            let at = std::array::from_fn(|r| (j * M + r) * columns);
            let to = std::array::from_fn(|i| (i * N + j, index * columns));
            over_slices(W::by_a::<Eight>, &h, at, into, to, columns);
        }
    }
}

/// The N² element slices of a transform laid out `[N², rows, columns]`.
fn elements<const N: usize>(transformed: &mut [f32]) -> Vec<&mut [f32]> {
    let element = transformed.len() / (N * N);
    transformed.chunks_exact_mut(element.max(1)).collect()
}

/// How many images one task takes: enough for [`PRODUCT_COLUMNS`] tiles in its products where
/// the batch allows, as many tasks for each thread, and its scratch (`tile` values a tile for each
/// of `channels`, inputs and outputs) within [`SCRATCH_LIMIT`].
fn images_per_task(batch: usize, tiles: usize, tile: usize, channels: usize) -> usize {
    let threads = threads();
    let least = PRODUCT_COLUMNS.div_ceil(tiles.max(1));
    let most = (SCRATCH_LIMIT / (tile * channels * tiles).max(1)).max(1);
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

/// `Bᵀ d B` of every N×N tile `d` of the `images` in the input channels `channels` (tiles M
/// apart, starting one before the input, zero outside it): into the N² slices of `into`, each
/// `[channels, images·tiles]`.
///
/// Separably, for each channel: `d B` of each row `y` of every tile (N values from its N
/// inputs), eight tiles at a time ([`across_tiles`]), into `h`; then `Bᵀ (d B)` of all the
/// task's tiles at once, as whole slices.
fn transform_tiles<const M: usize, const N: usize, W: Tiling<M, N>>(input: &[f32], [_, batch, height, width]: [usize; 4], images: Range<usize>, channels: Range<usize>, into: &mut [&mut [f32]]) {
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    // A channel's planes for the task's images, padded: a row and a column of zeros before
    // each plane, and zeros after it as far as its last tiles reach. Only the inside is
    // written, so the padding stays zero from channel to channel.
    let (padded_height, padded_width) = (M * tile_rows + N - M, M * tile_columns + N - M);
    let padded_plane = padded_height * padded_width;
    let mut padded = vec![0.0f32; images.len() * padded_plane];
    // Where each tile's first value lies in `padded`, the tiles in the order the products take.
    let corners = tile_corners::<M>(columns, [tiles, tile_columns], padded_width, padded_plane);
    // h[j][y][tile]: element j of `d B` of row y of every tile. Every value is written.
    let mut h = vec![0.0f32; N * N * columns];
    for (index, channel) in channels.enumerate() {
        let channel_planes = &input[(channel * batch + images.start) * height * width..(channel * batch + images.end) * height * width];
        pad_planes(channel_planes, [height, width], &mut padded, [padded_width, padded_plane], 1);
        for y in 0..N {
            across_tiles(W::by_bt::<Eight>, &padded, &corners, y * padded_width, &mut h, |j| (j * N + y) * columns);
        }
        for j in 0..N {
            let at = std::array::from_fn(|y| (j * N + y) * columns);
            let to = std::array::from_fn(|i| (i * N + j, index * columns));
            over_slices(W::by_bt::<Eight>, &h, at, into, to, columns);
        }
    }
}

/// Where each of `columns` tiles (`tiles` a plane, `tile_columns` a row of tiles, in the order
/// the products take them: image after image) starts, in planes `plane` values apart whose
/// rows are `row` values apart.
fn tile_corners<const M: usize>(columns: usize, [tiles, tile_columns]: [usize; 2], row: usize, plane: usize) -> Vec<usize> {
    (0..columns)
        .map(|column| {
            let (image, tile) = (column / tiles, column % tiles);
            image * plane + (tile / tile_columns) * M * row + (tile % tile_columns) * M
        })
        .collect()
}

/// Each `height`×`width` plane of `planes` copied into its plane of `padded` (`[row, plane]`
/// apart), `before` rows and columns in. Only the inside is written, so the padding around it
/// stays as it was (zero) from channel to channel.
fn pad_planes(planes: &[f32], [height, width]: [usize; 2], padded: &mut [f32], [row, plane]: [usize; 2], before: usize) {
    for (from, into) in planes.chunks_exact(height * width).zip(padded.chunks_exact_mut(plane)) {
        for (line, into) in from.chunks_exact(width).zip(into[before * row..].chunks_exact_mut(row)) {
            into[before..before + width].copy_from_slice(line);
        }
    }
}

/// `into[to(j) + c] = transform(d)[j]` for every tile `c`, where `d[k] = from[corners[c] +
/// offset + k]`: a transform of one row of every tile (its `K` values, in a row of `from`),
/// eight tiles at a time. Each tile's values are read on their own, but added and stored as
/// eight: along a row of a plane the tiles are too few (one to four) to be a vector's lanes.
#[inline(always)]
fn across_tiles<const K: usize, const R: usize>(transform: impl Fn([Eight; K]) -> [Eight; R], from: &[f32], corners: &[usize], offset: usize, into: &mut [f32], to: impl Fn(usize) -> usize) {
    for (group, corners) in corners.chunks(8).enumerate() {
        let mut lanes = [[0.0f32; 8]; K];
        for (lane, &corner) in corners.iter().enumerate() {
            let d: [f32; K] = first_of(&from[corner + offset..]);
            for k in 0..K {
                lanes[k][lane] = d[k];
            }
        }
        let results = transform(lanes.map(|lane| Eight::load(&lane)));
        for (j, result) in results.into_iter().enumerate() {
            let at = to(j) + group * 8;
            if corners.len() == 8 {
                result.store(&mut into[at..]);
            } else {
                let mut values = [0.0f32; 8];
                result.store(&mut values);
                into[at..at + corners.len()].copy_from_slice(&values[..corners.len()]);
            }
        }
    }
}

/// `Aᵀ m A` of output channel `out`'s products `m` (N² a tile; `products` is `[N², outputs,
/// columns]`), each M×M block written to its place in `run` (the channel's planes of the task's
/// images), plus `bias` through the ReLU where given. As whole slices of all the task's tiles
/// (`Aᵀ m`, then `(Aᵀ m) A`, into `scratch`), then each output row's blocks.
fn untransform<const M: usize, const N: usize, W: Tiling<M, N>>(products: &[f32], [outputs, columns]: [usize; 2], out: usize, run: &mut [f32], [height, width]: [usize; 2], bias: Option<f32>, scratch: &mut Vec<f32>) {
    let (tile_rows, tile_columns) = tiles_of::<M>(height, width);
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
        over_slices(W::by_at::<Eight>, products, at, &mut [&mut *t], to, columns);
    }
    // u[r][c] = (Aᵀ m A)[r][c] = Σ_j Aᵀ[c][j] t[r][j].
    for r in 0..M {
        let at = std::array::from_fn(|j| (r * N + j) * columns);
        let to = std::array::from_fn(|c| (0, (r * M + c) * columns));
        over_slices(W::by_at::<Eight>, t, at, &mut [&mut *u], to, columns);
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
