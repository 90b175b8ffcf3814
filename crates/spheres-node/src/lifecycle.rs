//! Bringing the node up and down: the data folder and the spheres folder taken, the store, the
//! engine, the tracker and the XMPP account started in order, the API served, spheres restored;
//! a restart as another account; status and transfer limits while it runs.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use spheres_metainfo::{InfoHash, Metainfo};
use spheres_store::Store;
use spheres_torrent::{Engine, EngineConfig};
use spheres_tracker::{KeyScope, TrackerConfig};
use spheres_xmpp::{BareJid, Client, ConnectConfig};

use crate::RowState as _;
use crate::account::{discover_muc, resolve};
use crate::api::types;
use crate::api::types::ShareState;
use crate::chat::ContactState;
use crate::error::{NodeError, refuse};
use crate::events::Connection;
use crate::peers::PEER_TTL;
use crate::peers::PeerState;
use crate::settings::{Locate, NodeFile, Settings, UpArgs, write_private};
use crate::{Node, Report, lock, now_secs, random_token};

/// Takes the spheres folder for this node, or says which node has it. Two nodes on one
/// folder would each take the other's downloads for new shares of their own. The lock (an
/// advisory `flock` on `.spheres.lock`) goes with the process, however it ends.
pub(crate) fn lock_spheres_dir(spheres_dir: &Path, data: &Path) -> Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    std::fs::create_dir_all(spheres_dir)
        .with_context(|| format!("cannot create the spheres folder {}", spheres_dir.display()))?;
    let path = spheres_dir.join(".spheres.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        refuse!(
            Conflict,
            "the spheres folder {} is used by another node ({}); give this node its own with --spheres-dir DIR",
            spheres_dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(
        file,
        "pid {}, data folder {}",
        std::process::id(),
        data.display()
    )?;
    Ok(file)
}

/// Set when the node starts itself again: the web address to keep.
pub(crate) const RESTART_HTTP: &str = "SPHERES_RESTART_HTTP";

/// Replaces this process with a fresh start of the same command (same pid, same output),
/// which reads the account file written just before. Returns only if that failed.
pub(crate) fn restart_as_new_account(http: SocketAddr) -> anyhow::Error {
    use std::os::unix::process::CommandExt as _;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return anyhow!("cannot restart the node ({e}); start it again by hand"),
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(RESTART_HTTP, http.to_string())
        .exec();
    anyhow!("cannot restart the node ({err}); start it again by hand")
}

/// A bandwidth limit for the engine: bytes per second, 0 or none meaning unlimited.
pub(crate) fn rate(limit: Option<u64>) -> Option<std::num::NonZeroU32> {
    limit.and_then(|b| std::num::NonZeroU32::new(u32::try_from(b).unwrap_or(u32::MAX)))
}

pub fn read_node_file(data: &Path) -> Option<NodeFile> {
    let bytes = std::fs::read(crate::settings::node_file(data)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// How reachable the node is, as the API says it.
fn reachability_of(r: &spheres_net::Reachability) -> types::Reachability {
    use spheres_net::Reachability as R;
    // The method's name as the network crate spells it (`nat-pmp`, `upnp-igd2`...).
    let name = |m: &spheres_net::Method| {
        serde_json::to_value(m)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match r {
        R::Unknown => types::Reachability::Unknown,
        R::LoopbackOnly => types::Reachability::LoopbackOnly,
        R::Mapped {
            method,
            external,
            lease_secs,
        } => types::Reachability::Mapped {
            method: name(method),
            external: *external,
            lease_secs: *lease_secs,
        },
        R::DoubleNat {
            method,
            router_outside,
            why,
        } => types::Reachability::DoubleNat {
            method: name(method),
            router_outside: *router_outside,
            why: why.clone(),
        },
        R::Unreachable { why } => types::Reachability::Unreachable { why: why.clone() },
    }
}

impl Node {
    /// Brings the node up and runs it until interrupted.
    pub async fn up(locate: &Locate, args: UpArgs, out: &dyn Report) -> Result<()> {
        let mut settings = Settings::resolve(locate, &args)?;
        // Started again by ourselves (see `restart_as_new_account`): the web interface stays
        // where the open pages expect it.
        if let Some(http) = std::env::var(RESTART_HTTP)
            .ok()
            .and_then(|a| a.parse().ok())
        {
            settings.http = http;
        }
        let data = settings.data_dir.clone();
        // What the node writes is its user's alone: the database holds the web password's
        // hash, tracker keys, unused invitation tokens and chat; thumbnails show private photos.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create the data folder {}", data.display()))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", data.display()))?;
        }
        if let Some(existing) = read_node_file(&data)
            && process_alive(existing.pid)
        {
            refuse!(
                Conflict,
                "a node is already running for {} (pid {}, {}); stop it first",
                data.display(),
                existing.pid,
                existing.api
            );
        }
        let spheres_lock = lock_spheres_dir(&settings.spheres_dir, &data)?;
        let store = Store::open(&data.join("node.db"))
            .await
            .context("cannot open the node's database")?;

        // The account, and the household server when we run it.
        let (account, prosody) = Self::account(&settings, out).await?;
        let relay = crate::relay::RelayState::new(prosody.as_ref().and_then(|p| p.turn_addr()));
        let household = prosody.as_ref().map(|p| types::Household {
            domain: p.domain().to_owned(),
            muc: p.muc_domain(),
            // Listening everywhere: this node itself talks to it over loopback.
            c2s: match p.c2s_addr() {
                a if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
                a => a,
            },
            ca: p.ca_file(),
            relay: None,
        });
        let me = BareJid::new(&account.jid).context("the account's JID is not valid")?;
        let mls = Self::load_mls(&store, &me)
            .await
            .context("cannot load the encryption keys")?;

        let mut engine_config = EngineConfig::new(data.join("downloads"));
        engine_config.state_dir = Some(data.join("engine"));
        engine_config.listen = settings.listen;
        engine_config.dht = settings.dht;
        let engine = Engine::start(engine_config)
            .await
            .context("cannot start the BitTorrent engine")?;
        // Limits changed in the settings page last time, unless the flags say otherwise.
        let saved = |v: Option<String>| v.and_then(|t| t.parse::<u64>().ok());
        let (down, up) = (
            settings
                .download_limit
                .or(saved(store.meta("download_limit").await?)),
            settings
                .upload_limit
                .or(saved(store.meta("upload_limit").await?)),
        );
        engine.set_limits(rate(down), rate(up));

        let tracker_config = TrackerConfig {
            interval: Duration::from_secs(30),
            min_interval: Duration::from_secs(5),
            peer_ttl: PEER_TTL,
            private: true,
            ..Default::default()
        };
        let tracker = spheres_tracker::start(tracker_config, Some(settings.tracker), None)
            .await
            .context("cannot start the tracker")?;
        // The key the node feeds members' endpoints in with: new at every start and never
        // in a torrent (shares announce with their sphere's own key, `owner_key`). A key
        // that an earlier version put into torrents stops working here.
        let _ = store.remove_meta("self_key").await;
        let self_key = random_token(16);
        tracker
            .tracker
            .grant_key(self_key.clone(), KeyScope::AllTorrents);

        // XMPP.
        let mut cfg = ConnectConfig::new(me.clone(), account.password.clone());
        match &household {
            Some(h) => {
                cfg.server = Some(h.c2s);
                cfg.extra_ca = Some(h.ca.clone());
            }
            None => {
                if let Some(s) = &account.server {
                    cfg.server = Some(resolve(s).await?);
                }
                cfg.extra_ca = account.ca.clone();
            }
        }
        cfg.resource = Some(format!("spheres-{}", random_token(3)));
        let (xmpp, events) = Client::connect(cfg)
            .await
            .with_context(|| format!("cannot log in as {me}"))?;
        let muc = match (&settings.muc, &household) {
            (Some(m), _) => m.clone(),
            (None, Some(h)) => h.muc.clone(),
            (None, None) => discover_muc(&xmpp, &me).await?,
        };
        let name = me
            .node()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "member".to_owned());
        let nick = nick_for(&xmpp, &me, &name, &mls.device.device_id()).await;
        let node = Arc::new(Node {
            settings: settings.clone(),
            store,
            engine,
            tracker,
            self_key,
            xmpp,
            me,
            name,
            nick,
            muc,
            prosody: prosody.map(tokio::sync::Mutex::new),
            household,
            rooms: Mutex::default(),
            joined_notify: tokio::sync::Notify::new(),
            peers: PeerState::default(),
            web: crate::reach::WebState::default(),
            relay,
            contacts: ContactState::default(),
            claim: Mutex::new(account.claim.clone()),
            events: tokio::sync::broadcast::channel(256).0,
            hashing: Mutex::default(),
            http: Mutex::default(),
            restart: tokio::sync::Notify::new(),
            catching_up: Mutex::default(),
            completing: Mutex::default(),
            mls: Mutex::new(mls),
            mls_changes: tokio::sync::Mutex::new(()),
            mls_saving: tokio::sync::Mutex::new(()),
            held_for: Mutex::default(),
            calls: Mutex::default(),
            calls_sending: tokio::sync::Mutex::new(()),
            pending_private: Mutex::default(),
            sealed_grants: Mutex::default(),
            links_changed: tokio::sync::watch::Sender::new(0),
            link_streams: Arc::new(tokio::sync::Semaphore::new(crate::links::MAX_LINK_STREAMS)),
            signalling: spheres_tracker::ws::Signalling::new(crate::links::MAX_LINK_BROWSERS),
            link_addresses: Default::default(),
            closed_links: Default::default(),
            connection: Mutex::new(Connection::Online { since: now_secs() }),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            _spheres_lock: spheres_lock,
        });

        if node.settings.headless
            && node.settings.accept_invites_from.is_empty()
            && node.household.is_none()
        {
            tracing::warn!(
                "--headless joins invitations by itself only from --accept-invites-from JID|DOMAIN; none given, so every invitation waits for `spheres sphere join`"
            );
        }
        node.restore().await?;
        // Events first: joining a room waits for the room's answer, which the loop reads.
        tokio::spawn(node.clone().xmpp_loop(events));
        node.go_online().await?;
        tokio::spawn(node.clone().engine_events());
        tokio::spawn(node.clone().housekeeping());
        tokio::spawn(node.clone().watch_folders());
        node.start_lsd();

        // The API and the web interface.
        let token = random_token(24);
        let access = Arc::new(crate::access::Access::new(token.clone()));
        let router = crate::api::router(node.clone(), access.clone());
        let (bound, _task) = spheres_web::serve(router.clone(), settings.http)
            .await
            .with_context(|| {
                format!(
                    "cannot serve the web interface on {} (in use? pass --http ADDR:PORT)",
                    settings.http
                )
            })?;
        *lock(&node.http) = Some(bound);
        let https = match (&node.settings.public.url, &node.settings.public.https) {
            (Some(url), Some((addr, acme))) => {
                Some(node.serve_https(router.clone(), *addr, url, acme).await?)
            }
            _ => None,
        };
        let node_file = NodeFile {
            api: format!("http://{bound}"),
            token,
            pid: std::process::id(),
        };
        write_private(
            &crate::settings::node_file(&data),
            &serde_json::to_vec_pretty(&node_file)?,
        )?;
        // The router's forwardings last: a start that fails before them leaves none behind
        // (only a clean stop removes them).
        tokio::spawn(node.clone().keep_port_mapped());
        tokio::spawn(node.clone().keep_relay_mapped());
        tokio::spawn(node.clone().keep_web_mapped(https));
        // A browser on this machine opens the page with a one-time link (being on loopback
        // proves nothing: other users of the machine are too).
        let open = access.login_link(bound);
        out.event(
            &format!(
                "spheres is running as {}.\n  Open {open} in a browser (a one-time link; `spheres open` makes another).\n  Spheres are folders in {}.\n  BitTorrent on {}, tracker on {}.{}\n  Press Ctrl-C to stop.",
                node.me,
                node.settings.spheres_dir.display(),
                node.engine.listen_addr(),
                node.tracker.http_addr.map(|a| a.to_string()).unwrap_or_default(),
                node.household
                    .as_ref()
                    .map(|h| format!(
                        "\n  Household XMPP server {} on {} (CA {}).",
                        h.domain,
                        h.c2s,
                        h.ca.display()
                    ))
                    .unwrap_or_default(),
            ),
            json!({"event": "running", "jid": node.me.to_string(), "http": format!("http://{bound}"), "open": open,
                   "listen": node.engine.listen_addr().to_string(),
                   "tracker": node.tracker.http_addr.map(|a| a.to_string()),
                   "spheres_dir": node.settings.spheres_dir,
                   "household": node.household}),
        );

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let restart = tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = term.recv() => false,
            _ = node.restart.notified() => true,
        };
        out.event(
            if restart {
                "Restarting with the new account"
            } else {
                "Stopping"
            },
            json!({"event": if restart { "restarting" } else { "stopping" }}),
        );
        // Asked to stop while stopping for the restart: stop for good instead.
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if restart {
            let flag = interrupted.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
        node.shutdown().await;
        let _ = std::fs::remove_file(crate::settings::node_file(&data));
        if restart && !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(restart_as_new_account(bound));
        }
        Ok(())
    }

    /// Says who may join each torrent the engine kept from the last run (until then it lets
    /// nobody in): the sphere whose share it is, as we shared or fetched it. When two spheres
    /// name the same torrent, the one where it is seeding comes first, then one where it is
    /// downloading; a share we only heard of (its metadata never fetched, or not fetched at
    /// all) opens nothing, or a member of one sphere could open another's torrent by
    /// announcing its info hash.
    async fn admit_kept(&self) -> Result<()> {
        let mut kept = Vec::new();
        for sphere in self.store.spheres().await? {
            for share in self.store.shares(sphere.id).await? {
                let rank = match share.share_state() {
                    ShareState::Seeding => 0,
                    ShareState::Downloading => 1,
                    _ => continue,
                };
                let (Ok(hash), Some(torrent)) = (
                    share.info_hash.parse::<InfoHash>(),
                    share.torrent.as_deref(),
                ) else {
                    continue;
                };
                if self.engine.status(&hash).is_some() {
                    let private = Metainfo::from_bytes(torrent).is_ok_and(|m| m.private);
                    kept.push((rank, hash, sphere.clone(), private));
                }
            }
        }
        kept.sort_by_key(|(rank, ..)| *rank);
        for (_, hash, sphere, private) in kept {
            let admit = self.admit(&sphere, private).await;
            if !self.engine.set_admit(&hash, admit) {
                tracing::debug!(%hash, sphere = %sphere.name, "the torrent's admission was given by another sphere first");
            }
        }
        Ok(())
    }

    /// Puts back into the engine what the store says we share or fetch.
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        self.admit_kept().await?;
        // Downloads begun before they were staged are moved out of sight once, at the first
        // start of this version, never again (a later name there is someone's own file).
        let migrate = self.store.meta("downloads_staged").await?.is_none();
        for sphere in self.store.spheres().await? {
            for share in self.store.shares(sphere.id).await? {
                let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                    continue;
                };
                self.sphere_owned_grant(&sphere, &hash).await;
                if self.engine.status(&hash).is_some() {
                    // Kept by the engine from the last run (its admission: `admit_kept`).
                    continue;
                }
                // A share of ours seeds from where it was; a fetched one resumes in the folder.
                let ours = share.sharer == self.me.as_str();
                let result = match share.share_state() {
                    // Announced by its magnet alone, and its metadata never came: that first.
                    ShareState::Downloading if share.torrent.is_none() => {
                        let (node, sphere, s) =
                            (self.clone(), sphere.clone(), self.share_from_row(&share));
                        tokio::spawn(async move {
                            // Not `asked`: a public torrent still waits for the person.
                            if let Err(e) = node.fetch_share(&sphere, &s, false).await {
                                tracing::warn!(share = %s.name, error = %e, "cannot resume a share");
                            }
                        });
                        Ok(())
                    }
                    ShareState::Seeding | ShareState::Downloading => {
                        // What was fetched is seeded from where it arrived (`incoming`); what
                        // we shared, or a download from before downloads were staged, from
                        // its path.
                        let staging = crate::incoming::incoming_dir(
                            Path::new(&sphere.folder),
                            &share.info_hash,
                        );
                        // A download begun before downloads were staged: what it has goes
                        // out of sight, where it resumes (it was never complete at its name).
                        if migrate
                            && !ours
                            && share.share_state() == ShareState::Downloading
                            && !staging.exists()
                            && let Some(name) = share
                                .torrent
                                .as_deref()
                                .and_then(|t| Metainfo::from_bytes(t).ok())
                                .map(|m| m.name)
                        {
                            let old = Path::new(&sphere.folder).join(&name);
                            if old.exists()
                                && std::fs::create_dir_all(&staging).is_ok()
                                && let Err(e) = std::fs::rename(&old, staging.join(&name))
                            {
                                tracing::warn!(share = %share.name, error = %e, "cannot move a partial download out of sight");
                            }
                        }
                        let staged = staging.exists();
                        let seed_path =
                            if staged || !(ours || share.share_state() == ShareState::Seeding) {
                                None
                            } else {
                                share.path.as_deref()
                            };
                        self.add_to_engine(&sphere, &self.share_from_row(&share), seed_path)
                            .await
                    }
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    tracing::warn!(share = %share.name, error = %e, "cannot resume a share");
                }
            }
        }
        if migrate {
            self.store.set_meta("downloads_staged", "1").await?;
        }
        Ok(())
    }

    /// Presence, roster, rooms and catch-up: after login and after a new session.
    pub(crate) async fn go_online(self: &Arc<Self>) -> Result<()> {
        self.xmpp.roster().await.ok();
        // Every device of ours sees whole conversations (XEP-0280).
        if let Err(e) = self.xmpp.enable_carbons().await {
            tracing::info!(error = %e, "the server offers no message carbons");
        }
        self.xmpp.available().await?;
        // Before the rooms: owners add this node to their spheres' groups when it comes in.
        self.publish_key_package().await;
        for sphere in self.store.spheres().await? {
            self.join_sphere_room(&sphere).await;
        }
        self.send_claim().await;
        // Posts take a request per contact: not in the way of the rest.
        let node = self.clone();
        tokio::spawn(async move { node.sync_feed().await });
        Ok(())
    }

    pub(crate) async fn shutdown(&self) {
        // From now on the API answers 503: what it would read may be closed under it.
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Browsers on links' trackers leave.
        self.links_changed.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(m) = self.peers.mapping.lock().await.take()
            && let Err(e) = m.remove().await
        {
            tracing::warn!(error = %e, "the port mapping stays until its lease ends");
        }
        if let Some(m) = self.web.mapping.lock().await.take()
            && let Err(e) = m.remove().await
        {
            tracing::warn!(error = %e, "the web port's mapping stays until its lease ends");
        }
        self.unmap_relay().await;
        self.xmpp.close().await;
        self.engine.shutdown().await;
        if let Some(p) = &self.prosody {
            p.lock().await.stop().await;
        }
        self.store.close().await;
    }

    pub async fn status(&self) -> Result<types::Status, NodeError> {
        let spheres = self.store.spheres().await?;
        let mut list = Vec::new();
        for s in spheres {
            let shares = self.store.shares(s.id).await?;
            let present = lock(&self.rooms).online(&s.room);
            let in_call = self.in_sphere_call(&s.room);
            let (messages, last_activity) = self.store.activity(s.id).await?;
            list.push(types::SphereSummary {
                encryption: self.encryption(&s),
                name: s.name,
                room: s.room,
                owned: s.owned,
                shares: shares.len(),
                members_online: present,
                in_call,
                messages,
                last_activity,
            });
        }
        let transfers: Vec<_> = self
            .engine
            .list()
            .into_iter()
            .map(|t| types::Transfer {
                state: format!("{:?}", t.state).to_lowercase(),
                info_hash: t.info_hash,
                name: t.name,
                have_bytes: t.have_bytes,
                total_bytes: t.total_bytes,
                peers: t.peers,
                download_bps: t.download_bps,
                upload_bps: t.upload_bps,
            })
            .collect();
        let reachability = reachability_of(&lock(&self.peers.reachability));
        let web_password = self.has_password().await;
        let http = lock(&self.http).map(|a| format!("http://{a}"));
        let xmpp = lock(&self.connection).clone();
        Ok(types::Status {
            jid: self.me.to_string(),
            public_pages: self.public_pages(),
            web: self.web_address(),
            http,
            listen: self.engine.listen_addr().to_string(),
            tracker: self.tracker.http_addr.map(|a| a.to_string()),
            household: self.household.clone().map(|h| types::Household {
                relay: self.relay_info(),
                ..h
            }),
            muc: self.muc.clone(),
            spheres_dir: self.settings.spheres_dir.clone(),
            headless: self.settings.headless,
            web_password,
            reachability,
            xmpp,
            endpoints: self
                .endpoints()
                .endpoints
                .into_iter()
                .map(|e| types::Endpoint {
                    kind: e.kind,
                    host: e.host,
                    port: e.port,
                })
                .collect(),
            download_limit: self.engine.limits().0.map(|n| n.get()),
            upload_limit: self.engine.limits().1.map(|n| n.get()),
            spheres: list,
            transfers,
        })
    }

    /// Changes the bandwidth limits now and for the next starts (flags still win at start).
    pub async fn set_limits(
        &self,
        download: Option<u64>,
        upload: Option<u64>,
    ) -> Result<(), NodeError> {
        self.engine.set_limits(rate(download), rate(upload));
        let text = |r: Option<u64>| r.map(|b| b.to_string()).unwrap_or_default();
        self.store
            .set_meta("download_limit", &text(download))
            .await?;
        self.store.set_meta("upload_limit", &text(upload)).await?;
        Ok(())
    }
}

/// Our nick in the spheres' rooms: the account's name, and when another node of the same
/// account has published a key package, the name with this device's first digits
/// ("bob (3fa2)"). Each node of a person is then an occupant of its own, with its own
/// endpoints and tracker key (two sessions under one nick are one occupant to the room).
async fn nick_for(xmpp: &Client, me: &BareJid, name: &str, device: &str) -> String {
    let others = match xmpp.key_packages(me).await {
        Ok(items) => items.iter().any(|(id, _)| id != device),
        Err(e) => {
            tracing::info!(error = %e, "cannot read this account's key packages; taking its name as nick");
            false
        }
    };
    if others {
        format!("{name} ({})", device.get(..4).unwrap_or(device))
    } else {
        name.to_owned()
    }
}
