//! JSON forms of apimachinery's well-known scalars as Go writes them: `metav1.Time`
//! (RFC 3339, seconds), `metav1.MicroTime` (RFC 3339, microseconds) and
//! `metav1.Duration` (Go's `time.Duration` string, "1h2m3.5s").
//!
//! Invariant: `format_*` and `parse_*` are inverse on the values Go itself produces.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Error;

/// `2006-01-02T15:04:05Z` (micro: `2006-01-02T15:04:05.000000Z`), always UTC.
pub fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<String, Error> {
    let t = OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| Error::malformed(format!("time {seconds}s is out of range")))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::malformed("time year outside of range [0,9999]"));
    }
    // Within the second, so the year stays in range.
    let t = t + time::Duration::nanoseconds(i64::from(nanos.clamp(0, 999_999_999)));
    Ok(crate::registry::meta::format_rfc3339(t, micro))
}

/// (seconds, nanos) of an RFC 3339 time; MicroTime keeps microseconds, Time keeps
/// whole seconds (as upstream's `Time.ProtoTime`).
pub fn parse_time(s: &str, micro: bool) -> Result<(i64, i32), Error> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| Error::encode(format!("time {s:?}: {e}")))?;
    let nanos = if micro {
        (t.nanosecond() / 1000 * 1000) as i32
    } else {
        0
    };
    Ok((t.unix_timestamp(), nanos))
}

/// Go's `time.Duration.String()`.
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let mut s = String::new();
    if d < 0 {
        s.push('-');
    }
    let u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        push_fraction(&mut s, u, div);
        s.push_str(unit);
        return s;
    }
    let secs = u / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    if h > 0 {
        s.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        s.push_str(&format!("{m}m"));
    }
    push_fraction(
        &mut s,
        (secs % 60) * 1_000_000_000 + u % 1_000_000_000,
        1_000_000_000,
    );
    s.push('s');
    s
}

/// `v / div` with the remainder as a decimal fraction without trailing zeros.
fn push_fraction(s: &mut String, v: u64, div: u64) {
    s.push_str(&(v / div).to_string());
    let rem = v % div;
    if rem > 0 {
        let width = div.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}

/// Go's `time.ParseDuration`: "300ms", "-1.5h", "2h45m", "0".
pub fn parse_duration(s: &str) -> Result<i64, Error> {
    let bad = || Error::encode(format!("time: invalid duration {s:?}"));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_end];
        rest = &rest[int_end..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = &r[..frac_end];
            rest = &r[frac_end..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(unit).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(30) as u32;
            let frac: i128 = frac_part[..digits as usize].parse().map_err(|_| bad())?;
            value += frac * unit / 10i128.pow(digits);
        }
        total = total.checked_add(value).ok_or_else(bad)?;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_like_go() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (-5_000_000_000, "-5s"),
            (3_723_000_000_000 + 500_000_000, "1h2m3.5s"),
        ] {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text).expect(text), nanos, "{text}");
        }
        assert_eq!(parse_duration("2h45m").expect("2h45m"), 9_900_000_000_000);
        assert_eq!(parse_duration("0").expect("0"), 0);
        for bad in ["", "5", "1x", "h", "-"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(
            format_time(1_700_000_000, 0, false).expect("t"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 123_456_789, true).expect("t"),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", false).expect("t"),
            (1_700_000_000, 0)
        );
        assert_eq!(
            parse_time("2023-11-15T00:13:20.5+02:00", true).expect("t"),
            (1_700_000_000, 500_000_000)
        );
        assert!(parse_time("yesterday", false).is_err());
        assert!(format_time(i64::MAX, 0, false).is_err());
    }
}
