//! The other subcommands talk to the running node through its API, found through the data
//! folder (`node.json`: address and token).

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
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

    /// Sends a request; the answer as the type the API promises for it.
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
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
            match body["error"].as_str() {
                Some(msg) => bail!("{msg}"),
                None => bail!("the node answered {status} without saying why"),
            }
        }
        serde_json::from_value(body)
            .context("the node sent an answer this CLI does not read; are both the same version?")
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}/api{path}", self.base)))
            .await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: impl Serialize) -> Result<T> {
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
