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
    }
}
