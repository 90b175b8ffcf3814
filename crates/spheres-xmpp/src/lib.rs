//! The XMPP control plane of spheres.
//!
//! - [`stream`]: our own stream layer (TLS, SASL SCRAM/PLAIN, bind, XEP-0198 negotiation).
//! - [`Client`]: a connected client with events, iq correlation, acknowledgements, keepalive.
//! - [`prosody`]: a managed household Prosody (config, certificates, accounts, invites).
//!
//! This crate is the only one that knows stanzas. Nothing here panics on network input.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

/// An attribute name we write (a literal, checked when compiled).
macro_rules! a {
    ($name:literal) => {
        rxml::xml_ncname!($name).to_owned()
    };
}

pub mod account;
pub mod call;
mod client;
pub mod contacts;
pub mod feed;
pub mod inbound;
pub mod jingle;
pub mod link;
pub mod muc;
pub mod prosody;
pub mod protocol;
pub mod roomfeed;
pub mod sealed;
mod sm;
pub mod stream;

pub use client::{ArchivePage, Client, Event, PendingIq};
pub use inbound::{Inbound, RoomMessage};
pub use jid::{BareJid, Error as JidError, FullJid, Jid};
pub use minidom::Element;
pub use stream::{ConnectConfig, TlsMode};
pub use xmpp_parsers::iq::Iq;
pub use xmpp_parsers::message::Message;

#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    /// Wrong credentials or a refused login: retrying will not help.
    #[error("login failed: {0}")]
    Auth(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("disconnected: {0}")]
    Disconnected(String),
    #[error("the server sent something we cannot use: {0}")]
    Protocol(String),
    #[error("no answer in time: {0}")]
    Timeout(String),
    #[error("refused by the server: {0}")]
    Refused(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the client is closed")]
    Closed,
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

impl XmppError {
    /// Whether reconnecting could help (it cannot for wrong credentials or bad configuration).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            XmppError::Disconnected(_) | XmppError::Timeout(_) | XmppError::Io(_)
        )
    }
}
