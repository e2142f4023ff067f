//! `votecast bench` (without `--footprint`): every scenario `--reps` times per cluster
//! size, then the table, the notes on how it was measured, and the optional JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::poll::ms;
use super::proc::loadavg;
use super::report::{
    fmt_stats, json_num, json_str, machine_json, machine_line, series_json, write_json,
};
use super::scenarios::{Row, Scenarios, SizeRows};
use super::{BenchError, BenchSettings};

/// What the report needs besides the rows.
struct Context<'a> {
    settings: &'a BenchSettings,
    load_before: String,
    load_after: String,
    /// Pause plus mean sweep: how late a sweep can see an agreement.
    poll_resolution: Duration,
    mean_sweep: Duration,
    errors: &'a [String],
}

pub(super) fn run(settings: &BenchSettings, exe: PathBuf) -> Result<(), BenchError> {
    let load_before = loadavg();
    print_header(settings, &exe, &load_before);
    let mut scenarios = Scenarios::new(exe, settings.poll);
    let started = Instant::now();
    let rows = measure(settings, &mut scenarios);
    let mean_sweep = scenarios.poller.mean_sweep();
    let context = Context {
        settings,
        load_before,
        load_after: loadavg(),
        poll_resolution: settings.poll + mean_sweep,
        mean_sweep,
        errors: &scenarios.errors,
    };
    {
        use std::io::Write as _;
        // Never panics on a closed or full stdout (see `outln!`).
        let _ = write!(std::io::stdout().lock(), "{}", table(&rows));
    }
    print_notes(&context, &rows, started.elapsed());
    if let Some(path) = &settings.json {
        write_json(path, &latency_json(&context, &rows))?;
    }
    let repetitions: usize = rows.iter().map(|r| r.latency.failures).sum();
    if repetitions > 0 || !scenarios.errors.is_empty() {
        return Err(BenchError::Failed {
            repetitions,
            errors: scenarios.errors.len(),
        });
    }
    Ok(())
}

fn print_header(settings: &BenchSettings, exe: &Path, load_before: &str) {
    crate::outln!("votecast bench: {} repetitions per scenario", settings.reps);
    crate::outln!("{}", machine_line());
    crate::outln!("load average before: {load_before}");
    crate::outln!(
        "binary: {} (--poll {} µs between sweeps over the state files)\n",
        exe.display(),
        settings.poll.as_micros()
    );
}

/// Every repetition at every size; progress on stderr. The rows in print order.
fn measure(settings: &BenchSettings, scenarios: &mut Scenarios) -> Vec<Row> {
    let mut rows = Vec::new();
    for &n in &settings.nodes {
        let mut size = SizeRows::new(n);
        for rep in 0..settings.reps {
            scenarios.repetition(n, &mut size);
            eprint!("\rN={n}: {}/{} repetitions", rep + 1, settings.reps);
        }
        crate::errln!();
        rows.extend(size.into_rows());
    }
    rows
}

/// The latency table: a header, a rule and one line per row.
pub(super) fn table(rows: &[Row]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:>3} {:>4} {:>4} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "scenario",
        "N",
        "ok",
        "fail",
        "p50 ms",
        "p99 ms",
        "max ms",
        "node p50",
        "node p99",
        "node max"
    );
    let _ = writeln!(table, "{}", "-".repeat(104));
    for row in rows {
        let _ = writeln!(
            table,
            "{:<22} {:>3} {:>4} {:>4} | {} | {}",
            row.scenario,
            row.nodes,
            row.latency.samples.len(),
            row.latency.failures,
            fmt_stats(&row.latency),
            fmt_stats(&row.node_election)
        );
    }
    table
}

/// How the figures were measured, the SIGSTOP lease gaps, the load, and every error.
fn print_notes(context: &Context<'_>, rows: &[Row], took: Duration) {
    crate::outln!(
        "\nlatency: this process's monotonic clock, from the last launch / the signal to the sweep\n\
         that saw every node agree; node columns: each agreeing node's own last_election_ms.\n\
         Cold start = last node up (every node has written its first state file, just before its\n\
         first vote) + then all agree.\n\
         p99 is nearest-rank (with 20 samples it is the maximum). Polling resolution: {:.3} ms\n\
         ({} µs pause + {:.3} ms mean sweep over the state files).",
        ms(context.poll_resolution),
        context.settings.poll.as_micros(),
        ms(context.mean_sweep)
    );
    let gaps: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.lease_gap.samples.iter().copied())
        .collect();
    if let Some(min_gap) = gaps.iter().copied().reduce(f64::min) {
        crate::outln!(
            "SIGSTOP: new leader's first LEADING write minus the stopped leader's valid_until: min {min_gap:.0} ms over {} failovers (negative = overlapping leases)",
            gaps.len()
        );
    }
    crate::outln!(
        "load average after: {}; took {:.0} s",
        context.load_after,
        took.as_secs_f64()
    );
    for e in context.errors {
        crate::outln!("error: {e}");
    }
}

fn latency_json(context: &Context<'_>, rows: &[Row]) -> String {
    let results: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"scenario\":{},\"nodes\":{},\"latency\":{},\"node_last_election\":{},\"lease_gap\":{}}}",
                json_str(r.scenario),
                r.nodes,
                series_json(&r.latency),
                series_json(&r.node_election),
                series_json(&r.lease_gap)
            )
        })
        .collect();
    let errors: Vec<String> = context.errors.iter().map(|e| json_str(e)).collect();
    format!(
        "{{\"kind\":\"latency\",\"machine\":{},\"load_before\":{},\"load_after\":{},\"reps\":{},\"poll_pause_us\":{},\"poll_resolution_ms\":{},\"errors\":[{}],\"results\":[{}]}}\n",
        machine_json(),
        json_str(&context.load_before),
        json_str(&context.load_after),
        context.settings.reps,
        context.settings.poll.as_micros(),
        json_num(ms(context.poll_resolution)),
        errors.join(","),
        results.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::super::stats::Series;
    use super::*;

    fn row(scenario: &'static str, samples: &[f64], failures: usize) -> Row {
        Row {
            scenario,
            nodes: 3,
            latency: Series {
                samples: samples.to_vec(),
                failures,
            },
            node_election: Series::default(),
            lease_gap: Series::default(),
        }
    }

    #[test]
    fn table_lines_up_under_the_header() {
        let text = table(&[
            row("cold start", &[5.2, 5.5], 0),
            row("failover SIGKILL", &[], 1),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("scenario "), "{text}");
        assert_eq!(lines[1], "-".repeat(104));
        assert_eq!(
            lines[2],
            "cold start               3    2    0 |      5.2      5.5      5.5 |        -        -        -"
        );
        assert!(lines[3].starts_with("failover SIGKILL         3    0    1 |        -"));
    }

    #[test]
    fn json_carries_settings_rows_and_errors() {
        let settings = BenchSettings {
            nodes: vec![3],
            reps: 2,
            json: None,
            poll: Duration::from_micros(500),
            footprint: false,
            window: Duration::from_secs(30),
            failovers: None,
            logs: None,
        };
        let errors = vec!["N=3: no agreement\n  node 1: None".to_string()];
        let context = Context {
            settings: &settings,
            load_before: "0.1 0.2 0.3".into(),
            load_after: "0.4 0.5 0.6".into(),
            poll_resolution: Duration::from_micros(515),
            mean_sweep: Duration::from_micros(15),
            errors: &errors,
        };
        let json = latency_json(&context, &[row("cold start", &[5.0], 0)]);
        assert!(
            json.starts_with("{\"kind\":\"latency\",\"machine\":{"),
            "{json}"
        );
        assert!(json.contains(",\"reps\":2,\"poll_pause_us\":500,\"poll_resolution_ms\":0.515,"));
        assert!(json.contains("\"errors\":[\"N=3: no agreement\\n  node 1: None\"]"));
        assert!(json.contains(
            "{\"scenario\":\"cold start\",\"nodes\":3,\"latency\":{\"count\":1,\"failures\":0,"
        ));
        assert!(json.ends_with("}]}\n"), "{json}");
    }
}
