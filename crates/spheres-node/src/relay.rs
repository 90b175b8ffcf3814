//! The household's relay for calls (coturn, run next to the household's Prosody) beyond the
//! home router: while the node runs, the router forwards the relay's port (UDP, and TCP for
//! networks that block UDP) and its block of relay ports (UDP, on the same numbers: a relay
//! names its own ports to the people it relays for); the relay then hands out the router's
//! outside address, and Prosody hands the outside address out too (XEP-0215). So a member
//! or contact elsewhere, even behind a router that picks a new port for each destination
//! (where no direct path exists), reaches the relay, and calls get through.
//!
//! Asked only when the relay listens on this computer's address towards its router (one
//! address on the home network, `--xmpp-listen`): on loopback it serves this computer alone,
//! and on an address the router does not lead to, a forwarded port would lead nowhere.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spheres_net::{Mapping, Proto};
use spheres_xmpp::prosody::TurnOutside;

use crate::api::types;
use crate::events::NodeEvent;
use crate::{Node, lock};

/// Fewer relay ports than this forwarded is no use (a call's end holds one or two).
const MIN_RELAY_PORTS: usize = 8;

/// How far the relay reaches, as last learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayReach {
    /// Asking the router.
    Asking,
    /// On loopback: this computer only.
    Computer,
    /// This network only, and why no further.
    Network(String),
    /// Beyond the router, at its outside address.
    Internet(TurnOutside),
}

/// What the node knows of its relay's reach while it runs.
pub(crate) struct RelayState {
    /// Where the household's relay listens, when the node runs one.
    pub(crate) listen: Option<std::net::SocketAddr>,
    pub(crate) reach: Mutex<RelayReach>,
    /// The router's forwardings, for the shutdown to remove.
    pub(crate) mappings: tokio::sync::Mutex<Vec<Mapping>>,
}

impl RelayState {
    pub(crate) fn new(listen: Option<std::net::SocketAddr>) -> Self {
        RelayState {
            listen,
            reach: Mutex::new(RelayReach::Asking),
            mappings: tokio::sync::Mutex::new(Vec::new()),
        }
    }
}

/// The relay in `spheres status`: where it listens, `reach`, and (beyond the router) where.
pub(crate) fn relay_status(addr: std::net::SocketAddr, reach_now: &RelayReach) -> types::Relay {
    let (reach, outside, ports, why) = match reach_now {
        RelayReach::Asking => (
            types::WebReach::Network,
            None,
            None,
            Some("asking the router to forward the relay's ports".to_owned()),
        ),
        RelayReach::Computer => (
            types::WebReach::Computer,
            None,
            None,
            Some(
                "the household server listens on this computer only; start the node with --xmpp-listen and this computer's address on the network for calls with people elsewhere"
                    .to_owned(),
            ),
        ),
        RelayReach::Network(why) => (types::WebReach::Network, None, None, Some(why.clone())),
        RelayReach::Internet(o) => (
            types::WebReach::Internet,
            Some(std::net::SocketAddr::new(o.ip, o.udp).to_string()),
            Some(format!("{}-{}", o.relay.start(), o.relay.end())),
            None,
        ),
    };
    types::Relay {
        addr: addr.to_string(),
        reach,
        outside,
        ports,
        why,
        asking: matches!(reach_now, RelayReach::Asking),
    }
}

/// Removes what the router forwards for us, all at once, giving up after a while (what stays
/// ends with its lease): a router that does not answer holds no shutdown up.
async fn remove_all(mappings: Vec<Mapping>) {
    if mappings.is_empty() {
        return;
    }
    use futures::StreamExt as _;
    // A few at a time: a router answers one request after the other anyway, and drops what
    // floods it.
    let all = futures::stream::iter(mappings).for_each_concurrent(2, |m| async move {
        if let Err(e) = m.remove().await {
            tracing::warn!(error = %e, "a relay port's forwarding stays until its lease ends");
        }
    });
    let started = std::time::Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(30), all).await;
    tracing::info!(took = ?started.elapsed(), "the relay's forwardings removed");
    if done.is_err() {
        tracing::warn!(
            "the router did not answer in time: the relay's forwardings stay until their lease ends"
        );
    }
}

impl Node {
    /// Keeps `m` for the shutdown to remove, unless the node is stopping (then removes it):
    /// the check and the keeping under the one lock the shutdown takes them with.
    async fn hold(&self, m: Mapping) -> Result<(), String> {
        let mut held = self.relay.mappings.lock().await;
        if self.stopping() {
            drop(held);
            remove_all(vec![m]).await;
            return Err("the node is stopping".to_owned());
        }
        held.push(m);
        Ok(())
    }

    /// Has the router forward the relay's port (UDP first, the way it is asked decides how
    /// the rest are asked; TCP if it will) and as many of its relay ports as it will, in
    /// order, up to the whole block; each kept as soon as it is made.
    async fn map_relay(
        &self,
        port: u16,
        relay: RangeInclusive<u16>,
        lease: Duration,
    ) -> Result<TurnOutside, String> {
        let first = Mapping::create_for(Proto::Udp, port, lease, Duration::from_secs(3))
            .await
            .map_err(|e| e.0)?;
        let ip = first.external.ip();
        if !spheres_net::is_public(ip) {
            let why = spheres_net::double_nat_why_for(ip, Proto::Udp, port);
            remove_all(vec![first]).await;
            return Err(why);
        }
        let udp = first.external.port();
        let router = first.router();
        self.hold(first).await?;
        let tcp = match router.map(Proto::Tcp, port).await {
            Ok(m) => {
                self.hold(m).await?;
                Some(port)
            }
            Err(e) => {
                tracing::info!(reason = %e, "the relay's TCP port is not forwarded (TURN over TCP works on the network only)");
                None
            }
        };
        let mut last = None;
        'ports: for p in relay.clone() {
            // Asked twice: a router slows down as its table grows, past one answer's wait.
            for attempt in 0..2 {
                match router.map(Proto::Udp, p).await {
                    Ok(m) => {
                        self.hold(m).await?;
                        last = Some(p);
                        continue 'ports;
                    }
                    Err(e) if attempt > 0 => {
                        tracing::info!(reason = %e, "the router forwards no more relay ports");
                    }
                    Err(_) => {}
                }
            }
            break;
        }
        let forwarded = last.map_or(0, |l| usize::from(l - relay.start()) + 1);
        match last {
            Some(last) if forwarded >= MIN_RELAY_PORTS => Ok(TurnOutside {
                ip,
                udp,
                tcp,
                relay: *relay.start()..=last,
            }),
            _ => Err(format!(
                "the router forwarded {forwarded} of the relay's {} ports, too few for calls",
                relay.len()
            )),
        }
    }

    /// Keeps the household relay's ports forwarded by the home router while the node runs
    /// (renewed at half the lease; asked again when a renewal is refused, and every 10
    /// minutes while the router says no), tells the relay and Prosody the outside address,
    /// and says how far the relay reaches.
    pub(crate) async fn keep_relay_mapped(self: Arc<Self>) {
        let Some(prosody) = &self.prosody else { return };
        let (Some(addr), Some(relay)) =
            (self.relay.listen, prosody.lock().await.turn_relay_ports())
        else {
            return;
        };
        if addr.ip().is_loopback() {
            self.relay_reach(RelayReach::Computer);
            return;
        }
        let towards_router = spheres_net::lan_address();
        if towards_router != Some(addr.ip()) {
            self.relay_reach(RelayReach::Network(match towards_router {
                Some(lan) => format!(
                    "the relay listens on {}, not on this computer's address towards its router ({lan}); start the node with --xmpp-listen {lan} for calls with people elsewhere",
                    addr.ip()
                ),
                None => "this computer has no router to forward the relay's ports".to_owned(),
            }));
            return;
        }
        let lease = Duration::from_secs(3600);
        loop {
            let outside = match self.map_relay(addr.port(), relay.clone(), lease).await {
                Ok(outside) => outside,
                Err(why) => {
                    let held = std::mem::take(&mut *self.relay.mappings.lock().await);
                    remove_all(held).await;
                    if self.stopping() {
                        return;
                    }
                    tracing::warn!(reason = %why, "the router does not forward the relay's ports");
                    // The relay names no outside address that leads nowhere.
                    if let Err(e) = prosody.lock().await.set_turn_outside(None).await {
                        tracing::warn!(error = %e, "the relay cannot be told it has no outside address");
                    }
                    self.relay_reach(RelayReach::Network(format!(
                        "{why}, so calls with people elsewhere get through only where a direct path exists"
                    )));
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    continue;
                }
            };
            tracing::info!(outside = %outside.ip, port = outside.udp, relay = ?outside.relay, "the router forwards the relay's ports");
            if let Err(e) = prosody
                .lock()
                .await
                .set_turn_outside(Some(outside.clone()))
                .await
            {
                tracing::warn!(error = %e, "the relay cannot be told its outside address");
                self.relay_reach(RelayReach::Network(format!(
                    "the relay could not be set up for people elsewhere: {e}"
                )));
                let held = std::mem::take(&mut *self.relay.mappings.lock().await);
                remove_all(held).await;
                tokio::time::sleep(Duration::from_secs(600)).await;
                continue;
            }
            let outside_ip = outside.ip;
            self.relay_reach(RelayReach::Internet(outside));
            // Renewed at half the lease, out of the lock (a shutdown meanwhile finds none
            // and this removes them); asked again when the router will not renew one.
            let half = self
                .relay
                .mappings
                .lock()
                .await
                .iter()
                .map(|m| m.lease)
                .min()
                .unwrap_or(lease)
                / 2;
            loop {
                tokio::time::sleep(half.max(Duration::from_secs(30))).await;
                let mut batch = std::mem::take(&mut *self.relay.mappings.lock().await);
                if batch.is_empty() {
                    return;
                }
                let mut refused = None;
                for m in batch.iter_mut() {
                    if let Err(e) = m.renew().await {
                        refused = Some(e.0);
                        break;
                    }
                }
                // A new outside address (the provider's doing): the relay must name it.
                if refused.is_none()
                    && let Some(now) = batch[0].outside_ip().await
                    && now != outside_ip
                {
                    refused = Some(format!(
                        "the router's outside address changed from {outside_ip} to {now}"
                    ));
                }
                let mut held = self.relay.mappings.lock().await;
                if self.stopping() || refused.is_some() {
                    drop(held);
                    remove_all(batch).await;
                    if self.stopping() {
                        return;
                    }
                    if let Some(why) = refused {
                        tracing::warn!(reason = %why, "the relay's forwardings are asked for again");
                    }
                    break;
                }
                *held = batch;
            }
        }
    }

    fn relay_reach(&self, now: RelayReach) {
        let changed = {
            let mut reach = lock(&self.relay.reach);
            let changed = *reach != now;
            *reach = now;
            changed
        };
        if changed {
            self.emit(NodeEvent::Network);
        }
    }

    /// The household's relay in `spheres status`, when the node runs one.
    pub(crate) fn relay_info(&self) -> Option<types::Relay> {
        let addr = self.relay.listen?;
        Some(relay_status(addr, &lock(&self.relay.reach)))
    }

    /// Removes the relay's forwardings (at shutdown).
    pub(crate) async fn unmap_relay(&self) {
        let held = std::mem::take(&mut *self.relay.mappings.lock().await);
        remove_all(held).await;
    }
}
