//! Durations as people write them in compose files and env vars.
//!
//! `TESTAPP_START_DELAY`, `TESTAPP_EXIT_AFTER` and friends take the same
//! syntax as compose's healthcheck durations so stack authors need not learn a
//! second one: `500ms`, `2s`, `1m`, `1h`, fractions (`1.5s`) and sums
//! (`1m30s`). A bare number means seconds, and `0` means no delay.

use std::time::Duration;

/// Parses `500ms`, `2s`, `1m30s`, `1.5h`, `10` (seconds), `us` too.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let err = || format!("invalid duration {text:?} (expected e.g. 500ms, 2s, 1m30s)");
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = number.parse().map_err(|_| err())?;
        let nanos_per_unit = match unit {
            // A bare number is seconds, but only on its own: `1m30` is a typo.
            "" if rest.len() == text.len() => 1e9,
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total_nanos += value * nanos_per_unit;
        rest = after;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(err());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn single_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(" 3 "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn fractions_and_sums() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h1m1s1ms"), Ok(Duration::from_millis(3_661_001)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "abc", "1x", "1m30", "-1s", "1..2s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
