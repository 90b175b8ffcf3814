//! Reachability of a node: on the LAN by local service discovery ([`lsd`], BEP 14), and
//! behind a home router (docs/decisions/0008) by asking the router to
//! forward a port, with PCP first, then NAT-PMP (both through `crab_nat`), then UPnP IGD
//! (`igd-next`, which speaks IGDv2 and IGDv1); learn the external address; renew at half the
//! lease; remove the mapping on shutdown. When nothing works, say why in plain words: the
//! node still works outbound.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod lsd;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

use serde::Serialize;

/// How a port was mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Pcp,
    NatPmp,
    UpnpIgd2,
    UpnpIgd1,
}

/// Which transport a mapping forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn nat(self) -> crab_nat::InternetProtocol {
        match self {
            Proto::Tcp => crab_nat::InternetProtocol::Tcp,
            Proto::Udp => crab_nat::InternetProtocol::Udp,
        }
    }

    fn igd(self) -> igd_next::PortMappingProtocol {
        match self {
            Proto::Tcp => igd_next::PortMappingProtocol::TCP,
            Proto::Udp => igd_next::PortMappingProtocol::UDP,
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// What the node can say about being reachable from outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Reachability {
    /// Not looked at yet.
    Unknown,
    /// Listening on loopback only: nobody else can reach it, by choice.
    LoopbackOnly,
    /// The router forwards `external` to us.
    Mapped {
        method: Method,
        external: SocketAddr,
        lease_secs: u64,
    },
    /// The router forwards a port, but its own outside address is not public: it sits behind
    /// another router (double NAT, often the provider's), so nobody outside reaches us.
    DoubleNat {
        method: Method,
        /// The first router's outside address: where the outer router must forward to.
        router_outside: SocketAddr,
        why: String,
    },
    /// Outbound only; `why` says what was tried and what answered.
    Unreachable { why: String },
}

/// Whether an outside address seen from behind a router is a real internet address (not a
/// private, carrier-grade NAT, link-local, loopback or unset one).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local()
                || v6.is_unique_local())
        }
    }
}

/// What to tell a person whose router's outside address is `outside` (not public), about
/// `port` of `proto`.
pub fn double_nat_why_for(outside: IpAddr, proto: Proto, port: u16) -> String {
    let shown = if outside.is_unspecified() {
        "the router reports no public outside address of its own".to_owned()
    } else {
        format!("the router's own outside address, {outside}, is not a public one")
    };
    format!(
        "double NAT: {shown}, so it is most likely behind another router (often the internet provider's). Members elsewhere cannot connect to this node (it can still connect to them). To fix it, ask the provider for a public IP address, or forward {proto} port {port} on the outer router to this router"
    )
}

/// The default IPv4 gateway, from the kernel's routing table (`/proc/net/route` text).
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags) = (cols.get(1)?, cols.get(2)?, cols.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        // RTF_UP (1) and RTF_GATEWAY (2), destination 0.0.0.0.
        if *dest != "00000000" || flags & 3 != 3 {
            return None;
        }
        let raw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(raw.swap_bytes()))
    })
}

/// This machine's address on its LAN: the one it uses towards the default gateway.
pub fn lan_address() -> Option<IpAddr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    local_address_towards(default_gateway(&table)?).ok()
}

/// Our address on the way to `gateway` (what the router sees).
fn local_address_towards(gateway: Ipv4Addr) -> std::io::Result<IpAddr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.connect((gateway, 5351))?;
    Ok(s.local_addr()?.ip())
}

enum Held {
    Nat(crab_nat::PortMapping),
    Igd {
        gateway: igd_next::aio::Gateway<igd_next::aio::tokio::Tokio>,
        external_port: u16,
        internal: SocketAddr,
    },
}

/// A port the router forwards to us. Renew it before half its lease is over; remove it when
/// done (dropping it without `remove` leaves it to expire on the router).
pub struct Mapping {
    pub method: Method,
    pub proto: Proto,
    pub external: SocketAddr,
    pub internal: SocketAddr,
    pub lease: Duration,
    held: Held,
    /// The router asked, and how long to wait for it (for [`Mapping::another`]).
    gateway: Ipv4Addr,
    wait: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoMapping(pub String);

const DESCRIPTION: &str = "spheres";

impl Mapping {
    /// Maps TCP `port` (where the node listens on all interfaces) for `lease`, trying PCP,
    /// NAT-PMP, then UPnP IGD, each within `wait`.
    pub async fn create(port: u16, lease: Duration, wait: Duration) -> Result<Mapping, NoMapping> {
        Self::create_for(Proto::Tcp, port, lease, wait).await
    }

    /// [`Mapping::create`] for a port of `proto`.
    pub async fn create_for(
        proto: Proto,
        port: u16,
        lease: Duration,
        wait: Duration,
    ) -> Result<Mapping, NoMapping> {
        let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let gateway = default_gateway(&table).ok_or_else(|| {
            NoMapping(
                "there is no default route: this machine is not on a network with a router".into(),
            )
        })?;
        let local = local_address_towards(gateway).map_err(|e| {
            NoMapping(format!(
                "cannot find our address towards the router {gateway}: {e}"
            ))
        })?;
        let internal = SocketAddr::new(local, port);
        let nonzero =
            NonZeroU16::new(port).ok_or_else(|| NoMapping("port 0 cannot be mapped".into()))?;
        let mut tried = Vec::new();

        let options = crab_nat::PortMappingOptions {
            external_port: Some(nonzero),
            lifetime_seconds: Some(lease.as_secs().clamp(60, u32::MAX as u64) as u32),
            timeout_config: Some(crab_nat::TimeoutConfig {
                initial_timeout: Duration::from_millis(250),
                max_retries: 2,
                max_retry_timeout: Some(wait),
            }),
        };
        let gw = crab_nat::GatewayAddress::IpV4(gateway);
        let mut nat = tokio::time::timeout(
            wait * 2,
            crab_nat::PortMapping::new(gw, local, proto.nat(), nonzero, options),
        )
        .await;
        // crab_nat falls back to NAT-PMP only when the router answers PCP with "unsupported
        // version"; some NAT-PMP routers refuse PCP packets outright, so ask NAT-PMP anyway.
        if !matches!(nat, Ok(Ok(_))) {
            let pmp = tokio::time::timeout(
                wait * 2,
                crab_nat::natpmp::port_mapping(gw, proto.nat(), nonzero, options),
            )
            .await;
            match pmp {
                Ok(Ok(m)) => nat = Ok(Ok(m)),
                Ok(Err(e)) => tried.push(format!("NAT-PMP: {e}")),
                Err(_) => tried.push(format!(
                    "NAT-PMP: no answer from {gateway} within {:?}",
                    wait * 2
                )),
            }
        }
        match nat {
            Ok(Ok(m)) => {
                let (method, external_ip) = match m.mapping_type() {
                    crab_nat::PortMappingType::Pcp { external_ip, .. } => {
                        (Method::Pcp, Some(external_ip))
                    }
                    crab_nat::PortMappingType::NatPmp => (
                        Method::NatPmp,
                        crab_nat::natpmp::external_address(
                            crab_nat::GatewayAddress::IpV4(gateway),
                            None,
                        )
                        .await
                        .ok()
                        .map(IpAddr::V4),
                    ),
                };
                let external = SocketAddr::new(
                    external_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    m.external_port().get(),
                );
                return Ok(Mapping {
                    method,
                    proto,
                    external,
                    internal,
                    lease: Duration::from_secs(u64::from(m.lifetime())),
                    held: Held::Nat(m),
                    gateway,
                    wait,
                });
            }
            Ok(Err(e)) => tried.push(format!("PCP/NAT-PMP: {e}")),
            Err(_) => tried.push(format!(
                "PCP/NAT-PMP: no answer from {gateway} within {wait:?}"
            )),
        }

        let mut search = igd_next::SearchOptions::default();
        search.bind_addr = SocketAddr::new(local, 0);
        search.timeout = Some(wait);
        search.single_search_timeout = Some(wait);
        match igd_next::aio::tokio::search_gateway(search).await {
            Ok(gw) => {
                let method = if gw.service_type.ends_with(":2") {
                    Method::UpnpIgd2
                } else {
                    Method::UpnpIgd1
                };
                let secs = lease.as_secs().clamp(60, 86_400) as u32;
                let external_port = match gw
                    .add_port(proto.igd(), port, internal, secs, DESCRIPTION)
                    .await
                {
                    Ok(()) => Ok(port),
                    // The same external port is taken (another machine): let the router pick.
                    Err(_) => {
                        gw.add_any_port(proto.igd(), internal, secs, DESCRIPTION)
                            .await
                    }
                };
                match external_port {
                    Ok(external_port) => {
                        let ip = gw
                            .get_external_ip()
                            .await
                            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                        return Ok(Mapping {
                            method,
                            proto,
                            external: SocketAddr::new(ip, external_port),
                            internal,
                            lease: Duration::from_secs(u64::from(secs)),
                            held: Held::Igd {
                                gateway: gw,
                                external_port,
                                internal,
                            },
                            gateway,
                            wait,
                        });
                    }
                    Err(e) => {
                        // Routers refuse to map when their own outside address is not public
                        // (miniupnpd does, and reports 0.0.0.0 then): say so, it is the cause.
                        match gw.get_external_ip().await {
                            Ok(outside) if !is_public(outside) => {
                                return Err(NoMapping(double_nat_why_for(outside, proto, port)));
                            }
                            Ok(_) => {
                                tried.push(format!("UPnP: the router refused the mapping ({e})"))
                            }
                            // It answers, but with no usable outside address of its own
                            // (miniupnpd sends an empty one then): the same cause.
                            Err(igd_next::GetExternalIpError::RequestError(
                                igd_next::RequestError::InvalidResponse(_),
                            )) => {
                                return Err(NoMapping(double_nat_why_for(
                                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                                    proto,
                                    port,
                                )));
                            }
                            Err(e2) => tried.push(format!(
                                "UPnP: the router refused the mapping ({e}) and would not tell its outside address ({e2})"
                            )),
                        }
                    }
                }
            }
            Err(e) => tried.push(format!("UPnP: no gateway answered ({e})")),
        }
        Err(NoMapping(format!(
            "the router {gateway} did not forward a port ({})",
            tried.join("; ")
        )))
    }

    /// The router this mapping was made with, and how: more ports are asked for through it.
    pub fn router(&self) -> Router {
        Router {
            method: self.method,
            external_ip: self.external.ip(),
            internal_ip: self.internal.ip(),
            lease: self.lease,
            gateway: self.gateway,
            wait: self.wait,
            igd: match &self.held {
                Held::Igd { gateway, .. } => Some(gateway.clone()),
                Held::Nat(_) => None,
            },
        }
    }

    /// [`Router::map`] through this mapping's router.
    pub async fn another(&self, proto: Proto, port: u16) -> Result<Mapping, NoMapping> {
        self.router().map(proto, port).await
    }

    /// Renews the mapping for another lease.
    pub async fn renew(&mut self) -> Result<(), NoMapping> {
        match &mut self.held {
            Held::Nat(m) => m
                .renew()
                .await
                .map_err(|e| NoMapping(format!("renewal refused: {e}"))),
            Held::Igd {
                gateway,
                external_port,
                internal,
            } => gateway
                .add_port(
                    self.proto.igd(),
                    *external_port,
                    *internal,
                    self.lease.as_secs() as u32,
                    DESCRIPTION,
                )
                .await
                .map_err(|e| NoMapping(format!("renewal refused: {e}"))),
        }
    }

    /// The router's outside address as it says it now (a provider may change it), when it
    /// says.
    pub async fn outside_ip(&self) -> Option<IpAddr> {
        match &self.held {
            Held::Nat(m) => match m.mapping_type() {
                crab_nat::PortMappingType::Pcp { external_ip, .. } => Some(external_ip),
                crab_nat::PortMappingType::NatPmp => crab_nat::natpmp::external_address(
                    crab_nat::GatewayAddress::IpV4(self.gateway),
                    None,
                )
                .await
                .ok()
                .map(IpAddr::V4),
            },
            Held::Igd { gateway, .. } => gateway.get_external_ip().await.ok(),
        }
    }

    /// Removes the mapping from the router.
    pub async fn remove(self) -> Result<(), NoMapping> {
        match self.held {
            Held::Nat(m) => m
                .try_drop()
                .await
                .map_err(|(e, _)| NoMapping(format!("cannot remove the mapping: {e}"))),
            Held::Igd {
                gateway,
                external_port,
                ..
            } => gateway
                .remove_port(self.proto.igd(), external_port)
                .await
                .map_err(|e| NoMapping(format!("cannot remove the mapping: {e}"))),
        }
    }

    pub fn reachability(&self) -> Reachability {
        let ip = self.external.ip();
        // An unknown outside address (0.0.0.0) with a working mapping is not held against it.
        if !ip.is_unspecified() && !is_public(ip) {
            return Reachability::DoubleNat {
                method: self.method,
                router_outside: self.external,
                why: double_nat_why_for(ip, self.proto, self.external.port()),
            };
        }
        Reachability::Mapped {
            method: self.method,
            external: self.external,
            lease_secs: self.lease.as_secs(),
        }
    }
}

/// A router that forwarded a port, and how it was asked ([`Mapping::router`]).
#[derive(Clone)]
pub struct Router {
    method: Method,
    external_ip: IpAddr,
    internal_ip: IpAddr,
    lease: Duration,
    gateway: Ipv4Addr,
    wait: Duration,
    igd: Option<igd_next::aio::Gateway<igd_next::aio::tokio::Tokio>>,
}

impl Router {
    /// Maps `port` of `proto` the way the first mapping was made (the same router and method),
    /// on the same outside port: the router's answer is refused when it offers another one (a
    /// relay names its own port to the people it relays for).
    pub async fn map(&self, proto: Proto, port: u16) -> Result<Mapping, NoMapping> {
        let nonzero =
            NonZeroU16::new(port).ok_or_else(|| NoMapping("port 0 cannot be mapped".into()))?;
        let internal = SocketAddr::new(self.internal_ip, port);
        let refused = |e: &dyn std::fmt::Display| {
            NoMapping(format!(
                "the router refused to forward {proto} port {port}: {e}"
            ))
        };
        let mapping = match &self.igd {
            None => {
                let options = crab_nat::PortMappingOptions {
                    external_port: Some(nonzero),
                    lifetime_seconds: Some(self.lease.as_secs().clamp(60, u32::MAX as u64) as u32),
                    // The router answered already: a slow answer (its table grows with
                    // each port) is waited for rather than asked again.
                    timeout_config: Some(crab_nat::TimeoutConfig {
                        initial_timeout: Duration::from_millis(1000),
                        max_retries: 2,
                        max_retry_timeout: Some(self.wait),
                    }),
                };
                let gw = crab_nat::GatewayAddress::IpV4(self.gateway);
                let m = if self.method == Method::Pcp {
                    crab_nat::PortMapping::new(gw, internal.ip(), proto.nat(), nonzero, options)
                        .await
                        .map_err(|e| refused(&e))?
                } else {
                    crab_nat::natpmp::port_mapping(gw, proto.nat(), nonzero, options)
                        .await
                        .map_err(|e| refused(&e))?
                };
                Mapping {
                    method: self.method,
                    proto,
                    external: SocketAddr::new(self.external_ip, m.external_port().get()),
                    internal,
                    lease: Duration::from_secs(u64::from(m.lifetime())),
                    held: Held::Nat(m),
                    gateway: self.gateway,
                    wait: self.wait,
                }
            }
            Some(gateway) => {
                let secs = self.lease.as_secs().clamp(60, 86_400) as u32;
                gateway
                    .add_port(proto.igd(), port, internal, secs, DESCRIPTION)
                    .await
                    .map_err(|e| refused(&e))?;
                Mapping {
                    method: self.method,
                    proto,
                    external: SocketAddr::new(self.external_ip, port),
                    internal,
                    lease: Duration::from_secs(u64::from(secs)),
                    held: Held::Igd {
                        gateway: gateway.clone(),
                        external_port: port,
                        internal,
                    },
                    gateway: self.gateway,
                    wait: self.wait,
                }
            }
        };
        if mapping.external.port() != port {
            let offered = mapping.external.port();
            let _ = mapping.remove().await;
            return Err(NoMapping(format!(
                "the router would forward {proto} port {port} only from its port {offered}"
            )));
        }
        Ok(mapping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_are_told_from_the_others() {
        for ip in ["25.0.0.1", "81.2.3.4", "2001:db8::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.1.1",
            "127.0.0.1",
            "0.0.0.0",
            "fe80::1",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        // A mapping whose router sits behind another NAT is said to be one.
        let why = double_nat_why_for("100.64.0.1".parse().unwrap(), Proto::Tcp, 6881);
        assert!(
            why.starts_with("double NAT") && why.contains("100.64.0.1") && why.contains("6881")
        );
    }

    #[test]
    fn the_default_gateway_is_read_from_the_routing_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(default_gateway("Iface\tDestination\n"), None);
        assert_eq!(default_gateway("header\nlo\t00000000\tzz\t0003\n"), None);
    }
}
