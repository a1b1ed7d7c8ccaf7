//! Chooses the device the model runs on — the only code that touches WebGPU.
//!
//! A user wants the GPU when there is a real one. When the browser has no WebGPU, no adapter,
//! or only a software fallback adapter (SwiftShader: ~150× slower than Burn's SIMD CPU
//! backend on this network), the CPU is the better choice, and the page says why. Either can
//! be forced ([`BackendPreference`]), e.g. by tests that must exercise WebGPU.

use std::fmt;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Reads a float tensor back from its device, asynchronously: a synchronous read panics on
/// WebGPU in a browser. Every readback of the app goes through here.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = tensor.into_data_async().await.map_err(|error| format!("{error:?}"))?;
    data.try_to_vec_as::<f32>().map_err(|error| format!("{error:?}"))
}

/// What the device's memory pools hold: `(bytes in use, bytes reserved)`. `None` where the
/// backend keeps no pools (the CPU backend allocates on the heap: see the wasm memory).
pub fn device_memory(device: &Device) -> Option<(u64, u64)> {
    device.memory_pool_usage().map(|usage| (usage.bytes_in_use, usage.bytes_reserved))
}

/// What the user (or a test) asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendPreference {
    /// WebGPU on a real GPU, else the CPU.
    #[default]
    Auto,
    /// WebGPU on whatever adapter the browser gives, even a software one.
    WebGpu,
    /// Burn's CPU backend.
    Cpu,
}

impl BackendPreference {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "webgpu" | "gpu" | "wgpu" => Some(Self::WebGpu),
            "cpu" => Some(Self::Cpu),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::WebGpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }
}

/// The backend in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    WebGpu,
    Cpu,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WebGpu => "WebGPU",
            Self::Cpu => "CPU",
        })
    }
}

/// The WebGPU adapter as the browser (or wgpu natively) describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdapterInfo {
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    /// A software adapter such as SwiftShader.
    pub is_fallback: bool,
}

impl fmt::Display for AdapterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [&self.vendor, &self.architecture, &self.description]
            .into_iter()
            .map(String::as_str)
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty() {
            f.write_str("unnamed adapter")?;
        } else {
            f.write_str(&parts.join(" / "))?;
        }
        if self.is_fallback {
            f.write_str(" (software fallback adapter)")?;
        }
        Ok(())
    }
}

/// The device the model runs on, and how it was chosen.
#[derive(Clone, Debug)]
pub struct Engine {
    pub device: Device,
    pub backend: Backend,
    /// The WebGPU adapter, when the browser has one (also when the CPU was chosen over it).
    pub adapter: Option<AdapterInfo>,
    /// Why the CPU runs the model, when it does.
    pub cpu_reason: Option<String>,
}

impl Engine {
    /// Burn's CPU backend.
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self { device: Device::flex(), backend: Backend::Cpu, adapter: None, cpu_reason: Some(reason.into()) }
    }

    /// A sentence for the page: which device runs the model, and why.
    pub fn summary(&self) -> String {
        match (self.backend, &self.adapter, &self.cpu_reason) {
            (Backend::WebGpu, Some(adapter), _) => format!("Running on WebGPU: {adapter}"),
            (Backend::WebGpu, None, _) => "Running on WebGPU".to_owned(),
            (Backend::Cpu, _, Some(reason)) => format!("Running on the CPU: {reason}"),
            (Backend::Cpu, _, None) => "Running on the CPU".to_owned(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Engine {
    /// Natively, wgpu on the default adapter (Vulkan, Metal or DX12) when asked for and
    /// available, else the CPU. wgpu is the `gpu` feature's: without it, always the CPU.
    pub fn start_native(preference: BackendPreference) -> Self {
        if preference == BackendPreference::Cpu {
            return Self::cpu("chosen");
        }
        #[cfg(not(feature = "gpu"))]
        return Self::cpu("this build has no wgpu (build with --features gpu for Vulkan, Metal or DX12)");
        #[cfg(feature = "gpu")]
        match std::panic::catch_unwind(|| Device::wgpu_options().init()) {
            Ok(Ok(device)) => {
                let description = device.identity().map(|identity| identity.name).unwrap_or_default();
                let adapter = AdapterInfo { description, ..AdapterInfo::default() };
                Self { device, backend: Backend::WebGpu, adapter: Some(adapter), cpu_reason: None }
            }
            Ok(Err(error)) => Self::cpu(format!("wgpu could not start: {error}")),
            Err(_) => Self::cpu("wgpu could not start"),
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use browser::{device_lost, lose_device, on_device_lost, start};

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::cell::RefCell;

    use burn::tensor::wgpu::WgpuSetup;
    use burn::tensor::Device;
    use js_sys::{Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{AdapterInfo, Backend, BackendPreference, Engine};

    thread_local! {
        /// Burn's WebGPU device, once initialised, with the wgpu handles under it:
        /// initialising twice fails, so every engine of the page (or worker) shares this one.
        static WEBGPU: RefCell<Option<(Device, WgpuSetup)>> = const { RefCell::new(None) };
        /// Why the device was lost, once it is.
        static LOST: RefCell<Option<String>> = const { RefCell::new(None) };
        /// Who is told when it is lost ([`on_device_lost`]).
        static ON_LOST: RefCell<Option<LostCallback>> = const { RefCell::new(None) };
    }

    /// What [`on_device_lost`] calls with the browser's words.
    type LostCallback = Box<dyn Fn(String)>;

    /// Calls `callback` with the browser's words when the WebGPU device is lost (a driver
    /// reset, a GPU that went away, [`lose_device`]). Nothing on it works any more: CubeCL
    /// fails every readback from then on, and a new device needs a new module instance.
    pub fn on_device_lost(callback: impl Fn(String) + 'static) {
        ON_LOST.set(Some(Box::new(callback)));
    }

    /// Why the WebGPU device was lost, if it was.
    pub fn device_lost() -> Option<String> {
        LOST.with_borrow(Clone::clone)
    }

    /// Destroys the WebGPU device, as losing it would (a test hook). `false` when there is
    /// none to destroy.
    pub fn lose_device() -> bool {
        WEBGPU.with_borrow(|webgpu| webgpu.as_ref().map(|(_, setup)| setup.device.destroy()).is_some())
    }

    /// Chooses the device for `preference`. Never fails: whatever goes wrong with WebGPU
    /// leaves the CPU, with the reason in [`Engine::cpu_reason`].
    pub async fn start(preference: BackendPreference) -> Engine {
        if preference == BackendPreference::Cpu {
            let mut engine = Engine::cpu("chosen in the backend selector");
            engine.adapter = request_adapter().await.ok().flatten();
            return engine;
        }
        let adapter = match request_adapter().await {
            Ok(Some(adapter)) => adapter,
            Ok(None) => return Engine::cpu("the browser's WebGPU has no adapter for this machine"),
            Err(reason) => return Engine::cpu(reason),
        };
        if adapter.is_fallback && preference == BackendPreference::Auto {
            let mut engine = Engine::cpu(format!(
                "the only WebGPU adapter is a software fallback ({adapter}), slower than the CPU backend; choose WebGPU to use it anyway"
            ));
            engine.adapter = Some(adapter);
            return engine;
        }
        match webgpu_device().await {
            Ok(device) => Engine { device, backend: Backend::WebGpu, adapter: Some(adapter), cpu_reason: None },
            Err(reason) => {
                let mut engine = Engine::cpu(format!("WebGPU could not start: {reason}"));
                engine.adapter = Some(adapter);
                engine
            }
        }
    }

    async fn webgpu_device() -> Result<Device, String> {
        if let Some(reason) = device_lost() {
            return Err(format!("the device was lost ({reason})"));
        }
        if let Some((device, _)) = WEBGPU.with_borrow(Clone::clone) {
            return Ok(device);
        }
        let (device, setup) = Device::wgpu_options().init_with_setup_async().await.map_err(|error| error.to_string())?;
        // The callback must be `Send`; it runs on this thread, where the listener lives.
        setup.device.set_device_lost_callback(|reason, message| {
            let text = if message.is_empty() { format!("{reason:?}") } else { format!("{reason:?}: {message}") };
            LOST.set(Some(text.clone()));
            ON_LOST.with_borrow(|listener| listener.as_ref().map(|listener| listener(text)));
        });
        WEBGPU.set(Some((device.clone(), setup)));
        Ok(device)
    }

    /// Asks the browser for the adapter Burn will get (high-performance preference) and
    /// describes it. `Err` when the browser has no WebGPU at all.
    async fn request_adapter() -> Result<Option<AdapterInfo>, String> {
        let no_webgpu = || "this browser has no WebGPU (navigator.gpu is missing)".to_owned();
        // `navigator` of the page or of the training worker: both may have `gpu`.
        let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).map_err(|_| no_webgpu())?;
        let gpu = Reflect::get(&navigator, &"gpu".into()).map_err(|_| no_webgpu())?;
        if gpu.is_undefined() || gpu.is_null() {
            return Err(no_webgpu());
        }
        let options = Object::new();
        let _ = Reflect::set(&options, &"powerPreference".into(), &"high-performance".into());
        let request = call_method(&gpu, "requestAdapter", &options)?;
        let adapter = JsFuture::from(request.unchecked_into::<Promise>())
            .await
            .map_err(|error| format!("requestAdapter failed: {error:?}"))?;
        if adapter.is_null() || adapter.is_undefined() {
            return Ok(None);
        }
        let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
        let text = |key: &str| Reflect::get(&info, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let flag = |target: &JsValue| {
            Reflect::get(target, &"isFallbackAdapter".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
        };
        Ok(Some(AdapterInfo {
            vendor: text("vendor"),
            architecture: text("architecture"),
            description: text("description"),
            // Chromium reports it on `info`; older browsers on the adapter itself.
            is_fallback: flag(&info) || flag(&adapter),
        }))
    }

    fn call_method(target: &JsValue, name: &str, argument: &JsValue) -> Result<JsValue, String> {
        let method: js_sys::Function = Reflect::get(target, &name.into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| format!("navigator.gpu.{name} is missing"))?;
        method.call1(target, argument).map_err(|error| format!("{name} failed: {error:?}"))
    }
}
