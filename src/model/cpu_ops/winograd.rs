//! 3×3 stride-1 'same' convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each 2×2 block of outputs
//! from a 4×4 tile of the input with 16 multiplications where the shifted copies take 36.
//!
//! The tiles of every channel are transformed (`V = Bᵀ d B`), the kernels too (`U = G g Gᵀ`),
//! and the 16 elements of a tile are 16 matrix products, `M[ξ] = U[ξ] [out, in] · V[ξ] [in,
//! tiles]`, whose results are transformed back (`Y = Aᵀ M A`). 2.25 times fewer multiplications
//! than [the shifted copies](super::conv) for the 3×3 convolutions, which are two thirds of the
//! network's: used for their outputs, their input gradients (a 3×3 'same' convolution of the
//! output gradient with the kernels turned 180° and their input and output swapped) and their
//! weight gradients (16 products of the transformed output gradient and tiles, summed over the
//! tiles).
//!
//! Only on planes of [`LEAST_SIDE`] or more (b2's 24×24, b3's 12×12: 63 % of the 3×3
//! convolutions' multiplications). On b4's 6×6 and b5's 3×3 planes a tile's transforms are a
//! few values long, and a 3×3 plane takes four tiles of 16 outputs for its 9: there all 3×3
//! convolutions by Winograd measured no faster (BENCHMARKS.md, 2026-12-06).
//!
//! Activations are laid out channels first, `[channels, batch, height, width]`, a task of a few
//! images a thread, as in [`super::conv`].

use super::{for_each_task_runs, product, relu, sum_of_shares, threads, zeros, Operand};

/// The least side of the planes a 3×3 convolution takes by Winograd's algorithm.
pub(super) const LEAST_SIDE: usize = 12;

/// The elements of a transformed tile.
const TILE: usize = 16;

/// How many columns (tiles) a task's products have at least, where the batch allows.
const PRODUCT_COLUMNS: usize = 512;

/// How many floats one thread's scratch (transformed tiles and products) may take (16 MB).
const SCRATCH_LIMIT: usize = 4 << 20;

/// `G g Gᵀ` of each 3×3 kernel `g`, laid out `[16, rows, columns]`: `kernel(row, column)`
/// gives the kernel at `(row, column)` of the products' left matrix, 9 values in row-major order.
fn transformed(rows: usize, columns: usize, kernel: impl Fn(usize, usize) -> [f32; 9]) -> Vec<f32> {
    let mut kernels = vec![0.0f32; TILE * rows * columns];
    for row in 0..rows {
        for column in 0..columns {
            let g = kernel(row, column);
            // G g: 4×3. G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
            let mut half = [[0.0f32; 3]; 4];
            for x in 0..3 {
                let (a, b, c) = (g[x], g[3 + x], g[6 + x]);
                half[0][x] = a;
                half[1][x] = 0.5 * (a + b + c);
                half[2][x] = 0.5 * (a - b + c);
                half[3][x] = c;
            }
            // (G g) Gᵀ: 4×4.
            for (y, [a, b, c]) in half.into_iter().enumerate() {
                let values = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                for (x, value) in values.into_iter().enumerate() {
                    kernels[((y * 4 + x) * rows + row) * columns + column] = value;
                }
            }
        }
    }
    kernels
}

/// The transformed kernels of a forward pass: `weight` is `[out, in, 3, 3]`; the result
/// `[16, out, in]`.
pub(super) fn kernels(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transformed(outputs, inputs, |out, input| {
        let at = (out * inputs + input) * 9;
        std::array::from_fn(|k| weight[at + k])
    })
}

/// The transformed kernels of the input gradient: each kernel of `weight` (`[out, in, 3, 3]`)
/// turned 180°, with its input and output swapped: `[16, in, out]`.
pub(super) fn gradient_kernels(weight: &[f32], [outputs, inputs]: [usize; 2]) -> Vec<f32> {
    transformed(inputs, outputs, |input, out| {
        let at = (out * inputs + input) * 9;
        let mut turned = [0.0f32; 9];
        turned.iter_mut().zip(weight[at..at + 9].iter().rev()).for_each(|(into, &value)| *into = value);
        turned
    })
}

/// The 3×3 'same' convolution of `input` (`[in, batch, height, width]`) with the transformed
/// `kernels` (`[16, out, in]`), then, given a `bias`, the bias and the ReLU: `[out, batch,
/// height, width]`.
pub(super) fn convolve(input: &[f32], kernels: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let tiles = height.div_ceil(2) * width.div_ceil(2);
    let per_task = images_per_task(batch, tiles, inputs + outputs);
    let mut output = zeros(outputs * batch * height * width);
    for_each_task_runs(&mut output, [outputs, batch, height * width], per_task, |images, runs| {
        let columns = images.len() * tiles;
        let transformed = transform_tiles(input, [inputs, batch, height, width], images);
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
/// over tiles of `(A dY Aᵀ) ⊙ V`: for each of the 16 elements a product `Ŷ[ξ] [out, tiles] ·
/// V[ξ]ᵀ [tiles, in]`, where the shifted copies' product is 2.25 times larger; then the
/// kernels' `Gᵀ dU G`. Each thread sums its share of the tasks in order, and the shares are
/// added in order: the same sum on every run.
pub(super) fn weight_gradient(input: &[f32], grad: &[f32], [inputs, batch, height, width]: [usize; 4], outputs: usize) -> Vec<f32> {
    let tiles = height.div_ceil(2) * width.div_ceil(2);
    let per_task = images_per_task(batch, tiles, inputs + outputs);
    let tasks = batch.div_ceil(per_task);
    let shares = threads().min(tasks).max(1);
    let share = |share: usize| {
        let mut sum = vec![0.0f32; TILE * outputs * inputs];
        for task in share * tasks / shares..(share + 1) * tasks / shares {
            let images = task * per_task..((task + 1) * per_task).min(batch);
            let columns = images.len() * tiles;
            let transformed = transform_tiles(input, [inputs, batch, height, width], images.clone());
            let gradients = transform_gradient(grad, [outputs, batch, height, width], images);
            let accumulate = task > share * tasks / shares;
            for (element, sum) in sum.chunks_exact_mut(outputs * inputs).enumerate() {
                let gradients = Operand::Plain(&gradients[element * outputs * columns..], columns);
                let tiles = Operand::Transposed(&transformed[element * inputs * columns..], columns);
                product(sum, gradients, tiles, [outputs, columns, inputs], accumulate);
            }
        }
        sum
    };
    let sums = sum_of_shares(shares, TILE * outputs * inputs, share);
    // Gᵀ dU G of each kernel: dU is 4×4 (its elements `outputs·inputs` apart), the result 3×3.
    let mut gradient = vec![0.0f32; outputs * inputs * 9];
    for (kernel, into) in gradient.chunks_exact_mut(9).enumerate() {
        let u = |i: usize, j: usize| sums[(i * 4 + j) * outputs * inputs + kernel];
        // Gᵀ dU (3×4) a column at a time, then (Gᵀ dU) G = (Gᵀ (Gᵀ dU)ᵀ)ᵀ a row at a time.
        let columns: [[f32; 3]; 4] = std::array::from_fn(|j| by_g_transposed([u(0, j), u(1, j), u(2, j), u(3, j)]));
        for (y, into) in into.chunks_exact_mut(3).enumerate() {
            into.copy_from_slice(&by_g_transposed(columns.map(|column| column[y])));
        }
    }
    gradient
}

/// `Gᵀ x` of a column `x` of four, Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]].
fn by_g_transposed([a, b, c, d]: [f32; 4]) -> [f32; 3] {
    [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d]
}

/// `A dY Aᵀ` of every 2×2 block `dY` of the output gradient `grad` (`[out, batch·height·width]`)
/// for the `images`, zero past the planes' edges: `[16, out, images·tiles]`, the tiles in the
/// order [`transform_tiles`] lays them. A = [[1, 0], [1, 1], [1, −1], [0, −1]]. Separably: each
/// row's `dY Aᵀ` (a tile column's four values from its two), the even and the odd rows apart,
/// then `A (dY Aᵀ)` of all a plane's tiles as whole slices.
fn transform_gradient(grad: &[f32], [outputs, batch, height, width]: [usize; 4], images: std::ops::Range<usize>) -> Vec<f32> {
    let (tile_rows, tile_columns) = (height.div_ceil(2), width.div_ceil(2));
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    let mut transformed = vec![0.0f32; TILE * outputs * columns];
    // h[j][parity][tile]: row 2·ty + parity of every tile, element j of dY Aᵀ.
    let mut h = vec![0.0f32; 4 * 2 * tiles];
    for out in 0..outputs {
        let planes = &grad[(out * batch + images.start) * height * width..(out * batch + images.end) * height * width];
        for (image, plane) in planes.chunks_exact(height * width).enumerate() {
            h.fill(0.0);
            for (y, row) in plane.chunks_exact(width).enumerate() {
                let at = (y % 2) * tiles + (y / 2) * tile_columns;
                let [h0, h1, h2, h3] = [0, 1, 2, 3].map(|j| j * 2 * tiles + at);
                for tile in 0..tile_columns {
                    let (p, q) = (row[2 * tile], row.get(2 * tile + 1).copied().unwrap_or(0.0));
                    h[h0 + tile] = p;
                    h[h1 + tile] = p + q;
                    h[h2 + tile] = p - q;
                    h[h3 + tile] = -q;
                }
            }
            let first = image * tiles;
            for j in 0..4 {
                let (top, bottom) = (&h[j * 2 * tiles..j * 2 * tiles + tiles], &h[(j * 2 + 1) * tiles..(j * 2 + 2) * tiles]);
                let element = |i: usize| ((i * 4 + j) * outputs + out) * columns + first;
                fill(&mut transformed[element(0)..][..tiles], |k| top[k]);
                fill(&mut transformed[element(1)..][..tiles], |k| top[k] + bottom[k]);
                fill(&mut transformed[element(2)..][..tiles], |k| top[k] - bottom[k]);
                fill(&mut transformed[element(3)..][..tiles], |k| -bottom[k]);
            }
        }
    }
    transformed
}

/// `into[k] = value(k)` for every `k`: one element of the transformed tiles, as a whole slice.
#[inline]
fn fill(into: &mut [f32], value: impl Fn(usize) -> f32) {
    into.iter_mut().enumerate().for_each(|(k, into)| *into = value(k));
}

/// How many images one task takes: enough for [`PRODUCT_COLUMNS`] tiles in its products where
/// the batch allows, as many tasks for each thread, and its scratch (16 values a tile for each
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

/// `Bᵀ d B` of every 4×4 tile `d` of the `images` (tiles two apart, starting one before the
/// input, zero outside it), laid out `[16, in, images·tiles]`.
/// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
///
/// Separably, for each plane: `d B` of every input row once (`h`, a tile column's four values
/// from its four inputs), the even and the odd rows apart; then `Bᵀ (d B)` of all the plane's
/// tiles at once, as whole slices: the rows `2·ty + y` of every tile row `ty` lie together in
/// one half of `h`.
fn transform_tiles(input: &[f32], [inputs, batch, height, width]: [usize; 4], images: std::ops::Range<usize>) -> Vec<f32> {
    let (tile_rows, tile_columns) = (height.div_ceil(2), width.div_ceil(2));
    let tiles = tile_rows * tile_columns;
    let columns = images.len() * tiles;
    let mut transformed = vec![0.0f32; TILE * inputs * columns];
    // An input row with its padding: input columns −1 ..= 2·tile_columns.
    let mut row = vec![0.0f32; 2 * tile_columns + 2];
    // h[j][parity][row / 2][tile column]: padded rows 0 ..= 2·tile_rows + 1 (input rows −1 ..).
    let half = (tile_rows + 1) * tile_columns;
    let mut h = vec![0.0f32; 4 * 2 * half];
    for channel in 0..inputs {
        let channel_planes = &input[(channel * batch + images.start) * height * width..(channel * batch + images.end) * height * width];
        for (image, plane) in channel_planes.chunks_exact(height * width).enumerate() {
            for padded in 0..2 * (tile_rows + 1) {
                match padded.checked_sub(1).filter(|&y| y < height) {
                    Some(y) => {
                        row[1..1 + width].copy_from_slice(&plane[y * width..(y + 1) * width]);
                        row[1 + width..].fill(0.0);
                    }
                    None => row.fill(0.0),
                }
                let at = (padded % 2) * half + (padded / 2) * tile_columns;
                let [h0, h1, h2, h3] = [0, 1, 2, 3].map(|j| j * 2 * half + at);
                for (tile, d) in row.windows(4).step_by(2).enumerate().take(tile_columns) {
                    h[h0 + tile] = d[0] - d[2];
                    h[h1 + tile] = d[1] + d[2];
                    h[h2 + tile] = d[2] - d[1];
                    h[h3 + tile] = d[1] - d[3];
                }
            }
            // Bᵀ (d B): rows 2·ty + y of every tile row, y = 0..4, for each element j of a row.
            let first = image * tiles;
            for j in 0..4 {
                let rows = |y: usize| {
                    let at = j * 2 * half + (y % 2) * half + (y / 2) * tile_columns;
                    &h[at..at + tiles]
                };
                let (d0, d1, d2, d3) = (rows(0), rows(1), rows(2), rows(3));
                let element = |i: usize| ((i * 4 + j) * inputs + channel) * columns + first;
                fill(&mut transformed[element(0)..][..tiles], |k| d0[k] - d2[k]);
                fill(&mut transformed[element(1)..][..tiles], |k| d1[k] + d2[k]);
                fill(&mut transformed[element(2)..][..tiles], |k| d2[k] - d1[k]);
                fill(&mut transformed[element(3)..][..tiles], |k| d1[k] - d3[k]);
            }
        }
    }
    transformed
}

/// `Aᵀ m A` of output channel `out`'s products `m` (16 a tile; `products` is `[16, outputs,
/// columns]`), each 2×2 block written to its place in `run` (the channel's planes of the task's
/// images), plus `bias` through the ReLU where given. Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
/// As whole slices of all the task's tiles (`Aᵀ m`, then `(Aᵀ m) A`, into `scratch`), then
/// each output row's pairs.
fn untransform(products: &[f32], [outputs, columns]: [usize; 2], out: usize, run: &mut [f32], [height, width]: [usize; 2], bias: Option<f32>, scratch: &mut Vec<f32>) {
    let (tile_rows, tile_columns) = (height.div_ceil(2), width.div_ceil(2));
    let place = |value: f32| match bias {
        Some(bias) => relu(value + bias),
        None => value,
    };
    scratch.resize(12 * columns, 0.0);
    let (t, u) = scratch.split_at_mut(8 * columns);
    let m = |i: usize, j: usize| {
        let at = ((i * 4 + j) * outputs + out) * columns;
        &products[at..at + columns]
    };
    // t[r][j] = (Aᵀ m)[r][j].
    for j in 0..4 {
        let (m0, m1, m2, m3) = (m(0, j), m(1, j), m(2, j), m(3, j));
        let (top, bottom) = t[2 * j * columns..(2 * j + 2) * columns].split_at_mut(columns);
        for k in 0..columns {
            top[k] = m0[k] + m1[k] + m2[k];
            bottom[k] = m1[k] - m2[k] - m3[k];
        }
    }
    // u[r][c] = (Aᵀ m A)[r][c].
    for r in 0..2 {
        let t = |j: usize| &t[(2 * j + r) * columns..(2 * j + r + 1) * columns];
        let (t0, t1, t2, t3) = (t(0), t(1), t(2), t(3));
        let (left, right) = u[2 * r * columns..(2 * r + 2) * columns].split_at_mut(columns);
        for k in 0..columns {
            left[k] = t0[k] + t1[k] + t2[k];
            right[k] = t1[k] - t2[k] - t3[k];
        }
    }
    // Each output row 2·ty + r: its tiles' pairs (u[r][0], u[r][1]).
    let tiles = tile_rows * tile_columns;
    for (image, plane) in run.chunks_exact_mut(height * width).enumerate() {
        for (y, line) in plane.chunks_exact_mut(width).enumerate() {
            let (r, first) = (y % 2, image * tiles + (y / 2) * tile_columns);
            let left = &u[2 * r * columns + first..2 * r * columns + first + tile_columns];
            let right = &u[(2 * r + 1) * columns + first..(2 * r + 1) * columns + first + tile_columns];
            let mut pairs = line.chunks_exact_mut(2);
            for ((pair, &a), &b) in (&mut pairs).zip(left).zip(right) {
                pair[0] = place(a);
                pair[1] = place(b);
            }
            if let [last] = pairs.into_remainder() {
                *last = place(left[tile_columns - 1]);
            }
        }
    }
}
