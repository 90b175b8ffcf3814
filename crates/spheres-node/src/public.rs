//! The public web pages of the posts we publish for the whole web (issue 14): server-rendered
//! HTML that needs no JavaScript and no login, and an Atom feed, at `/@USER/`,
//! `/@USER/feed.atom` and `/@USER/posts/POST_ID` on the node's HTTP address (`USER` is our
//! account's local part). Only our own posts marked `public` are there; anything else is 404.
//!
//! Rendering is pure: posts in, text out; every piece of text is escaped (a post's text is
//! ours, but it may hold anything), and the pages carry a policy that allows no script.

use spheres_store::PostRow;

/// The pages' policy: no script, no frames, our stylesheet only.
pub(crate) const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `s` with the five characters that mean something in HTML and XML escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not text (and not allowed in XML 1.0).
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// A post's text as HTML: escaped, its little markup (`spheres_web::markup`) as `strong`,
/// `em` and `code`, its web addresses (`http://` and `https://` only) as links that carry no
/// referrer and no trust.
pub(crate) fn linked(text: &str) -> String {
    use spheres_web::markup::{Mark, parse};
    parse(text)
        .into_iter()
        .map(|s| {
            let t = escape(&s.text);
            match s.mark {
                Mark::Text => t,
                Mark::Strong => format!("<strong>{t}</strong>"),
                Mark::Em => format!("<em>{t}</em>"),
                Mark::Code => format!("<code>{t}</code>"),
                Mark::Link => {
                    format!("<a href=\"{t}\" rel=\"nofollow noopener noreferrer\">{t}</a>")
                }
            }
        })
        .collect()
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The languages of the public pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Fr,
}

impl Lang {
    /// The visitor's language, from their browser's `Accept-Language` (the first of ours it
    /// prefers; English when none).
    pub(crate) fn from_accept(header: Option<&str>) -> Lang {
        let mut wanted: Vec<(f32, Lang)> = header
            .unwrap_or_default()
            .split(',')
            .take(32)
            .filter_map(|part| {
                let mut bits = part.split(';');
                let tag = bits.next()?.trim().to_ascii_lowercase();
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                let lang = match tag.split('-').next()? {
                    "fr" => Lang::Fr,
                    "en" => Lang::En,
                    _ => return None,
                };
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        // (Stable: among equals, the first named first.)
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
        wanted.first().map_or(Lang::En, |w| w.1)
    }

    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    fn nothing_yet(self) -> &'static str {
        match self {
            Lang::En => "Nothing public yet.",
            Lang::Fr => "Rien de public pour l'instant.",
        }
    }
}

/// A date as people read it: `30 Nov 2026, 18:46 UTC`, `30/11/2026 18:46 UTC`.
fn human(secs: i64, lang: Lang) -> String {
    let format = match lang {
        Lang::En => "%-d %b %Y, %H:%M UTC",
        Lang::Fr => "%d/%m/%Y %H:%M UTC",
    };
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format(format)
        .to_string()
}

/// A page of ours for visitors: `title` and `body` are HTML already; `feed`, the address of
/// an Atom feed to name.
pub(crate) fn page(lang: Lang, title: &str, body: &str, feed: Option<&str>) -> String {
    let feed = feed.map_or(String::new(), |f| {
        format!("<link rel=\"alternate\" type=\"application/atom+xml\" href=\"{f}\">")
    });
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/app.css\">{feed}</head>\
         <body><main class=\"public\">{body}</main></body></html>\n",
        lang.code()
    )
}

fn article(p: &PostRow, link: bool, lang: Lang) -> String {
    let text = linked(&p.content);
    let when = rfc3339(p.published);
    let shown = human(p.published, lang);
    let stamp = if link {
        format!("<a href=\"posts/{}\">{shown}</a>", escape(&p.item_id))
    } else {
        shown
    };
    format!(
        "<article class=\"post\"><p class=\"post-text\">{text}</p>\
         <p class=\"post-head\"><time datetime=\"{when}\">{stamp}</time></p></article>"
    )
}

/// Someone's public posts, newest first.
pub(crate) fn index(name: &str, jid: &str, posts: &[PostRow], lang: Lang) -> String {
    let who = escape(name);
    let mut body = format!(
        "<h1>{who}</h1><p class=\"muted\">{} · <a href=\"feed.atom\">Atom</a></p>",
        escape(jid)
    );
    if posts.is_empty() {
        body.push_str(&format!("<p class=\"empty\">{}</p>", lang.nothing_yet()));
    }
    for p in posts {
        body.push_str(&article(p, true, lang));
    }
    page(lang, &who, &body, Some("feed.atom"))
}

/// One public post.
pub(crate) fn post(name: &str, p: &PostRow, lang: Lang) -> String {
    let who = escape(name);
    let body = format!(
        "<p><a href=\"../\">← {who}</a></p>{}",
        article(p, false, lang)
    );
    page(lang, &who, &body, Some("../feed.atom"))
}

/// Someone's public posts as an Atom feed (RFC 4287); `base` is the URL of their pages
/// (`http://HOST/@USER/`), as the request named the host.
pub(crate) fn atom(name: &str, jid: &str, base: &str, posts: &[PostRow]) -> String {
    let links = format!(
        "<link rel=\"self\" href=\"{0}feed.atom\"/><link rel=\"alternate\" href=\"{0}\"/>",
        escape(base)
    );
    feed_of(name, jid, (base, &links), posts, |p| {
        format!("{}posts/{}", escape(base), escape(&p.item_id))
    })
}

/// Our posts of every audience as an Atom feed for an export: each entry's id and link are
/// the post's `xmpp:` URI.
pub(crate) fn atom_of(name: &str, jid: &str, posts: &[PostRow]) -> String {
    let id = format!("xmpp:{jid}?;node={}", spheres_xmpp::feed::MICROBLOG);
    feed_of(name, jid, (&id, ""), posts, |p| {
        escape(&format!("{id};item={}", p.item_id))
    })
}

/// An Atom feed of `posts` by `name` (`jid`): its id and extra links, and each entry's URL.
fn feed_of(
    name: &str,
    jid: &str,
    (id, links): (&str, &str),
    posts: &[PostRow],
    url_of: impl Fn(&PostRow) -> String,
) -> String {
    let updated = posts.iter().map(|p| p.updated).max().unwrap_or(0);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>{}</title><id>{}</id><updated>{}</updated>{links}\
         <author><name>{}</name><uri>xmpp:{}</uri></author>",
        escape(name),
        escape(id),
        rfc3339(updated),
        escape(name),
        escape(jid)
    );
    for p in posts {
        let url = url_of(p);
        let title: String = p
            .content
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        out.push_str(&format!(
            "<entry><id>{url}</id><title>{}</title><link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\
             <published>{}</published><updated>{}</updated><content type=\"text\">{}</content></entry>",
            escape(&title),
            rfc3339(p.published),
            rfc3339(p.updated),
            escape(&p.content)
        ));
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_row(text: &str) -> PostRow {
        PostRow {
            id: 1,
            service: "alice@home.test".into(),
            item_id: "id-1".into(),
            author: "alice@home.test".into(),
            author_name: None,
            audience: "public".into(),
            title: text.into(),
            content: text.into(),
            comments_node: None,
            published: 1_800_000_000,
            updated: 1_800_000_000,
            sphere_id: None,
            media: "[]".into(),
        }
    }

    #[test]
    fn text_is_never_markup() {
        let p = post_row("<script>alert(1)</script> & \"quotes\" \u{7}");
        for out in [
            index(
                "<b>Alice</b>",
                "alice@home.test",
                std::slice::from_ref(&p),
                Lang::En,
            ),
            post("Alice", &p, Lang::Fr),
            atom("Alice", "alice@home.test", "http://h/@alice/", &[p]),
        ] {
            assert!(!out.contains("<script>"), "{out}");
            assert!(!out.contains("<b>Alice"), "{out}");
            assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
            assert!(!out.contains('\u{7}'));
        }
    }

    #[test]
    fn a_visitor_reads_the_pages_in_their_language() {
        for (header, lang) in [
            (None, Lang::En),
            (Some("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr),
            (Some("de-DE,de;q=0.9,en;q=0.5,fr;q=0.7"), Lang::Fr),
            (Some("en-GB,fr;q=0.1"), Lang::En),
            (Some("fr;q=0"), Lang::En),
            (Some("nonsense;q=x,,;"), Lang::En),
        ] {
            assert_eq!(Lang::from_accept(header), lang, "{header:?}");
        }
        let p = post_row("Bonjour");
        let fr = post("Alice", &p, Lang::Fr);
        assert!(fr.contains("<html lang=\"fr\">"), "{fr}");
        assert!(fr.contains("15/01/2027 08:00 UTC"), "{fr}");
        let en = index("Alice", "alice@home.test", &[], Lang::En);
        assert!(en.contains("Nothing public yet."), "{en}");
        let fr = index("Alice", "alice@home.test", &[], Lang::Fr);
        assert!(fr.contains("Rien de public pour l'instant."), "{fr}");
    }

    #[test]
    fn web_addresses_become_links_and_nothing_else_does() {
        assert_eq!(
            linked("Photos: https://example.test/lyon?a=1&b=2. Done"),
            "Photos: <a href=\"https://example.test/lyon?a=1&amp;b=2\" rel=\"nofollow noopener noreferrer\">https://example.test/lyon?a=1&amp;b=2</a>. Done"
        );
        for plain in [
            "javascript:alert(1)",
            "https://",
            "a <b> https://x\"onmouseover=\"y",
        ] {
            let out = linked(plain);
            assert!(!out.contains("javascript:alert(1)</a>"), "{out}");
            assert!(!out.contains("\"onmouseover"), "{out}");
            assert!(!out.contains("<b>"), "{out}");
        }
        // The little markup, escaped inside.
        assert_eq!(
            linked("**Lyon** *<i>*, `a<b`"),
            "<strong>Lyon</strong> <em>&lt;i&gt;</em>, <code>a&lt;b</code>"
        );
    }

    #[test]
    fn the_feed_is_atom() {
        let out = atom(
            "Alice",
            "alice@home.test",
            "http://h/@alice/",
            &[post_row("Hi")],
        );
        assert!(out.contains("<id>http://h/@alice/posts/id-1</id>"), "{out}");
        assert!(
            out.contains("<updated>2027-01-15T08:00:00Z</updated>"),
            "{out}"
        );
    }
}
