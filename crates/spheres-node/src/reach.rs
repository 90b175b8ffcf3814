//! How people elsewhere reach the node's web pages (links, public posts): a name of the
//! owner's (`--public-url`, served by a reverse proxy, or by the node itself over HTTPS with a
//! certificate from an ACME CA), the web port forwarded by the home router (`--public-web`:
//! UPnP IGD, NAT-PMP or PCP, as for the BitTorrent port), else this network or this computer.
//! Links and public pages name the best of these and say how far they reach
//! (docs/decisions/0019-links-from-outside.md).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use futures::StreamExt as _;

use crate::api::types::{HttpsState, WebAddress, WebReach};
use crate::events::NodeEvent;
use crate::{Node, lock};

/// Let's Encrypt's ACME directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The address the owner gave for the node's pages: `https://photos.example.org[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    /// A DNS name (lowercase), an IPv4 address or `[IPv6]`.
    pub host: String,
    pub port: Option<u16>,
}

impl PublicUrl {
    /// Reads `text`, an address alone: a scheme (`https` or `http`), a host and perhaps a
    /// port, nothing else.
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!("{text:?} is not an address ({e}): write it as https://photos.example.org")
        })?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(format!("{text:?} must start with https:// or http://")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?} must not hold a user name or a password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} must be an address alone, without a path: links add theirs (/l/...)"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            None => return Err(format!("{text:?} names no host")),
        };
        Ok(PublicUrl {
            https,
            host,
            port: url.port(),
        })
    }

    /// What links start with: `https://photos.example.org`.
    pub fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{}:{p}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }

    /// A DNS name (what an ACME CA certifies), not an address.
    pub fn is_name(&self) -> bool {
        !self.host.starts_with('[') && self.host.parse::<std::net::Ipv4Addr>().is_err()
    }
}

/// Where the ACME CA is, and how the node talks to it.
#[derive(Debug, Clone, Default)]
pub struct Acme {
    /// Its directory URL (default: Let's Encrypt's).
    pub directory: Option<String>,
    /// A PEM file of authorities to trust for its HTTPS, besides the system's.
    pub ca: Option<PathBuf>,
    pub email: Option<String>,
}

/// How the node's pages are offered beyond this machine.
#[derive(Debug, Clone, Default)]
pub struct PublicWeb {
    pub url: Option<PublicUrl>,
    /// Ask the home router to forward the web port (`--public-web`).
    pub map_router: bool,
    /// Serve HTTPS here, certified for `url`'s name by the ACME CA.
    pub https: Option<(SocketAddr, Acme)>,
}

impl PublicWeb {
    /// The settings as given (`--public-url`, `--public-web`, `--https`, `--acme-*`),
    /// checked.
    pub fn resolve(
        url: Option<&str>,
        map_router: bool,
        https: Option<SocketAddr>,
        acme: Acme,
    ) -> Result<PublicWeb> {
        let url = match url {
            Some(u) => Some(PublicUrl::parse(u).map_err(|e| anyhow::anyhow!("--public-url: {e}"))?),
            None => None,
        };
        let https = match (https, &url) {
            (None, _) => None,
            (Some(addr), Some(u)) if u.https && u.is_name() => Some((addr, acme)),
            (Some(_), _) => bail!(
                "--https serves --public-url's name with a certificate for that name: give --public-url https://NAME, a DNS name that leads to this node (a CA certifies names, not addresses)"
            ),
        };
        Ok(PublicWeb {
            url,
            map_router,
            https,
        })
    }

    /// The port the router is asked to forward: HTTPS's when the node serves it, else
    /// HTTP's (where each is bound: a port 0 asked for is the one the OS picked).
    pub fn mapped_port(http: SocketAddr, https: Option<SocketAddr>) -> u16 {
        https.unwrap_or(http).port()
    }
}

/// What the node knows of its pages' reach while it runs.
pub(crate) struct WebState {
    /// The router's forwarding of the web port (`--public-web`).
    pub(crate) mapped: Mutex<spheres_net::Reachability>,
    pub(crate) mapping: tokio::sync::Mutex<Option<spheres_net::Mapping>>,
    /// The node's own HTTPS (`--https`).
    pub(crate) https: Mutex<Option<HttpsState>>,
}

impl Default for WebState {
    fn default() -> Self {
        WebState {
            mapped: Mutex::new(spheres_net::Reachability::Unknown),
            mapping: tokio::sync::Mutex::new(None),
            https: Mutex::default(),
        }
    }
}

/// Where links point and how far they reach: the owner's name if given; else the router's
/// outside address if it forwards the web port; else `http` itself (`lan`: our address on
/// the network, when `http` is every interface's).
pub(crate) fn web_address(
    public: &PublicWeb,
    http: SocketAddr,
    lan: Option<IpAddr>,
    mapped: &spheres_net::Reachability,
) -> WebAddress {
    use spheres_net::Reachability as R;
    if let Some(url) = &public.url {
        return WebAddress {
            url: url.base(),
            reach: WebReach::Public,
            why: None,
            https: None,
        };
    }
    if public.map_router
        && let R::Mapped { external, .. } = mapped
        && spheres_net::is_public(external.ip())
    {
        return WebAddress {
            url: format!("http://{external}"),
            reach: WebReach::Internet,
            why: None,
            https: None,
        };
    }
    let host = if http.ip().is_unspecified() {
        lan.unwrap_or(if http.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        })
    } else {
        http.ip()
    };
    let here = SocketAddr::new(host, http.port());
    let reach = if host.is_loopback() {
        WebReach::Computer
    } else {
        WebReach::Network
    };
    let port = http.port();
    let why = if public.map_router {
        match mapped {
            R::Unknown => format!(
                "links open on this network only while the node asks the home router to forward port {port}"
            ),
            R::Mapped { external, .. } => format!(
                "the home router forwards port {port}, but its outside address ({}) is not a public one: links open on this network only; give --public-url if a name of yours leads to this router",
                external.ip()
            ),
            R::DoubleNat { .. } => format!(
                "links open on this network only: the home router is itself behind another router (often the internet provider's), which forwards nothing here. Ask the provider for a public IP address, or forward TCP port {port} on the outer router to this one"
            ),
            R::Unreachable { why } => format!(
                "links open on this network only: {why}. Turn on UPnP or NAT-PMP in the router's settings, or forward TCP port {port} to {here} by hand and give --public-url"
            ),
            R::LoopbackOnly => "links open on this computer only".to_owned(),
        }
    } else if reach == WebReach::Computer {
        "links open on this computer only: start the node with --public-web to let anyone open them, or --http 0.0.0.0:PORT for this network".to_owned()
    } else {
        "links open on this network only: start the node with --public-web to let anyone open them (the router forwards the web port), or --public-url URL if a name of yours leads to this node".to_owned()
    };
    WebAddress {
        url: format!("http://{here}"),
        reach,
        why: Some(why),
        https: None,
    }
}

impl Node {
    /// Where links and public pages point, and how far they reach; `None` without HTTP.
    pub(crate) fn web_address(&self) -> Option<WebAddress> {
        let http = (*lock(&self.http))?;
        let lan = if http.ip().is_unspecified() {
            spheres_net::lan_address()
        } else {
            None
        };
        let mut address = web_address(&self.settings.public, http, lan, &lock(&self.web.mapped));
        address.https = lock(&self.web.https).clone();
        Some(address)
    }

    /// Keeps the web port forwarded by the home router while the node runs (`--public-web`):
    /// HTTPS's where it is bound (`https`), when the node serves it.
    pub(crate) async fn keep_web_mapped(self: Arc<Self>, https: Option<SocketAddr>) {
        let Some(http) = *lock(&self.http) else {
            return;
        };
        if self.settings.public.map_router {
            let port = PublicWeb::mapped_port(http, https);
            self.keep_mapped(port, crate::peers::Forwarded::Web).await;
        }
    }

    /// Serves `router` over HTTPS at `addr` for `url`'s name, with a certificate the ACME CA
    /// gives after checking that the name leads here (TLS-ALPN-01, on this same port), kept in
    /// `DATA/acme/` and renewed before it expires. Returns the bound address; until a
    /// certificate is there, handshakes fail and status says why.
    pub(crate) async fn serve_https(
        self: &Arc<Self>,
        router: axum::Router,
        addr: SocketAddr,
        url: &PublicUrl,
        acme: &Acme,
    ) -> Result<SocketAddr> {
        let client = spheres_net::tls::client_config(acme.ca.as_deref())
            .map_err(|e| anyhow::anyhow!("--acme-ca: {e}"))?;
        let directory = acme
            .directory
            .clone()
            .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
        let mut state =
            rustls_acme::AcmeConfig::new_with_client_config([&url.host], Arc::new(client))
                .directory(&directory)
                .contact(acme.email.iter().map(|e| format!("mailto:{e}")))
                .cache(AcmeFiles(self.settings.data_dir.join("acme")))
                .state();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let challenge = state.challenge_rustls_config_with_provider(provider.clone());
        let serving = state.default_rustls_config_with_provider(provider);
        let (bound, _task) = spheres_web::serve_over(
            router,
            addr,
            spheres_web::Limits::default(),
            true,
            move |tcp| {
                let (challenge, serving) = (challenge.clone(), serving.clone());
                async move {
                    let start = tokio_rustls::LazyConfigAcceptor::new(
                        rustls::server::Acceptor::default(),
                        tcp,
                    )
                    .await
                    .ok()?;
                    if rustls_acme::is_tls_alpn_challenge(&start.client_hello()) {
                        // The CA checking the name: the challenge's certificate is all it needs.
                        let mut tls = start.into_stream(challenge).await.ok()?;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                        None
                    } else {
                        start.into_stream(serving).await.ok()
                    }
                }
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot serve HTTPS on {addr} (in use? pass --https ADDR:PORT): {e}")
        })?;
        *lock(&self.web.https) = Some(HttpsState {
            addr: bound.to_string(),
            certified: false,
            error: None,
        });
        let node = self.clone();
        let name = url.host.clone();
        tokio::spawn(async move {
            // With --public-web, the CA can check the name only once the router forwards the
            // port: ordering before would spend the CA's few allowed failures (Let's Encrypt:
            // 5 an hour per name).
            if node.settings.public.map_router {
                for _ in 0..120 {
                    if !matches!(*lock(&node.web.mapped), spheres_net::Reachability::Unknown) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
            // Polling the state orders, renews and deploys the certificate.
            while let Some(event) = state.next().await {
                let mut https = lock(&node.web.https);
                let Some(h) = https.as_mut() else { break };
                match event {
                    Ok(
                        rustls_acme::EventOk::DeployedCachedCert
                        | rustls_acme::EventOk::DeployedNewCert,
                    ) => {
                        tracing::info!(%name, "HTTPS has a certificate");
                        h.certified = true;
                        h.error = None;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(%name, error = %e, "no certificate from the ACME CA yet");
                        if !h.certified {
                            h.error = Some(format!(
                                "the CA at {directory} gave no certificate for {name} yet: {}. The name must lead to this node's HTTPS port (port 443 by the name alone) for the CA to check it",
                                acme_words(&e)
                            ));
                        }
                    }
                }
                drop(https);
                node.emit(NodeEvent::Network);
            }
        });
        Ok(bound)
    }
}

/// What the CA said, in its own words when it said something (the failed check's detail),
/// rather than the client's debugging dump.
fn acme_words(e: &rustls_acme::EventError<std::io::Error, std::io::Error>) -> String {
    if let rustls_acme::EventError::Order(rustls_acme::OrderError::BadAuth(auth)) = e {
        let said: Vec<&str> = auth
            .challenges
            .iter()
            .filter_map(|c| c.error.as_ref()?.detail.as_deref())
            .collect();
        if !said.is_empty() {
            return format!("its check failed ({})", said.join("; "));
        }
    }
    e.to_string()
}

/// Where the ACME account key and the certificate are kept: files in the node's private data
/// folder, written whole (a crash leaves the previous file or the new one), readable by the
/// node's user only.
struct AcmeFiles(PathBuf);

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, std::io::Error>> + Send + 'a>>;

impl AcmeFiles {
    /// The file of `kind` for these names (or contacts) at this CA: named by their hash.
    fn file(&self, kind: &str, names: &[String], directory_url: &str) -> PathBuf {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for p in names.iter().map(String::as_str).chain([directory_url]) {
            h.update(p.as_bytes());
            h.update([0]);
        }
        self.0
            .join(format!("{kind}-{}", hex::encode(&h.finalize()[..16])))
    }

    fn load(path: PathBuf) -> Boxed<'static, Option<Vec<u8>>> {
        Box::pin(async move {
            match tokio::fs::read(&path).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn store(path: PathBuf, bytes: Vec<u8>) -> Boxed<'static, ()> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_private_file(&path, &bytes))
                .await
                .map_err(std::io::Error::other)?
        })
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::settings::write_private(path, bytes).map_err(std::io::Error::other)
}

impl rustls_acme::CertCache for AcmeFiles {
    type EC = std::io::Error;

    fn load_cert<'a, 'b, 'c, 'r>(
        &'a self,
        domains: &'b [String],
        directory_url: &'c str,
    ) -> Boxed<'r, Option<Vec<u8>>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        AcmeFiles::load(self.file("certificate", domains, directory_url))
    }

    fn store_cert<'a, 'b, 'c, 'd, 'r>(
        &'a self,
        domains: &'b [String],
        directory_url: &'c str,
        cert: &'d [u8],
    ) -> Boxed<'r, ()>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        'd: 'r,
        Self: 'r,
    {
        AcmeFiles::store(
            self.file("certificate", domains, directory_url),
            cert.to_vec(),
        )
    }
}

impl rustls_acme::AccountCache for AcmeFiles {
    type EA = std::io::Error;

    fn load_account<'a, 'b, 'c, 'r>(
        &'a self,
        contact: &'b [String],
        directory_url: &'c str,
    ) -> Boxed<'r, Option<Vec<u8>>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        AcmeFiles::load(self.file("account", contact, directory_url))
    }

    fn store_account<'a, 'b, 'c, 'd, 'r>(
        &'a self,
        contact: &'b [String],
        directory_url: &'c str,
        account: &'d [u8],
    ) -> Boxed<'r, ()>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        'd: 'r,
        Self: 'r,
    {
        AcmeFiles::store(
            self.file("account", contact, directory_url),
            account.to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spheres_net::Reachability as R;

    #[test]
    fn a_public_url_is_an_address_alone() {
        let u = PublicUrl::parse("https://Photos.Example.org").unwrap();
        assert_eq!(u.base(), "https://photos.example.org");
        assert!(u.is_name() && u.https);
        let u = PublicUrl::parse("http://203.0.113.7:8427/").unwrap();
        assert_eq!(u.base(), "http://203.0.113.7:8427");
        assert!(!u.is_name());
        assert!(
            !PublicUrl::parse("http://[2001:db8::1]:80")
                .unwrap()
                .is_name()
        );
        for bad in [
            "photos.example.org",
            "ftp://photos.example.org",
            "https://photos.example.org/spheres",
            "https://photos.example.org/?a=1",
            "https://me:secret@photos.example.org",
            "https://photos.example.org/#x",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn https_needs_a_name_to_certify() {
        let addr: SocketAddr = "0.0.0.0:443".parse().unwrap();
        let ok = PublicWeb::resolve(
            Some("https://photos.example.org"),
            true,
            Some(addr),
            Acme::default(),
        )
        .unwrap();
        assert!(ok.https.is_some());
        let http: SocketAddr = "0.0.0.0:8427".parse().unwrap();
        let https: SocketAddr = "0.0.0.0:44301".parse().unwrap();
        // HTTPS's port where it is bound (asked for 0, the one the OS picked), else HTTP's.
        assert_eq!(PublicWeb::mapped_port(http, Some(https)), 44301);
        assert_eq!(PublicWeb::mapped_port(http, None), 8427);
        for url in [
            None,
            Some("http://photos.example.org"),
            Some("https://203.0.113.7"),
        ] {
            assert!(
                PublicWeb::resolve(url, false, Some(addr), Acme::default()).is_err(),
                "{url:?}"
            );
        }
    }

    #[test]
    fn links_name_the_farthest_reaching_address_and_say_why_not_farther() {
        let any: SocketAddr = "0.0.0.0:8427".parse().unwrap();
        let lan: Option<IpAddr> = Some("192.168.1.20".parse().unwrap());
        let mapped = R::Mapped {
            method: spheres_net::Method::UpnpIgd2,
            external: "25.0.0.1:8427".parse().unwrap(),
            lease_secs: 3600,
        };
        let named = PublicWeb {
            url: PublicUrl::parse("https://photos.example.org").ok(),
            ..PublicWeb::default()
        };
        let a = web_address(&named, any, lan, &mapped);
        assert_eq!(
            (a.url.as_str(), a.reach),
            ("https://photos.example.org", WebReach::Public)
        );
        let map = PublicWeb {
            map_router: true,
            ..PublicWeb::default()
        };
        let a = web_address(&map, any, lan, &mapped);
        assert_eq!(
            (a.url.as_str(), a.reach, a.why),
            ("http://25.0.0.1:8427", WebReach::Internet, None)
        );
        // The router said no: this network, and why.
        let refused = R::Unreachable {
            why: "the router 192.168.1.1 did not forward a port (UPnP: no gateway answered)".into(),
        };
        let a = web_address(&map, any, lan, &refused);
        assert_eq!(
            (a.url.as_str(), a.reach),
            ("http://192.168.1.20:8427", WebReach::Network)
        );
        assert!(a.why.unwrap().contains("no gateway answered"));
        // A mapping whose outside is not public reaches no farther than the network.
        let inner = R::Mapped {
            method: spheres_net::Method::NatPmp,
            external: "100.64.0.9:8427".parse().unwrap(),
            lease_secs: 3600,
        };
        assert_eq!(web_address(&map, any, lan, &inner).reach, WebReach::Network);
        // Not asked to go farther: says how.
        let a = web_address(
            &PublicWeb::default(),
            "127.0.0.1:8427".parse().unwrap(),
            None,
            &R::Unknown,
        );
        assert_eq!(
            (a.url.as_str(), a.reach),
            ("http://127.0.0.1:8427", WebReach::Computer)
        );
        assert!(a.why.unwrap().contains("--public-web"));
        let a = web_address(&PublicWeb::default(), any, lan, &mapped);
        assert_eq!(a.reach, WebReach::Network);
    }
}
