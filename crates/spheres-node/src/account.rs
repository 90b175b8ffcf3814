//! The node's account: the one it uses (kept in DATA/account.json), the household server's
//! owner account made on first start, an account made from an invitation link (and its claim
//! to the sphere's owner), signing in to another, and the web interface's password.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::{BareJid, Client, ConnectConfig};

use crate::api::types;
use crate::error::{NodeError, refuse};
use crate::settings::{AccountChoice, Settings, write_private};
use crate::{Node, Report, lock, random_token};

/// The account the node uses, kept in DATA/account.json (mode 0600).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct AccountFile {
    pub(crate) jid: String,
    pub(crate) password: String,
    /// Set when the node runs the household server this account lives on.
    pub(crate) household: Option<HouseholdFile>,
    /// Where the server is (`HOST:PORT`), when not found from the JID's domain.
    #[serde(default)]
    pub(crate) server: Option<String>,
    /// A CA to trust for that server.
    #[serde(default)]
    pub(crate) ca: Option<PathBuf>,
    /// An invitation link's claim not yet answered by the sphere's owner.
    #[serde(default)]
    pub(crate) claim: Option<ClaimFile>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct ClaimFile {
    pub(crate) owner: String,
    pub(crate) token: String,
    pub(crate) room: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct HouseholdFile {
    pub(crate) domain: String,
    pub(crate) c2s_port: u16,
    pub(crate) tls_port: u16,
}

/// An account name from what a person typed as their name: "Marie-Claire Dupont" becomes
/// "marie-claire.dupont". Letters of any script are kept (XMPP allows them).
pub(crate) fn user_name_of(name: &str) -> Result<String> {
    let user: String = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(".")
        .to_lowercase();
    let ok = !user.is_empty()
        && user.chars().count() <= 64
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !ok {
        refuse!(
            BadInput,
            "{name:?} cannot be an account name: use letters, digits, spaces, dots and dashes"
        );
    }
    Ok(user)
}

pub(crate) async fn resolve(server: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("cannot resolve the XMPP server {server}"))?
        .next()
        .ok_or_else(|| anyhow!("the XMPP server {server} has no address"))
}

/// Finds the server's MUC service by service discovery (XEP-0030).
pub(crate) async fn discover_muc(xmpp: &Client, me: &BareJid) -> Result<String> {
    match xmpp.find_muc_service().await? {
        Some(service) => Ok(service.to_string()),
        None => bail!(
            "the server {} offers no group chat service; pass --muc DOMAIN",
            me.domain()
        ),
    }
}

impl Node {
    pub(crate) fn account_path(data: &Path) -> PathBuf {
        data.join("account.json")
    }

    /// Loads or creates the account; starts the household server when we run it.
    pub(crate) async fn account(
        settings: &Settings,
        out: &dyn Report,
    ) -> Result<(AccountFile, Option<ManagedProsody>)> {
        let path = Self::account_path(&settings.data_dir);
        match &settings.account {
            AccountChoice::Existing {
                jid,
                password,
                server,
                ca,
            } => Ok((
                AccountFile {
                    jid: jid.clone(),
                    password: password.clone(),
                    household: None,
                    server: server.clone(),
                    ca: ca.clone(),
                    claim: None,
                },
                None,
            )),
            AccountChoice::Managed { domain, user } => {
                let saved: Option<AccountFile> = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(a) = &saved
                    && a.household.is_none()
                {
                    if settings.invite.is_some() {
                        tracing::warn!("this node already has an account; ignoring --invite");
                    }
                    return Ok((a.clone(), None));
                }
                if saved.is_none()
                    && let Some(link) = &settings.invite
                {
                    let a = Self::account_from_link(settings, link, user).await?;
                    out.event(
                        &format!("Created the account {} with the invitation", a.jid),
                        json!({"event": "account_created", "jid": a.jid}),
                    );
                    return Ok((a, None));
                }
                let mut config =
                    ProsodyConfig::new(settings.data_dir.join("prosody"), domain.clone());
                config.interface = settings.xmpp_listen;
                // A relay for calls that cannot go direct (coturn, when installed).
                config.turn = true;
                if let Some(h) = saved.as_ref().and_then(|a| a.household.as_ref()) {
                    config.domain = h.domain.clone();
                    config.c2s_port = h.c2s_port;
                    config.tls_port = h.tls_port;
                }
                let prosody = ManagedProsody::start(config)
                    .await
                    .context("cannot start the household XMPP server (Prosody)")?;
                let account = match saved {
                    Some(a) => a,
                    None => {
                        let password = random_token(16);
                        prosody
                            .register(user, &password)
                            .await
                            .context("cannot create the owner's account")?;
                        let a = AccountFile {
                            jid: format!("{user}@{}", prosody.domain()),
                            password,
                            household: Some(HouseholdFile {
                                domain: prosody.domain().to_owned(),
                                c2s_port: prosody.c2s_addr().port(),
                                tls_port: prosody.tls_addr().port(),
                            }),
                            server: None,
                            ca: None,
                            claim: None,
                        };
                        write_private(&path, &serde_json::to_vec_pretty(&a)?)?;
                        out.event(
                            &format!(
                                "Created the household server {} and the account {}",
                                prosody.domain(),
                                a.jid
                            ),
                            json!({"event": "account_created", "jid": a.jid}),
                        );
                        a
                    }
                };
                Ok((account, Some(prosody)))
            }
        }
    }

    /// Creates this node's account on the household server an invitation link names.
    pub(crate) async fn account_from_link(
        settings: &Settings,
        link: &str,
        user: &str,
    ) -> Result<AccountFile> {
        let link = spheres_xmpp::link::InviteLink::parse(link).map_err(NodeError::from)?;
        let ca = settings.data_dir.join("household-ca.pem");
        write_private(&ca, link.ca_pem().as_bytes())?;
        let jid = BareJid::new(&format!("{user}@{}", link.domain))
            .map_err(|e| NodeError::BadInput(format!("{user:?} cannot be a user name: {e}")))?;
        let password = random_token(16);
        let mut cfg = ConnectConfig::new(jid.clone(), password.clone());
        cfg.server = Some(resolve(&link.server).await?);
        cfg.extra_ca = Some(ca.clone());
        spheres_xmpp::account::register(&cfg, Some(&link.token))
            .await
            .map_err(|e| NodeError::from(e).context(format!("cannot create the account {jid}")))?;
        let a = AccountFile {
            jid: jid.to_string(),
            password,
            household: None,
            server: Some(link.server.clone()),
            ca: Some(ca),
            claim: Some(ClaimFile {
                owner: link.owner.clone(),
                token: link.token.clone(),
                room: link.room.clone(),
            }),
        };
        write_private(
            &Self::account_path(&settings.data_dir),
            &serde_json::to_vec_pretty(&a)?,
        )?;
        Ok(a)
    }

    /// Tells the sphere's owner which invitation link we came with.
    pub(crate) async fn send_claim(&self) {
        let claim = lock(&self.claim).clone();
        let Some(c) = claim else { return };
        let Ok(owner) = BareJid::new(&c.owner) else {
            return;
        };
        let msg = spheres_xmpp::protocol::Claim { token: c.token }.into_message(owner);
        if let Err(e) = self.xmpp.send(msg).await {
            tracing::warn!(error = %e, "cannot send our invitation claim");
        }
    }

    /// The invitation link's sphere is joined: the claim is done.
    pub(crate) fn claim_done(&self) {
        *lock(&self.claim) = None;
        let path = Self::account_path(&self.settings.data_dir);
        let updated = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<AccountFile>(&b).ok())
            .map(|mut a| {
                a.claim = None;
                a
            });
        if let Some(a) = updated
            && let Ok(bytes) = serde_json::to_vec_pretty(&a)
        {
            let _ = write_private(&path, &bytes);
        }
    }

    /// Takes an existing XMPP account from the web interface, on a fresh node: checks the
    /// address and password by logging in, saves the account, then restarts as it.
    /// `server` (`HOST:PORT`) skips DNS, for servers that publish no SRV record.
    pub async fn sign_in_existing(
        &self,
        jid: &str,
        password: &str,
        server: Option<&str>,
    ) -> Result<String, NodeError> {
        self.can_change_account().await?;
        let bare = BareJid::new(jid.trim())
            .ok()
            .filter(|j| j.node().is_some())
            .ok_or_else(|| {
                NodeError::BadInput(format!(
                    "{jid:?} is not an XMPP address (they look like name@example.org)"
                ))
            })?;
        let server = server.map(str::trim).filter(|s| !s.is_empty());
        let mut cfg = ConnectConfig::new(bare.clone(), password.to_owned());
        if let Some(s) = server {
            cfg.server = Some(resolve(s).await?);
        }
        cfg.extra_ca = self.settings.xmpp_ca.clone();
        cfg.reconnect = false;
        let (client, _events) = match tokio::time::timeout(
            Duration::from_secs(30),
            Client::connect(cfg),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(spheres_xmpp::XmppError::Auth(_))) => {
                refuse!(
                    Forbidden,
                    "the server refused this address and password; check them and try again"
                )
            }
            Ok(Err(e)) => refuse!(Unavailable, "cannot log in as {bare}: {e}"),
            Err(_) => refuse!(
                Unavailable,
                "the server of {bare} did not answer within 30 s; check the address (or give its server)"
            ),
        };
        // Spheres need the server's group chat service: without one the node could not
        // start as this account, so it is checked now, while nothing has changed.
        let muc = match &self.settings.muc {
            Some(_) => Ok(()),
            None => discover_muc(&client, &bare).await.map(|_| ()),
        };
        client.close().await;
        muc.with_context(|| {
            format!("{bare}'s server offers no group chat (MUC) service, which spheres need")
        })?;
        let a = AccountFile {
            jid: bare.to_string(),
            password: password.to_owned(),
            household: None,
            server: server.map(str::to_owned),
            ca: self.settings.xmpp_ca.clone(),
            claim: None,
        };
        write_private(
            &Self::account_path(&self.settings.data_dir),
            &serde_json::to_vec_pretty(&a)?,
        )?;
        tracing::info!(jid = %bare, "signed in with an existing account; restarting as it");
        self.restart.notify_one();
        Ok(bare.to_string())
    }

    /// What an invitation link offers, to greet the newcomer before they say yes.
    pub async fn link_preview(&self, link: &str) -> Result<types::LinkPreview, NodeError> {
        let l = spheres_xmpp::link::InviteLink::parse(link)?;
        let why_not = self.can_change_account().await.err().map(|e| e.to_string());
        Ok(types::LinkPreview {
            sphere: l.sphere_name().to_string(),
            owner: l.owner.to_string(),
            domain: l.domain.to_string(),
            can_join: why_not.is_none(),
            why_not,
        })
    }

    /// A node can take another account (an invitation link, an existing account) while it is
    /// still the fresh household it made for itself: no spheres, nobody else's data to lose.
    pub(crate) async fn can_change_account(&self) -> Result<()> {
        if self.household.is_none() {
            refuse!(
                Conflict,
                "this node already has the account {}; to use another one, start another node with its own --data-dir",
                self.me
            );
        }
        if !self.store.spheres().await?.is_empty() {
            refuse!(
                Conflict,
                "this node already has spheres of its own; to use another account, start another node with its own --data-dir"
            );
        }
        Ok(())
    }

    /// Takes an invitation link from the web interface: creates the account `name` on the
    /// household server the link names, then restarts the node as that account (it then
    /// claims the invitation and joins the sphere by itself, as with `up --invite`).
    pub async fn join_with_link(&self, link: &str, name: &str) -> Result<String, NodeError> {
        self.can_change_account().await?;
        let user = user_name_of(name)?;
        let account = Self::account_from_link(&self.settings, link, &user).await?;
        tracing::info!(jid = %account.jid, "account created with an invitation link; restarting as it");
        self.restart.notify_one();
        Ok(account.jid)
    }

    /// Whether the household server we run listens on this machine's loopback only.
    pub fn household_on_loopback(&self) -> bool {
        self.household.is_some() && self.settings.xmpp_listen.is_loopback()
    }

    /// Where people on other machines reach the household server: its listening address, or
    /// this machine's LAN address when it listens everywhere.
    pub(crate) fn household_address_for_others(&self, c2s: SocketAddr) -> Result<SocketAddr> {
        let listen = self.settings.xmpp_listen;
        if listen.is_unspecified() {
            let lan = spheres_net::lan_address().ok_or_else(|| {
                NodeError::Unavailable(
                    "this machine has no LAN address to put in an invitation link".into(),
                )
            })?;
            return Ok(SocketAddr::new(lan, c2s.port()));
        }
        Ok(SocketAddr::new(listen, c2s.port()))
    }

    /// Creates an account on the household server (only when this node runs it).
    pub async fn add_household_user(
        &self,
        user: &str,
        password: &str,
    ) -> Result<String, NodeError> {
        let Some(p) = &self.prosody else {
            refuse!(
                Conflict,
                "this node does not run a household server (it uses {})",
                self.me
            );
        };
        let p = p.lock().await;
        p.register(user, password).await?;
        Ok(format!("{user}@{}", p.domain()))
    }

    /// Sets the password that opens the web interface from other devices (argon2id, salted).
    pub async fn set_password(&self, password: &str) -> Result<(), NodeError> {
        if password.chars().count() < 8 {
            refuse!(BadInput, "use at least 8 characters for the password");
        }
        let hash = hash_password(password).await?;
        self.store.set_meta("web_password", &hash).await?;
        Ok(())
    }

    /// Whether `password` is the web interface's password (false when none is set).
    pub async fn check_password(&self, password: &str) -> bool {
        let Ok(Some(stored)) = self.store.meta("web_password").await else {
            return false;
        };
        password_matches(stored, password).await
    }

    pub async fn has_password(&self) -> bool {
        matches!(self.store.meta("web_password").await, Ok(Some(_)))
    }
}

/// The Argon2id hash (a PHC string, salted) of `password`. Deliberately slow (tens of
/// milliseconds, 19 MiB): off the async threads; callers bound how many run at once.
pub(crate) async fn hash_password(password: &str) -> Result<String, NodeError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let raw: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow!("cannot make a salt: {e}"))?;
    let password = password.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("cannot hash the password: {e}"))
    })
    .await??)
}

/// Whether `password` matches the hash `stored` (false when `stored` is not one).
pub(crate) async fn password_matches(stored: String, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_from_what_people_type() {
        assert_eq!(
            user_name_of("  Marie-Claire  Dupont ").unwrap(),
            "marie-claire.dupont"
        );
        assert_eq!(user_name_of("Léa").unwrap(), "léa");
        for bad in ["", "   ", "a@b", "x/y", "名前:1", &"a".repeat(65)] {
            let err = user_name_of(bad).unwrap_err().to_string();
            assert!(err.contains("cannot be an account name"), "{bad:?}: {err}");
        }
    }
}
