//! The WebSocket side of [`crate::rtc`]: one task per browser connection, each with a bounded
//! queue of what it is to be sent (a browser too slow to read loses messages, never grows
//! the node's memory), a slot among a fixed number, and an end (idle, closed, or when the
//! embedder says so: a link revoked).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::rtc::{ConnId, MAX_MESSAGE, Out, Signal};

/// A connection that says nothing for this long is closed (browsers announce every 2 min).
pub const IDLE: Duration = Duration::from_secs(300);
/// Messages waiting for one connection.
const QUEUE: usize = 64;
/// Browsers at once on a tracker of its own (`spheres tracker --ws`).
pub const CONNECTIONS: usize = 10_000;

/// Which torrents a connection may use.
pub type Allowed = Box<dyn Fn(&[u8; 20]) -> bool + Send + Sync>;
/// Resolves when the connection must end.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct State {
    signal: Signal,
    senders: HashMap<ConnId, mpsc::Sender<String>>,
}

/// The signalling of browsers, shared by every connection.
pub struct Signalling {
    state: Mutex<State>,
    next: AtomicU64,
    slots: Arc<Semaphore>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Signalling {
    /// At most `connections` browsers at once.
    pub fn new(connections: usize) -> Arc<Signalling> {
        Arc::new(Signalling {
            state: Mutex::default(),
            next: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(connections)),
        })
    }

    /// How many swarms and browsers there are now.
    pub fn size(&self) -> (usize, usize) {
        lock(&self.state).signal.size()
    }

    /// Takes a WebSocket upgrade: 503 when every slot is taken.
    pub fn accept(self: Arc<Self>, ws: WebSocketUpgrade, allowed: Allowed, stop: Stop) -> Response {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many browsers at once; try again in a moment\n",
            )
                .into_response();
        };
        ws.max_message_size(MAX_MESSAGE)
            .max_frame_size(MAX_MESSAGE)
            .on_upgrade(move |socket| self.serve(socket, slot, allowed, stop))
    }

    fn deliver(state: &State, out: Vec<Out>) {
        for (to, text) in out {
            if let Some(tx) = state.senders.get(&to) {
                // Full: that browser does not read; it loses this one.
                let _ = tx.try_send(text);
            }
        }
    }

    async fn serve(
        self: Arc<Self>,
        mut socket: WebSocket,
        _slot: OwnedSemaphorePermit,
        allowed: Allowed,
        mut stop: Stop,
    ) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        lock(&self.state).senders.insert(id, tx);
        loop {
            tokio::select! {
                got = tokio::time::timeout(IDLE, socket.recv()) => match got {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let mut state = lock(&self.state);
                        let out = state.signal.message(id, text.as_str(), Instant::now(), &*allowed);
                        Self::deliver(&state, out);
                    }
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        let mut state = lock(&self.state);
                        let out = state.signal.message(id, "", Instant::now(), &*allowed);
                        Self::deliver(&state, out);
                    }
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                    _ => break, // closed, broken, or idle
                },
                Some(text) = rx.recv() => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                () = &mut stop => break,
            }
        }
        {
            let mut state = lock(&self.state);
            state.signal.closed(id);
            state.senders.remove(&id);
        }
        let _ = socket.send(Message::Close(None)).await;
    }
}

/// A tracker of its own: WebTorrent's signalling at every path, for any torrent, until the
/// server stops.
pub fn router(signalling: Arc<Signalling>) -> axum::Router {
    async fn upgrade(
        axum::extract::State(signalling): axum::extract::State<Arc<Signalling>>,
        ws: WebSocketUpgrade,
    ) -> Response {
        signalling.accept(ws, Box::new(|_| true), Box::pin(std::future::pending()))
    }
    axum::Router::new()
        .route("/", axum::routing::get(upgrade))
        .route("/{*path}", axum::routing::get(upgrade))
        .with_state(signalling)
}
