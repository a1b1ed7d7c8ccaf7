//! The IDX format (big-endian): magic `0x0000080D` where `D` is the number of dimensions, then
//! one `u32` per dimension, then the `u8` data. Fashion-MNIST ships them gzipped.

use std::io::Read;

use flate2::read::GzDecoder;
use thiserror::Error;

use super::IMAGE_SIDE;

/// Larger decoded files are refused: Fashion-MNIST's largest is 47 MB.
pub const MAX_DECODED_BYTES: usize = 64 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    Images,
    Labels,
}

/// A parsed IDX file: images are `count` × 28 × 28 bytes, labels `count` bytes in 0..9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxFile {
    pub kind: IdxKind,
    pub count: usize,
    pub data: Vec<u8>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdxError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is named .gz but is not gzip data")]
    NotGzip,
    #[error("the gzip data is corrupt or cut short: {0}")]
    CorruptGzip(String),
    #[error("the file is too large: more than {} MB once decompressed", MAX_DECODED_BYTES >> 20)]
    TooLarge,
    #[error("the header is cut short: {0} bytes, an IDX header needs 8 (labels) or 16 (images)")]
    TruncatedHeader(usize),
    #[error("not an IDX image or label file: magic number 0x{0:08X} (expected 0x00000803 for images or 0x00000801 for labels)")]
    WrongMagic(u32),
    #[error("images are {rows}×{cols}; Fashion-MNIST images are 28×28")]
    WrongDimensions { rows: usize, cols: usize },
    #[error("the file declares {declared} items but its data holds {actual} bytes of the {expected} needed")]
    Truncated { declared: usize, expected: usize, actual: usize },
    #[error("{extra} bytes follow the declared data")]
    TrailingBytes { extra: usize },
    #[error("label {label} at index {index} is outside 0..9")]
    LabelOutOfRange { index: usize, label: u8 },
}

/// Reads an IDX file, gzipped or raw, recognised by its content. `name_says_gzip` is whether
/// the user's file name ends in `.gz`: such a file must hold gzip data.
pub fn parse_idx(bytes: &[u8], name_says_gzip: bool) -> Result<IdxFile, IdxError> {
    if bytes.is_empty() {
        return Err(IdxError::Empty);
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        parse_raw(&gunzip(bytes)?)
    } else if name_says_gzip {
        Err(IdxError::NotGzip)
    } else {
        parse_raw(bytes)
    }
}

/// Decompresses at most [`MAX_DECODED_BYTES`], so a gzip bomb stops early.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    let mut decoded = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| IdxError::CorruptGzip(error.to_string()))?;
    if decoded.len() > MAX_DECODED_BYTES {
        return Err(IdxError::TooLarge);
    }
    if decoded.is_empty() {
        return Err(IdxError::Empty);
    }
    Ok(decoded)
}

fn parse_raw(bytes: &[u8]) -> Result<IdxFile, IdxError> {
    if bytes.len() > MAX_DECODED_BYTES {
        return Err(IdxError::TooLarge);
    }
    let word = |i: usize| bytes.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let magic = word(0).ok_or(IdxError::TruncatedHeader(bytes.len()))?;
    let (kind, header_words) = match magic {
        IMAGES_MAGIC => (IdxKind::Images, 4),
        LABELS_MAGIC => (IdxKind::Labels, 2),
        other => return Err(IdxError::WrongMagic(other)),
    };
    let header: Vec<usize> = (1..header_words)
        .map(|i| word(i).map(|w| w as usize))
        .collect::<Option<_>>()
        .ok_or(IdxError::TruncatedHeader(bytes.len()))?;
    let count = header[0];
    let item_bytes = match kind {
        IdxKind::Images => {
            let (rows, cols) = (header[1], header[2]);
            if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE) {
                return Err(IdxError::WrongDimensions { rows, cols });
            }
            IMAGE_SIDE * IMAGE_SIDE
        }
        IdxKind::Labels => 1,
    };
    let data = &bytes[4 * header_words..];
    let expected = count.saturating_mul(item_bytes);
    if data.len() < expected {
        return Err(IdxError::Truncated { declared: count, expected, actual: data.len() });
    }
    if data.len() > expected {
        return Err(IdxError::TrailingBytes { extra: data.len() - expected });
    }
    if kind == IdxKind::Labels {
        if let Some((index, &label)) = data.iter().enumerate().find(|(_, &label)| label > 9) {
            return Err(IdxError::LabelOutOfRange { index, label });
        }
    }
    Ok(IdxFile { kind, count, data: data.to_vec() })
}
