//! The little markup of posts and comments, read once, here, for the page and the public
//! pages alike: `**strong**`, `*emphasis*` or `_emphasis_`, `` `code` `` and web addresses
//! (`http://` and `https://` only). Everything else is text; nothing is ever markup of the
//! reader's page (the page builds elements from [`Span`]s, which the node's API hands it;
//! the node's public pages escape them).
//!
//! Pure and bounded: a mark closes on the same line within [`REACH`] characters, so the work
//! stays linear in the text's length whatever it holds (fuzzed: `fuzz_targets/markup.rs`).

/// How far (in characters) a mark looks for its end.
pub const REACH: usize = 400;

/// What a piece of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Text,
    Strong,
    Em,
    Code,
    Link,
}

impl Mark {
    /// Its name in the API: `text`, `strong`, `em`, `code` or `link`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Text => "text",
            Mark::Strong => "strong",
            Mark::Em => "em",
            Mark::Code => "code",
            Mark::Link => "link",
        }
    }
}

/// A piece of a post's text: what it is, and its text (for a link, the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub mark: Mark,
    pub text: String,
}

/// Where the web address starting at `i` ends (exclusive), when one starts there.
fn link_at(chars: &[char], i: usize) -> Option<usize> {
    let starts = |p: &str| chars[i..].iter().take(p.len()).copied().eq(p.chars());
    let scheme = if starts("https://") {
        8
    } else if starts("http://") {
        7
    } else {
        return None;
    };
    if i > 0 && chars[i - 1].is_alphanumeric() {
        return None;
    }
    let mut end = i;
    while end < chars.len() && !chars[end].is_whitespace() && !matches!(chars[end], '<' | '>' | '"')
    {
        end += 1;
    }
    // Punctuation that ends a sentence is not part of the address.
    while end > i + scheme
        && matches!(
            chars[end - 1],
            '.' | ',' | ';' | ':' | '!' | '?' | ')' | '\''
        )
    {
        end -= 1;
    }
    (end > i + scheme).then_some(end)
}

/// Where the mark `delim` opened at `i` closes (the index of the closing delimiter), when it
/// does on the same line within [`REACH`]: content not empty, not starting or ending with a
/// space, and (for `*` and `_`) not inside a word.
fn close_at(chars: &[char], i: usize, delim: &[char]) -> Option<usize> {
    let n = delim.len();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric());
    let emphasis = delim[0] != '`';
    if emphasis && i > 0 && word(chars.get(i - 1)) && delim[0] == '_' {
        return None;
    }
    let first = *chars.get(i + n)?;
    // (`**` is not an empty `*…*`, nor `__` an empty `_…_`.)
    if first.is_whitespace() || (n == 1 && first == delim[0]) {
        return None;
    }
    let limit = chars.len().min(i + n + REACH);
    let mut j = i + n;
    while j < limit {
        let c = chars[j];
        if c == '\n' {
            return None;
        }
        if chars[j..].starts_with(delim) && j > i + n {
            let inner_ends_in_space = chars[j - 1].is_whitespace();
            let glued = delim[0] == '_' && word(chars.get(j + n));
            if !inner_ends_in_space && !glued {
                return Some(j);
            }
        }
        j += 1;
    }
    None
}

/// Reads a text into spans (adjacent text kept together).
pub fn parse(text: &str) -> Vec<Span> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Span> = Vec::new();
    let mut plain = String::new();
    let push = |out: &mut Vec<Span>, plain: &mut String, mark: Mark, s: String| {
        if !plain.is_empty() {
            out.push(Span {
                mark: Mark::Text,
                text: std::mem::take(plain),
            });
        }
        out.push(Span { mark, text: s });
    };
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = link_at(&chars, i) {
            push(
                &mut out,
                &mut plain,
                Mark::Link,
                chars[i..end].iter().collect(),
            );
            i = end;
            continue;
        }
        let marks: [(&[char], Mark); 4] = [
            (&['*', '*'], Mark::Strong),
            (&['`'], Mark::Code),
            (&['*'], Mark::Em),
            (&['_'], Mark::Em),
        ];
        let found = marks.iter().find_map(|(delim, mark)| {
            if !chars[i..].starts_with(delim) {
                return None;
            }
            close_at(&chars, i, delim).map(|j| (delim.len(), j, *mark))
        });
        if let Some((n, j, mark)) = found {
            push(&mut out, &mut plain, mark, chars[i + n..j].iter().collect());
            i = j + n;
            continue;
        }
        plain.push(chars[i]);
        i += 1;
    }
    if !plain.is_empty() {
        out.push(Span {
            mark: Mark::Text,
            text: plain,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        parse(text)
            .into_iter()
            .map(|s| match s.mark {
                Mark::Text => s.text,
                Mark::Strong => format!("[b:{}]", s.text),
                Mark::Em => format!("[i:{}]", s.text),
                Mark::Code => format!("[c:{}]", s.text),
                Mark::Link => format!("[a:{}]", s.text),
            })
            .collect()
    }

    #[test]
    fn marks_are_read_and_everything_else_is_text() {
        assert_eq!(
            show("**Lyon** was *lovely*, see https://example.test/a?b=1. Use `spheres feed`"),
            "[b:Lyon] was [i:lovely], see [a:https://example.test/a?b=1]. Use [c:spheres feed]"
        );
        assert_eq!(show("_really_ nice"), "[i:really] nice");
        // Not marks: inside words, spaces inside the marks, across lines, alone.
        assert_eq!(show("snake_case_name"), "snake_case_name");
        assert_eq!(show("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(show("**bold\nnot**"), "**bold\nnot**");
        assert_eq!(show("** x**"), "** x**");
        assert_eq!(show("a ** b"), "a ** b");
        assert_eq!(show("``"), "``");
        // Addresses: http and https only, not glued to a word, without the sentence's end.
        assert_eq!(show("javascript:alert(1)"), "javascript:alert(1)");
        assert_eq!(show("xhttps://a.test"), "xhttps://a.test");
        assert_eq!(show("(https://a.test)."), "([a:https://a.test]).");
        assert_eq!(show("https://"), "https://");
        // Markup of the page's own language is text.
        assert_eq!(show("<b>hi</b> &amp;"), "<b>hi</b> &amp;");
        assert_eq!(show("éà *ça* 👍"), "éà [i:ça] 👍");
    }

    #[test]
    fn a_long_line_of_marks_is_read_in_bounded_time() {
        let text = "*a ".repeat(40_000) + &"_".repeat(40_000);
        let spans = parse(&text);
        let total: usize = spans.iter().map(|s| s.text.len()).sum();
        assert!(total <= text.len());
    }
}
