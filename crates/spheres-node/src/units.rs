//! Sizes as people read and type them: the same units in the CLI, the node's messages and the
//! page (`1.50 MiB`; `256K`, `4M`).

/// A byte count for people, in binary units (`1.50 MiB`), as the page shows them too.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A size as typed on the command line or in a policy: plain bytes, or with a `K` or `M`
/// suffix (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1024),
        Some((i, 'm' | 'M')) => (&s[..i], 1024 * 1024),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (examples: 262144, 256K, 4M)"))
}

/// A length of time as typed on the command line: seconds, or a number with `s`, `m`, `h`,
/// `d` or `w` (`90s`, `30m`, `12h`, `7d`, `2w`); in seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        Some((i, 'w')) => (&s[..i], 7 * 86_400),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a length of time (examples: 30m, 12h, 7d, 2w)"))
}

/// A length of time for people, rounded down to its largest unit: `45 s`, `3 min`, `2 h`,
/// `1 day`, `5 days` (the page says the same).
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        86_400..172_800 => "1 day".to_owned(),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_people_type_them() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256K"), Ok(256 * 1024));
        assert_eq!(parse_size(" 4m "), Ok(4 * 1024 * 1024));
        assert!(parse_size("4G").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size(&format!("{}M", u64::MAX)).is_err());
        assert_eq!(human_bytes(1536 * 1024), "1.50 MiB");
        assert_eq!(human_duration(59), "59 s");
        assert_eq!(human_duration(60), "1 min");
        assert_eq!(human_duration(7199), "1 h");
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(3 * 86_400 + 5), "3 days");
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration(" 90 "), Ok(90));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("30m"), Ok(1800));
        for bad in ["", "0d", "d", "7y", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
