//! HTTP byte ranges (RFC 9110 §14): the one parser of the `Range` header, pure and fuzzed.

/// What to send for a request on a resource of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole body: no Range header, or one we ignore (not `bytes`, malformed,
    /// or several ranges, which RFC 9110 lets a server answer in full).
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: a well-formed range that selects nothing of this resource.
    Unsatisfiable,
}

/// Decides the answer to `Range: <header>` on `len` bytes.
pub fn answer(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (digits(first), digits(last)) {
        // `-n`: the last n bytes.
        (false, true) if first.is_empty() => match last.parse::<u64>() {
            Ok(0) => RangeAnswer::Unsatisfiable,
            Ok(n) if len > 0 => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            // A suffix longer than u64 still means "all of it".
            Err(_) if len > 0 => RangeAnswer::Partial {
                start: 0,
                end: len - 1,
            },
            _ => RangeAnswer::Unsatisfiable,
        },
        // `a-` and `a-b`.
        (true, open) if open || last.is_empty() => {
            let Ok(start) = first.parse::<u64>() else {
                return RangeAnswer::Unsatisfiable;
            };
            // An end beyond u64 (or none) means "to the end of the file".
            let end = last.parse::<u64>().unwrap_or(u64::MAX);
            if end < start {
                return RangeAnswer::Full;
            }
            if start >= len {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Partial {
                start,
                end: end.min(len - 1),
            }
        }
        _ => RangeAnswer::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn answers_every_form_of_single_range() {
        assert_eq!(answer(None, 100), Full);
        assert_eq!(answer(Some("bytes=0-9"), 100), Partial { start: 0, end: 9 });
        assert_eq!(
            answer(Some("bytes=90-"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=90-1000"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=-10"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=-1000"), 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=99-99"), 100),
            Partial { start: 99, end: 99 }
        );
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(answer(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(answer(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(answer(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(answer(Some("bytes=-5"), 0), Unsatisfiable);
        for ignored in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(answer(Some(ignored), 100), Full, "{ignored}");
        }
        assert_eq!(
            answer(Some("bytes=0-99999999999999999999999"), 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            answer(Some("bytes=99999999999999999999999-"), 100),
            Unsatisfiable
        );
    }
}
