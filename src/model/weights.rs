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

use super::weights_file::{check_tensors, read_header};
pub use super::weights_file::WeightsError;
use super::{GoogLeNet, GoogLeNetConfig};

/// The metadata key that marks files written by this app, and its value.
pub const FORMAT_KEY: &str = "format";
pub const FORMAT: &str = "googlenet-web/1";
/// The metadata key for the side the images were resized to in training: what inference uses.
pub const INPUT_SIZE_KEY: &str = "input_size";

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
/// whatever the file holds; only a complete set of tensors of the right shapes is accepted,
/// and that is checked on the file's header before any weight is read.
pub fn load(bytes: &[u8], device: &Device) -> Result<(GoogLeNet, WeightsInfo), WeightsError> {
    let header = read_header(bytes)?;
    let input_size = match header.metadata.get(INPUT_SIZE_KEY) {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|size| crate::train::INPUT_SIZES.contains(size))
            .ok_or_else(|| WeightsError::OtherModel(format!("its input size \"{text}\" is not a usable image side")))?,
        None => GoogLeNetConfig::new().input_size,
    };

    let cpu = Device::flex();
    let mut model = GoogLeNetConfig::new().init(&cpu);
    check_tensors(&header.tensors, &tensor_table(&model))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec())).validate(false).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|error| WeightsError::NotWeights(error.to_string()))?;
    // The header check above leaves nothing for these but a tensor the store could not apply.
    if let Some(error) = result.errors.first() {
        return Err(WeightsError::OtherModel(error.to_string()));
    }
    if let Some((first, _)) = result.missing.first() {
        return Err(WeightsError::OtherModel(format!("`{first}` could not be read")));
    }
    let model = if *device == cpu { model } else { model.to_device(device) };
    Ok((model, WeightsInfo { input_size, metadata: header.metadata }))
}

/// Every parameter of `model` as a weights file names it, with its shape, in the model's order.
pub fn tensor_table(model: &GoogLeNet) -> Vec<(String, Vec<usize>)> {
    model.collect(None, None, false).into_iter().map(|tensor| (tensor.name, tensor.shape.to_vec())).collect()
}
