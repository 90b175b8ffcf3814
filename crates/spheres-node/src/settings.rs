//! Where the node keeps things and how it is configured: flags, then environment
//! (`SPHERES_*`), then the config file (TOML), then defaults. Paths follow the XDG base
//! directories unless `--data-dir` / `--config` say otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

/// Where the running node can be found by the other subcommands.
#[derive(Args, Clone, Debug, Default)]
pub struct Locate {
    /// The node's data folder (default: $XDG_DATA_HOME/spheres).
    #[arg(long, env = "SPHERES_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl Locate {
    pub fn data_dir(&self) -> Result<PathBuf> {
        match &self.data_dir {
            // Absolute, so paths written into files (Prosody's config, the account) stay right
            // whatever the current folder of whoever reads them.
            Some(d) => std::path::absolute(d)
                .with_context(|| format!("cannot use the data folder {}", d.display())),
            None => directories::ProjectDirs::from("", "", "spheres")
                .map(|p| p.data_dir().to_path_buf())
                .context("cannot find a home folder for the data; pass --data-dir"),
        }
    }
}

/// `spheres up`'s options. Every one can also come from the environment or the config file.
#[derive(Args, Clone, Debug, Default)]
pub struct UpArgs {
    /// The config file (default: $XDG_CONFIG_HOME/spheres/config.toml).
    #[arg(long, env = "SPHERES_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An existing XMPP account to use instead of the managed household server.
    #[arg(long, env = "SPHERES_JID")]
    pub jid: Option<String>,
    /// A file holding the account's password (or set SPHERES_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The XMPP server's address, skipping DNS (HOST:PORT, StartTLS).
    #[arg(long, env = "SPHERES_XMPP_SERVER", value_name = "HOST:PORT")]
    pub xmpp_server: Option<String>,
    /// A CA certificate (PEM) to trust for the XMPP server, e.g. a household server's.
    #[arg(long, env = "SPHERES_XMPP_CA", value_name = "FILE")]
    pub xmpp_ca: Option<PathBuf>,
    /// The MUC service for new spheres (default: found by service discovery).
    #[arg(long, env = "SPHERES_MUC", value_name = "DOMAIN")]
    pub muc: Option<String>,
    /// Where the web interface and the API listen.
    #[arg(long, env = "SPHERES_HTTP", value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// A name browsers use for this node's web interface besides its addresses, `localhost`
    /// and the machine's own name (e.g. a reverse proxy's), repeatable. Pages reached by any
    /// other name are refused: a site that points its own name at this node (DNS rebinding)
    /// gets nothing.
    #[arg(
        long,
        env = "SPHERES_HTTP_HOSTS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub http_host: Vec<String>,
    /// Where BitTorrent peers reach this node.
    #[arg(long, env = "SPHERES_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Where the spheres' tracker listens (members announce there).
    #[arg(long, env = "SPHERES_TRACKER", value_name = "ADDR:PORT")]
    pub tracker: Option<SocketAddr>,
    /// The folder that holds one folder per sphere (default: ~/Spheres).
    #[arg(long, env = "SPHERES_DIR", value_name = "DIR")]
    pub spheres_dir: Option<PathBuf>,
    /// The household server's domain, when the node runs it (first start only).
    #[arg(long, env = "SPHERES_DOMAIN")]
    pub domain: Option<String>,
    /// The owner's user name on the household server (first start only).
    #[arg(long, env = "SPHERES_USER")]
    pub user: Option<String>,
    /// Run as an always-on member: accept every invitation, keep everything seeded.
    #[arg(long)]
    pub headless: bool,
    /// Whose invitations an always-on (`--headless`) node accepts by itself: a JID or a
    /// whole domain, repeatable (default: the household server this node runs, else nobody).
    /// Others are listed, never acted on.
    #[arg(
        long,
        env = "SPHERES_ACCEPT_INVITES_FROM",
        value_name = "JID|DOMAIN",
        value_delimiter = ','
    )]
    pub accept_invites_from: Vec<String>,
    /// Where the household XMPP server listens (default 127.0.0.1: this machine only);
    /// 0.0.0.0 or a LAN address lets the household's other machines use it, and invitation
    /// links then name this machine's LAN address.
    #[arg(long, env = "SPHERES_XMPP_LISTEN", value_name = "ADDR")]
    pub xmpp_listen: Option<std::net::IpAddr>,
    /// Do not publish this node's addresses in sphere rooms: members then reach it only
    /// through the sphere's tracker and on the LAN (local service discovery).
    #[arg(long, env = "SPHERES_NO_ENDPOINTS")]
    pub no_endpoints: bool,
    /// Take part in the public BitTorrent DHT, for public torrents and magnets dropped into a
    /// sphere (sphere torrents are private and never use it). Off unless asked for.
    #[arg(long, env = "SPHERES_DHT")]
    pub dht: bool,
    /// First start with an invitation link (`spheres sphere invite-link` on the owner's node):
    /// creates this node's account on that household server and joins the sphere.
    #[arg(long, env = "SPHERES_INVITE", value_name = "LINK")]
    pub invite: Option<String>,
    /// Download at most this many bytes per second (K and M suffixes allowed).
    #[arg(long, env = "SPHERES_DOWNLOAD_LIMIT", value_name = "BYTES", value_parser = crate::units::parse_size)]
    pub download_limit: Option<u64>,
    /// Upload at most this many bytes per second (K and M suffixes allowed).
    #[arg(long, env = "SPHERES_UPLOAD_LIMIT", value_name = "BYTES", value_parser = crate::units::parse_size)]
    pub upload_limit: Option<u64>,
    /// The address people use to reach this node from the internet, e.g.
    /// `https://photos.example.org` (a name of yours that points at your home router, or a
    /// reverse proxy's): links and public pages name it. With --https the node serves that
    /// name itself, with a certificate from an ACME CA.
    #[arg(long, env = "SPHERES_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Let people on the internet open links and public pages: the node asks the home router
    /// (UPnP IGD, NAT-PMP or PCP) to forward its web port (--https's if given, else --http's),
    /// and links name the router's outside address unless --public-url names another.
    /// Everything else still needs a login. Listens on every interface unless --http says
    /// where.
    #[arg(long, env = "SPHERES_PUBLIC_WEB")]
    pub public_web: bool,
    /// Also serve the web interface over HTTPS on this address, with a certificate for
    /// --public-url's name from an ACME CA (Let's Encrypt unless --acme-directory), renewed
    /// by itself. The CA checks the name by connecting to it (TLS-ALPN-01): the name must
    /// lead to this address.
    #[arg(long, env = "SPHERES_HTTPS", value_name = "ADDR:PORT")]
    pub https: Option<SocketAddr>,
    /// The ACME CA's directory URL (default: Let's Encrypt's).
    #[arg(long, env = "SPHERES_ACME_DIRECTORY", value_name = "URL")]
    pub acme_directory: Option<String>,
    /// A CA certificate (PEM) to trust for the ACME server itself, besides the system's
    /// (for a private CA such as step-ca).
    #[arg(long, env = "SPHERES_ACME_CA", value_name = "FILE")]
    pub acme_ca: Option<PathBuf>,
    /// An email address the ACME CA may write to about the certificate.
    #[arg(long, env = "SPHERES_ACME_EMAIL", value_name = "ADDRESS")]
    pub acme_email: Option<String>,
}

/// The config file: the same settings as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    jid: Option<String>,
    password_file: Option<PathBuf>,
    xmpp_server: Option<String>,
    xmpp_ca: Option<PathBuf>,
    muc: Option<String>,
    http: Option<SocketAddr>,
    http_host: Option<Vec<String>>,
    listen: Option<SocketAddr>,
    tracker: Option<SocketAddr>,
    spheres_dir: Option<PathBuf>,
    domain: Option<String>,
    user: Option<String>,
    headless: Option<bool>,
    accept_invites_from: Option<Vec<String>>,
    dht: Option<bool>,
    xmpp_listen: Option<std::net::IpAddr>,
    no_endpoints: Option<bool>,
    download_limit: Option<u64>,
    upload_limit: Option<u64>,
    public_url: Option<String>,
    public_web: Option<bool>,
    https: Option<SocketAddr>,
    acme_directory: Option<String>,
    acme_ca: Option<PathBuf>,
    acme_email: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub account: AccountChoice,
    pub muc: Option<String>,
    pub http: SocketAddr,
    /// Names browsers may use for the web interface besides addresses and `localhost`.
    pub http_hosts: Vec<String>,
    pub listen: SocketAddr,
    pub tracker: SocketAddr,
    pub spheres_dir: PathBuf,
    pub headless: bool,
    /// JIDs and domains whose invitations a headless node accepts (empty: the account's or
    /// household server's domain).
    pub accept_invites_from: Vec<String>,
    pub dht: bool,
    pub xmpp_listen: std::net::IpAddr,
    pub no_endpoints: bool,
    pub download_limit: Option<u64>,
    pub upload_limit: Option<u64>,
    pub invite: Option<String>,
    /// A CA to trust for XMPP servers (`--xmpp-ca`), also for an account signed in from the
    /// web interface.
    pub xmpp_ca: Option<PathBuf>,
    /// How people outside reach the web pages (links, public posts).
    pub public: crate::reach::PublicWeb,
}

#[derive(Debug, Clone)]
pub enum AccountChoice {
    /// Run the household server and use (or create) the owner's account on it.
    Managed { domain: String, user: String },
    Existing {
        jid: String,
        password: String,
        server: Option<String>,
        ca: Option<PathBuf>,
    },
}

pub const DEFAULT_HTTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8427);

fn default_user() -> String {
    let raw = std::env::var("USER").unwrap_or_default().to_lowercase();
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
        .collect();
    if clean.is_empty() || clean == "root" {
        "me".to_owned()
    } else {
        clean
    }
}

impl Settings {
    pub fn resolve(locate: &Locate, args: &UpArgs) -> Result<Settings> {
        let data_dir = locate.data_dir()?;
        let config_path = match &args.config {
            Some(p) => Some(p.clone()),
            None => directories::ProjectDirs::from("", "", "spheres")
                .map(|p| p.config_dir().join("config.toml"))
                .filter(|p| p.exists()),
        };
        let file = match &config_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the config file {}", p.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("{} is not a valid config file", p.display()))?
            }
            None => FileConfig::default(),
        };
        let xmpp_ca = args
            .xmpp_ca
            .clone()
            .or(file.xmpp_ca.clone())
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        let jid = args.jid.clone().or(file.jid);
        let account = match jid {
            Some(jid) => {
                let password = match args.password_file.clone().or(file.password_file) {
                    Some(f) => std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read the password file {}", f.display()))?
                        .trim_end_matches(['\n', '\r'])
                        .to_owned(),
                    None => match std::env::var("SPHERES_PASSWORD") {
                        Ok(p) => p,
                        Err(_) => bail!(
                            "--jid needs a password: --password-file FILE or SPHERES_PASSWORD"
                        ),
                    },
                };
                AccountChoice::Existing {
                    jid,
                    password,
                    server: args.xmpp_server.clone().or(file.xmpp_server),
                    ca: xmpp_ca.clone(),
                }
            }
            // Without --jid: the account saved at an earlier start (made by an invitation
            // link, or the owner's own on the household server this node runs), or a new one.
            None => AccountChoice::Managed {
                domain: args
                    .domain
                    .clone()
                    .or(file.domain)
                    .unwrap_or_else(|| "home.arpa".to_owned()),
                user: args.user.clone().or(file.user).unwrap_or_else(default_user),
            },
        };
        let spheres_dir = match args.spheres_dir.clone().or(file.spheres_dir) {
            Some(d) => std::path::absolute(&d).unwrap_or(d),
            None => directories::UserDirs::new()
                .map(|u| u.home_dir().join("Spheres"))
                .unwrap_or_else(|| data_dir.join("Spheres")),
        };
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let public = crate::reach::PublicWeb::resolve(
            args.public_url.clone().or(file.public_url).as_deref(),
            args.public_web || file.public_web.unwrap_or(false),
            args.https.or(file.https),
            crate::reach::Acme {
                directory: args.acme_directory.clone().or(file.acme_directory),
                ca: args
                    .acme_ca
                    .clone()
                    .or(file.acme_ca)
                    .map(|p| std::path::absolute(&p).unwrap_or(p)),
                email: args.acme_email.clone().or(file.acme_email),
            },
        )?;
        let http = match args.http.or(file.http) {
            Some(a) if public.map_router && public.https.is_none() && a.ip().is_loopback() => {
                bail!(
                    "--public-web forwards the web port from the router to this machine, but --http {a} listens on this machine only: use --http 0.0.0.0:{} (or leave --http out)",
                    a.port()
                )
            }
            Some(a) => a,
            // Reachable from the router: every interface (everything but links and public
            // pages needs a login).
            None if public.map_router && public.https.is_none() => {
                SocketAddr::from(([0, 0, 0, 0], DEFAULT_HTTP.port()))
            }
            None => DEFAULT_HTTP,
        };
        let mut http_hosts = if args.http_host.is_empty() {
            file.http_host.unwrap_or_default()
        } else {
            args.http_host.clone()
        };
        if let Some(url) = &public.url {
            http_hosts.push(url.host.clone());
        }
        Ok(Settings {
            account,
            muc: args.muc.clone().or(file.muc),
            http,
            http_hosts,
            listen: args.listen.or(file.listen).unwrap_or(loopback(0)),
            tracker: args.tracker.or(file.tracker).unwrap_or(loopback(0)),
            spheres_dir,
            headless: args.headless || file.headless.unwrap_or(false),
            accept_invites_from: if args.accept_invites_from.is_empty() {
                file.accept_invites_from.unwrap_or_default()
            } else {
                args.accept_invites_from.clone()
            },
            dht: args.dht || file.dht.unwrap_or(false),
            xmpp_listen: args
                .xmpp_listen
                .or(file.xmpp_listen)
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            no_endpoints: args.no_endpoints || file.no_endpoints.unwrap_or(false),
            download_limit: args.download_limit.or(file.download_limit),
            upload_limit: args.upload_limit.or(file.upload_limit),
            invite: args.invite.clone(),
            xmpp_ca,
            data_dir,
            public,
        })
    }
}

/// What a running node writes in its data folder so the CLI can reach it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct NodeFile {
    /// The API's base URL, e.g. `http://127.0.0.1:8427`.
    pub api: String,
    /// The bearer token the API wants.
    pub token: String,
    pub pid: u32,
}

pub fn node_file(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

/// Writes a file only its owner can read, through a temporary file and a rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
