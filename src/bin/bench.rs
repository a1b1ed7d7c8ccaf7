//! The benchmark natively: the same training run and classifier as the page's Benchmark
//! panel, on wgpu (Vulkan / Metal / DX12) or the CPU, printing the same JSON.
//!
//! ```sh
//! cargo run --release --bin bench -- --data /usr/share/datasets/fashion-mnist --device wgpu
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(message) = native::run(std::env::args().skip(1).collect()) {
        eprintln!("bench: {message}");
        std::process::exit(2);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;
    use std::time::Instant;

    use futures_lite::future::block_on;
    use googlenet_web::bench::{self, BenchConfig};
    use googlenet_web::cli;
    use googlenet_web::data::read_split;
    use googlenet_web::engine::{BackendPreference, Engine};

    const USAGE: &str = "usage: bench --data DIR [--device auto|wgpu|cpu] [--input-size N] [--batch-sizes 16,32,128]
             [--steps N] [--runs N]

  DIR holds Fashion-MNIST's training files (gzipped or raw), e.g. /usr/share/datasets/fashion-mnist.
  Defaults: 96×96, batches 16, 32 and 128, 3 timed steps each, 30 timed classifications.
  Progress goes to stderr, the JSON report to stdout.";

    pub fn run(args: Vec<String>) -> Result<(), String> {
        let mut config = BenchConfig::default();
        let (mut data, mut preference) = (None, BackendPreference::Auto);
        for (flag, value) in cli::flag_values(args, USAGE)? {
            let number = |value: &str| cli::whole_number(&flag, value);
            match flag.as_str() {
                "--data" => data = Some(PathBuf::from(value)),
                "--device" => preference = cli::device(&value)?,
                "--input-size" => config.input_size = number(&value)?,
                "--steps" => config.timed_steps = number(&value)?,
                "--runs" => config.inference_runs = number(&value)?,
                "--batch-sizes" => config.batch_sizes = value.split(',').map(|part| number(part.trim())).collect::<Result<_, _>>()?,
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        config.validate()?;
        let dir = data.ok_or(USAGE)?;
        let train = read_split(&dir, "train")?;

        let engine = Engine::start_native(preference);
        let summary = engine.summary().replace("WebGPU", "wgpu");
        eprintln!("{summary}");
        let clock = Instant::now();
        let report = block_on(bench::run(&config, summary, &engine.device, train.split(), || clock.elapsed().as_secs_f64() * 1000.0, |stage| {
            eprint!("\r{:60}", stage.describe())
        }))?;
        eprintln!();
        let json = serde_json::json!({
            "runner": "native",
            "machine": machine(),
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs()),
            "report": report,
        });
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
