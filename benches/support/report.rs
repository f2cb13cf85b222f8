//! Reading criterion's report of this run, for the benchmarks' ratio summaries.

use std::path::PathBuf;

/// The mean time of one benchmark in ns, from criterion's report of this run.
pub(crate) fn mean_ns(group: &str, function: &str, param: &str) -> Option<f64> {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let path = base
        .join("criterion")
        .join(group)
        .join(function.replace("::", "__"))
        .join(param)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let at = mean.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let end = mean[at..].find([',', '}'])?;
    mean[at..at + end].trim().parse().ok()
}
