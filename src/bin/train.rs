//! Trains the page's GoogLeNet natively — wgpu on Vulkan / Metal / DX12, or the CPU — with the
//! same model, data and training code as the browser, and writes a weights file the page loads
//! unchanged (*Load weights…* in 3 · Classify).
//!
//! ```sh
//! cargo run --release --features gpu --bin train -- --data /usr/share/datasets/fashion-mnist
//! cargo run --release --bin train -- --preset quick     # the page's Quick look
//! cargo run --release --bin train -- --help
//! ```

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    googlenet_web::allocator::keep_freed_memory();
    if let Err(message) = native::run(native::Options::parse()) {
        eprintln!("train: {message}");
        std::process::exit(2);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::io::IsTerminal;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use burn::module::Module;
    use clap::{Parser, ValueEnum};
    use futures_lite::future::block_on;
    use googlenet_web::data::read_split;
    use googlenet_web::engine::{BackendPreference, Engine};
    use googlenet_web::model::weights;
    use googlenet_web::train::{Progress, Schedule, TrainConfig, TrainingRun, WeightInit};
    use indicatif::{ProgressBar, ProgressStyle};

    /// Trains the page's GoogLeNet on Fashion-MNIST natively (wgpu or the CPU) and writes a
    /// weights file the page loads unchanged (3 · Classify → Load weights…). Settings default
    /// to the seed's (D2L §5.9): 5 epochs, batch 128, SGD at 0.05, 96×96, all 60,000 / 10,000
    /// images; --preset quick takes the page's Quick look, and any setting given as well
    /// changes that one.
    #[derive(Parser, Debug)]
    #[command(name = "train", version)]
    pub struct Options {
        /// The folder of the four Fashion-MNIST files (gzipped or raw).
        #[arg(long, value_name = "DIR", default_value = "/usr/share/datasets/fashion-mnist")]
        data: PathBuf,
        /// Where the weights go; rewritten after every epoch.
        #[arg(long, value_name = "FILE", default_value = "googlenet-fashion-mnist.safetensors")]
        out: PathBuf,
        /// Go on training the weights in FILE (e.g. downloaded from the page).
        #[arg(long, value_name = "FILE")]
        init: Option<PathBuf>,
        /// The settings to start from.
        #[arg(long, value_enum, default_value_t = Preset::Seed)]
        preset: Preset,
        /// Passes over the training images.
        #[arg(long)]
        epochs: Option<usize>,
        /// Images per SGD step.
        #[arg(long)]
        batch_size: Option<usize>,
        /// The learning rate (at the first step, with --schedule linear).
        #[arg(long)]
        lr: Option<f64>,
        /// SGD's momentum; 0 is the seed's plain SGD.
        #[arg(long)]
        momentum: Option<f64>,
        /// A fresh model's initialisation.
        #[arg(long, value_enum)]
        weights: Option<Init>,
        /// How the learning rate moves: constant (the seed's), or falling linearly to 0.
        #[arg(long, value_enum)]
        schedule: Option<Rate>,
        /// The side the 28×28 images are resized to.
        #[arg(long)]
        input_size: Option<usize>,
        /// Train on the first N training images only.
        #[arg(long, value_name = "N")]
        train_images: Option<usize>,
        /// Test on the first N test images only.
        #[arg(long, value_name = "N")]
        test_images: Option<usize>,
        /// Seeds the initialisation and the shuffles.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to train: wgpu (Vulkan, Metal, DX12; a build with --features gpu), the CPU, or
        /// whichever is faster.
        #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
    }

    #[derive(Clone, Copy, Debug, ValueEnum)]
    enum Preset {
        /// The seed's settings.
        Seed,
        /// The page's Quick look.
        Quick,
    }

    #[derive(Clone, Copy, Debug, ValueEnum)]
    enum Init {
        /// Glorot uniform, Keras's default (the seed's).
        Glorot,
        /// He uniform, for ReLU networks.
        He,
    }

    #[derive(Clone, Copy, Debug, ValueEnum)]
    enum Rate {
        Constant,
        Linear,
    }

    #[derive(Clone, Copy, Debug, ValueEnum)]
    enum DeviceChoice {
        Auto,
        Wgpu,
        Cpu,
    }

    impl Options {
        /// The preset, with every setting given on the command line put in.
        fn config(&self) -> Result<TrainConfig, String> {
            let mut config = match self.preset {
                Preset::Seed => TrainConfig::default(),
                Preset::Quick => TrainConfig::quick_look(),
            };
            config.epochs = self.epochs.unwrap_or(config.epochs);
            config.batch_size = self.batch_size.unwrap_or(config.batch_size);
            config.learning_rate = self.lr.unwrap_or(config.learning_rate);
            config.momentum = self.momentum.unwrap_or(config.momentum);
            config.input_size = self.input_size.unwrap_or(config.input_size);
            config.train_subset = self.train_images.or(config.train_subset);
            config.test_subset = self.test_images.or(config.test_subset);
            config.seed = self.seed.unwrap_or(config.seed);
            if let Some(init) = self.weights {
                config.init = match init {
                    Init::Glorot => WeightInit::Glorot,
                    Init::He => WeightInit::He,
                };
            }
            if let Some(rate) = self.schedule {
                config.schedule = match rate {
                    Rate::Constant => Schedule::Constant,
                    Rate::Linear => Schedule::Linear,
                };
            }
            config.validate().map_err(|error| error.to_string())?;
            Ok(config)
        }

        fn device(&self) -> BackendPreference {
            match self.device {
                DeviceChoice::Auto => BackendPreference::Auto,
                DeviceChoice::Wgpu => BackendPreference::WebGpu,
                DeviceChoice::Cpu => BackendPreference::Cpu,
            }
        }
    }

    /// A bar for `total` units in a terminal; nothing (a plain line per epoch follows) when the
    /// output goes elsewhere.
    fn bar(total: usize, what: &str) -> ProgressBar {
        if !std::io::stdout().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!("{{prefix}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} {{per_sec}}, {{eta}} left"))
                // A constant template, checked by every terminal run.
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    pub fn run(options: Options) -> Result<(), String> {
        let config = options.config()?;
        let (train, test) = (read_split(&options.data, "train")?, read_split(&options.data, "t10k")?);
        // "webgpu" in the page's words is wgpu here.
        let engine = Engine::start_native(options.device());
        println!("{}", engine.summary().replace("WebGPU", "wgpu"));
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
            "GoogLeNet, {train_size} training / {test_size} test images at {side}×{side}, batch {}, lr {} ({:?}), momentum {}, {:?} weights, {} epochs, seed {}",
            config.batch_size,
            config.learning_rate,
            config.schedule,
            config.momentum,
            config.init,
            config.epochs,
            config.seed,
            side = config.input_size
        );

        let started = Instant::now();
        let mut epoch_started = Instant::now();
        let mut epoch_bar: Option<ProgressBar> = None;
        let mut test_bar: Option<ProgressBar> = None;
        while let Some(progress) = block_on(run.advance()).map_err(|error| error.to_string())? {
            match progress {
                Progress::Step(step) => {
                    let bar = epoch_bar.get_or_insert_with(|| {
                        let bar = bar(step.steps_per_epoch * config.batch_size, "images");
                        bar.set_prefix(format!("epoch {}/{}", step.epoch, config.epochs));
                        bar
                    });
                    bar.set_position(((step.step_in_epoch - 1) * config.batch_size + step.batch_size) as u64);
                    bar.set_message(format!("loss {:.4}, accuracy {:.1} %", step.epoch_loss, step.epoch_accuracy * 100.0));
                }
                Progress::Testing { epoch, done, total } => {
                    if let Some(bar) = epoch_bar.take() {
                        bar.finish_and_clear();
                    }
                    let bar = test_bar.get_or_insert_with(|| {
                        let bar = bar(total, "tested");
                        bar.set_prefix(format!("epoch {epoch}/{}", config.epochs));
                        bar
                    });
                    bar.set_position(done as u64);
                }
                Progress::Epoch(report) => {
                    for bar in [epoch_bar.take(), test_bar.take()].into_iter().flatten() {
                        bar.finish_and_clear();
                    }
                    println!(
                        "epoch {}/{}: train loss {:.4}, train accuracy {:.1} %, test loss {:.4}, test accuracy {:.2} %, {:.0} s",
                        report.epoch,
                        config.epochs,
                        report.train_loss,
                        report.train_accuracy * 100.0,
                        report.test_loss,
                        report.test_accuracy * 100.0,
                        epoch_started.elapsed().as_secs_f64(),
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
