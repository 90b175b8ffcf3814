//! How bytes reach a peer. The engine speaks BitTorrent over anything that reads and writes
//! bytes in order: TCP today; a SOCKS5 dialer (Tor mode) and WebRTC data channels (browser
//! peers) implement [`Transport`] later without the engine changing. Incoming connections of
//! other transports are handed to [`crate::Engine::incoming`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connection to a peer: bytes both ways, in order.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

pub type Dialing = Pin<Box<dyn Future<Output = io::Result<Box<dyn Conn>>> + Send>>;

/// Dials peers.
pub trait Transport: Send + Sync + 'static {
    fn dial(&self, addr: SocketAddr) -> Dialing;
}

/// TCP over IPv4 and IPv6, with a connect timeout and Nagle off (requests are small and
/// latency-bound).
pub struct Tcp {
    pub connect_timeout: Duration,
}

impl Default for Tcp {
    fn default() -> Tcp {
        Tcp {
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Transport for Tcp {
    fn dial(&self, addr: SocketAddr) -> Dialing {
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "the peer did not answer")
                })??;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn Conn>)
        })
    }
}
