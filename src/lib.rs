//! GoogLeNet (D2L §5.9) trained and inspected in the browser with Burn on WebGPU.
//!
//! The core — [`model`], [`data`], [`train`], [`architecture`] — is DOM-free and runs on any
//! Burn device, as is [`bench`](mod@bench), the benchmark; [`engine`] chooses that device
//! (the only code that touches WebGPU), and `app` is the Leptos page and `worker` the Web
//! Worker that trains.

pub mod architecture;
pub mod bench;
pub mod data;
pub mod engine;
pub mod infer;
pub mod model;
pub mod train;

#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod worker;
