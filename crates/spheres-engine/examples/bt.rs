//! Our engine as a command, for benchmarks (`bench/transfer.sh`) and trying it by hand.
//! Prints one JSON object per line, like `tests/peers/lt_peer.py`.
//!
//!   bt seed TORRENT DATA [--listen ADDR]     (DATA: the torrent's file or folder itself)
//!   bt seed-all DIR [--listen ADDR]          (every DIR/*.torrent, its data in DIR)
//!   bt get  TORRENT --out DIR --peer ADDR... [--listen ADDR]
//!   bt make FILE OUT [--seal KEY] [--piece-size BYTES]
//!
//! `seed` and `seed-all` run until killed; `get` exits 0 once every piece is in and verified.
//! `make` writes a private torrent of one file (sealed under KEY, 64 hex digits, when given:
//! docs/decisions/0015). `seed` and `get` take `--seal KEY` for such a torrent (one file: its
//! name is DATA's for `seed`, `--name NAME` for `get`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use spheres_engine::{Engine, EngineConfig, Open};
use spheres_metainfo::seal::{Seal, SealedFile};
use spheres_metainfo::{CreateOptions, Metainfo, create_sealed, create_torrent};

fn usage() -> ! {
    eprintln!(
        "usage: bt seed TORRENT DATA [--listen ADDR] [--seal KEY] | bt seed-all DIR [--listen ADDR] | bt get TORRENT --out DIR --peer ADDR... [--listen ADDR] [--seal KEY --name NAME] | bt make FILE OUT [--seal KEY] [--piece-size BYTES]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(cmd), Some(torrent)) = (args.first(), args.get(1)) else {
        usage()
    };
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut out = None;
    let mut data = None;
    let mut peers: Vec<SocketAddr> = Vec::new();
    let mut seal = None;
    let mut name = None;
    let mut piece_size = None;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        let mut value = || rest.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => listen = value().parse().unwrap_or_else(|_| usage()),
            "--out" => out = Some(PathBuf::from(value())),
            "--peer" => peers.push(value().parse().unwrap_or_else(|_| usage())),
            "--seal" => {
                let key: [u8; 32] = hex::decode(value())
                    .ok()
                    .and_then(|k| k.try_into().ok())
                    .unwrap_or_else(|| usage());
                seal = Some(Seal::new(key));
            }
            "--name" => name = Some(value()),
            "--piece-size" => piece_size = Some(value().parse().unwrap_or_else(|_| usage())),
            other if data.is_none() && !other.starts_with("--") => {
                data = Some(PathBuf::from(other))
            }
            _ => usage(),
        }
    }
    if cmd == "seed-all" {
        seed_all(PathBuf::from(torrent), listen).await;
    }
    if cmd == "make" {
        let (file, to) = (PathBuf::from(torrent), data.unwrap_or_else(|| usage()));
        make(&file, &to, seal, piece_size);
        return;
    }
    let bytes = std::fs::read(torrent).unwrap_or_else(|e| {
        eprintln!("cannot read {torrent}: {e}");
        std::process::exit(1)
    });
    let mut meta = Metainfo::from_bytes(&bytes).unwrap_or_else(|e| {
        eprintln!("{torrent}: {e}");
        std::process::exit(1)
    });
    // A sealed torrent seen with its one real file.
    if seal.is_some() {
        let named = name.or_else(|| {
            data.as_ref()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        });
        let named = named.unwrap_or_else(|| usage());
        let files = [SealedFile {
            path: vec![named.clone()],
            length: meta.total_length,
        }];
        meta = meta.with_layout(&named, &files, false).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
    }
    let meta = Arc::new(meta);
    let engine = start(listen).await;
    let hash = meta.info_hash.0;
    let add = |meta: Arc<Metainfo>, dir: PathBuf| {
        let (engine, seal) = (engine.clone(), seal.clone());
        async move {
            match seal {
                Some(s) => engine.add_sealed(meta, dir, Arc::new(Open), s).await,
                None => engine.add(meta, dir, Arc::new(Open)).await,
            }
        }
    };
    match cmd.as_str() {
        "seed" => {
            let data = data.unwrap_or_else(|| usage());
            let root = data.parent().map(PathBuf::from).unwrap_or_default();
            let st = add(meta, root).await.unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            });
            if !st.complete {
                println!(
                    "{{\"event\":\"error\",\"message\":\"{} of {} pieces check\"}}",
                    st.have, st.pieces
                );
                std::process::exit(1);
            }
            println!(
                "{{\"event\":\"seeding\",\"listen\":\"{}\"}}",
                engine.listen_addr()
            );
            std::future::pending::<()>().await;
        }
        "get" => {
            let out = out.unwrap_or_else(|| usage());
            let t0 = Instant::now();
            add(meta.clone(), out).await.unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            });
            for p in peers {
                let _ = engine.connect(hash, p);
            }
            if let Err(e) = engine.wait_complete(&hash).await {
                eprintln!("{e}");
                std::process::exit(1);
            }
            println!(
                "{{\"event\":\"complete\",\"seconds\":{:.3},\"bytes\":{}}}",
                t0.elapsed().as_secs_f64(),
                meta.total_length
            );
        }
        _ => usage(),
    }
}

/// Seeds every `*.torrent` in `dir` (its data in `dir`), then runs until killed.
async fn seed_all(dir: PathBuf, listen: SocketAddr) -> ! {
    let engine = start(listen).await;
    let mut n = 0;
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", dir.display());
        std::process::exit(1)
    });
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "torrent") {
            continue;
        }
        let meta = std::fs::read(&path)
            .ok()
            .and_then(|b| Metainfo::from_bytes(&b).ok())
            .unwrap_or_else(|| {
                eprintln!("{}: not a torrent", path.display());
                std::process::exit(1)
            });
        match engine
            .add(Arc::new(meta), dir.clone(), Arc::new(Open))
            .await
        {
            Ok(st) if st.complete => n += 1,
            Ok(_) | Err(_) => {
                eprintln!("{}: its data does not check", path.display());
                std::process::exit(1)
            }
        }
    }
    println!(
        "{{\"event\":\"seeding\",\"torrents\":{n},\"listen\":\"{}\"}}",
        engine.listen_addr()
    );
    let never: std::convert::Infallible = std::future::pending().await;
    match never {}
}

/// Writes a private torrent of `file` (sealed under `seal` when given) to `to`.
fn make(
    file: &std::path::Path,
    to: &std::path::Path,
    seal: Option<Seal>,
    piece_length: Option<u64>,
) {
    let opts = CreateOptions {
        private: true,
        piece_length,
        ..Default::default()
    };
    let made = match seal {
        Some(s) => create_sealed(file, s, &opts, &mut |_| {}).map(|m| (m.torrent, m.meta)),
        None => create_torrent(file, &opts, &mut |_| {}),
    };
    let (bytes, meta) = made.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    std::fs::write(to, bytes).unwrap_or_else(|e| {
        eprintln!("cannot write {}: {e}", to.display());
        std::process::exit(1)
    });
    println!(
        "{{\"event\":\"made\",\"info_hash\":\"{}\"}}",
        meta.info_hash.to_hex()
    );
}

/// An engine listening on `listen`, or the process ends saying why.
async fn start(listen: SocketAddr) -> Engine {
    Engine::start(EngineConfig {
        listen,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
}
