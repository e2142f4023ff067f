//! Durations as written on the command line and in the config file (`50ms`, `1.5s`).
//!
//! A leaf module: the run settings and the bench settings both parse with it.

use std::time::Duration;

/// Parses a duration written as a number and a unit: `50ms`, `2s`, `1500us`, `1m`, `1.5s`.
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. A bare number is an error: its unit
/// would be a guess. Fractions below a nanosecond are dropped.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let expected = || format!("expected a duration such as 50ms, got {s:?}");
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(num_end);
    if number.is_empty() {
        return Err(expected());
    }
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (number, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(expected());
    }
    if unit.is_empty() {
        return Err(format!(
            "expected a duration such as 50ms, got {s:?} (a bare number needs a unit: ns, us, ms, s, m or h)"
        ));
    }
    let unit_ns: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ns, us, ms, s, m or h)"
            ))
        }
    };
    let too_large = || format!("duration {s:?} is too large");
    let int: u128 = int.parse().map_err(|_| too_large())?;
    let mut nanos = int.checked_mul(unit_ns).ok_or_else(too_large)?;
    if let Some(frac) = frac {
        // 18 digits of fraction times the largest unit still fits in a u128.
        let digits = &frac[..frac.len().min(18)];
        let value: u128 = digits.parse().map_err(|_| expected())?;
        let scale = 10u128.pow(digits.len() as u32);
        nanos = nanos
            .checked_add(value * unit_ns / scale)
            .ok_or_else(too_large)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("50ms"), Duration::from_millis(50));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("1500us"), Duration::from_micros(1500));
        assert_eq!(ok("1500µs"), Duration::from_micros(1500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.25ms"), Duration::from_micros(250));
        assert_eq!(ok("0s"), Duration::ZERO);
        for bad in [
            "", "50", "0", "ms", "-5ms", "5 ms", "5x", "1.s", ".5s", "1.2.3s", "5MS",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!(parse_duration("50").unwrap_err().contains("50ms"));
        assert!(parse_duration("99999999999999999999999999999999999999999h")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too large"));
    }
}
