//! Links to a share (`links` table): made by the person, opened by anyone who holds one.

use serde::Serialize;

use crate::{Result, Store, now};

/// A link to a share, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LinkRow {
    pub token: String,
    pub sphere_id: i64,
    pub info_hash: String,
    /// When it was made (seconds since 1970).
    pub created: i64,
    /// When it stops opening (seconds since 1970); `None`: never.
    pub expires: Option<i64>,
    pub revoked: bool,
    /// The password's Argon2 hash (a PHC string); `None`: no password.
    #[serde(skip)]
    pub password: Option<String>,
    /// How many browsers may open it; `None`: any number.
    pub max_opens: Option<i64>,
    /// How many did.
    pub opens: i64,
    /// The key the node signs visitors' passes with.
    #[serde(skip)]
    pub secret: Vec<u8>,
    /// Served by the node only: its viewers do not share with each other.
    pub direct: bool,
}

/// What guards a new link besides its token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkGuards {
    /// The password's Argon2 hash.
    pub password: Option<String>,
    pub max_opens: Option<i64>,
    /// The key passes are signed with (random, 32 bytes).
    pub secret: Vec<u8>,
    /// Served by the node only (no swarm between its viewers).
    pub direct: bool,
}

/// What a link gives now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Expired,
    Revoked,
}

impl LinkRow {
    /// Whether it opens at `now` (seconds since 1970): a revoked link says so even after it
    /// would have expired.
    pub fn state_at(&self, now: i64) -> LinkState {
        if self.revoked {
            LinkState::Revoked
        } else if self.expires.is_some_and(|e| now >= e) {
            LinkState::Expired
        } else {
            LinkState::Open
        }
    }

    /// Whether a visitor needs a pass (a password to give, or a count to be part of).
    pub fn guarded(&self) -> bool {
        self.password.is_some() || self.max_opens.is_some()
    }
}

impl Store {
    /// Keeps a new link to the share `info_hash` of a sphere, expiring at `expires`.
    pub async fn add_link(
        &self,
        token: &str,
        sphere_id: i64,
        info_hash: &str,
        expires: Option<i64>,
        guards: &LinkGuards,
    ) -> Result<LinkRow> {
        Ok(sqlx::query_as(
            "INSERT INTO links (token, sphere_id, info_hash, created, expires, password, max_opens, secret, direct) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(token)
        .bind(sphere_id)
        .bind(info_hash)
        .bind(now())
        .bind(expires)
        .bind(&guards.password)
        .bind(guards.max_opens)
        .bind(&guards.secret)
        .bind(guards.direct)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The link whose token is `token`.
    pub async fn link(&self, token: &str) -> Result<Option<LinkRow>> {
        Ok(sqlx::query_as("SELECT * FROM links WHERE token = ?")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every link, newest first.
    pub async fn links(&self) -> Result<Vec<LinkRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM links ORDER BY created DESC, rowid DESC")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Counts one more browser opening link `token`; false when as many as it allows have
    /// (or there is no such link). One statement: visitors at once cannot overshoot.
    pub async fn count_link_open(&self, token: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE links SET opens = opens + 1 WHERE token = ? AND (max_opens IS NULL OR opens < max_opens)",
        )
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes a link for good; false when there is no such link.
    pub async fn revoke_link(&self, token: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE links SET revoked = 1 WHERE token = ?")
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_opens_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).await.unwrap();
        let s = store
            .add_sphere("Family", "family-1@rooms.home.test", "/tmp/Family", true)
            .await
            .unwrap();
        let hash = "0123456789abcdef0123456789abcdef01234567";
        let none = LinkGuards::default();
        let forever = store.add_link("t1", s.id, hash, None, &none).await.unwrap();
        let week = store
            .add_link("t2", s.id, hash, Some(1_000_000), &none)
            .await
            .unwrap();
        assert_eq!(forever.state_at(i64::MAX), LinkState::Open);
        assert_eq!(week.state_at(999_999), LinkState::Open);
        assert_eq!(week.state_at(1_000_000), LinkState::Expired);
        assert!(
            store.add_link("t1", s.id, hash, None, &none).await.is_err(),
            "a token is one link"
        );
        assert!(store.revoke_link("t2").await.unwrap());
        assert!(!store.revoke_link("nope").await.unwrap());
        let t2 = store.link("t2").await.unwrap().unwrap();
        assert_eq!(t2.state_at(0), LinkState::Revoked);
        assert_eq!(t2.state_at(2_000_000), LinkState::Revoked);
        assert_eq!(store.link("nope").await.unwrap(), None);
        let all: Vec<String> = store
            .links()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.token)
            .collect();
        assert_eq!(all.len(), 2);
        // A link for three browsers counts three, then no more, whoever asks at once.
        let three = LinkGuards {
            password: None,
            max_opens: Some(3),
            secret: vec![7; 32],
            direct: true,
        };
        let t3 = store
            .add_link("t3", s.id, hash, None, &three)
            .await
            .unwrap();
        assert!(t3.guarded() && !forever.guarded());
        assert_eq!((t3.secret.clone(), t3.opens), (vec![7; 32], 0));
        assert!(
            t3.direct && !forever.direct,
            "served by the node only, or not"
        );
        let counted = futures::future::join_all((0..10).map(|_| store.count_link_open("t3"))).await;
        assert_eq!(
            counted.into_iter().filter(|c| *c.as_ref().unwrap()).count(),
            3
        );
        assert_eq!(store.link("t3").await.unwrap().unwrap().opens, 3);
        assert!(store.count_link_open("t1").await.unwrap(), "no limit");
        // A sphere's links go with it.
        store.remove_sphere(s.id).await.unwrap();
        assert!(store.links().await.unwrap().is_empty());
    }
}
