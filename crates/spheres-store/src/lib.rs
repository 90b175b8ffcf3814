//! The node's state in SQLite, through sqlx, with embedded migrations
//! (`migrations/`, applied at open). One file in the node's data folder; WAL journal, so the
//! API can read while the node writes. The data itself (shared files) stays on disk where it
//! is: the store says what it means.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod links;

pub use links::{LinkGuards, LinkRow, LinkState};

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("there is no sphere named {0:?}")]
    NoSuchSphere(String),
    #[error("a sphere named {0:?} already exists")]
    SphereExists(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Sphere {
    pub id: i64,
    pub name: String,
    pub room: String,
    pub folder: String,
    pub owned: bool,
    pub policy: String,
    pub announce: Option<String>,
    pub archive_after: Option<String>,
    pub created_at: i64,
    /// Its payloads travel encrypted, as MLS messages of its group.
    pub encrypted: bool,
    /// This node holds the sphere's encrypted files for its members, without its keys (a
    /// keyless seeder, as the owner's invitation said).
    pub holding: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Member {
    pub sphere_id: i64,
    pub jid: String,
    pub tracker_key: String,
    /// Their node holds the sphere's ciphertext without its keys (never in its group).
    pub seeder: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ShareRow {
    pub sphere_id: i64,
    pub info_hash: String,
    pub name: String,
    pub size: i64,
    pub files: i64,
    pub media: String,
    pub sharer: String,
    pub magnet: String,
    #[serde(skip)]
    pub torrent: Option<Vec<u8>>,
    pub path: Option<String>,
    pub state: String,
    pub error: Option<String>,
    pub shared_at: i64,
    /// A sealed share's key and files (the `<sealed/>` of its announcement); it holds a key.
    #[serde(skip)]
    pub sealed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Invite {
    pub room: String,
    pub from_jid: String,
    pub reason: Option<String>,
    pub received_at: i64,
    /// The sphere is encrypted, says the invitation.
    pub encrypted: bool,
    /// This node is asked to hold the sphere's encrypted files without its keys.
    pub holding: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub sphere_id: i64,
    pub archive_id: Option<String>,
    pub nick: String,
    pub jid: Option<String>,
    pub body: String,
    pub stamp: i64,
}

/// A post of the feed, ours or of someone we follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PostRow {
    pub id: i64,
    pub service: String,
    pub item_id: String,
    pub author: String,
    pub author_name: Option<String>,
    pub audience: String,
    pub title: String,
    pub content: String,
    pub comments_node: Option<String>,
    pub published: i64,
    pub updated: i64,
    /// The sphere it was posted to (then `service` is its room), when it was.
    pub sphere_id: Option<i64>,
    /// The shares it links to: a JSON array (the node's `PostMedia`).
    pub media: String,
}

/// A post as the feed lists it: with how many comments it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FeedRow {
    #[sqlx(flatten)]
    pub post: PostRow,
    pub comment_count: i64,
    /// The name of the sphere it was posted to.
    pub sphere: Option<String>,
}

/// A comment under a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CommentRow {
    pub id: i64,
    pub post_id: i64,
    pub item_id: String,
    pub author: String,
    /// `author` is the server's word, not only the comment's claim.
    pub verified: bool,
    pub author_name: Option<String>,
    pub content: String,
    pub published: i64,
    /// For a reaction: its emojis, a JSON array.
    pub reactions: Option<String>,
}

/// A new share to record.
#[derive(Debug, Clone)]
pub struct NewShare<'a> {
    pub info_hash: &'a str,
    pub name: &'a str,
    pub size: u64,
    pub files: u64,
    pub media: &'a str,
    pub sharer: &'a str,
    pub magnet: &'a str,
    pub torrent: Option<&'a [u8]>,
    pub path: Option<&'a str>,
    pub state: &'a str,
    pub sealed: Option<&'a str>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn remove_meta(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a browser session (by its cookie's hash); keeps at most `max`, dropping the
    /// least recently used.
    pub async fn add_session(&self, token_hash: &str, max: i64) -> Result<()> {
        let t = now();
        sqlx::query("INSERT INTO sessions (token_hash, created, last_used) VALUES (?, ?, ?)")
            .bind(token_hash)
            .bind(t)
            .bind(t)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE token_hash NOT IN
             (SELECT token_hash FROM sessions ORDER BY last_used DESC LIMIT ?)",
        )
        .bind(max)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a session is open: known, used within `idle` seconds and younger than `max_age`
    /// seconds. An open one is marked used now; an expired one is forgotten.
    pub async fn use_session(&self, token_hash: &str, idle: i64, max_age: i64) -> Result<bool> {
        let t = now();
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT created, last_used FROM sessions WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((created, last_used)) = row else {
            return Ok(false);
        };
        if t - last_used > idle || t - created > max_age {
            self.end_session(token_hash).await?;
            return Ok(false);
        }
        // Once a minute at most: a page's many requests do not each write.
        if t - last_used >= 60 {
            sqlx::query("UPDATE sessions SET last_used = ? WHERE token_hash = ?")
                .bind(t)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every browser session (the web password changed).
    pub async fn end_all_sessions(&self) -> Result<()> {
        sqlx::query("DELETE FROM sessions")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a sphere; its name must be new.
    pub async fn add_sphere(
        &self,
        name: &str,
        room: &str,
        folder: &str,
        owned: bool,
    ) -> Result<Sphere> {
        self.add_sphere_as(name, room, folder, owned, false, false)
            .await
    }

    /// Records a sphere, `encrypted` from the start (and `holding`: this node a keyless
    /// seeder of it); its name must be new.
    pub async fn add_sphere_as(
        &self,
        name: &str,
        room: &str,
        folder: &str,
        owned: bool,
        encrypted: bool,
        holding: bool,
    ) -> Result<Sphere> {
        if self.sphere(name).await?.is_some() {
            return Err(StoreError::SphereExists(name.to_owned()));
        }
        sqlx::query(
            "INSERT INTO spheres (name, room, folder, owned, created_at, encrypted, holding)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(name)
        .bind(room)
        .bind(folder)
        .bind(owned)
        .bind(now())
        .bind(encrypted || holding)
        .bind(holding)
        .execute(&self.pool)
        .await?;
        self.sphere(name)
            .await?
            .ok_or_else(|| StoreError::NoSuchSphere(name.to_owned()))
    }

    /// Makes a sphere encrypted (its group exists) or open.
    pub async fn set_encrypted(&self, id: i64, encrypted: bool) -> Result<()> {
        sqlx::query("UPDATE spheres SET encrypted = ? WHERE id = ?")
            .bind(encrypted)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// This node's MLS state, as last saved.
    pub async fn mls_state(&self) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT state FROM mls_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces this node's MLS state.
    pub async fn set_mls_state(&self, state: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO mls_state (id, state) VALUES (1, ?)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state",
        )
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn spheres(&self) -> Result<Vec<Sphere>> {
        Ok(sqlx::query_as("SELECT * FROM spheres ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn sphere(&self, name: &str) -> Result<Option<Sphere>> {
        Ok(sqlx::query_as("SELECT * FROM spheres WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn sphere_by_room(&self, room: &str) -> Result<Option<Sphere>> {
        Ok(sqlx::query_as("SELECT * FROM spheres WHERE room = ?")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn remove_sphere(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM spheres WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_announce(&self, id: i64, announce: &str) -> Result<()> {
        sqlx::query("UPDATE spheres SET announce = ? WHERE id = ?")
            .bind(announce)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_archive_after(&self, id: i64, after: &str) -> Result<()> {
        sqlx::query("UPDATE spheres SET archive_after = ? WHERE id = ?")
            .bind(after)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_policy(&self, id: i64, policy: &str) -> Result<()> {
        sqlx::query("UPDATE spheres SET policy = ? WHERE id = ?")
            .bind(policy)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records `jid` as a member of an owned sphere with its tracker key, and whether their
    /// node is a keyless `seeder` (a member already recorded is returned as it was).
    pub async fn add_member(
        &self,
        sphere_id: i64,
        jid: &str,
        key: &str,
        seeder: bool,
    ) -> Result<Member> {
        sqlx::query(
            "INSERT INTO members (sphere_id, jid, tracker_key, seeder) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(sphere_id)
        .bind(jid)
        .bind(key)
        .bind(seeder)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_as("SELECT * FROM members WHERE sphere_id = ? AND jid = ?")
                .bind(sphere_id)
                .bind(jid)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn members(&self, sphere_id: i64) -> Result<Vec<Member>> {
        Ok(
            sqlx::query_as("SELECT * FROM members WHERE sphere_id = ? ORDER BY jid")
                .bind(sphere_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Forgets a member; returns their tracker key, to revoke.
    pub async fn remove_member(&self, sphere_id: i64, jid: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM members WHERE sphere_id = ? AND jid = ? RETURNING tracker_key",
        )
        .bind(sphere_id)
        .bind(jid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records a share (a second announcement of the same share changes nothing).
    /// Returns whether it is new.
    pub async fn add_share(&self, sphere_id: i64, s: &NewShare<'_>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO shares (sphere_id, info_hash, name, size, files, media, sharer, magnet, torrent, path, state, shared_at, sealed)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(sphere_id)
        .bind(s.info_hash)
        .bind(s.name)
        .bind(i64::try_from(s.size).unwrap_or(i64::MAX))
        .bind(i64::try_from(s.files).unwrap_or(i64::MAX))
        .bind(s.media)
        .bind(s.sharer)
        .bind(s.magnet)
        .bind(s.torrent)
        .bind(s.path)
        .bind(s.state)
        .bind(now())
        .bind(s.sealed)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn shares(&self, sphere_id: i64) -> Result<Vec<ShareRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM shares WHERE sphere_id = ? ORDER BY shared_at, name")
                .bind(sphere_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn share(&self, sphere_id: i64, info_hash: &str) -> Result<Option<ShareRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM shares WHERE sphere_id = ? AND info_hash = ?")
                .bind(sphere_id)
                .bind(info_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Puts our announcement of a share in the outbox, until the room confirms it.
    pub async fn add_outbox(&self, sphere_id: i64, info_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (sphere_id, info_hash, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(sphere_id)
        .bind(info_hash)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The room has our announcement of a share.
    pub async fn remove_outbox(&self, sphere_id: i64, info_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE sphere_id = ? AND info_hash = ?")
            .bind(sphere_id)
            .bind(info_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The shares of a sphere whose announcement the room has not confirmed, oldest first.
    pub async fn outbox(&self, sphere_id: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT info_hash FROM outbox WHERE sphere_id = ? ORDER BY created")
                .bind(sphere_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Keeps the .torrent of a share announced by its magnet alone, once its metadata came.
    pub async fn set_share_torrent(
        &self,
        sphere_id: i64,
        info_hash: &str,
        torrent: &[u8],
    ) -> Result<()> {
        sqlx::query("UPDATE shares SET torrent = ? WHERE sphere_id = ? AND info_hash = ?")
            .bind(torrent)
            .bind(sphere_id)
            .bind(info_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_share_state(
        &self,
        sphere_id: i64,
        info_hash: &str,
        state: &str,
        path: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE shares SET state = ?, path = COALESCE(?, path), error = ? WHERE sphere_id = ? AND info_hash = ? AND (state != 'withdrawn' OR ? = 'withdrawn')",
        )
        .bind(state)
        .bind(path)
        .bind(error)
        .bind(sphere_id)
        .bind(info_hash)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records what was said in a sphere; returns whether it is new (a message with a known
    /// archive id is kept once).
    pub async fn add_message(
        &self,
        sphere_id: i64,
        archive_id: Option<&str>,
        nick: &str,
        jid: Option<&str>,
        body: &str,
        stamp: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO messages (sphere_id, archive_id, nick, jid, body, stamp) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(sphere_id)
        .bind(archive_id)
        .bind(nick)
        .bind(jid)
        .bind(body)
        .bind(stamp.unwrap_or_else(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many messages a sphere's room has had, and when the last share or message came.
    pub async fn activity(&self, sphere_id: i64) -> Result<(i64, Option<i64>)> {
        let (count, last_msg): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(stamp) FROM messages WHERE sphere_id = ?")
                .bind(sphere_id)
                .fetch_one(&self.pool)
                .await?;
        let last_share: Option<i64> =
            sqlx::query_scalar("SELECT MAX(shared_at) FROM shares WHERE sphere_id = ?")
                .bind(sphere_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((count, last_msg.max(last_share)))
    }

    /// The last `limit` messages of a sphere, oldest first.
    pub async fn messages(&self, sphere_id: i64, limit: i64) -> Result<Vec<MessageRow>> {
        let mut rows: Vec<MessageRow> =
            sqlx::query_as("SELECT * FROM messages WHERE sphere_id = ? ORDER BY id DESC LIMIT ?")
                .bind(sphere_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Records a post (or its new version: same account and item id, same author); returns
    /// its row, or `None` when a post of that id is someone else's.
    pub async fn put_post(&self, p: &PostRow) -> Result<Option<PostRow>> {
        Ok(sqlx::query_as(
            "INSERT INTO posts (service, item_id, author, author_name, audience, title, content,
                                comments_node, published, updated, sphere_id, media)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (service, item_id) DO UPDATE SET
                author_name = excluded.author_name, audience = excluded.audience,
                title = excluded.title, content = excluded.content,
                comments_node = excluded.comments_node, updated = excluded.updated,
                media = excluded.media
             WHERE posts.author = excluded.author
             RETURNING *",
        )
        .bind(&p.service)
        .bind(&p.item_id)
        .bind(&p.author)
        .bind(&p.author_name)
        .bind(&p.audience)
        .bind(&p.title)
        .bind(&p.content)
        .bind(&p.comments_node)
        .bind(p.published)
        .bind(p.updated)
        .bind(p.sphere_id)
        .bind(&p.media)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The post `item_id` on `service` (an account, or a sphere's room).
    pub async fn post(&self, service: &str, item_id: &str) -> Result<Option<PostRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM posts WHERE service = ? AND item_id = ?")
                .bind(service)
                .bind(item_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The photo dates known in a sphere: (info hash, file index) → when it was taken (`None`:
    /// its file says nothing).
    pub async fn photo_dates(
        &self,
        sphere_id: i64,
    ) -> Result<std::collections::HashMap<(String, i64), Option<i64>>> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT info_hash, file_index, taken FROM photo_dates WHERE sphere_id = ?",
        )
        .bind(sphere_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(h, i, t)| ((h, i), t)).collect())
    }

    /// Records when a photo of a sphere was taken (`None`: its file says nothing).
    pub async fn set_photo_date(
        &self,
        sphere_id: i64,
        info_hash: &str,
        file_index: i64,
        taken: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO photo_dates (sphere_id, info_hash, file_index, taken) VALUES (?, ?, ?, ?)
             ON CONFLICT (sphere_id, info_hash, file_index) DO UPDATE SET taken = excluded.taken",
        )
        .bind(sphere_id)
        .bind(info_hash)
        .bind(file_index)
        .bind(taken)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The comments (not reactions) `author` wrote under others' posts, newest first, each
    /// with its post's item id and author.
    pub async fn comments_by(&self, author: &str) -> Result<Vec<(CommentRow, String, String)>> {
        let rows: Vec<CommentRow> = sqlx::query_as(
            "SELECT c.* FROM comments c JOIN posts p ON p.id = c.post_id
             WHERE c.author = ? AND p.author != ? AND c.reactions IS NULL
             ORDER BY c.published DESC",
        )
        .bind(author)
        .bind(author)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for c in rows {
            let (item, by): (String, String) =
                sqlx::query_as("SELECT item_id, author FROM posts WHERE id = ?")
                    .bind(c.post_id)
                    .fetch_one(&self.pool)
                    .await?;
            out.push((c, item, by));
        }
        Ok(out)
    }

    /// The comment `item_id` under post `post_id`.
    pub async fn comment(&self, post_id: i64, item_id: &str) -> Result<Option<CommentRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM comments WHERE post_id = ? AND item_id = ?")
                .bind(post_id)
                .bind(item_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Forgets a post (and its comments); returns it if it was known.
    pub async fn remove_post(&self, service: &str, item_id: &str) -> Result<Option<PostRow>> {
        Ok(
            sqlx::query_as("DELETE FROM posts WHERE service = ? AND item_id = ? RETURNING *")
                .bind(service)
                .bind(item_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The posts whose item id is `item_id` (on any account: ids are UUIDs, but a stranger's
    /// may copy one), ours first.
    pub async fn posts_by_item(&self, item_id: &str, me: &str) -> Result<Vec<PostRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM posts WHERE item_id = ? ORDER BY service = ? DESC, published DESC",
        )
        .bind(item_id)
        .bind(me)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The post whose comments are in `node` on `service`'s account.
    pub async fn post_by_comments(&self, service: &str, node: &str) -> Result<Option<PostRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM posts WHERE service = ? AND comments_node = ?")
                .bind(service)
                .bind(node)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Posts newest first, `limit` of them published before `before` (all when `None`), by
    /// `author` and for `audience` only when given, with their comment counts.
    pub async fn feed(
        &self,
        before: Option<i64>,
        author: Option<&str>,
        audience: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FeedRow>> {
        Ok(sqlx::query_as(
            "SELECT p.*, (SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id
                            AND c.reactions IS NULL) AS comment_count,
                (SELECT s.name FROM spheres s WHERE s.id = p.sphere_id) AS sphere
             FROM posts p WHERE p.published < ? AND (? IS NULL OR p.author = ?)
                AND (? IS NULL OR p.audience = ?)
             ORDER BY p.published DESC, p.id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(author)
        .bind(author)
        .bind(audience)
        .bind(audience)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a comment; returns whether anything was written. A known one changes only
    /// with a version from the same author as sure of it, or one the server vouches for
    /// when it was not.
    pub async fn put_comment(&self, c: &CommentRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO comments (post_id, item_id, author, verified, author_name, content, published,
                                   reactions)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (post_id, item_id) DO UPDATE SET content = excluded.content,
                author = excluded.author, verified = excluded.verified,
                author_name = excluded.author_name, reactions = excluded.reactions
             WHERE (comments.author = excluded.author AND excluded.verified >= comments.verified)
                OR excluded.verified > comments.verified",
        )
        .bind(c.post_id)
        .bind(&c.item_id)
        .bind(&c.author)
        .bind(c.verified)
        .bind(&c.author_name)
        .bind(&c.content)
        .bind(c.published)
        .bind(&c.reactions)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a comment of a post.
    pub async fn remove_comment(&self, post_id: i64, item_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM comments WHERE post_id = ? AND item_id = ?")
            .bind(post_id)
            .bind(item_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A post's comments, oldest first.
    pub async fn comments(&self, post_id: i64) -> Result<Vec<CommentRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM comments WHERE post_id = ? ORDER BY published, id")
                .bind(post_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn add_invite(
        &self,
        room: &str,
        from: &str,
        reason: Option<&str>,
        encrypted: bool,
        holding: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (room, from_jid, reason, received_at, encrypted, holding) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(room) DO UPDATE SET from_jid = excluded.from_jid, reason = excluded.reason,
                encrypted = MAX(invites.encrypted, excluded.encrypted),
                holding = MIN(invites.holding, excluded.holding)",
        )
        .bind(room)
        .bind(from)
        .bind(reason)
        .bind(now())
        .bind(encrypted || holding)
        .bind(holding)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps the plaintext of a line of an encrypted conversation with `with`, under `id` (the
    /// node uses its ciphertext's hash); the first one kept under an id stays. Returns whether
    /// it is new.
    pub async fn add_chat_line(
        &self,
        with: &str,
        id: &str,
        mine: bool,
        body: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO chat_lines (with_jid, msg_id, mine, body, at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(with)
        .bind(id)
        .bind(mine)
        .bind(body)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The plaintext kept for a line of an encrypted conversation.
    pub async fn chat_line(&self, with: &str, id: &str, mine: bool) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM chat_lines WHERE with_jid = ? AND msg_id = ? AND mine = ?",
        )
        .bind(with)
        .bind(id)
        .bind(mine)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn invites(&self) -> Result<Vec<Invite>> {
        Ok(sqlx::query_as("SELECT * FROM invites ORDER BY received_at")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn remove_invite(&self, room: &str) -> Result<Option<Invite>> {
        Ok(
            sqlx::query_as("DELETE FROM invites WHERE room = ? RETURNING *")
                .bind(room)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn posts_and_comments_are_kept_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).await.unwrap();
        let post = |item: &str, author: &str, at: i64| PostRow {
            id: 0,
            service: author.into(),
            item_id: item.into(),
            author: author.into(),
            author_name: None,
            audience: "contacts".into(),
            title: format!("post {item}"),
            content: format!("post {item}"),
            comments_node: Some(format!("urn:xmpp:microblog:0:comments/{item}")),
            published: at,
            updated: at,
            sphere_id: None,
            media: "[]".into(),
        };
        let a = store
            .put_post(&post("a", "alice@h", 10))
            .await
            .unwrap()
            .unwrap();
        store.put_post(&post("b", "bob@h", 20)).await.unwrap();
        // A new version of a post replaces it.
        let mut edited = post("a", "alice@h", 10);
        edited.content = "edited".into();
        assert_eq!(store.put_post(&edited).await.unwrap().unwrap().id, a.id);
        // Someone else's post of the same id on the same service does not.
        let mut forged = post("a", "alice@h", 10);
        forged.author = "mallory@h".into();
        forged.content = "forged".into();
        assert_eq!(store.put_post(&forged).await.unwrap(), None);
        let feed = store.feed(None, None, None, 10).await.unwrap();
        let items: Vec<_> = feed.iter().map(|f| f.post.item_id.as_str()).collect();
        assert_eq!(items, ["b", "a"]);
        assert_eq!(feed[1].post.content, "edited");
        assert_eq!(store.feed(Some(20), None, None, 10).await.unwrap().len(), 1);
        assert_eq!(
            store
                .feed(None, Some("bob@h"), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .feed(None, None, Some("public"), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .feed(None, None, Some("contacts"), 10)
                .await
                .unwrap()
                .len(),
            2
        );

        let comment = |item: &str, author: &str, verified: bool| CommentRow {
            id: 0,
            post_id: a.id,
            item_id: item.into(),
            author: author.into(),
            verified,
            author_name: None,
            content: "nice".into(),
            published: 11,
            reactions: None,
        };
        // A comment fetched (its author its own claim), then the server's word for it.
        assert!(
            store
                .put_comment(&comment("c1", "mallory@h", false))
                .await
                .unwrap()
        );
        assert!(
            store
                .put_comment(&comment("c1", "bob@h", true))
                .await
                .unwrap()
        );
        // Someone else's claim, or a claim at all, does not replace the server's word.
        assert!(
            !store
                .put_comment(&comment("c1", "mallory@h", true))
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_comment(&comment("c1", "bob@h", false))
                .await
                .unwrap()
        );
        let kept = &store.comments(a.id).await.unwrap()[0];
        assert_eq!((kept.author.as_str(), kept.verified), ("bob@h", true));
        // A reaction is not counted as a comment.
        let mut reaction = comment("r1", "carol@h", true);
        reaction.reactions = Some("[\"👍\"]".into());
        assert!(store.put_comment(&reaction).await.unwrap());
        let feed = store.feed(None, None, None, 10).await.unwrap();
        assert_eq!(feed[1].comment_count, 1);
        assert_eq!(
            store
                .post_by_comments("alice@h", "urn:xmpp:microblog:0:comments/a")
                .await
                .unwrap()
                .map(|p| p.id),
            Some(a.id)
        );
        // Gone with its comments.
        assert!(store.remove_post("alice@h", "a").await.unwrap().is_some());
        assert!(store.comments(a.id).await.unwrap().is_empty());
        assert_eq!(store.posts_by_item("a", "alice@h").await.unwrap(), []);
    }

    #[tokio::test]
    async fn a_spheres_posts_carry_its_name_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).await.unwrap();
        let s = store
            .add_sphere("Family", "family@rooms.h", "/tmp/Family", false)
            .await
            .unwrap();
        let row = PostRow {
            id: 0,
            service: s.room.clone(),
            item_id: "p1".into(),
            author: "lea@h".into(),
            author_name: None,
            audience: "sphere".into(),
            title: "Lyon".into(),
            content: "Lyon".into(),
            comments_node: None,
            published: 5,
            updated: 5,
            sphere_id: Some(s.id),
            media: "[]".into(),
        };
        let p = store.put_post(&row).await.unwrap().unwrap();
        assert_eq!(store.post(&s.room, "p1").await.unwrap(), Some(p.clone()));
        let feed = store.feed(None, None, None, 10).await.unwrap();
        assert_eq!(feed[0].sphere.as_deref(), Some("Family"));
        // Its photos' dates too.
        store.set_photo_date(s.id, "h", 3, Some(7)).await.unwrap();
        store.set_photo_date(s.id, "h", 4, None).await.unwrap();
        let dates = store.photo_dates(s.id).await.unwrap();
        assert_eq!(dates.get(&("h".into(), 3)), Some(&Some(7)));
        assert_eq!(dates.get(&("h".into(), 4)), Some(&None));
        store.remove_sphere(s.id).await.unwrap();
        assert_eq!(store.post(&s.room, "p1").await.unwrap(), None);
        assert!(store.photo_dates(s.id).await.unwrap().is_empty());
    }

    /// A withdrawn share stays withdrawn: a download or a fetch finishing afterwards cannot
    /// bring it back.
    #[tokio::test]
    async fn a_withdrawn_share_stays_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).await.unwrap();
        let s = store
            .add_sphere("Family", "family-1@rooms.home.test", "/tmp/Family", true)
            .await
            .unwrap();
        let hash = "0123456789abcdef0123456789abcdef01234567";
        let share = NewShare {
            info_hash: hash,
            name: "oops.jpg",
            size: 10,
            files: 1,
            media: "image",
            sharer: "bob@home.test",
            magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
            torrent: None,
            path: None,
            state: "downloading",
            sealed: None,
        };
        store.add_share(s.id, &share).await.unwrap();
        let state =
            |store: Store| async move { store.share(s.id, hash).await.unwrap().unwrap().state };
        store
            .set_share_state(s.id, hash, "withdrawn", None, None)
            .await
            .unwrap();
        for later in ["seeding", "available", "failed", "downloading"] {
            store
                .set_share_state(s.id, hash, later, Some("/x"), None)
                .await
                .unwrap();
            assert_eq!(state(store.clone()).await, "withdrawn", "{later}");
        }
    }

    #[tokio::test]
    async fn spheres_members_shares_and_invites_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        let store = Store::open(&path).await.unwrap();
        let s = store
            .add_sphere("Family", "family-1@rooms.home.test", "/tmp/Family", true)
            .await
            .unwrap();
        assert!(matches!(
            store.add_sphere("Family", "x@y", "/tmp/x", false).await,
            Err(StoreError::SphereExists(_))
        ));
        store
            .add_member(s.id, "bob@home.test", "k1", false)
            .await
            .unwrap();
        // Adding again keeps the first key.
        let m = store
            .add_member(s.id, "bob@home.test", "k2", true)
            .await
            .unwrap();
        assert_eq!((m.tracker_key.as_str(), m.seeder), ("k1", false));
        let share = NewShare {
            info_hash: "0123456789abcdef0123456789abcdef01234567",
            name: "clip.mp4",
            size: 5_000_000_000,
            files: 1,
            media: "video",
            sharer: "alice@home.test",
            magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
            torrent: Some(b"d4:infode"),
            path: None,
            state: "downloading",
            sealed: None,
        };
        assert!(store.add_share(s.id, &share).await.unwrap());
        assert!(!store.add_share(s.id, &share).await.unwrap(), "idempotent");
        store
            .set_share_state(
                s.id,
                share.info_hash,
                "seeding",
                Some("/tmp/Family/clip.mp4"),
                None,
            )
            .await
            .unwrap();
        store
            .add_invite(
                "other@rooms.home.test",
                "carol@home.test",
                Some("hi"),
                false,
                true,
            )
            .await
            .unwrap();
        assert!(
            store
                .add_chat_line("bob@home.test", "m1", false, "hi")
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_chat_line("bob@home.test", "m1", false, "rewritten")
                .await
                .unwrap(),
            "the first line kept stays"
        );
        assert!(
            store
                .add_chat_line("bob@home.test", "m1", true, "mine")
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .chat_line("bob@home.test", "m1", false)
                .await
                .unwrap()
                .as_deref(),
            Some("hi")
        );
        assert_eq!(
            store
                .chat_line("carol@home.test", "m1", false)
                .await
                .unwrap(),
            None
        );
        let inv = &store.invites().await.unwrap()[0];
        assert!(
            inv.encrypted && inv.holding,
            "a seeder's sphere is encrypted"
        );
        // Another invitation to the same room (anyone can send one) never makes this node a
        // keyless seeder where it was not asked to be one; it may only undo it.
        for (from, holding, want) in [
            ("eve@evil.test", false, false),
            ("eve@evil.test", true, false),
        ] {
            store
                .add_invite("other@rooms.home.test", from, None, true, holding)
                .await
                .unwrap();
            assert_eq!(store.invites().await.unwrap()[0].holding, want);
        }
        store.set_archive_after(s.id, "archive-7").await.unwrap();
        assert!(
            store
                .add_message(s.id, Some("a1"), "alice", None, "hello", None)
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_message(s.id, Some("a1"), "alice", None, "hello", None)
                .await
                .unwrap()
        );
        assert!(
            store
                .add_message(s.id, None, "bob", None, "hi", None)
                .await
                .unwrap()
        );
        store.close().await;

        // Everything is there after reopening.
        let store = Store::open(&path).await.unwrap();
        let s = store.sphere("Family").await.unwrap().unwrap();
        assert_eq!(s.archive_after.as_deref(), Some("archive-7"));
        assert!(s.owned);
        let shares = store.shares(s.id).await.unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].state, "seeding");
        assert_eq!(shares[0].size, 5_000_000_000);
        assert_eq!(shares[0].path.as_deref(), Some("/tmp/Family/clip.mp4"));
        assert_eq!(store.invites().await.unwrap().len(), 1);
        let said: Vec<String> = store
            .messages(s.id, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(said, ["hello", "hi"]);
        assert_eq!(
            store
                .remove_member(s.id, "bob@home.test")
                .await
                .unwrap()
                .as_deref(),
            Some("k1")
        );
        assert!(store.members(s.id).await.unwrap().is_empty());
        store.remove_sphere(s.id).await.unwrap();
        assert!(store.shares(s.id).await.unwrap().is_empty(), "cascade");
    }
}
