//! The container of a weights file, checked before any model is built: the safetensors
//! header, its metadata, and the names and shapes of the tensors against the ones the model
//! needs. Only safetensors, serde_json and the standard library: the fuzz target
//! (`fuzz/fuzz_targets/weights.rs`) compiles this file on its own, without Burn.

use std::collections::{BTreeMap, HashMap};

use safetensors::SafeTensorError;
use thiserror::Error;

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

/// What the header of a readable weights file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileHeader {
    /// The file's metadata (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
    /// Every tensor's shape, by name.
    pub tensors: HashMap<String, Vec<usize>>,
}

/// Reads the header of a safetensors file whose lengths all add up: the header, every
/// tensor's data, and nothing after it.
pub fn read_header(bytes: &[u8]) -> Result<FileHeader, WeightsError> {
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
        Ok((_, metadata)) => Ok(FileHeader {
            tensors: metadata.tensors().into_iter().map(|(name, info)| (name, info.shape.clone())).collect(),
            metadata: metadata.metadata().clone().unwrap_or_default().into_iter().collect(),
        }),
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
            let declared = bytes.get(..8).and_then(|first| first.try_into().ok()).map_or(0, u64::from_le_bytes);
            Err(WeightsError::NotWeights(format!("its first 8 bytes announce a header of {declared} bytes, which no weights file has")))
        }
        Err(error) => Err(WeightsError::NotWeights(format!("its header is not readable ({error})"))),
    }
}

/// Checks that `found` holds exactly the tensors of `expected` (the model's, in its order),
/// each with its shape: what the model will be loaded from must fit it whole.
pub fn check_tensors(found: &HashMap<String, Vec<usize>>, expected: &[(String, Vec<usize>)]) -> Result<(), WeightsError> {
    let misfits: Vec<(&str, &[usize], &[usize])> = expected
        .iter()
        .filter_map(|(name, shape)| found.get(name).filter(|in_file| *in_file != shape).map(|in_file| (name.as_str(), &in_file[..], &shape[..])))
        .collect();
    if let Some(&(name, in_file, needed)) = misfits.first() {
        return Err(WeightsError::OtherModel(format!(
            "`{name}` has shape {in_file:?} in the file where this GoogLeNet needs {needed:?} ({} of its tensors {} not fit)",
            misfits.len(),
            if misfits.len() == 1 { "does" } else { "do" }
        )));
    }
    let missing: Vec<&str> = expected.iter().map(|(name, _)| name.as_str()).filter(|name| !found.contains_key(*name)).collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::OtherModel(format!(
            "{} of the model's {} tensors are not in the file (the first: `{first}`)",
            missing.len(),
            expected.len()
        )));
    }
    let mut unused: Vec<&str> = found.keys().map(String::as_str).filter(|name| !expected.iter().any(|(known, _)| known == name)).collect();
    unused.sort_unstable();
    if let Some(first) = unused.first() {
        return Err(WeightsError::OtherModel(format!(
            "the file has {} this GoogLeNet does not (the first: `{first}`)",
            if unused.len() == 1 { "1 tensor".to_owned() } else { format!("{} tensors", unused.len()) }
        )));
    }
    Ok(())
}

/// The length a safetensors file with this (already parsed once) header must have.
fn expected_length(bytes: &[u8]) -> Option<usize> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8usize.checked_add(header_len)?)?).ok()?;
    let data_end = header
        .as_object()?
        .values()
        .filter_map(|info| info.get("data_offsets")?.get(1)?.as_u64())
        .max()?;
    8usize.checked_add(header_len)?.checked_add(usize::try_from(data_end).ok()?)
}
