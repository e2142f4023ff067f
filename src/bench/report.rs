//! What both bench modes print and write: the machine line, table cells, and the pieces
//! of the `--json` file.

use std::fs;
use std::path::Path;

use super::proc::{cores, cpu_model, kernel_release};
use super::stats::Series;
use super::BenchError;
use crate::daemon::state_file::write_json_string;

/// `machine: CPU, N cores, Linux RELEASE`.
pub(super) fn machine_line() -> String {
    format!(
        "machine: {}, {} cores, Linux {}",
        cpu_model(),
        cores(),
        kernel_release()
    )
}

pub(super) fn machine_json() -> String {
    format!(
        "{{\"cpu\":{},\"cores\":{},\"kernel\":{}}}",
        json_str(&cpu_model()),
        cores(),
        json_str(&kernel_release())
    )
}

/// `s` as a JSON string literal.
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing into a String cannot fail.
    let _ = write_json_string(&mut out, s);
    out
}

/// Three decimals, or null for NaN and infinities (which JSON cannot hold).
pub(super) fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

/// A series as `{"count","failures","min","p50","p99","max","samples_ms"}`.
pub(super) fn series_json(s: &Series) -> String {
    let samples: Vec<String> = s.samples.iter().map(|&x| json_num(x)).collect();
    let stats = match s.summary() {
        Some(sum) => format!(
            "\"min\":{},\"p50\":{},\"p99\":{},\"max\":{}",
            json_num(sum.min),
            json_num(sum.p50),
            json_num(sum.p99),
            json_num(sum.max)
        ),
        None => "\"min\":null,\"p50\":null,\"p99\":null,\"max\":null".into(),
    };
    format!(
        "{{\"count\":{},\"failures\":{},{stats},\"samples_ms\":[{}]}}",
        s.samples.len(),
        s.failures,
        samples.join(",")
    )
}

/// The p50, p99 and max cells of a table row, dashes without samples.
pub(super) fn fmt_stats(s: &Series) -> String {
    match s.summary() {
        Some(sum) => format!("{:>8.1} {:>8.1} {:>8.1}", sum.p50, sum.p99, sum.max),
        None => format!("{:>8} {:>8} {:>8}", "-", "-", "-"),
    }
}

pub(super) fn write_json(path: &Path, json: &str) -> Result<(), BenchError> {
    fs::write(path, json).map_err(|source| BenchError::WriteJson {
        path: path.to_path_buf(),
        source,
    })?;
    crate::outln!("JSON written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_and_numbers() {
        assert_eq!(json_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json_str("x\u{1}"), "\"x\\u0001\"");
        assert_eq!(json_num(1.23456), "1.235");
        assert_eq!(json_num(f64::NAN), "null");
    }

    #[test]
    fn series_cells_and_json() {
        let series = Series {
            samples: vec![2.0, 1.0],
            failures: 1,
        };
        assert_eq!(fmt_stats(&series), "     1.0      2.0      2.0");
        assert_eq!(
            series_json(&series),
            "{\"count\":2,\"failures\":1,\"min\":1.000,\"p50\":1.000,\"p99\":2.000,\"max\":2.000,\"samples_ms\":[2.000,1.000]}"
        );
        assert_eq!(fmt_stats(&Series::default()), "       -        -        -");
        assert!(series_json(&Series::default()).contains("\"p50\":null"));
    }
}
