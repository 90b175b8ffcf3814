//! What the CLI prints: progress bars on a terminal, plain lines otherwise, JSON lines with
//! `--json`. Results go to stdout; progress, events and errors to stderr (JSON all to stdout).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

pub struct Output {
    pub json: bool,
    tty: bool,
}

pub use spheres_node::units::human_bytes;

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn json_line(&self, value: serde_json::Value) {
        println!("{value}");
    }

    /// A final result: text on stdout, or one JSON line.
    pub fn result(&self, text: &str, value: serde_json::Value) {
        if self.json {
            self.json_line(value);
        } else {
            println!("{text}");
        }
    }

    /// Something that happened: text on stderr, or one JSON line on stdout.
    pub fn event(&self, text: &str, value: serde_json::Value) {
        if self.json {
            self.json_line(value);
        } else {
            eprintln!("{text}");
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        if self.json {
            self.json_line(serde_json::json!({"event": "error", "error": format!("{e:#}")}));
        } else {
            eprintln!("error: {e:#}");
        }
    }

    /// A byte-progress display: a bar on a terminal, a line every few seconds otherwise,
    /// nothing in JSON mode.
    pub fn bytes_bar(&self, what: &'static str) -> Bar {
        let bar = if self.tty && !self.json {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>11} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(what);
            Some(b)
        } else {
            None
        };
        Bar {
            bar,
            plain: !self.tty && !self.json,
            what,
            last_line: Mutex::new(None),
            message: Mutex::new(String::new()),
        }
    }
}

pub struct Bar {
    bar: Option<ProgressBar>,
    plain: bool,
    what: &'static str,
    last_line: Mutex<Option<Instant>>,
    message: Mutex<String>,
}

impl Bar {
    pub fn set(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
        } else if self.plain {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                *last = Some(Instant::now());
                let pct = if total == 0 {
                    0.0
                } else {
                    done as f64 * 100.0 / total as f64
                };
                let msg = self
                    .message
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                eprintln!(
                    "{}: {} of {} ({pct:.0}%) {msg}",
                    self.what,
                    human_bytes(done),
                    human_bytes(total)
                );
            }
        }
    }

    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_owned());
        }
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = msg.to_owned();
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl spheres_node::Report for Output {
    fn event(&self, text: &str, value: serde_json::Value) {
        Output::event(self, text, value)
    }
}
