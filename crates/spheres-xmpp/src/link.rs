//! Invitation links for people with no account: everything a new node needs to create its
//! account on the household server and join one sphere, in one line to paste.
//!
//! `spheres:join?v=1&server=HOST:PORT&domain=D&token=T&room=R&owner=JID[&sphere=NAME]&ca=CA`
//!
//! - `token`: a one-time Prosody invitation (XEP-0401 preauth), also what the new node claims
//!   from the owner (`<claim/>`, docs/protocol.md) to be made a member;
//! - `ca`: the household server's private CA certificate (DER, base64url without padding), so
//!   the new node can verify the server it has never seen;
//! - `sphere`: the sphere's name, to greet the newcomer with (optional: older links lack it).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Why an invitation link cannot be used; the text says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(String);

type Result<T> = std::result::Result<T, LinkError>;

fn damaged(what: impl std::fmt::Display) -> LinkError {
    LinkError(what.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteLink {
    pub server: String,
    pub domain: String,
    pub token: String,
    pub room: String,
    pub owner: String,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The sphere's name as its owner calls it.
    pub sphere: Option<String>,
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl std::fmt::Display for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spheres:join?v=1&server={}&domain={}&token={}&room={}&owner={}",
            enc(&self.server),
            enc(&self.domain),
            enc(&self.token),
            enc(&self.room),
            enc(&self.owner),
        )?;
        if let Some(name) = &self.sphere {
            write!(f, "&sphere={}", enc(name))?;
        }
        // The certificate last: a link cut when copied is caught by its damaged certificate.
        write!(f, "&ca={}", URL_SAFE_NO_PAD.encode(&self.ca_der))
    }
}

impl InviteLink {
    pub fn parse(link: &str) -> Result<InviteLink> {
        let query = link.trim().strip_prefix("spheres:join?").ok_or_else(|| {
            damaged("this is not a spheres invitation link (they start with spheres:join?)")
        })?;
        let mut fields = std::collections::HashMap::new();
        for pair in query.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| damaged(format!("the invitation link is damaged near {pair:?}")))?;
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| damaged(format!("the invitation link is damaged near {pair:?}")))?;
            fields.insert(k.to_owned(), v.into_owned());
        }
        if fields.get("v").map(String::as_str) != Some("1") {
            return Err(damaged(
                "this invitation link is from another version of spheres; ask for a new one",
            ));
        }
        let get = |k: &str| {
            fields
                .get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| {
                    damaged(format!(
                        "the invitation link has no {k}; was it cut when copied?"
                    ))
                })
        };
        let ca_der = URL_SAFE_NO_PAD
            .decode(get("ca")?)
            .ok()
            .filter(|d| der_complete(d))
            .ok_or_else(|| {
                damaged("the invitation link's certificate is damaged; was it cut when copied?")
            })?;
        Ok(InviteLink {
            server: get("server")?,
            domain: get("domain")?,
            token: get("token")?,
            room: get("room")?,
            owner: get("owner")?,
            ca_der,
            sphere: fields.get("sphere").filter(|v| !v.is_empty()).cloned(),
        })
    }

    /// What to call the sphere: its name, or the room's local part for older links.
    pub fn sphere_name(&self) -> &str {
        self.sphere
            .as_deref()
            .unwrap_or_else(|| self.room.split('@').next().unwrap_or(&self.room))
    }

    /// The CA as a PEM file's contents.
    pub fn ca_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.ca_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

/// Whether `der` is exactly one whole DER SEQUENCE (a certificate is one): catches a link cut
/// in the middle of its certificate.
fn der_complete(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || der.len() < 2 + n {
            return false;
        }
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    header + len == der.len()
}

/// The DER of the first certificate in a PEM file.
pub fn der_of_pem(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(body.trim())
        .map_err(|_| damaged("the household CA file is not a PEM certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> InviteLink {
        InviteLink {
            server: "192.0.2.7:5222".into(),
            domain: "family.test".into(),
            token: "abc+/=".into(),
            room: "family-1a2b3c@rooms.family.test".into(),
            owner: "léa@family.test".into(),
            // A DER SEQUENCE of 256 bytes, as a certificate is.
            ca_der: [0x30, 0x82, 0x01, 0x00]
                .into_iter()
                .chain(0..=255u8)
                .collect(),
            sphere: Some("Famille & amis".into()),
        }
    }

    #[test]
    fn links_round_trip_and_carry_the_ca() {
        let l = link();
        let text = l.to_string();
        assert!(text.starts_with("spheres:join?v=1&"));
        assert!(!text.contains(' ') && !text.contains('\n'));
        assert_eq!(InviteLink::parse(&format!("  {text}\n")).unwrap(), l);
        assert_eq!(der_of_pem(&l.ca_pem()).unwrap(), l.ca_der);
        assert_eq!(l.sphere_name(), "Famille & amis");
        // Links made before the sphere's name was in them still work.
        let old = InviteLink { sphere: None, ..l };
        let parsed = InviteLink::parse(&old.to_string()).unwrap();
        assert_eq!(parsed.sphere_name(), "family-1a2b3c");
    }

    #[test]
    fn damaged_links_say_so() {
        let text = link().to_string();
        let no_token = text.replace("&token=abc%2B%2F%3D", "");
        for (bad, why) in [
            ("https://example.com", "not a spheres invitation"),
            (&text[..text.len() - 10], "certificate is damaged"),
            (&no_token, "has no token"),
            (&text.replace("v=1", "v=9"), "another version"),
            (&text.replace("ca=", "ca=!!"), "certificate is damaged"),
        ] {
            let err = InviteLink::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
