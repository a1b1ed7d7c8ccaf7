//! Any bytes, under either kind of name, give an IDX file or an error; never a panic. A file
//! that parses holds exactly what its header declares.
#![no_main]

use googlenet_web_fuzz::idx::{parse_idx, IdxKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name_says_gzip in [false, true] {
        if let Ok(file) = parse_idx(data, name_says_gzip) {
            let item = match file.kind {
                IdxKind::Images => 28 * 28,
                IdxKind::Labels => 1,
            };
            assert_eq!(file.data.len(), file.count * item);
            if file.kind == IdxKind::Labels {
                assert!(file.data.iter().all(|&label| label < 10));
            }
        }
    }
});
