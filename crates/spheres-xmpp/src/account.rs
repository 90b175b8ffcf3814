//! Accounts: in-band registration (XEP-0077), with an invitation token (XEP-0401 "preauth",
//! as Prosody's invites issue them), password change, and invitation URIs.
//!
//! Registration happens on a stream secured with TLS but not authenticated; the password
//! never travels in clear.

use minidom::Element;
use xmpp_parsers::ibr::LegacyQuery;
use xmpp_parsers::iq::{Iq, IqSetPayload};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};
use xso::{AsXml, FromXml};

use crate::stream::{ConnectConfig, Secured, secure, serialize, write_all};
use crate::{BareJid, Client, Jid, XmppError};

const NS_PARS: &str = "urn:xmpp:pars:0";

/// XEP-0401's `<preauth/>`: presents an invitation token before registering.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PARS, name = "preauth")]
pub struct Preauth {
    #[xml(attribute)]
    pub token: String,
}

impl IqSetPayload for Preauth {}

/// An invitation as the server issues it: `xmpp:DOMAIN?register;preauth=TOKEN` (anyone may
/// pick a name) or `xmpp:USER@DOMAIN?register;preauth=TOKEN` / `?roster;preauth=TOKEN;ibr=y`
/// (XEP-0401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteUri {
    /// The server the account goes on.
    pub domain: String,
    /// A user name the invitation suggests or reserves, if any.
    pub user: Option<String>,
    pub token: String,
}

impl InviteUri {
    /// Reads an `xmpp:` invitation URI; `None` for anything else.
    pub fn parse(uri: &str) -> Option<InviteUri> {
        let rest = uri.trim().strip_prefix("xmpp:")?;
        let (target, query) = rest.split_once('?')?;
        let target = target.strip_prefix("//").unwrap_or(target);
        let jid = BareJid::new(&percent_decode(target)?).ok()?;
        let mut token = None;
        let mut action_ok = false;
        for (i, part) in query.split(';').enumerate() {
            if i == 0 {
                action_ok = matches!(part, "register" | "roster");
                continue;
            }
            if let Some(t) = part.strip_prefix("preauth=") {
                token = Some(percent_decode(t)?);
            }
        }
        let token = token.filter(|t| !t.is_empty() && t.len() <= 256)?;
        action_ok.then(|| InviteUri {
            domain: jid.domain().as_str().to_owned(),
            user: jid.node().map(|n| n.as_str().to_owned()),
            token,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a registration failed, in words a person can act on.
fn registration_error(step: &str, error: &StanzaError) -> XmppError {
    let text = error
        .texts
        .values()
        .next()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let what = match error.defined_condition {
        DefinedCondition::Conflict => "that user name is taken; pick another".to_owned(),
        DefinedCondition::Forbidden if step == "invitation" => {
            "the invitation is not valid or has expired; ask for a new one".to_owned()
        }
        DefinedCondition::NotAcceptable | DefinedCondition::Forbidden => {
            "the server accepts new accounts only with an invitation".to_owned()
        }
        DefinedCondition::NotAllowed | DefinedCondition::ServiceUnavailable => {
            "the server does not allow creating accounts".to_owned()
        }
        DefinedCondition::ResourceConstraint => {
            "the server refuses new accounts for now; try again later".to_owned()
        }
        ref other => format!("refused: {other:?}"),
    };
    XmppError::Refused(format!("{what}{text}"))
}

async fn request(s: &mut Secured, iq: Iq, step: &str) -> Result<(), XmppError> {
    let id = iq.id().to_owned();
    write_all(&mut s.writer, &serialize(&Element::from(iq))).await?;
    loop {
        let el = s.reader.element().await?;
        let Ok(answer) = Iq::try_from(el) else {
            continue;
        };
        if answer.id() != id {
            continue;
        }
        return match answer {
            Iq::Result { .. } => Ok(()),
            Iq::Error { error, .. } => Err(registration_error(step, &error)),
            _ => Err(XmppError::Protocol(format!("odd answer to the {step}"))),
        };
    }
}

/// Creates the account `config.jid` with `config.password` (XEP-0077), first presenting
/// `invite_token` when given (XEP-0401). The account can log in once this returns.
pub async fn register(config: &ConnectConfig, invite_token: Option<&str>) -> Result<(), XmppError> {
    let user = config
        .jid
        .node()
        .ok_or_else(|| XmppError::Config("the new account's JID needs a user name".into()))?
        .as_str()
        .to_owned();
    let limit = config.step_timeout;
    let work = async {
        let mut s = secure(config).await?;
        if let Some(token) = invite_token {
            let preauth = Preauth {
                token: token.to_owned(),
            };
            request(&mut s, Iq::from_set("preauth-1", preauth), "invitation").await?;
        }
        let query = LegacyQuery {
            username: Some(user),
            password: Some(config.password.clone()),
            ..LegacyQuery::default()
        };
        request(&mut s, Iq::from_set("register-1", query), "registration").await?;
        let _ = write_all(&mut s.writer, b"</stream:stream>").await;
        Ok(())
    };
    tokio::time::timeout(limit * 3, work)
        .await
        .map_err(|_| XmppError::Timeout("registration".into()))?
}

impl Client {
    /// Changes our account's password (XEP-0077 §3.3). The next login needs the new one.
    pub async fn change_password(&self, new_password: &str) -> Result<(), XmppError> {
        let me = self.jid();
        let query = LegacyQuery {
            username: Some(me.node().map(|n| n.as_str().to_owned()).unwrap_or_default()),
            password: Some(new_password.to_owned()),
            ..LegacyQuery::default()
        };
        let iq = Iq::from_set("", query).with_to(Jid::from(BareJid::from_parts(None, me.domain())));
        match self.iq(iq).await? {
            Iq::Result { .. } => Ok(()),
            Iq::Error { error, .. } => Err(XmppError::Refused(format!(
                "password change refused: {:?}",
                error.defined_condition
            ))),
            _ => Err(XmppError::Protocol(
                "odd answer to a password change".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_uris() {
        assert_eq!(
            InviteUri::parse("xmpp:home.test?register;preauth=abc123"),
            Some(InviteUri {
                domain: "home.test".into(),
                user: None,
                token: "abc123".into()
            })
        );
        assert_eq!(
            InviteUri::parse("xmpp:l%C3%A9a@home.test?roster;preauth=t%2Bk;ibr=y"),
            Some(InviteUri {
                domain: "home.test".into(),
                user: Some("léa".into()),
                token: "t+k".into()
            })
        );
        for bad in [
            "https://home.test/?preauth=x",
            "xmpp:home.test?message;preauth=x",
            "xmpp:home.test?register",
            "xmpp:home.test?register;preauth=",
            "xmpp:home.test?register;preauth=%zz",
            "xmpp:@@?register;preauth=x",
            "",
        ] {
            assert_eq!(InviteUri::parse(bad), None, "{bad}");
        }
    }
}
