//! nginx (Debian's nginx-light) serving a folder over HTTP on loopback: a web server we did
//! not write, for web seed (BEP 19) tests. It takes the listening socket from us (bound on
//! a port the OS chose, held until nginx has it: nginx's inherited-socket protocol, the
//! `NGINX` variable naming the descriptor, here its standard input).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running nginx; stopped (master and workers) when dropped.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
}

impl Nginx {
    /// nginx serving the files under `root`, read-only, on 127.0.0.1; its configuration and
    /// logs go in `work` (an empty folder the caller cleans up).
    pub fn serve(root: &Path, work: &Path) -> Nginx {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let w = work.display();
        std::fs::create_dir_all(work.join("tmp")).expect("nginx's folder");
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {w}/nginx.pid;\nerror_log {w}/error.log;\n\
             user root;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log {w}/access.log;\n  client_body_temp_path {w}/tmp;\n\
             proxy_temp_path {w}/tmp;\n  fastcgi_temp_path {w}/tmp;\n  uwsgi_temp_path {w}/tmp;\n\
             scgi_temp_path {w}/tmp;\n  server {{\n    listen {addr};\n    root {};\n  }}\n}}\n",
            root.display()
        );
        let conf_path = work.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(work)
            .arg("-e")
            .arg(work.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .env_clear()
            .env("NGINX", "0;")
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx: run scripts/install-test-deps (nginx-light)");
        Nginx { child, addr }
    }

    /// The lines of its access log so far (method, path, status, bytes).
    pub fn requests(work: &Path) -> Vec<String> {
        std::fs::read_to_string(work.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, then itself.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
