//! What can go wrong when the node is asked to do something, by kind: the API answers each kind
//! with its HTTP status, the CLI and the page show the message. Messages say what to do next.

/// A refusal or failure of a node operation. The message is for people.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A sphere, share, invitation or person that is not there.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is there (a name taken, a file already present, an
    /// account already set up).
    #[error("{0}")]
    Conflict(String),
    /// The disk has no room for it.
    #[error("{0}")]
    NoSpace(String),
    /// Not this person's or this node's to do (only a sphere's owner may invite...).
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is wrong (a name that cannot be a folder, an address that is not
    /// one, an empty message).
    #[error("{0}")]
    BadInput(String),
    /// Not possible right now (the XMPP server does not answer, a key not received yet); the
    /// same request may work later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a fault of the node or of the machine (disk, database), with its causes.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// Errors of the node's own helpers travel as `anyhow::Error`; a `NodeError` raised inside one
/// keeps its kind on the way out.
impl From<anyhow::Error> for NodeError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<NodeError>() {
            Ok(kind) => kind,
            Err(other) => NodeError::Internal(other),
        }
    }
}

/// The lower layers' errors are the node's faults, not the asker's.
macro_rules! internal_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for NodeError {
            fn from(e: $t) -> Self {
                NodeError::Internal(anyhow::Error::from(e))
            }
        }
    )*};
}
internal_from!(
    spheres_store::StoreError,
    std::io::Error,
    tokio::task::JoinError,
    serde_json::Error,
    spheres_xmpp::JidError,
    spheres_torrent::EngineError,
);

/// The XMPP server's answers by kind: away or slow is "not now", a refusal is the server's
/// "no", the rest is ours.
impl From<spheres_xmpp::XmppError> for NodeError {
    fn from(e: spheres_xmpp::XmppError) -> Self {
        use spheres_xmpp::XmppError as X;
        match e {
            X::Timeout(_) | X::Disconnected(_) | X::Io(_) | X::Closed => NodeError::Unavailable(
                format!("the XMPP server cannot be reached now ({e}); try again in a moment"),
            ),
            X::Auth(_) | X::Refused(_) => NodeError::Forbidden(e.to_string()),
            X::Tls(_) | X::Protocol(_) | X::Config(_) => NodeError::Internal(e.into()),
        }
    }
}

impl From<spheres_xmpp::prosody::ProsodyError> for NodeError {
    fn from(e: spheres_xmpp::prosody::ProsodyError) -> Self {
        match e {
            spheres_xmpp::prosody::ProsodyError::Invalid(why) => NodeError::BadInput(why),
            other => NodeError::Internal(other.into()),
        }
    }
}

impl NodeError {
    /// The same error, its message prefixed with what was being done.
    pub fn context(self, what: impl std::fmt::Display) -> NodeError {
        match self {
            NodeError::NotFound(m) => NodeError::NotFound(format!("{what}: {m}")),
            NodeError::Conflict(m) => NodeError::Conflict(format!("{what}: {m}")),
            NodeError::NoSpace(m) => NodeError::NoSpace(format!("{what}: {m}")),
            NodeError::Forbidden(m) => NodeError::Forbidden(format!("{what}: {m}")),
            NodeError::BadInput(m) => NodeError::BadInput(format!("{what}: {m}")),
            NodeError::Unavailable(m) => NodeError::Unavailable(format!("{what}: {m}")),
            NodeError::Internal(e) => NodeError::Internal(e.context(what.to_string())),
        }
    }
}

/// An invitation link is what a person pasted: a bad one is their input to fix.
impl From<spheres_xmpp::link::LinkError> for NodeError {
    fn from(e: spheres_xmpp::link::LinkError) -> Self {
        NodeError::BadInput(e.to_string())
    }
}

/// Returns early with a [`NodeError`] of the given kind, from functions that return
/// `Result<_, NodeError>` or `anyhow::Result<_>` alike.
macro_rules! refuse {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::NodeError::$kind(format!($($arg)*)).into())
    };
}
pub(crate) use refuse;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_survives_a_trip_through_anyhow() {
        fn helper() -> anyhow::Result<()> {
            refuse!(NotFound, "there is no sphere named {:?}", "x");
        }
        fn operation() -> Result<(), NodeError> {
            helper()?;
            Ok(())
        }
        let e = operation().unwrap_err();
        assert!(matches!(e, NodeError::NotFound(_)), "{e:?}");
        assert_eq!(e.to_string(), "there is no sphere named \"x\"");
        let e = NodeError::from(anyhow::anyhow!("disk on fire").context("cannot write"));
        assert!(matches!(e, NodeError::Internal(_)));
        assert_eq!(e.to_string(), "cannot write: disk on fire");
        // The server away is "not now" (503), its refusal a "no" (403), with what was done.
        let away = NodeError::from(spheres_xmpp::XmppError::Timeout("iq".into()));
        assert!(matches!(away, NodeError::Unavailable(_)), "{away:?}");
        let refused = NodeError::from(spheres_xmpp::XmppError::Refused("not-allowed".into()))
            .context("cannot create the account x@y");
        assert!(matches!(refused, NodeError::Forbidden(_)), "{refused:?}");
        assert!(
            refused
                .to_string()
                .starts_with("cannot create the account x@y: "),
            "{refused}"
        );
    }
}
