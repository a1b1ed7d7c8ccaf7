//! Weight files: [safetensors](https://huggingface.co/docs/safetensors), which numpy and PyTorch
//! read too. The tensors are named by their place in the model (`b3.blocks.0.branches.1.convs.1.conv.weight`: block 3a, branch p2, its 3×3 convolution);
//! the metadata says which app wrote the file and how the weights were trained.
//!
//! Files are written and read on the CPU device. A model on WebGPU is first copied there with
//! [`to_cpu`], which reads the device asynchronously: a record taken straight from WebGPU
//! tensors would read them synchronously, which panics in a browser.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use burn_store::{ModuleSnapshot, SafetensorsStore};
use safetensors::SafeTensorError;
use thiserror::Error;

use super::{GoogLeNet, GoogLeNetConfig};

/// The metadata key that marks files written by this app, and its value.
pub const FORMAT_KEY: &str = "format";
pub const FORMAT: &str = "googlenet-web/1";
/// The metadata key for the side the images were resized to in training: what inference uses.
pub const INPUT_SIZE_KEY: &str = "input_size";

/// Why a weights file was refused. The model in use is never touched by a refused file.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum WeightsError {
    #[error("the weights file is empty")]
    Empty,
    #[error("the file is cut short ({0}): it was not saved or downloaded completely")]
    Truncated(String),
    #[error("this is not a weights file (safetensors expected): {0}")]
    NotWeights(String),
    #[error("these are the weights of another model: {0}")]
    OtherModel(String),
    #[error("could not read the weights from the device: {0}")]
    Readback(String),
    #[error("could not write the weights: {0}")]
    Write(String),
}

/// What a file says about the weights in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightsInfo {
    /// The side images are resized to before the model sees them.
    pub input_size: usize,
    /// Everything in the file's metadata, for display.
    pub metadata: BTreeMap<String, String>,
}

/// A copy of `model` on the CPU device, read from its device asynchronously, in one readback.
pub async fn to_cpu(model: &GoogLeNet) -> Result<GoogLeNet, WeightsError> {
    #[derive(Default)]
    struct Flatten {
        tensors: Vec<Tensor<1>>,
        shapes: Vec<Vec<usize>>,
    }
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            self.shapes.push(value.dims().to_vec());
            self.tensors.push(value.flatten(0, D - 1));
        }
    }
    /// Puts the values back, parameter by parameter, in the order the visitor met them.
    struct Refill {
        values: Vec<f32>,
        offset: usize,
        device: Device,
    }
    impl ModuleMapper for Refill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let shape: [usize; D] = tensor.dims();
            let len: usize = shape.iter().product();
            let data = TensorData::new(self.values[self.offset..self.offset + len].to_vec(), shape);
            self.offset += len;
            Param::from_mapped_value(id, Tensor::from_data(data, &self.device), mapper)
        }
    }

    let mut flatten = Flatten::default();
    model.visit(&mut flatten);
    let all = Tensor::cat(flatten.tensors, 0);
    let values = crate::engine::read_floats(all).await.map_err(WeightsError::Readback)?;
    let cpu = Device::flex();
    let config = GoogLeNetConfig::new();
    let mut refill = Refill { values, offset: 0, device: cpu.clone() };
    let copy = config.init(&cpu).map(&mut refill);
    debug_assert_eq!(refill.offset, refill.values.len());
    Ok(copy)
}

/// The safetensors bytes of a model on the CPU device (see [`to_cpu`]), with `input_size` and
/// `notes` (e.g. how it was trained) in the metadata.
pub fn save(model: &GoogLeNet, input_size: usize, notes: &[(&str, String)]) -> Result<Vec<u8>, WeightsError> {
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata(FORMAT_KEY, FORMAT)
        .metadata(INPUT_SIZE_KEY, input_size.to_string());
    for (key, value) in notes {
        store = store.metadata(*key, value.clone());
    }
    model.save_into(&mut store).map_err(|error| WeightsError::Write(error.to_string()))?;
    store.get_bytes().map_err(|error| WeightsError::Write(error.to_string()))
}

/// Reads a weights file into a new model on `device`. The model in use stays as it is
/// whatever the file holds; only a complete set of tensors of the right shapes is accepted.
pub fn load(bytes: &[u8], device: &Device) -> Result<(GoogLeNet, WeightsInfo), WeightsError> {
    let metadata = check_container(bytes)?;
    let input_size = match metadata.get(INPUT_SIZE_KEY) {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|size| crate::train::INPUT_SIZES.contains(size))
            .ok_or_else(|| WeightsError::OtherModel(format!("its input size \"{text}\" is not a usable image side")))?,
        None => GoogLeNetConfig::new().input_size,
    };

    let cpu = Device::flex();
    let mut model = GoogLeNetConfig::new().init(&cpu);
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec())).validate(false).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|error| WeightsError::NotWeights(error.to_string()))?;
    if let Some(error) = result.errors.first() {
        return Err(WeightsError::OtherModel(match error {
            burn_store::ApplyError::ShapeMismatch { path, expected, found } => format!(
                "`{path}` has shape {:?} in the file where this GoogLeNet needs {:?} ({} of its tensors {} not fit)",
                found.as_slice(),
                expected.as_slice(),
                result.errors.len(),
                if result.errors.len() == 1 { "does" } else { "do" }
            ),
            other => other.to_string(),
        }));
    }
    if !result.missing.is_empty() {
        let (first, _) = &result.missing[0];
        return Err(WeightsError::OtherModel(format!(
            "{} of the model's {} tensors are not in the file (the first: `{first}`)",
            result.missing.len(),
            result.missing.len() + result.applied.len()
        )));
    }
    if !result.unused.is_empty() {
        return Err(WeightsError::OtherModel(format!(
            "the file has {} tensors this GoogLeNet does not (the first: `{}`)",
            result.unused.len(),
            result.unused[0]
        )));
    }
    let model = if *device == cpu { model } else { model.to_device(device) };
    Ok((model, WeightsInfo { input_size, metadata }))
}

/// Checks the safetensors container (header and data lengths) and returns its metadata.
fn check_container(bytes: &[u8]) -> Result<BTreeMap<String, String>, WeightsError> {
    if bytes.is_empty() {
        return Err(WeightsError::Empty);
    }
    // Files a user may pick by mistake, named for what they are.
    let known = [
        (&b"\x89PNG"[..], "it is a PNG image"),
        (&b"\xff\xd8\xff"[..], "it is a JPEG image"),
        (&b"\x1f\x8b"[..], "it is gzip data (a Fashion-MNIST file?)"),
        (&[0, 0, 8, 3][..], "it is a Fashion-MNIST image file"),
        (&[0, 0, 8, 1][..], "it is a Fashion-MNIST label file"),
        (&b"PK\x03\x04"[..], "it is a zip archive (a PyTorch .pt file?)"),
    ];
    if let Some((_, what)) = known.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Err(WeightsError::NotWeights((*what).to_owned()));
    }
    match safetensors::SafeTensors::read_metadata(bytes) {
        Ok((_, metadata)) if metadata.tensors().is_empty() => Err(WeightsError::OtherModel("the file holds no tensors".into())),
        Ok((_, metadata)) => Ok(metadata.metadata().clone().unwrap_or_default().into_iter().collect()),
        Err(SafeTensorError::HeaderTooSmall) => Err(WeightsError::NotWeights(format!("it is only {} bytes long", bytes.len()))),
        // The header says how long it is: a file that stops inside it was cut short.
        Err(SafeTensorError::InvalidHeaderLength) if bytes.get(8) == Some(&b'{') => {
            Err(WeightsError::Truncated(format!("{} bytes, and the header alone needs more", bytes.len())))
        }
        Err(SafeTensorError::MetadataIncompleteBuffer) => match expected_length(bytes) {
            Some(expected) if bytes.len() < expected => {
                Err(WeightsError::Truncated(format!("{} of {expected} bytes", bytes.len())))
            }
            Some(expected) => Err(WeightsError::NotWeights(format!("{} bytes follow the tensor data", bytes.len() - expected))),
            None => Err(WeightsError::NotWeights("its header does not match its length".into())),
        },
        Err(SafeTensorError::HeaderTooLarge) => {
            // The header length was read to get this far: there are 8 bytes.
            let declared = u64::from_le_bytes(bytes[..8].try_into().expect("longer than 8 bytes"));
            Err(WeightsError::NotWeights(format!("its first 8 bytes announce a header of {declared} bytes, which no weights file has")))
        }
        Err(error) => Err(WeightsError::NotWeights(format!("its header is not readable ({error})"))),
    }
}

/// The length a safetensors file with this (already parsed once) header must have.
fn expected_length(bytes: &[u8]) -> Option<usize> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + header_len)?).ok()?;
    let data_end = header
        .as_object()?
        .values()
        .filter_map(|info| info.get("data_offsets")?.get(1)?.as_u64())
        .max()?;
    Some(8 + header_len + usize::try_from(data_end).ok()?)
}
