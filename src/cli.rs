//! The command line of the native tools (`--bin train`, `--bin bench`): `--flag value` pairs.

use crate::engine::BackendPreference;

/// The `--flag value` pairs of `args`, in order; `--help` or `-h` gives `usage` as the error.
pub fn flag_values(args: Vec<String>, usage: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(usage.into());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{usage}"))?;
        pairs.push((flag, value));
    }
    Ok(pairs)
}

pub fn whole_number(flag: &str, value: &str) -> Result<usize, String> {
    value.parse().map_err(|_| format!("{flag}: \"{value}\" is not a whole number"))
}

/// `--device`: the page's backend names, with wgpu for WebGPU.
pub fn device(value: &str) -> Result<BackendPreference, String> {
    BackendPreference::parse(value).ok_or_else(|| format!("--device: auto, wgpu or cpu, not \"{value}\""))
}
