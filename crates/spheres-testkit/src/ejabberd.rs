//! A throwaway ejabberd (Debian's), run by `crates/spheres-xmpp/tests/peers/ejabberd.sh`
//! from a temp dir: its own ports, certificates, spool and Erlang node, no epmd. Stopped when
//! dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub struct Ejabberd {
    dir: tempfile::TempDir,
    /// Its XMPP domain, and its MUC service's.
    pub domain: String,
    pub muc: String,
    /// Client connections with STARTTLS, and with direct TLS.
    pub c2s: SocketAddr,
    pub tls: SocketAddr,
    /// The CA its certificate is signed by.
    pub ca: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spheres-xmpp/tests/peers/ejabberd.sh")
}

impl Ejabberd {
    /// Starts one (three tries: a free port can be taken before ejabberd binds it; the script
    /// notices and fails, and a new try picks new ports). Panics when it cannot.
    pub fn start() -> Ejabberd {
        let mut last = String::new();
        for attempt in 0..3 {
            let dir = tempfile::tempdir().expect("a temp dir");
            let home = dir.path().join("ejabberd");
            let out = std::process::Command::new(script())
                .arg("start")
                .arg(&home)
                .output()
                .expect("run ejabberd.sh (is ejabberd installed?)");
            if !out.status.success() {
                last = String::from_utf8_lossy(&out.stderr).into_owned();
                eprintln!("ejabberd start attempt {attempt} failed: {last}");
                continue;
            }
            let vars: std::collections::HashMap<String, String> =
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            let get = |k: &str| {
                vars.get(k)
                    .cloned()
                    .unwrap_or_else(|| panic!("no {k} in {vars:?}"))
            };
            let port = |k: &str| -> u16 {
                get(k)
                    .parse()
                    .unwrap_or_else(|_| panic!("{k} is not a port"))
            };
            return Ejabberd {
                domain: get("XMPP_DOMAIN"),
                muc: get("XMPP_MUC"),
                c2s: SocketAddr::from(([127, 0, 0, 1], port("XMPP_C2S_PORT"))),
                tls: SocketAddr::from(([127, 0, 0, 1], port("XMPP_TLS_PORT"))),
                ca: PathBuf::from(get("XMPP_CA")),
                dir,
            };
        }
        panic!("ejabberd did not start: {last}");
    }

    /// Where it keeps everything (configuration, spool, logs).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("ejabberd")
    }

    /// Creates accounts `USER` with password `USER-secret`.
    pub fn register(&self, users: &[&str]) {
        let mut cmd = std::process::Command::new(script());
        cmd.arg("register").arg(self.dir.path().join("ejabberd"));
        for u in users {
            cmd.arg(u).arg(format!("{u}-secret"));
        }
        let out = cmd.output().expect("run ejabberd.sh");
        assert!(
            out.status.success(),
            "ejabberd register: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("ejabberd"))
            .status();
    }
}
