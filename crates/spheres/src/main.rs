//! `spheres`: the command line. Thin: every command is a few calls into the library crates.
//! This binary is the only place that knows about terminals, JSON output and exit codes.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod client;
mod output;
mod remote;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use spheres_metainfo::{CreateOptions, Metainfo};
use spheres_torrent::{AddOptions, Engine, EngineConfig, Source};

use client::{Ask, ContactCommand, HouseholdCommand, LinkCommand, NewPost, SphereCommand};
use output::Output;
use spheres_node::units::{human_bytes, parse_size};

#[derive(Parser)]
#[command(name = "spheres", version, about = "Private, peer-to-peer sharing for families and groups.", long_about = None)]
struct Cli {
    /// Print machine-readable JSON lines on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    locate: spheres_node::settings::Locate,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the node: the household server (unless --jid), BitTorrent, the spheres, the API
    /// and web interface. Runs until interrupted.
    Up(Box<spheres_node::settings::UpArgs>),
    /// Show the running node: account, spheres, transfers, listening addresses.
    Status,
    /// Print a one-time link that opens the running node's web interface in a browser on
    /// this computer (being on the same computer is not enough by itself).
    Open,
    /// Create spheres, invite people, join, leave.
    #[command(subcommand)]
    Sphere(SphereCommand),
    /// Share a file or a folder in a sphere (seeded where it is).
    Share {
        /// The sphere's name.
        sphere: String,
        path: PathBuf,
    },
    /// Fetch a share the sphere's policy left aside (by name or info hash).
    Fetch {
        /// The sphere's name.
        sphere: String,
        share: String,
    },
    /// Take back a share of yours (the sphere's owner: anyone's): members' nodes stop
    /// fetching and seeding it; copies they already have stay with them, and the file stays
    /// on this machine.
    TakeBack {
        /// The sphere's name.
        sphere: String,
        /// The share's name or info hash.
        share: String,
    },
    /// List a sphere's shares with their progress.
    Shares {
        /// The sphere's name.
        sphere: String,
    },
    /// Your contacts: add (or accept), remove, list.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Links to a share that anyone opens in a browser, with nothing installed: create,
    /// list, revoke.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Chat with a contact: `spheres chat JID TEXT` sends, `spheres chat JID` shows the
    /// conversation.
    Chat {
        /// Their address (name@server).
        jid: String,
        text: Option<String>,
    },
    /// Say something in a sphere's room.
    Say {
        /// The sphere's name.
        sphere: String,
        text: String,
    },
    /// What was said in a sphere's room, oldest first.
    Messages {
        /// The sphere's name.
        sphere: String,
    },
    /// Post to your feed (XEP-0277: contacts on any XMPP client read it); prints the post's
    /// id. `spheres post --edit ID TEXT` changes one of your posts, `spheres post --delete
    /// ID` deletes it.
    Post {
        /// What to say.
        #[arg(required_unless_present = "delete")]
        text: Option<String>,
        /// Change the text of this post of yours instead.
        #[arg(long, value_name = "POST_ID", conflicts_with = "delete")]
        edit: Option<String>,
        /// Who reads it: contacts (the default), everyone (anyone with an XMPP address),
        /// public (everyone, and the web: pages on the node's HTTP address, see `status`), or
        /// a sphere's name (its members only; `sphere:NAME` when the name is one of those
        /// words).
        #[arg(long, default_value = "contacts", value_name = "AUDIENCE")]
        to: String,
        /// A file or folder to show in the post (repeat for more): shared in the sphere
        /// `--to` names first (posts for a sphere only, for now).
        #[arg(long, value_name = "PATH")]
        attach: Vec<PathBuf>,
        /// Delete this post of yours instead.
        #[arg(long, value_name = "POST_ID", conflicts_with = "text")]
        delete: Option<String>,
    },
    /// Your feed, newest first: your posts and your contacts', with their comment counts.
    Feed {
        /// Someone's posts instead, from their account (those you may read).
        #[arg(long, value_name = "JID")]
        from: Option<String>,
    },
    /// Write everything that is yours here (posts, comments, contacts, spheres, the files you
    /// shared) to one archive (tar: spheres.json, posts.atom, your .torrents and files).
    Export {
        /// The archive to write (a new file).
        file: PathBuf,
    },
    /// Bring an archive made by `spheres export` into this account: asks your contacts again,
    /// makes your spheres again (inviting their members), puts your files back, publishes your
    /// posts again.
    Import {
        /// The archive.
        file: PathBuf,
    },
    /// React to a post with an emoji (`spheres react POST_ID 👍`); the same again takes it
    /// back.
    React {
        /// The post's id, as `spheres feed` shows it.
        post_id: String,
        emoji: String,
    },
    /// Comment under a post (`spheres comment POST_ID TEXT`), or list its comments.
    Comment {
        /// The post's id, as `spheres feed` shows it.
        post_id: String,
        text: Option<String>,
    },
    /// Set the password that opens the web interface from other devices.
    Password {
        /// A file holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
    },
    /// Manage the household server the node runs.
    #[command(subcommand)]
    Household(HouseholdCommand),
    /// Make, inspect, seed and download torrents, like any BitTorrent client.
    #[command(subcommand)]
    Torrent(TorrentCommand),
    /// Run a BitTorrent tracker (HTTP and UDP, and WebTorrent's WebSocket signalling).
    Tracker(TrackerArgs),
    /// Ask the home router to forward a port here (PCP, NAT-PMP, UPnP IGD), hold it until
    /// interrupted, then remove it.
    MapPort {
        /// The TCP port to forward (the same number outside when the router agrees).
        port: u16,
        /// Lease to ask for, in seconds; renewed at half.
        #[arg(long, default_value_t = 3600)]
        lease: u64,
    },
}

#[derive(Subcommand)]
enum TorrentCommand {
    /// Make a .torrent of a file or a folder.
    Create(CreateArgs),
    /// Show what a .torrent file holds.
    Info {
        /// The .torrent file.
        file: PathBuf,
    },
    /// Seed data that is already on disk, in place, until interrupted.
    Seed(SeedArgs),
    /// Download a torrent (a .torrent file or a magnet link) and verify it.
    Get(GetArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// The file or folder to share.
    path: PathBuf,
    /// Where to write the .torrent (default: NAME.torrent in the current folder).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Mark the torrent private: no DHT, no peer exchange, trackers only (BEP 27).
    #[arg(long)]
    private: bool,
    /// A tracker announce URL; repeat for more tiers (BEP 12).
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// A web seed URL (BEP 19); repeatable.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Piece size in bytes (a power of two, 16K to 64M; K and M suffixes allowed).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    piece_size: Option<u64>,
    #[arg(long)]
    comment: Option<String>,
    /// Leave out the creation date.
    #[arg(long)]
    no_date: bool,
    /// Make a hybrid torrent: BitTorrent v1 and v2 in one (BEP 52; files aligned to pieces
    /// by padding files, SHA-256 merkle trees beside the SHA-1 pieces).
    #[arg(long, conflicts_with = "v2")]
    hybrid: bool,
    /// Make a BitTorrent v2-only torrent (BEP 52): only v2 clients (libtorrent 2,
    /// qBittorrent 4.4 and later, spheres) read it; --hybrid reaches every client.
    #[arg(long)]
    v2: bool,
}

#[derive(Args)]
struct PeerArgs {
    /// Address to accept peers on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Connect to this peer as well as those from trackers; repeatable.
    #[arg(long = "peer", value_name = "ADDR:PORT")]
    peers: Vec<SocketAddr>,
    /// Also serve the torrent's files over HTTP (with Range support) on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<SocketAddr>,
    /// Find peers on the local network (BEP 14), private torrents included (by a name that
    /// only those who know the info hash can match, never by the info hash itself).
    #[arg(long)]
    lsd: bool,
}

/// A torrent as LAN discovery announces it (a private one never by its info hash).
fn lan_torrent(meta: &Metainfo) -> spheres_net::lsd::Torrent {
    spheres_net::lsd::Torrent {
        info_hash: meta.info_hash.0,
        private: meta.private,
    }
}

/// Starts local service discovery for one torrent on the engine's port.
fn start_lsd(
    peer: &PeerArgs,
    engine: &Engine,
    torrent: spheres_net::lsd::Torrent,
) -> Result<Option<spheres_net::lsd::Heard>> {
    if !peer.lsd {
        return Ok(None);
    }
    let heard = spheres_net::lsd::start(engine.listen_addr().port(), move || vec![torrent])
        .context("cannot start local service discovery (UDP port 6771)")?;
    Ok(Some(heard))
}

#[derive(Args)]
struct SeedArgs {
    /// The .torrent file.
    torrent: PathBuf,
    /// The data: the torrent's file or folder, or a folder that holds it.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(Args)]
struct GetArgs {
    /// A .torrent file or a magnet link.
    source: String,
    /// The folder to download into.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    peer: PeerArgs,
    /// Keep seeding after the download completes, until interrupted.
    #[arg(long)]
    seed: bool,
}

#[derive(Args)]
struct TrackerArgs {
    /// HTTP announce/scrape address.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<SocketAddr>,
    /// UDP announce/scrape address.
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Option<SocketAddr>,
    /// WebSocket address for WebTorrent's browsers (`ws://ADDR:PORT`, any torrent): they
    /// find each other there and exchange WebRTC offers.
    #[arg(long, value_name = "ADDR:PORT")]
    ws: Option<SocketAddr>,
    /// Make the tracker private and accept this key (announce URL `/KEY/announce`); repeatable.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Re-announce interval told to clients, in seconds.
    #[arg(long, default_value_t = 120)]
    interval: u64,
}

fn main() {
    let cli = Cli::parse();
    // HTTPS clients (reqwest) use ring, as the rest of the binary does; one provider for the
    // process. Installing fails only if one is there already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let out = Output::new(cli.json);
    let result = match cli.command {
        Command::Up(args) => {
            runtime().and_then(|rt| rt.block_on(spheres_node::Node::up(&cli.locate, *args, &out)))
        }
        Command::Status => ask(&out, &cli.locate, Ask::Status),
        Command::Open => ask(&out, &cli.locate, Ask::Open),
        Command::Sphere(c) => ask(&out, &cli.locate, Ask::Sphere(c)),
        Command::Share { sphere, path } => ask(&out, &cli.locate, Ask::Share { sphere, path }),
        Command::Shares { sphere } => ask(&out, &cli.locate, Ask::Shares { sphere }),
        Command::Fetch { sphere, share } => ask(&out, &cli.locate, Ask::Fetch { sphere, share }),
        Command::TakeBack { sphere, share } => {
            ask(&out, &cli.locate, Ask::TakeBack { sphere, share })
        }
        Command::Password { password_file } => {
            ask(&out, &cli.locate, Ask::Password { password_file })
        }
        Command::Household(c) => ask(&out, &cli.locate, Ask::Household(c)),
        Command::Contact(c) => ask(&out, &cli.locate, Ask::Contact(c)),
        Command::Link(c) => ask(&out, &cli.locate, Ask::Link(c)),
        Command::Chat { jid, text } => ask(&out, &cli.locate, Ask::Chat { jid, text }),
        Command::Say { sphere, text } => ask(&out, &cli.locate, Ask::Say { sphere, text }),
        Command::Messages { sphere } => ask(&out, &cli.locate, Ask::Messages { sphere }),
        Command::Post {
            delete: Some(id), ..
        } => ask(&out, &cli.locate, Ask::DeletePost { id }),
        Command::Post {
            edit: Some(id),
            text,
            ..
        } => ask(
            &out,
            &cli.locate,
            Ask::EditPost {
                id,
                text: text.unwrap_or_default(),
            },
        ),
        Command::Post {
            text, to, attach, ..
        } => ask(
            &out,
            &cli.locate,
            Ask::Post(NewPost {
                text: text.unwrap_or_default(),
                to,
                attach,
            }),
        ),
        Command::Feed { from } => ask(&out, &cli.locate, Ask::Feed { from }),
        Command::Export { file } => ask(&out, &cli.locate, Ask::Export { path: file }),
        Command::Import { file } => ask(&out, &cli.locate, Ask::Import { path: file }),
        Command::React { post_id, emoji } => {
            ask(&out, &cli.locate, Ask::React { id: post_id, emoji })
        }
        Command::Comment { post_id, text } => {
            ask(&out, &cli.locate, Ask::Comment { id: post_id, text })
        }
        Command::Torrent(TorrentCommand::Create(args)) => create(&out, args),
        Command::Torrent(TorrentCommand::Info { file }) => info(&out, &file),
        Command::Torrent(TorrentCommand::Seed(args)) => {
            runtime().and_then(|rt| rt.block_on(seed(&out, args)))
        }
        Command::Torrent(TorrentCommand::Get(args)) => {
            runtime().and_then(|rt| rt.block_on(get(&out, args)))
        }
        Command::Tracker(args) => runtime().and_then(|rt| rt.block_on(tracker(&out, args))),
        Command::MapPort { port, lease } => {
            runtime().and_then(|rt| rt.block_on(map_port(&out, port, lease)))
        }
    };
    if let Err(e) = result {
        out.error(&e);
        std::process::exit(1);
    }
}

/// Asks the running node (found through the data folder) and prints its answer.
fn ask(out: &Output, locate: &spheres_node::settings::Locate, what: Ask) -> Result<()> {
    runtime().and_then(|rt| {
        rt.block_on(async {
            let r = remote::Remote::find(locate)?;
            client::run(out, &r, what).await
        })
    })
}

/// One async thread per process (blocking work goes to tokio's blocking pool, hashing of new
/// torrents to its own threads). Chosen for librqbit; with our engine the multi-threaded
/// runtime moves 1 GiB on loopback no faster (2 %, within the runs' spread; docs/benchmarks.md
/// (a)), and one async thread leaves the second core to hashing and disk threads.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn create(out: &Output, args: CreateArgs) -> Result<()> {
    for t in &args.trackers {
        if !["http://", "https://", "udp://"]
            .iter()
            .any(|s| t.starts_with(s))
        {
            bail!("{t:?} is not a tracker URL: it must start with http://, https:// or udp://");
        }
    }
    let opts = CreateOptions {
        piece_length: args.piece_size,
        private: args.private,
        trackers: args.trackers.into_iter().map(|t| vec![t]).collect(),
        web_seeds: args.web_seeds,
        comment: args.comment,
        created_by: Some(format!("spheres {}", env!("CARGO_PKG_VERSION"))),
        creation_date: (!args.no_date).then(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        }),
        threads: None,
        hybrid: args.hybrid,
        v2_only: args.v2,
        seal: None,
    };
    let bar = out.bytes_bar("hashing");
    let started = std::time::Instant::now();
    let (bytes, meta) = spheres_metainfo::create_torrent(&args.path, &opts, &mut |p| {
        bar.set(p.hashed_bytes, p.total_bytes);
    })
    .with_context(|| format!("cannot make a torrent of {}", args.path.display()))?;
    bar.finish();
    let target = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", meta.name)));
    write_new_file(&target, &bytes)?;
    let secs = started.elapsed().as_secs_f64();
    out.result(
        &format!(
            "Created {} ({}, {} pieces of {}, {:.0} MiB/s)\ninfo hash {}\n{}",
            target.display(),
            human_bytes(meta.total_length),
            meta.piece_count(),
            human_bytes(meta.piece_length),
            meta.total_length as f64 / secs.max(1e-6) / 1048576.0,
            meta.info_hash,
            meta.magnet(),
        ),
        serde_json::json!({
            "event": "created",
            "torrent": target,
            "info_hash": meta.info_hash.to_hex(),
            "name": meta.name,
            "total_bytes": meta.total_length,
            "piece_length": meta.piece_length,
            "pieces": meta.piece_count(),
            "magnet": meta.magnet().to_string(),
        }),
    );
    Ok(())
}

/// Writes through a temporary file and a rename, so a crash never leaves half a .torrent.
fn write_new_file(target: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.part",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, target).with_context(|| format!("cannot write {}", target.display()))
}

fn read_torrent(path: &std::path::Path) -> Result<(Vec<u8>, Metainfo)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let meta = Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable torrent", path.display()))?;
    Ok((bytes, meta))
}

fn info(out: &Output, file: &std::path::Path) -> Result<()> {
    let (_, m) = read_torrent(file)?;
    let mut text = format!(
        "name:        {}\ninfo hash:   {}\nsize:        {} ({} bytes)\npieces:      {} of {}\nprivate:     {}\n",
        m.name,
        m.info_hash,
        human_bytes(m.total_length),
        m.total_length,
        m.piece_count(),
        human_bytes(m.piece_length),
        if m.private { "yes" } else { "no" },
    );
    for (i, tier) in m.trackers.iter().enumerate() {
        text.push_str(&format!("tracker {}:   {}\n", i + 1, tier.join(" ")));
    }
    for w in &m.web_seeds {
        text.push_str(&format!("web seed:    {w}\n"));
    }
    if let Some(c) = &m.comment {
        text.push_str(&format!("comment:     {c}\n"));
    }
    if let Some(c) = &m.created_by {
        text.push_str(&format!("created by:  {c}\n"));
    }
    text.push_str(&format!("files ({}):\n", m.visible_files().count()));
    for (_, f) in m.visible_files() {
        text.push_str(&format!(
            "  {:>10}  {}\n",
            human_bytes(f.length),
            f.display_path()
        ));
    }
    text.push_str(&format!("magnet:      {}", m.magnet()));
    let files: Vec<_> = m
        .visible_files()
        .map(|(i, f)| serde_json::json!({"index": i, "path": f.display_path(), "length": f.length}))
        .collect();
    out.result(
        &text,
        serde_json::json!({
            "name": m.name,
            "info_hash": m.info_hash.to_hex(),
            "total_bytes": m.total_length,
            "piece_length": m.piece_length,
            "pieces": m.piece_count(),
            "private": m.private,
            "trackers": m.trackers,
            "web_seeds": m.web_seeds,
            "comment": m.comment,
            "created_by": m.created_by,
            "creation_date": m.creation_date,
            "files": files,
            "magnet": m.magnet().to_string(),
        }),
    );
    Ok(())
}

async fn start_engine(download_dir: PathBuf, peer: &PeerArgs) -> Result<Engine> {
    let mut config = EngineConfig::new(download_dir);
    config.listen = peer.listen;
    Engine::start(config)
        .await
        .context("cannot start the BitTorrent engine")
}

async fn serve_http(
    out: &Output,
    engine: &Engine,
    peer: &PeerArgs,
    hash: &spheres_metainfo::InfoHash,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = peer.http else {
        return Ok(None);
    };
    let (bound, task) = spheres_web::serve(spheres_web::stream_router(engine.clone()), addr)
        .await
        .with_context(|| format!("cannot serve HTTP on {addr}"))?;
    out.event(
        &format!("Streaming on http://{bound}/torrents/{hash}/files/0"),
        serde_json::json!({"event": "http", "addr": bound.to_string(), "url": format!("http://{bound}/torrents/{hash}/files/")}),
    );
    Ok(Some(task))
}

async fn seed(out: &Output, args: SeedArgs) -> Result<()> {
    let (bytes, meta) = read_torrent(&args.torrent)?;
    let engine = start_engine(std::env::temp_dir(), &args.peer).await?;
    let mut opts = AddOptions::seed(&args.data);
    opts.peers = args.peer.peers.clone();
    let hash = engine
        .add(Source::Torrent(bytes), opts)
        .await
        .context("cannot seed")?;
    let lan = engine.metainfo(&hash).map_or(
        spheres_net::lsd::Torrent {
            info_hash: hash.0,
            private: true,
        },
        |m| lan_torrent(&m),
    );
    let _lsd = start_lsd(&args.peer, &engine, lan)?;
    let _http = serve_http(out, &engine, &args.peer, &hash).await?;
    // Seeding starts once the data is checked against the torrent.
    let bar = out.bytes_bar("checking");
    loop {
        let s = engine
            .status(&hash)
            .context("the torrent left the session")?;
        match s.state {
            spheres_torrent::TorrentState::Seeding => break,
            spheres_torrent::TorrentState::Error => {
                bail!("cannot seed: {}", s.error.unwrap_or_default())
            }
            spheres_torrent::TorrentState::Downloading | spheres_torrent::TorrentState::Paused => {
                bail!(
                    "the data in {} does not match the torrent ({} of {} verified); is it the right data?",
                    args.data.display(),
                    human_bytes(s.have_bytes),
                    human_bytes(s.total_bytes)
                )
            }
            spheres_torrent::TorrentState::Checking => {
                bar.set(s.have_bytes, meta.total_length);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    bar.finish();
    out.event(
        &format!(
            "Seeding {} ({}) on {}; press Ctrl-C to stop",
            meta.name,
            human_bytes(meta.total_length),
            engine.listen_addr()
        ),
        serde_json::json!({"event": "seeding", "info_hash": hash.to_hex(), "listen": engine.listen_addr().to_string()}),
    );
    until_interrupted(out, &engine, &hash).await;
    engine.shutdown().await;
    Ok(())
}

async fn get(out: &Output, args: GetArgs) -> Result<()> {
    let source = if args.source.starts_with("magnet:") {
        Source::Magnet(args.source.clone())
    } else {
        Source::Torrent(read_torrent(std::path::Path::new(&args.source))?.0)
    };
    let engine = start_engine(args.out.clone(), &args.peer).await?;
    let mut opts = AddOptions::download(&args.out);
    opts.peers = args.peer.peers.clone();
    // With LSD and nobody named, listen a while for the LAN's answer first: the engine takes
    // extra peers only when the torrent is added.
    let wanted = match &source {
        Source::Torrent(b) => Metainfo::from_bytes(b).ok().map(|m| lan_torrent(&m)),
        // A magnet says nothing of being private: taken as public (BEP 14 as usual).
        Source::Magnet(m) => {
            m.parse::<spheres_metainfo::Magnet>()
                .ok()
                .map(|m| spheres_net::lsd::Torrent {
                    info_hash: m.info_hash.0,
                    private: false,
                })
        }
    };
    if let Some(t) = wanted
        && let Some(heard) = start_lsd(&args.peer, &engine, t)?
    {
        let h = t.hex();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while heard.peers(&h).is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let lan = heard.peers(&h);
        out.event(
            &format!("{} peers found on the local network", lan.len()),
            serde_json::json!({"event": "lsd", "peers": lan.iter().map(|p| p.to_string()).collect::<Vec<_>>()}),
        );
        opts.peers.extend(lan);
    }
    let hash = engine.add(source, opts).await.context("cannot download")?;
    let _http = serve_http(out, &engine, &args.peer, &hash).await?;
    let meta = engine
        .metainfo(&hash)
        .context("the torrent left the session")?;
    out.event(
        &format!("Downloading {} ({}) into {}", meta.name, human_bytes(meta.total_length), args.out.display()),
        serde_json::json!({"event": "started", "info_hash": hash.to_hex(), "name": meta.name, "listen": engine.listen_addr().to_string()}),
    );
    let bar = out.bytes_bar("downloading");
    let started = std::time::Instant::now();
    let mut last_json = std::time::Instant::now();
    loop {
        let s = engine
            .status(&hash)
            .context("the torrent left the session")?;
        bar.set(s.have_bytes, s.total_bytes);
        bar.message(&format!("{} peers", s.peers));
        if out.json && last_json.elapsed() >= Duration::from_secs(1) {
            last_json = std::time::Instant::now();
            out.json_line(serde_json::json!({"event": "progress", "have_bytes": s.have_bytes, "total_bytes": s.total_bytes, "peers": s.peers, "download_bps": s.download_bps}));
        }
        match s.state {
            spheres_torrent::TorrentState::Seeding => break,
            spheres_torrent::TorrentState::Error => {
                bail!("download failed: {}", s.error.unwrap_or_default())
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    bar.finish();
    let status = engine
        .status(&hash)
        .context("the torrent left the session")?;
    let secs = started.elapsed().as_secs_f64();
    out.result(
        &format!(
            "Downloaded and verified {} ({}) in {:.1} s into {}",
            meta.name,
            human_bytes(meta.total_length),
            secs,
            status.root.display()
        ),
        serde_json::json!({"event": "complete", "info_hash": hash.to_hex(), "root": status.root, "total_bytes": meta.total_length, "seconds": secs}),
    );
    if args.seed {
        until_interrupted(out, &engine, &hash).await;
    }
    engine.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, printing upload progress now and then.
async fn until_interrupted(out: &Output, engine: &Engine, hash: &spheres_metainfo::InfoHash) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => break,
            _ = tick.tick() => {
                if let Some(s) = engine.status(hash) {
                    out.event(
                        &format!("{} peers, uploaded {}", s.peers, human_bytes(s.uploaded_bytes)),
                        serde_json::json!({"event": "seeding_progress", "peers": s.peers, "uploaded_bytes": s.uploaded_bytes}),
                    );
                }
            }
        }
    }
    out.event("Stopping", serde_json::json!({"event": "stopping"}));
}

async fn tracker(out: &Output, args: TrackerArgs) -> Result<()> {
    if args.ws.is_some() && !args.keys.is_empty() {
        bail!("the WebSocket tracker has no keys: it serves any torrent; leave --key out or --ws");
    }
    let (http, udp) = match (args.http, args.udp) {
        (None, None) if args.ws.is_some() => (None, None),
        (None, None) => (
            Some(SocketAddr::from(([127, 0, 0, 1], 6969))),
            Some(SocketAddr::from(([127, 0, 0, 1], 6969))),
        ),
        other => other,
    };
    let config = spheres_tracker::TrackerConfig {
        interval: Duration::from_secs(args.interval.max(1)),
        min_interval: Duration::from_secs((args.interval / 4).max(1)),
        peer_ttl: Duration::from_secs(args.interval.max(1) * 2 + 60),
        private: !args.keys.is_empty(),
        ..Default::default()
    };
    let running = spheres_tracker::start(config, http, udp)
        .await
        .context("cannot start the tracker")?;
    for k in &args.keys {
        running
            .tracker
            .grant_key(k.clone(), spheres_tracker::KeyScope::AllTorrents);
    }
    let key = args.keys.first().map(String::as_str);
    let http_url = running.http_announce_url(key);
    let udp_url = running.udp_announce_url(key);
    let mut _ws = None;
    let ws_url = match args.ws {
        Some(addr) => {
            let signalling = spheres_tracker::ws::Signalling::new(spheres_tracker::ws::CONNECTIONS);
            let (bound, task) = spheres_web::serve(spheres_tracker::ws::router(signalling), addr)
                .await
                .with_context(|| format!("cannot serve WebSockets on {addr}"))?;
            _ws = Some(task);
            Some(format!("ws://{bound}"))
        }
        None => None,
    };
    out.event(
        &format!(
            "Tracker running{}{}{}; press Ctrl-C to stop",
            http_url.as_ref().map(|u| format!("\n  HTTP: {u}")).unwrap_or_default(),
            udp_url.as_ref().map(|u| format!("\n  UDP:  {u}")).unwrap_or_default(),
            ws_url.as_ref().map(|u| format!("\n  WebSocket: {u}")).unwrap_or_default(),
        ),
        serde_json::json!({"event": "listening", "http": running.http_addr.map(|a| a.to_string()), "udp": running.udp_addr.map(|a| a.to_string()), "http_announce": http_url, "udp_announce": udp_url, "ws": ws_url}),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

async fn map_port(out: &Output, port: u16, lease: u64) -> Result<()> {
    let lease = Duration::from_secs(lease.max(60));
    let mut mapping = spheres_net::Mapping::create(port, lease, Duration::from_secs(3)).await?;
    out.event(
        &format!(
            "The router forwards {} to port {port} here ({:?}); press Ctrl-C to remove it",
            mapping.external, mapping.method
        ),
        serde_json::json!({"event": "mapped", "reachability": mapping.reachability()}),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(mapping.lease / 2) => {
                if let Err(e) = mapping.renew().await {
                    out.event(&format!("{e}"), serde_json::json!({"event": "renew_failed", "error": e.to_string()}));
                }
            }
        }
    }
    mapping.remove().await?;
    out.result(
        "Removed the mapping",
        serde_json::json!({"event": "removed"}),
    );
    Ok(())
}
