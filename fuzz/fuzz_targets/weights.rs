//! Any bytes give a weights file's header or an error; never a panic. A header that passes
//! names exactly GoogLeNet's tensors, each with its shape.
#![no_main]

use std::sync::OnceLock;

use googlenet_web_fuzz::googlenet_tensors;
use googlenet_web_fuzz::weights_file::{check_tensors, read_header};
use libfuzzer_sys::fuzz_target;

static EXPECTED: OnceLock<Vec<(String, Vec<usize>)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let expected = EXPECTED.get_or_init(googlenet_tensors);
    if let Ok(header) = read_header(data) {
        if check_tensors(&header.tensors, expected).is_ok() {
            assert_eq!(header.tensors.len(), expected.len());
        }
    }
});
