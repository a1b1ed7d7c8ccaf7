//! Trains the page's GoogLeNet natively — wgpu on Vulkan / Metal / DX12, or the CPU — with the
//! same model, data and training code as the browser, and writes a weights file the page loads
//! unchanged (*Load weights…* in 3 · Classify).
//!
//! ```sh
//! cargo run --release --bin train -- --data /usr/share/datasets/fashion-mnist
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(message) = native::run(std::env::args().skip(1).collect()) {
        eprintln!("train: {message}");
        std::process::exit(2);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::Instant;

    use burn::module::Module;
    use futures_lite::future::block_on;
    use googlenet_web::cli;
    use googlenet_web::data::read_split;
    use googlenet_web::engine::{BackendPreference, Engine};
    use googlenet_web::model::weights;
    use googlenet_web::train::{Progress, Schedule, TrainConfig, TrainingRun, WeightInit};

    const USAGE: &str = "usage: train --data DIR [--out FILE] [--epochs N] [--batch-size N] [--lr X] [--momentum X]
             [--weights glorot|he] [--schedule constant|linear] [--input-size N] [--train-images N]
             [--test-images N] [--seed N] [--device auto|wgpu|cpu] [--init FILE] [--preset quick|seed]

  DIR holds the four Fashion-MNIST files (gzipped or raw), e.g. /usr/share/datasets/fashion-mnist.
  Defaults are the seed's: 5 epochs, batch 128, lr 0.05, 96×96, all 60,000 / 10,000 images.
  --out FILE (default googlenet-fashion-mnist.safetensors) is rewritten after every epoch.
  --init FILE goes on training the weights in FILE (e.g. downloaded from the page).
  --momentum X: SGD's momentum (default 0, the seed's plain SGD); --weights: a fresh model's
  initialisation, glorot (the seed's) or he. --schedule linear: the learning rate falls to 0 over
  the run (default constant, the seed's). --preset quick: the page's Quick look
  settings (flags after it change single ones).";

    struct Options {
        data: PathBuf,
        out: PathBuf,
        init: Option<PathBuf>,
        config: TrainConfig,
        device: BackendPreference,
    }

    fn parse(args: Vec<String>) -> Result<Options, String> {
        let mut config = TrainConfig::default();
        let (mut data, mut out, mut device) = (None, PathBuf::from("googlenet-fashion-mnist.safetensors"), BackendPreference::Auto);
        let mut init = None;
        for (flag, value) in cli::flag_values(args, USAGE)? {
            let number = |value: &str| cli::whole_number(&flag, value);
            match flag.as_str() {
                "--data" => data = Some(PathBuf::from(value)),
                "--out" => out = PathBuf::from(value),
                "--init" => init = Some(PathBuf::from(value)),
                "--epochs" => config.epochs = number(&value)?,
                "--batch-size" => config.batch_size = number(&value)?,
                "--input-size" => config.input_size = number(&value)?,
                "--train-images" => config.train_subset = Some(number(&value)?),
                "--test-images" => config.test_subset = Some(number(&value)?),
                "--seed" => config.seed = number(&value)? as u64,
                "--lr" => config.learning_rate = value.parse().map_err(|_| format!("--lr: \"{value}\" is not a number"))?,
                "--preset" => {
                    config = match value.as_str() {
                        "quick" => TrainConfig::quick_look(),
                        "seed" => TrainConfig::default(),
                        _ => return Err(format!("--preset: \"{value}\" is neither quick nor seed")),
                    }
                }
                "--schedule" => {
                    config.schedule = match value.as_str() {
                        "constant" => Schedule::Constant,
                        "linear" => Schedule::Linear,
                        _ => return Err(format!("--schedule: \"{value}\" is neither constant nor linear")),
                    }
                }
                "--momentum" => config.momentum = value.parse().map_err(|_| format!("--momentum: \"{value}\" is not a number"))?,
                "--weights" => {
                    config.init = match value.as_str() {
                        "glorot" => WeightInit::Glorot,
                        "he" => WeightInit::He,
                        _ => return Err(format!("--weights: \"{value}\" is neither glorot nor he")),
                    }
                }
                "--device" => device = cli::device(&value)?,
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        config.validate().map_err(|error| error.to_string())?;
        Ok(Options { data: data.ok_or(USAGE)?, out, init, config, device })
    }

    pub fn run(args: Vec<String>) -> Result<(), String> {
        let options = parse(args)?;
        let (train, test) = (read_split(&options.data, "train")?, read_split(&options.data, "t10k")?);
        // "webgpu" in the page's words is wgpu here.
        let engine = Engine::start_native(options.device);
        println!("{}", engine.summary().replace("WebGPU", "wgpu"));
        let config = options.config.clone();
        let mut run = TrainingRun::new(config.clone(), train, test, &engine.device).map_err(|error| error.to_string())?;
        // Epochs the initial weights had already had, for the file's metadata.
        let mut earlier_epochs = 0;
        if let Some(path) = &options.init {
            let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
            let (model, info) = weights::load(&bytes, &engine.device).map_err(|error| format!("{}: {error}", path.display()))?;
            if info.input_size != config.input_size {
                println!("note: {} was trained at {}×{}; going on at {}×{}", path.display(), info.input_size, info.input_size, config.input_size, config.input_size);
            }
            earlier_epochs = info.metadata.get("epochs").and_then(|text| text.parse().ok()).unwrap_or(0);
            run = run.starting_from(model);
            println!("starting from {}", path.display());
        }
        let (train_size, test_size) = run.sizes();
        println!(
            "GoogLeNet, {train_size} training / {test_size} test images at {side}×{side}, batch {}, lr {}, {} epochs, seed {}",
            config.batch_size,
            config.learning_rate,
            config.epochs,
            config.seed,
            side = config.input_size
        );

        let started = Instant::now();
        let mut epoch_started = Instant::now();
        while let Some(progress) = block_on(run.advance()).map_err(|error| error.to_string())? {
            match progress {
                Progress::Step(step) => {
                    let done = step.step_in_epoch as f64 / step.steps_per_epoch as f64;
                    let rate = (step.step_in_epoch * config.batch_size) as f64 / epoch_started.elapsed().as_secs_f64();
                    print!(
                        "\repoch {}/{} [{:<30}] {:>4}/{} loss {:.4} acc {:5.1} % {:>6.1} img/s ",
                        step.epoch,
                        config.epochs,
                        "#".repeat((done * 30.0) as usize),
                        step.step_in_epoch,
                        step.steps_per_epoch,
                        step.epoch_loss,
                        step.epoch_accuracy * 100.0,
                        rate
                    );
                    let _ = std::io::stdout().flush();
                }
                Progress::Testing { .. } => {}
                Progress::Epoch(report) => {
                    println!(
                        "\repoch {}/{}: train loss {:.4}, train accuracy {:.1} %, test loss {:.4}, test accuracy {:.2} %, {:.0} s{:30}",
                        report.epoch,
                        config.epochs,
                        report.train_loss,
                        report.train_accuracy * 100.0,
                        report.test_loss,
                        report.test_accuracy * 100.0,
                        epoch_started.elapsed().as_secs_f64(),
                        ""
                    );
                    let notes = [
                        ("app", "googlenet-web train (native)".to_owned()),
                        ("epochs", (earlier_epochs + report.epoch).to_string()),
                        ("test_accuracy", format!("{:.4}", report.test_accuracy)),
                    ];
                    let cpu = block_on(weights::to_cpu(&run.model().valid())).map_err(|error| error.to_string())?;
                    let bytes = weights::save(&cpu, config.input_size, &notes).map_err(|error| error.to_string())?;
                    std::fs::write(&options.out, bytes).map_err(|error| format!("{}: {error}", options.out.display()))?;
                    epoch_started = Instant::now();
                }
            }
        }
        println!("done in {:.0} s; weights in {} (load them in the page: 3 · Classify → Load weights…)", started.elapsed().as_secs_f64(), options.out.display());
        Ok(())
    }
}
