//! A managed household XMPP server: a Prosody (Debian's 0.12) that the node configures, starts,
//! supervises and stops, with its data and certificates under the node's data folder.
//!
//! Everything it needs lives in one folder: `prosody.cfg.lua`, `data/`, the certificates (a
//! private CA that signs the server's certificate; clients trust `ca.pem`), the log and the
//! pid file. It listens on loopback unless told otherwise, on ports the OS picks when asked
//! for 0. The integration tests use the very same code to get a throwaway server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ProsodyConfig {
    /// The folder that holds everything of this server.
    pub dir: PathBuf,
    /// The XMPP domain of the accounts, e.g. `home.spheres.test`.
    pub domain: String,
    /// Address to listen on (loopback by default).
    pub interface: IpAddr,
    /// StartTLS client port; 0 picks a free one.
    pub c2s_port: u16,
    /// Direct-TLS (XEP-0368) client port; 0 picks a free one.
    pub tls_port: u16,
    /// Anyone may create an account (for tests); otherwise only with an invite.
    pub open_registration: bool,
    /// Also run a TURN server for calls (Debian's coturn, when installed) on the same
    /// interface, whose short-lived credentials the server hands out (XEP-0215).
    pub turn: bool,
}

impl ProsodyConfig {
    pub fn new(dir: impl Into<PathBuf>, domain: impl Into<String>) -> Self {
        ProsodyConfig {
            dir: dir.into(),
            domain: domain.into(),
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            c2s_port: 0,
            tls_port: 0,
            open_registration: false,
            turn: false,
        }
    }
}

/// The household's TURN server (coturn): where it listens, and the secret it shares with
/// Prosody to check the credentials Prosody hands out (TURN REST, time-limited).
struct Turn {
    child: Option<Child>,
    addr: SocketAddr,
    secret: String,
    /// The ports it relays on (a block of [`RELAY_PORTS`], picked at start).
    relay: RangeInclusive<u16>,
    /// How people beyond the home router reach it, once the router forwards its ports.
    outside: Option<TurnOutside>,
}

/// How many ports the relay relays on: one for each relayed address a browser holds (a
/// call's end holds one or two): a household's calls at once, few enough for a home router
/// to forward (and to stop forwarding in seconds when the node stops).
pub const RELAY_PORTS: u16 = 32;
/// Where the relay's blocks of ports start.
const RELAY_FIRST_PORT: u16 = 61000;

/// The household's relay as seen from beyond the home router, which forwards its ports there:
/// the router's outside address, its ports that lead to the relay's own (UDP, and TCP when the
/// router forwards it too), and the relay ports it forwards, on the same numbers (a relay
/// tells the people it relays for its own port numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutside {
    pub ip: IpAddr,
    pub udp: u16,
    pub tcp: Option<u16>,
    pub relay: RangeInclusive<u16>,
}

/// How long the TURN credentials Prosody hands out last.
const TURN_TTL_SECS: u32 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum ProsodyError {
    #[error("prosody is not installed; install it with `apt-get install prosody`")]
    NotInstalled,
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the server's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("prosody did not start listening within {0:?}; its log is in {1}")]
    StartTimeout(Duration, PathBuf),
    #[error("prosody exited at start ({status}); its log is in {log}")]
    Exited { status: String, log: PathBuf },
    #[error("prosodyctl {what} failed: {stderr}")]
    Ctl { what: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProsodyError + '_ {
    move |source| ProsodyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A running Prosody. Stopped (TERM, then KILL) when dropped.
pub struct ManagedProsody {
    config: ProsodyConfig,
    child: Option<Child>,
    c2s: SocketAddr,
    tls: SocketAddr,
    turn: Option<Turn>,
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long prosodyctl may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// Names that go into Lua strings must not break out of them.
fn lua_safe(s: &str) -> Result<&str, ProsodyError> {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@:+ ".contains(c))
    {
        Ok(s)
    } else {
        Err(ProsodyError::Invalid(format!(
            "{s:?} has characters we do not put in a config file"
        )))
    }
}

fn free_port(ip: IpAddr) -> Result<u16, ProsodyError> {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io(Path::new("a free port")))
}

/// Starts `command`, tied to the node: it gets TERM when the node dies, however the node
/// ends (kill -9 included); a household server left behind would hold the node's ports at
/// its next start.
fn spawn_tied(mut command: Command, name: &str) -> Result<Child, ProsodyError> {
    let node = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes two raw system calls (prctl, getppid)
    // through rustix, which neither allocates nor takes locks, and touches no memory but the
    // copied `node` pid.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // The node died before the line above: nobody would send the signal.
            if rustix::process::getppid() != Some(node) {
                return Err(std::io::Error::other("the node is gone"));
            }
            Ok(())
        });
    }
    command.spawn().map_err(io(Path::new(name)))
}

/// 32 random bytes, hex.
fn random_secret() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl ManagedProsody {
    pub fn muc_domain(&self) -> String {
        format!("rooms.{}", self.config.domain)
    }

    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// StartTLS client address.
    pub fn c2s_addr(&self) -> SocketAddr {
        self.c2s
    }

    /// Direct-TLS client address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls
    }

    /// The CA certificate clients must trust to talk to this server.
    pub fn ca_file(&self) -> PathBuf {
        self.config.dir.join("ca.pem")
    }

    pub fn log_file(&self) -> PathBuf {
        self.config.dir.join("prosody.log")
    }

    fn config_file(&self) -> PathBuf {
        self.config.dir.join("prosody.cfg.lua")
    }

    /// Writes the configuration and certificates (the CA is made once and kept), starts
    /// Prosody, and waits until both client ports accept connections.
    pub async fn start(mut config: ProsodyConfig) -> Result<ManagedProsody, ProsodyError> {
        if which("prosody").is_none() {
            return Err(ProsodyError::NotInstalled);
        }
        lua_safe(&config.domain)?;
        std::fs::create_dir_all(config.dir.join("data")).map_err(io(&config.dir))?;
        if config.c2s_port == 0 {
            config.c2s_port = free_port(config.interface)?;
        }
        if config.tls_port == 0 {
            config.tls_port = loop {
                let p = free_port(config.interface)?;
                if p != config.c2s_port {
                    break p;
                }
            };
        }
        make_certificates(&config.dir, &config.domain)?;
        let turn = match (config.turn, which("turnserver")) {
            (true, Some(_)) if config.interface.is_unspecified() => {
                tracing::warn!(
                    "the household listens on every address: calls get no relay (give --xmpp-listen one address)"
                );
                None
            }
            (true, Some(_)) => {
                // A block of its own above the ports Linux hands out to other programs
                // (32768-60999): the router forwards these from anyone.
                let blocks = (u16::MAX - RELAY_FIRST_PORT) / RELAY_PORTS;
                let first = RELAY_FIRST_PORT + RELAY_PORTS * (rand::random::<u16>() % blocks);
                Some(Turn {
                    child: None,
                    addr: SocketAddr::new(config.interface, free_port(config.interface)?),
                    secret: random_secret(),
                    relay: first..=first + (RELAY_PORTS - 1),
                    outside: None,
                })
            }
            (true, None) => {
                tracing::warn!(
                    "coturn is not installed: calls get no relay, and may not cross some routers (apt-get install coturn)"
                );
                None
            }
            _ => None,
        };
        let cfg_path = config.dir.join("prosody.cfg.lua");
        // Private: it holds the TURN secret.
        write_private(&cfg_path, render_config(&config, turn.as_ref())?.as_bytes())?;
        let mut server = ManagedProsody {
            c2s: SocketAddr::new(config.interface, config.c2s_port),
            tls: SocketAddr::new(config.interface, config.tls_port),
            config,
            child: None,
            turn,
        };
        server.spawn_turn().await?;
        server.spawn().await?;
        Ok(server)
    }

    /// Where the household's TURN server listens (UDP and TCP), when it runs one.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn.as_ref().map(|t| t.addr)
    }

    /// The ports the household's TURN server relays on, when it runs one.
    pub fn turn_relay_ports(&self) -> Option<RangeInclusive<u16>> {
        self.turn.as_ref().map(|t| t.relay.clone())
    }

    /// How the TURN server is reached from beyond the home router, as last set.
    pub fn turn_outside(&self) -> Option<&TurnOutside> {
        self.turn.as_ref().and_then(|t| t.outside.as_ref())
    }

    /// Tells the TURN server and Prosody how the relay is reached from beyond the home router
    /// (`None`: it is not). The TURN server then names the router's outside address in the
    /// relayed addresses it hands out, relays on the forwarded ports only, and is started
    /// again (it reads its configuration at start only: relays in use end, which calls
    /// notice; at the node's start none is); Prosody hands out the outside address too
    /// (before the one on the network), reloading its configuration without dropping anyone's
    /// connection. When a step fails, neither is left saying an outside address.
    pub async fn set_turn_outside(
        &mut self,
        outside: Option<TurnOutside>,
    ) -> Result<(), ProsodyError> {
        let Some(turn) = self.turn.as_mut() else {
            return Ok(());
        };
        if turn.outside == outside {
            return Ok(());
        }
        let told = outside.is_some();
        turn.outside = outside;
        let done = self.apply_turn_outside().await;
        if done.is_err() && told {
            if let Some(turn) = self.turn.as_mut() {
                turn.outside = None;
            }
            if let Err(e) = self.apply_turn_outside().await {
                tracing::warn!(error = %e, "the relay could not be set back to this network only");
            }
        }
        done
    }

    /// Restarts the TURN server and reloads Prosody's services with the relay as it now is.
    async fn apply_turn_outside(&mut self) -> Result<(), ProsodyError> {
        if let Some(mut old) = self.turn.as_mut().and_then(|t| t.child.take()) {
            let _ = old.kill().await;
        }
        self.spawn_turn().await?;
        write_private(
            &self.config_file(),
            render_config(&self.config, self.turn.as_ref())?.as_bytes(),
        )?;
        self.ctl("shell config reload", &["shell", "config", "reload"])
            .await?;
        self.ctl(
            "shell module reload external_services",
            &[
                "shell",
                "module",
                "reload",
                "external_services",
                &self.config.domain,
            ],
        )
        .await?;
        Ok(())
    }

    /// Writes coturn's configuration and starts it, tied to the node like Prosody, and waits
    /// until it accepts TCP.
    async fn spawn_turn(&mut self) -> Result<(), ProsodyError> {
        let Some(turn) = self.turn.as_mut() else {
            return Ok(());
        };
        let dir = self.config.dir.join("turn");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let conf = dir.join("turnserver.conf");
        write_private(
            &conf,
            render_turn_config(&self.config, turn, &dir)?.as_bytes(),
        )?;
        let log = dir.join("stdout.log");
        let out = std::fs::File::create(&log).map_err(io(&log))?;
        let err = out.try_clone().map_err(io(&log))?;
        let mut command = Command::new("turnserver");
        command
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let mut child = spawn_tied(command, "turnserver")?;
        let deadline = Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(turn.addr).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ProsodyError::Exited {
                    status: status.to_string(),
                    log,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                return Err(ProsodyError::StartTimeout(START_TIMEOUT, log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        turn.child = Some(child);
        Ok(())
    }

    async fn spawn(&mut self) -> Result<(), ProsodyError> {
        let log = self.config.dir.join("stdout.log");
        let out = std::fs::File::create(&log).map_err(io(&log))?;
        let err = out.try_clone().map_err(io(&log))?;
        let mut command = Command::new("prosody");
        command
            .arg("--config")
            .arg(self.config_file())
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let mut child = spawn_tied(command, "prosody")?;
        // Wait on the ports, not the pid file: Prosody writes it before it listens.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ProsodyError::Exited {
                    status: status.to_string(),
                    log: self.log_file(),
                });
            }
            let c2s = tokio::net::TcpStream::connect(self.c2s).await.is_ok();
            let tls = tokio::net::TcpStream::connect(self.tls).await.is_ok();
            if c2s && tls {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                return Err(ProsodyError::StartTimeout(START_TIMEOUT, self.log_file()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    /// Restarts the server (and its TURN server) if it has died; returns whether it had to.
    pub async fn supervise(&mut self) -> Result<bool, ProsodyError> {
        let turn_dead = self
            .turn
            .as_mut()
            .is_some_and(|t| !matches!(t.child.as_mut().map(|c| c.try_wait()), Some(Ok(None))));
        if turn_dead {
            tracing::warn!("the TURN server is not running; restarting it");
            self.spawn_turn().await?;
        }
        let alive = match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        };
        if alive {
            return Ok(false);
        }
        tracing::warn!(log = %self.log_file().display(), "prosody is not running; restarting it");
        self.spawn().await?;
        Ok(true)
    }

    async fn ctl(&self, what: &str, args: &[&str]) -> Result<String, ProsodyError> {
        self.ctl_with_input(what, args, None).await
    }

    /// Runs prosodyctl, writing `input` to its standard input: secrets go there, never on a
    /// command line (which every user of the machine can read in /proc).
    async fn ctl_with_input(
        &self,
        what: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, ProsodyError> {
        use tokio::io::AsyncWriteExt as _;
        let mut child = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config_file())
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io(Path::new("prosodyctl")))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(io(Path::new("prosodyctl")))?;
        }
        // A server that does not answer its admin shell holds no one up for long (the
        // process is killed when this gives up on it).
        let out = tokio::time::timeout(CTL_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| ProsodyError::Ctl {
                what: what.to_owned(),
                stderr: format!("no answer within {CTL_TIMEOUT:?}"),
            })?
            .map_err(io(Path::new("prosodyctl")))?;
        if !out.status.success() {
            // Its shell says why on standard output ("Unable to connect to server").
            let said = if out.stderr.iter().all(u8::is_ascii_whitespace) {
                &out.stdout
            } else {
                &out.stderr
            };
            return Err(ProsodyError::Ctl {
                what: what.to_owned(),
                stderr: String::from_utf8_lossy(said).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates an account (or sets its password). Works whether or not the server runs.
    pub async fn register(&self, user: &str, password: &str) -> Result<(), ProsodyError> {
        if user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(ProsodyError::Invalid(format!(
                "{user:?} is not a usable account name"
            )));
        }
        if password.is_empty() || password.contains(['\n', '\r']) {
            return Err(ProsodyError::Invalid(
                "a password must be one line of text".to_owned(),
            ));
        }
        // prosodyctl asks for the password twice when it is not on the command line.
        self.ctl_with_input(
            "register",
            &["register", user, &self.config.domain],
            Some(&format!("{password}\n{password}\n")),
        )
        .await?;
        Ok(())
    }

    /// A one-time invitation: whoever has it may create one account (XEP-0401 preauth).
    pub async fn invite(&self) -> Result<crate::account::InviteUri, ProsodyError> {
        let out = self
            .ctl(
                "mod_invites generate",
                &["mod_invites", "generate", &self.config.domain],
            )
            .await?;
        out.split_whitespace()
            .find_map(crate::account::InviteUri::parse)
            .ok_or_else(|| ProsodyError::Ctl {
                what: "mod_invites generate".into(),
                stderr: format!("no invitation in its output: {out}"),
            })
    }

    /// Stops the server (TERM, then KILL after 5 s).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // Ask for a clean stop first: TERM lets Prosody close its streams and storage.
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

impl Drop for ManagedProsody {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// A private CA (kept across restarts, so clients keep trusting the server) and a server
/// certificate for the domain and its MUC service, signed by it.
fn make_certificates(dir: &Path, domain: &str) -> Result<(), ProsodyError> {
    let ca_pem = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    // The CA's parameters are rebuilt the same way each time; only its key and certificate
    // are stored, so that clients that trust `ca.pem` keep trusting the server.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("spheres household CA for {domain}"),
    );
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = if ca_pem.exists() && ca_key.exists() {
        let key_pem = std::fs::read_to_string(&ca_key).map_err(io(&ca_key))?;
        rcgen::KeyPair::from_pem(&key_pem)?
    } else {
        let key = rcgen::KeyPair::generate()?;
        let cert = ca_params.self_signed(&key)?;
        write_private(&ca_key, key.serialize_pem().as_bytes())?;
        std::fs::write(&ca_pem, cert.pem()).map_err(io(&ca_pem))?;
        key
    };
    let issuer = rcgen::Issuer::new(ca_params, key);
    let mut leaf =
        rcgen::CertificateParams::new(vec![domain.to_owned(), format!("rooms.{domain}")])?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    leaf.is_ca = rcgen::IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = rcgen::KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &issuer)?;
    let key_path = dir.join("server.key");
    write_private(&key_path, leaf_key.serialize_pem().as_bytes())?;
    let cert_path = dir.join("server.pem");
    std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ProsodyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

fn render_turn_config(c: &ProsodyConfig, t: &Turn, dir: &Path) -> Result<String, ProsodyError> {
    // Relays on the ports the router forwards, when it does.
    let relay = t.outside.as_ref().map_or(&t.relay, |o| &o.relay);
    let dir = lua_safe(
        dir.to_str()
            .ok_or_else(|| ProsodyError::Invalid("the data folder's path is not UTF-8".into()))?,
    )?;
    Ok(format!(
        "# Written by spheres; changes are overwritten at the next start.\n\
         listening-ip={ip}\nrelay-ip={ip}\nlistening-port={port}\n{external}{private}\
         min-port={min}\nmax-port={max}\n\
         use-auth-secret\nstatic-auth-secret={secret}\nrealm={realm}\n\
         fingerprint\nno-cli\nno-tls\nno-dtls\nno-multicast-peers\nno-software-attribute\n\
         no-tcp-relay\n\
         denied-peer-ip=0.0.0.0-0.255.255.255\n\
         denied-peer-ip=169.254.0.0-169.254.255.255\n\
         denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n{loopback}\
         total-quota={quota}\nuser-quota=8\nstale-nonce=600\n\
         pidfile={dir}/turnserver.pid\nlog-file={dir}/turnserver.log\nsimple-log\n",
        ip = t.addr.ip(),
        port = t.addr.port(),
        // Beyond the router, the relayed addresses it hands out are the router's (which it
        // never relays to: packets turned back there reach the router's own services).
        external = t.outside.as_ref().map_or(String::new(), |o| {
            format!(
                "external-ip={}/{}\ndenied-peer-ip={}\n",
                o.ip,
                t.addr.ip(),
                o.ip
            )
        }),
        // On the network (and so, once the router forwards it, from anywhere), it relays to
        // no computer of private and carrier-grade ranges but this one (whose browsers it
        // serves): a member elsewhere gets no way in to the others.
        private = if t.addr.ip().is_loopback() {
            String::new()
        } else {
            format!(
                "denied-peer-ip=10.0.0.0-10.255.255.255\n\
                 denied-peer-ip=172.16.0.0-172.31.255.255\n\
                 denied-peer-ip=192.168.0.0-192.168.255.255\n\
                 denied-peer-ip=100.64.0.0-100.127.255.255\n\
                 denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n\
                 allowed-peer-ip={}\n",
                t.addr.ip()
            )
        },
        min = relay.start(),
        max = relay.end(),
        quota = relay.len(),
        secret = t.secret,
        realm = lua_safe(&c.domain)?,
        // On loopback only, the relay serves this machine's browsers, whose addresses may be
        // loopback ones too; anywhere else it never relays to this machine's loopback.
        loopback = if t.addr.ip().is_loopback() {
            "allow-loopback-peers\n"
        } else {
            ""
        },
    ))
}

/// The relay as reached from beyond the home router, for XEP-0215 (mod_external_services):
/// STUN and TURN on the router's outside address, with the same expiring credentials.
fn outside_services(t: &Turn) -> String {
    let Some(o) = &t.outside else {
        return String::new();
    };
    let mut services = format!(
        "    {{ type = \"stun\", transport = \"udp\", host = \"{ip}\", port = {udp} }},\n    \
         {{ type = \"turn\", transport = \"udp\", host = \"{ip}\", port = {udp}, secret = \"{secret}\", ttl = {TURN_TTL_SECS} }},\n",
        ip = o.ip,
        udp = o.udp,
        secret = t.secret,
    );
    if let Some(tcp) = o.tcp {
        services.push_str(&format!(
            "    {{ type = \"turn\", transport = \"tcp\", host = \"{ip}\", port = {tcp}, secret = \"{secret}\", ttl = {TURN_TTL_SECS} }},\n",
            ip = o.ip,
            secret = t.secret,
        ));
    }
    format!("  external_services = {{\n{services}  }}\n")
}

fn render_config(c: &ProsodyConfig, turn: Option<&Turn>) -> Result<String, ProsodyError> {
    let dir = c
        .dir
        .to_str()
        .ok_or_else(|| ProsodyError::Invalid("the data folder's path is not UTF-8".into()))?;
    lua_safe(dir)?;
    let domain = lua_safe(&c.domain)?;
    let (allow, invite_only) = if c.open_registration {
        ("true", "false")
    } else {
        ("false", "true")
    };
    Ok(format!(
        r#"-- Written by spheres; changes are overwritten at the next start.
{run_as_root}
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
admin_socket = "{dir}/admin.sock"
log = {{ info = "{dir}/prosody.log" }}
interfaces = {{ "{iface}" }}
local_interfaces = {{ "{iface}" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ {tls} }}
c2s_require_encryption = true
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
modules_disabled = {{ "s2s" }}
ssl = {{ certificate = "{dir}/server.pem", key = "{dir}/server.key" }}
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "internal"
modules_enabled = {{
  "roster"; "saslauth"; "tls"; "disco"; "carbons"; "pep"; "blocklist";
  "mam"; "smacks"; "ping"; "register"; "invites"; "invites_register";
  "private"; "vcard_legacy"; "version"; "uptime"; "time"; "admin_shell";
}}
allow_registration = {allow}
registration_invite_only = {invite_only}
default_archive_policy = true
archive_expires_after = "never"
limits = {{ c2s = {{ rate = "10mb/s" }} }}

VirtualHost "{domain}"
{turn}

Component "rooms.{domain}" "muc"
  modules_enabled = {{ "muc_mam" }}
  muc_log_by_default = true
  muc_log_all_rooms = true
  restrict_room_creation = "local"
  muc_room_locking = false
"#,
        run_as_root = if is_root() { "run_as_root = true" } else { "" },
        // XEP-0215: the TURN server's address and credentials that expire (TURN REST).
        turn = turn.map_or(String::new(), |t| format!(
            "  modules_enabled = {{ \"turn_external\" }}\n  turn_external_secret = \"{}\"\n  \
             turn_external_host = \"{}\"\n  turn_external_port = {}\n  turn_external_tcp = true\n  \
             turn_external_ttl = {TURN_TTL_SECS}\n{}",
            t.secret,
            t.addr.ip(),
            t.addr.port(),
            outside_services(t),
        )),
        iface = c.interface,
        c2s = c.c2s_port,
        tls = c.tls_port,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the home router forwards the relay's ports, coturn names the router's address in
    /// the relayed addresses it hands out and relays on the forwarded ports only, and
    /// Prosody hands out the outside address after the one on the network; before, neither.
    #[test]
    fn the_relay_is_told_its_outside_address_once_the_router_forwards_it() {
        let config = ProsodyConfig::new("/tmp/household", "family.test");
        let mut turn = Turn {
            child: None,
            addr: "192.168.1.2:3478".parse().unwrap(),
            secret: "s3cret".into(),
            relay: 50048..=50111,
            outside: None,
        };
        let dir = Path::new("/tmp/household/turn");
        let coturn = render_turn_config(&config, &turn, dir).unwrap();
        assert!(!coturn.contains("external-ip"), "{coturn}");
        // On the network already, it relays to no other computer there.
        for line in [
            "denied-peer-ip=192.168.0.0-192.168.255.255\n",
            "denied-peer-ip=10.0.0.0-10.255.255.255\n",
            "allowed-peer-ip=192.168.1.2\n",
        ] {
            assert!(coturn.contains(line), "{line} in {coturn}");
        }
        assert!(
            coturn.contains("min-port=50048\nmax-port=50111\n"),
            "{coturn}"
        );
        assert!(coturn.contains("total-quota=64\n"), "{coturn}");
        let prosody = render_config(&config, Some(&turn)).unwrap();
        assert!(prosody.contains("turn_external_host = \"192.168.1.2\""));
        assert!(!prosody.contains("external_services"), "{prosody}");

        turn.outside = Some(TurnOutside {
            ip: "203.0.113.7".parse().unwrap(),
            udp: 3478,
            tcp: Some(3478),
            relay: 50048..=50071,
        });
        let coturn = render_turn_config(&config, &turn, dir).unwrap();
        assert!(
            coturn.contains("external-ip=203.0.113.7/192.168.1.2\n"),
            "{coturn}"
        );
        assert!(
            coturn.contains("denied-peer-ip=203.0.113.7\n"),
            "not to the router's own address: {coturn}"
        );
        assert!(
            coturn.contains("min-port=50048\nmax-port=50071\n"),
            "{coturn}"
        );
        assert!(coturn.contains("total-quota=24\n"), "{coturn}");
        let prosody = render_config(&config, Some(&turn)).unwrap();
        for service in [
            "{ type = \"stun\", transport = \"udp\", host = \"203.0.113.7\", port = 3478 }",
            "{ type = \"turn\", transport = \"udp\", host = \"203.0.113.7\", port = 3478, secret = \"s3cret\", ttl = 3600 }",
            "{ type = \"turn\", transport = \"tcp\", host = \"203.0.113.7\", port = 3478, secret = \"s3cret\", ttl = 3600 }",
        ] {
            assert!(prosody.contains(service), "{service} in {prosody}");
        }
        // Without the router's TCP port, TURN over TCP stays on the network.
        turn.outside.as_mut().unwrap().tcp = None;
        let prosody = render_config(&config, Some(&turn)).unwrap();
        assert!(!prosody.contains("transport = \"tcp\", host = \"203.0.113.7\""));
    }
}
