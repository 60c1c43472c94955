//! Human durations for flags: `500ms`, `30s`, `5m`, `2h`, `3d`.

/// Parses a duration into milliseconds.
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 2h"))?;
    let factor = match unit {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// Parses a duration into whole seconds (rounding milliseconds up).
pub fn parse_secs(s: &str) -> Result<i64, String> {
    parse_millis(s).map(|ms| ms.div_ceil(1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("7"), Ok(7_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_secs("3d"), Ok(259_200));
        assert!(parse_millis("5 parsecs").is_err());
        assert!(parse_millis("").is_err());
    }
}
