//! The other subcommands talk to the running node through its API, found through the data
//! folder (`node.json`: address and token).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use spheres_node::read_node_file;
use spheres_node::settings::Locate;

pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Remote {
    pub fn find(locate: &Locate) -> Result<Remote> {
        let data = locate.data_dir()?;
        let file = read_node_file(&data).ok_or_else(|| {
            anyhow!(
                "no node is running for {} (start one with `spheres up`, or pass --data-dir)",
                data.display()
            )
        })?;
        Ok(Remote {
            base: file.api,
            token: file.token,
            http: reqwest::Client::new(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.bearer_auth(&self.token).send().await.map_err(|e| {
            anyhow!(
                "cannot reach the node at {} ({e}); is `spheres up` running?",
                self.base
            )
        })?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .context("the node sent an unreadable answer")?;
        if !status.is_success() {
            let msg = body["error"].as_str().unwrap_or("unknown error").to_owned();
            bail!("{msg}");
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}/api{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(
            self.http
                .post(format!("{}/api{path}", self.base))
                .json(&body),
        )
        .await
    }
}

/// A path segment with the characters URLs reserve escaped.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
