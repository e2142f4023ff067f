//! Readings from Linux `/proc`: a process's memory and CPU use, and the machine the bench
//! runs on. A missing or unreadable file reads as None (or empty), never as an error:
//! the report shows what it could read.

use std::fs;
use std::path::Path;

/// A `kB` field of /proc/PID/status or smaps_rollup.
pub(super) fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a process in clock ticks (USER_HZ, 100 per second on Linux).
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Time on a CPU in ns (/proc/PID/schedstat, first field): finer than clock ticks.
pub(super) fn cpu_ns(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Voluntary plus involuntary context switches: how often the process woke up.
pub(super) fn context_switches(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(
        kb_field(&status, "voluntary_ctxt_switches")?
            + kb_field(&status, "nonvoluntary_ctxt_switches")?,
    )
}

/// Resident kB per mapping (file name, or [heap]/[stack]/[anon]) from /proc/PID/smaps,
/// largest first.
pub(super) fn rss_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut totals: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // Header: address perms offset dev inode [path]
            let path = line.split_whitespace().nth(5).unwrap_or("[anon]");
            current = Path::new(path)
                .file_name()
                .map_or(path.to_string(), |f| f.to_string_lossy().into_owned());
            if path.starts_with('[') {
                current = path.to_string();
            }
        } else if let Some(kb) = kb_field(line, "Rss") {
            match totals.iter_mut().find(|(name, _)| *name == current) {
                Some(entry) => entry.1 += kb,
                None => totals.push((current.clone(), kb)),
            }
        }
    }
    totals.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    totals
}

/// The 1, 5 and 15 minute load averages, as the kernel writes them.
pub(super) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(super) fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

pub(super) fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(cpu_ns(me).is_some_and(|ns| ns > 0));
        assert!(context_switches(me).is_some());
        let status = fs::read_to_string(format!("/proc/{me}/status")).unwrap();
        assert!(kb_field(&status, "VmRSS").is_some_and(|kb| kb > 0));
        let maps = rss_by_mapping(me);
        assert!(maps.iter().any(|(_, kb)| *kb > 0), "{maps:?}");
        assert!(maps.windows(2).all(|w| w[0].1 >= w[1].1), "{maps:?}");
    }

    #[test]
    fn kb_field_takes_the_exact_key() {
        let text = "VmRSSx:\t 9 kB\nVmRSS:\t  2956 kB\nVmHWM: 3000 kB\n";
        assert_eq!(kb_field(text, "VmRSS"), Some(2956));
        assert_eq!(kb_field(text, "VmHWM"), Some(3000));
        assert_eq!(kb_field(text, "VmSwap"), None);
    }

    #[test]
    fn machine_readings() {
        assert_eq!(loadavg().split(' ').count(), 3);
        assert!(cores() > 0);
        assert!(!kernel_release().is_empty());
    }
}
