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
    }
}
