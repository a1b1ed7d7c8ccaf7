//! The benchmark natively: the same training run and classifier as the page's Benchmark
//! panel, on wgpu (Vulkan / Metal / DX12) or the CPU, printing the same JSON.
//!
//! ```sh
//! cargo run --release --features gpu --bin bench -- --data /usr/share/datasets/fashion-mnist --device wgpu
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    googlenet_web::allocator::keep_freed_memory();
    if let Err(message) = native::run(native::Options::parse()) {
        eprintln!("bench: {message}");
        std::process::exit(2);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;
    use std::time::Instant;

    use clap::{Parser, ValueEnum};
    use futures_lite::future::block_on;
    use googlenet_web::bench::{self, BenchConfig};
    use googlenet_web::data::read_split;
    use googlenet_web::engine::{BackendPreference, Engine};

    /// The page's benchmark natively: training images/s at each batch size and single-image
    /// inference, on wgpu (Vulkan, Metal, DX12) or the CPU. Progress goes to stderr, the JSON
    /// report to stdout. With --layers on: each convolution of the network on the CPU device
    /// at the largest batch size, forward, input gradient and weight gradient as Burn's
    /// autodiff computes them, the median of --steps runs each, as a Markdown table.
    #[derive(Parser, Debug)]
    #[command(name = "bench", version)]
    pub struct Options {
        /// The folder of Fashion-MNIST's training files (gzipped or raw).
        #[arg(long, value_name = "DIR", default_value = "/usr/share/datasets/fashion-mnist")]
        data: PathBuf,
        /// Where to run: wgpu (a build with --features gpu), the CPU, or whichever is faster.
        #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// The side the 28×28 images are resized to.
        #[arg(long, default_value_t = 96)]
        input_size: usize,
        /// Training batch sizes to time, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [16, 32, 128])]
        batch_sizes: Vec<usize>,
        /// Timed training steps per batch size (after one untimed warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Timed single-image classifications.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// `on`: the per-convolution profile instead.
        #[arg(long, value_name = "on|off", default_value = "off")]
        layers: String,
    }

    #[derive(Clone, Copy, Debug, ValueEnum)]
    enum DeviceChoice {
        Auto,
        Wgpu,
        Cpu,
    }

    pub fn run(options: Options) -> Result<(), String> {
        let config = BenchConfig {
            input_size: options.input_size,
            batch_sizes: options.batch_sizes.clone(),
            timed_steps: options.steps,
            inference_runs: options.runs,
        };
        let preference = match options.device {
            DeviceChoice::Auto => BackendPreference::Auto,
            DeviceChoice::Wgpu => BackendPreference::WebGpu,
            DeviceChoice::Cpu => BackendPreference::Cpu,
        };
        let layers = options.layers == "on";
        config.validate()?;
        if layers {
            let batch = config.batch_sizes.iter().copied().max().unwrap_or(128);
            return super::layers::profile(batch, config.input_size, config.timed_steps);
        }
        let train = read_split(&options.data, "train")?;

        let engine = Engine::start_native(preference);
        let summary = engine.summary().replace("WebGPU", "wgpu");
        eprintln!("{summary}");
        let clock = Instant::now();
        let report = block_on(bench::run(&config, summary, &engine.device, &mut (), train.split(), || clock.elapsed().as_secs_f64() * 1000.0, |stage| {
            eprint!("\r{:60}", stage.describe())
        }))?;
        eprintln!();
        let json = serde_json::json!({
            "runner": "native",
            "machine": machine(),
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs()),
            "report": report,
        });
        // Cannot fail: derived `Serialize` over structs, strings and numbers.
        println!("{}", serde_json::to_string_pretty(&json).expect("plain data"));
        Ok(())
    }

    /// The CPU's model name and core count, for the record.
    fn machine() -> String {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo.lines().find_map(|line| line.strip_prefix("model name")).map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        format!("{}, {cores} cores", model.unwrap_or_else(|| std::env::consts::ARCH.to_owned()))
    }
}

/// Where a training step's time goes on the CPU device, convolution by convolution.
#[cfg(not(target_arch = "wasm32"))]
mod layers {
    use std::time::Instant;

    use burn::tensor::module::{conv2d, conv_transpose2d};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
    use burn::tensor::{Device, Distribution, Tensor};
    use googlenet_web::model::GoogLeNetConfig;

    /// One convolution of the network: its name, kernel, stride, channels in and out, and the
    /// side of its input.
    struct Conv {
        name: String,
        kernel: usize,
        stride: usize,
        cin: usize,
        cout: usize,
        side: usize,
    }

    fn convolutions(input_size: usize) -> Vec<Conv> {
        let config = GoogLeNetConfig::new();
        let conv = |name: String, kernel, stride, cin, cout, side| Conv { name, kernel, stride, cin, cout, side };
        let side_after = |side: usize, stride: usize| side.div_ceil(stride);
        let mut side = input_size;
        let mut all = vec![conv("b1 7×7".into(), 7, 2, config.in_channels, 64, side)];
        side = side_after(side_after(side, 2), 2);
        all.push(conv("b2 1×1".into(), 1, 1, 64, 64, side));
        all.push(conv("b2 3×3".into(), 3, 1, 64, 192, side));
        side = side_after(side, 2);
        let names = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"];
        let mut index = 0;
        for stage in [config.b3(), config.b4(), config.b5()] {
            for block in &stage.blocks {
                let name = names[index];
                index += 1;
                let i = block.in_channels;
                all.push(conv(format!("{name} p1 1×1"), 1, 1, i, block.c1, side));
                all.push(conv(format!("{name} p2 1×1"), 1, 1, i, block.c2[0], side));
                all.push(conv(format!("{name} p2 3×3"), 3, 1, block.c2[0], block.c2[1], side));
                all.push(conv(format!("{name} p3 1×1"), 1, 1, i, block.c3[0], side));
                all.push(conv(format!("{name} p3 5×5"), 5, 1, block.c3[0], block.c3[1], side));
                all.push(conv(format!("{name} p4 1×1"), 1, 1, i, block.c4, side));
            }
            if stage.pool_after {
                side = side_after(side, 2);
            }
        }
        all
    }

    /// The median time of `runs` calls of `op`, in ms (each result read, so nothing is left
    /// undone).
    fn time(runs: usize, mut op: impl FnMut() -> Tensor<4>) -> f64 {
        let _ = op().into_data();
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                let _ = op().into_data();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    pub fn profile(batch: usize, input_size: usize, runs: usize) -> Result<(), String> {
        let device = Device::flex();
        let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
        println!("Convolutions of one training step at batch {batch}, {input_size}×{input_size}, CPU device (burn-flex), threads: {threads}, median of {runs}:\n");
        println!("| conv | in → out | side | GFLOP fwd | forward ms | input grad ms | weight grad ms | as matmul: fwd / input / weight ms |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        let (mut total, mut total_matmul, mut flops) = ([0.0f64; 3], [0.0f64; 3], 0.0);
        for conv in convolutions(input_size) {
            let out_side = conv.side.div_ceil(conv.stride);
            let pad = conv.kernel / 2;
            let x = Tensor::<4>::random([batch, conv.cin, conv.side, conv.side], Distribution::Default, &device);
            let w = Tensor::<4>::random([conv.cout, conv.cin, conv.kernel, conv.kernel], Distribution::Default, &device);
            let dy = Tensor::<4>::random([batch, conv.cout, out_side, out_side], Distribution::Default, &device);
            let options = ConvOptions::new([conv.stride; 2], [pad; 2], [1, 1], 1);
            let forward = time(runs, || conv2d(x.clone(), w.clone(), None, options.clone()));
            // What burn-backend's conv2d_x_backward and conv2d_weight_backward compute.
            let padding_out = (conv.side + 2 * pad - conv.kernel) % conv.stride;
            let input_grad = if conv.name.starts_with("b1") {
                0.0 // the input needs no gradient
            } else {
                time(runs, || {
                    conv_transpose2d(dy.clone(), w.clone(), None, ConvTransposeOptions::new([conv.stride; 2], [pad; 2], [padding_out; 2], [1, 1], 1))
                })
            };
            let weight_grad = time(runs, || {
                let options = ConvOptions::new([1, 1], [pad; 2], [conv.stride; 2], 1);
                conv2d(x.clone().swap_dims(0, 1), dy.clone().swap_dims(0, 1), None, options).swap_dims(0, 1)
            });
            let gflop = 2.0 * (batch * conv.cout * out_side * out_side * conv.cin * conv.kernel * conv.kernel) as f64 / 1e9;
            flops += 3.0 * gflop - if conv.name.starts_with("b1") { gflop } else { 0.0 };
            let mut matmul = String::from("–");
            if conv.kernel == 1 {
                let n = batch * conv.side * conv.side;
                let w2 = w.clone().reshape([conv.cout, conv.cin]);
                let x2 = x.clone().swap_dims(0, 1).reshape([conv.cin, n]);
                let dy2 = dy.clone().swap_dims(0, 1).reshape([conv.cout, n]);
                let shape = [1, 1, conv.cout, n];
                let f = time(runs, || w2.clone().matmul(x.clone().swap_dims(0, 1).reshape([conv.cin, n])).reshape(shape));
                let d = time(runs, || w2.clone().transpose().matmul(dy2.clone()).reshape([1, 1, conv.cin, n]));
                let g = time(runs, || dy2.clone().matmul(x2.clone().transpose()).reshape([1, 1, conv.cout, conv.cin]));
                total_matmul[0] += f;
                total_matmul[1] += d;
                total_matmul[2] += g;
                matmul = format!("{f:.1} / {d:.1} / {g:.1}");
            } else {
                total_matmul[0] += forward;
                total_matmul[1] += input_grad;
                total_matmul[2] += weight_grad;
            }
            total[0] += forward;
            total[1] += input_grad;
            total[2] += weight_grad;
            println!(
                "| {} | {} → {} | {} | {gflop:.2} | {forward:.1} | {input_grad:.1} | {weight_grad:.1} | {matmul} |",
                conv.name, conv.cin, conv.cout, conv.side
            );
        }
        let sum = |t: [f64; 3]| t.iter().sum::<f64>();
        println!(
            "| **all 57** | | | {:.1} (fwd + bwd) | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} / {:.0} |",
            flops, total[0], total[1], total[2], total_matmul[0], total_matmul[1], total_matmul[2]
        );
        println!("\nConvolutions with Conv2d: {:.0} ms a step ({:.1} GFLOP/s); with the 1×1 ones as matrix products: {:.0} ms ({:.1} GFLOP/s).", sum(total), flops / sum(total) * 1000.0, sum(total_matmul), flops / sum(total_matmul) * 1000.0);
        Ok(())
    }
}
