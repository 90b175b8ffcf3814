//! The subcommands that talk to the running node: each is one or two API calls, read as the
//! API's own types (`spheres_node::api::types`), printed as text or (`--json`) as they came.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};
use spheres_node::Connection;
use spheres_node::api::types::{
    ChatLine, ChatSecurity, Comment, Contacts, Encryption, Exported, Fetching, Imported, Invite,
    InviteLink, LinkInfo, Member, Post, Posted, Reachability, Reaction, Relay, RoomMessage,
    ShareInfo, ShareState, Shared, SphereInfo, Status, WebReach,
};
use spheres_node::units::{human_bytes, human_duration};

use crate::output::Output;
use crate::remote::{Remote, segment};

#[derive(Subcommand)]
pub enum SphereCommand {
    /// Create a sphere: a members-only room and a folder.
    Create {
        name: String,
        /// Make it open to any XMPP and BitTorrent client: its chat, announcements and posts
        /// travel in clear through the server and files as they are. Without it the sphere is
        /// end-to-end encrypted (an MLS group of its members' nodes; files travel as
        /// ciphertext): the server sees no file name and no text, and plain XMPP clients see
        /// "encrypted".
        #[arg(long)]
        open: bool,
    },
    /// List your spheres.
    List,
    /// Invite someone who has an XMPP account (makes them a member).
    Invite {
        sphere: String,
        jid: String,
        /// As a keyless seeder: their node (an always-on server you do not trust, say) holds
        /// the encrypted sphere's files and serves them to members, and never gets the keys
        /// to read them.
        #[arg(long)]
        seeder: bool,
    },
    /// A link for someone with no account: with it, `spheres up --invite LINK` creates their
    /// account on your household server and joins the sphere.
    InviteLink { sphere: String },
    /// Invitations you received and have not answered.
    Invites,
    /// Accept an invitation (the room's address, or the sphere's name as invited).
    Join { invite: String },
    /// Leave a sphere (files stay on disk).
    Leave { sphere: String },
    /// Remove a member from a sphere you own.
    Remove { sphere: String, jid: String },
    /// Who is in a sphere, and who is online.
    Members { sphere: String },
    /// What this node fetches in a sphere: all, none (on demand) or max:SIZE (e.g. max:500M);
    /// public:allow or public:ask (the default) for public torrents members pass on;
    /// clients:members (the default: only members' spheres nodes, which prove membership) or
    /// clients:plain (also members' plain BitTorrent clients, through the sphere's tracker).
    Policy { sphere: String, policy: String },
}

#[derive(Subcommand)]
pub enum ContactCommand {
    /// Add someone to your contacts (or accept their request): they see when you are online.
    Add {
        jid: String,
        /// The name to show for them.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove someone from your contacts (or refuse their request).
    Remove { jid: String },
    /// Your contacts, who is online, and who asks to become one.
    List,
}

#[derive(Subcommand)]
pub enum LinkCommand {
    /// Make a link to a share (a file or a folder) that anyone opens in a browser; prints
    /// its address. Whoever has it can watch or download the share from this node.
    Create {
        /// The sphere's name.
        sphere: String,
        /// The share's name or info hash.
        share: String,
        /// How long it opens: 30m, 12h, 7d, 2w... (default: until revoked).
        #[arg(long, value_name = "TIME", value_parser = spheres_node::units::parse_duration)]
        expires: Option<u64>,
        /// A file holding a password the link asks for (at least 6 characters, without the
        /// final line break). Tell it to the people you send the link to some other way.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// How many browsers may open it (each counts once, however much it plays or
        /// downloads); default: any number.
        #[arg(long, value_name = "N")]
        downloads: Option<u32>,
        /// Serve it from this node only. By default the people watching it share the pieces
        /// with each other in their browsers (faster, less of your upload), and so see each
        /// other's IP addresses; with this flag nobody sees anyone's address but this node.
        #[arg(long)]
        no_p2p: bool,
    },
    /// Your links, newest first, with what each gives and until when.
    List,
    /// Revoke a link (its address): from now on it opens nothing.
    Revoke { link: String },
}

#[derive(Subcommand)]
pub enum HouseholdCommand {
    /// Create an account on the household server.
    AddUser {
        user: String,
        /// A file holding the new account's password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
    },
}

/// What the commands below ask of the node.
pub enum Ask {
    Open,
    Status,
    Sphere(SphereCommand),
    Share { sphere: String, path: PathBuf },
    Fetch { sphere: String, share: String },
    TakeBack { sphere: String, share: String },
    Shares { sphere: String },
    Password { password_file: PathBuf },
    Household(HouseholdCommand),
    Contact(ContactCommand),
    Link(LinkCommand),
    Chat { jid: String, text: Option<String> },
    Say { sphere: String, text: String },
    Messages { sphere: String },
    Post(NewPost),
    DeletePost { id: String },
    EditPost { id: String, text: String },
    Feed { from: Option<String> },
    Comment { id: String, text: Option<String> },
    React { id: String, emoji: String },
    Export { path: PathBuf },
    Import { path: PathBuf },
}

/// A post to make: its text, who reads it, the files it shows (shared in the sphere first).
pub struct NewPost {
    pub text: String,
    pub to: String,
    pub attach: Vec<PathBuf>,
}

/// A call in a conversation, as the page says it: who called, how it went, how long (m:ss).
fn call_text(who: &str, c: &spheres_node::api::types::CallLine) -> String {
    use spheres_node::api::types::CallOutcome;
    let kind = if c.video { "video call" } else { "call" };
    let how = match (c.outcome, c.seconds) {
        (CallOutcome::Answered, Some(s)) => format!("{}:{:02}", s / 60, s % 60),
        (CallOutcome::Answered, None) => "answered".to_owned(),
        (CallOutcome::Declined, _) => "declined".to_owned(),
        (CallOutcome::Missed, _) => "missed".to_owned(),
        (CallOutcome::NoAnswer, _) => "no answer".to_owned(),
    };
    format!("{who}: 📞 {kind}, {how}")
}

/// Reactions as the CLI shows them: "👍 2 (you too) · 🎉 1".
fn reactions_line(list: &[Reaction]) -> String {
    list.iter()
        .map(|r| {
            let you = if r.mine { " (you too)" } else { "" };
            format!("{} {}{you}", r.emoji, r.count)
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A post as the CLI shows it: who, for whom, when, the text, how many comments.
fn post_line(p: &Post) -> String {
    let who = if p.mine { "you" } else { p.author.as_str() };
    let comments = match p.comments {
        0 => String::new(),
        1 => " · 1 comment".to_owned(),
        n => format!(" · {n} comments"),
    };
    let to = match &p.sphere {
        Some(sphere) => format!("sphere {sphere}"),
        None => p.audience.clone(),
    };
    let mut line = format!(
        "[{}] {who} (to {to}{comments}) {}\n  {}",
        ago(p.published),
        p.id,
        p.text.replace('\n', "\n  ")
    );
    if !p.reactions.is_empty() {
        line.push_str(&format!("\n  {}", reactions_line(&p.reactions)));
    }
    if !p.media.is_empty() {
        let shown: Vec<String> = p
            .media
            .iter()
            .map(|m| format!("{} ({})", m.name, human_bytes(m.size)))
            .collect();
        line.push_str(&format!("\n  shows {}", shown.join(", ")));
    }
    line
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How long ago `stamp` (seconds since 1970) was.
fn ago(stamp: i64) -> String {
    format!(
        "{} ago",
        human_duration(u64::try_from(now() - stamp).unwrap_or(0))
    )
}

/// One line on the node's link to its XMPP server.
pub fn connection_line(c: &Connection) -> String {
    let since = |t: i64| human_duration(u64::try_from(now() - t).unwrap_or(0));
    match c {
        Connection::Online { since: t } => format!("online (for {})", since(*t)),
        Connection::Connecting {
            since: t,
            next_attempt,
            error,
        } => {
            let next = next_attempt
                .map(|n| {
                    format!(
                        ", next attempt in {}",
                        human_duration(u64::try_from(n - now()).unwrap_or(0))
                    )
                })
                .unwrap_or_default();
            format!("reconnecting for {}{next}: {error}", since(*t))
        }
        Connection::Offline { since: t, error } => format!(
            "offline for {}: {error}; fix that, then start the node again",
            since(*t)
        ),
    }
}

fn reachability_line(r: &Reachability) -> String {
    match r {
        Reachability::Mapped {
            method, external, ..
        } => format!("yes, {external} forwarded by the router ({method})"),
        Reachability::LoopbackOnly => {
            "only from this machine (listening on loopback; --listen 0.0.0.0:PORT to open)"
                .to_owned()
        }
        Reachability::Unreachable { why } | Reachability::DoubleNat { why, .. } => {
            format!("no: {why}")
        }
        Reachability::Unknown => "not known yet".to_owned(),
    }
}

fn status_text(s: &Status) -> String {
    let mut text = format!(
        "account:   {}\nxmpp:      {}\nweb:       {}\nBitTorrent {}\ntracker:   {}\nreachable: {}\n",
        s.jid,
        connection_line(&s.xmpp),
        s.http.as_deref().unwrap_or("not up yet"),
        s.listen,
        s.tracker.as_deref().unwrap_or("none"),
        reachability_line(&s.reachability),
    );
    if let Some(w) = &s.web {
        text.push_str(&format!(
            "links:     {} ({})\n",
            w.url,
            reach_words(w.reach)
        ));
        if let Some(h) = &w.https {
            text.push_str(&format!(
                "https:     {} ({})\n",
                h.addr,
                match (&h.error, h.certified) {
                    (_, true) => "certified",
                    (Some(e), false) => e.as_str(),
                    (None, false) => "asking the CA for a certificate",
                }
            ));
        }
        if let Some(why) = &w.why {
            text.push_str(&format!("           {why}\n"));
        }
    }
    if let Some(p) = &s.public_pages {
        text.push_str(&format!(
            "public:    {p} (your posts for the web; others reach it where they reach the web address)\n"
        ));
    }
    if let Some(h) = &s.household {
        text.push_str(&format!(
            "household: {} on {} (CA {})\n",
            h.domain,
            h.c2s,
            h.ca.display()
        ));
        if let Some(r) = &h.relay {
            text.push_str(&format!("relay:     {}\n", relay_line(r)));
        }
    }
    text.push_str("spheres:\n");
    for sp in &s.spheres {
        text.push_str(&format!(
            "  {} ({} shares, {} members online{}{})\n",
            sp.name,
            sp.shares,
            sp.members_online,
            if sp.in_call > 0 {
                format!(", {} in a call", sp.in_call)
            } else {
                String::new()
            },
            if sp.owned { ", yours" } else { "" }
        ));
    }
    text.push_str("transfers:\n");
    for t in &s.transfers {
        text.push_str(&format!(
            "  {} {} {}/{} {} peers\n",
            t.state,
            t.name,
            human_bytes(t.have_bytes),
            human_bytes(t.total_bytes),
            t.peers
        ));
    }
    text.trim_end().to_owned()
}

fn share_line(s: &ShareInfo) -> String {
    let percent = s.have_bytes as f64 * 100.0 / s.total_bytes.max(1) as f64;
    let from = s
        .sharer
        .as_deref()
        .filter(|w| !w.is_empty())
        .unwrap_or("you");
    format!(
        "{percent:>5.1}%  {:<11} {:>9}  {} (from {from})",
        s.state,
        human_bytes(s.total_bytes),
        s.name,
    )
}

fn lines<T>(list: &[T], empty: &str, line: impl Fn(&T) -> String) -> String {
    if list.is_empty() {
        empty.to_owned()
    } else {
        list.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// The JSON of a typed answer, for `--json`.
fn value(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn read_secret(file: &PathBuf) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Shares `path` in `sphere`, with the hashing's progress.
async fn share(out: &Output, r: &Remote, sphere: &str, path: &std::path::Path) -> Result<Shared> {
    let path =
        std::fs::canonicalize(path).with_context(|| format!("cannot find {}", path.display()))?;
    let bar = out.bytes_bar("hashing");
    let shares_path = format!("/spheres/{}/shares", segment(sphere));
    let request = r.post::<Shared>(&shares_path, json!({"path": path}));
    tokio::pin!(request);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let done = loop {
        tokio::select! {
            result = &mut request => break result?,
            _ = tick.tick() => {
                if let Ok(list) = r.get::<Vec<ShareInfo>>(&shares_path).await {
                    for s in list.iter().filter(|s| s.state == ShareState::Hashing) {
                        bar.set(s.have_bytes, s.total_bytes);
                    }
                }
            }
        }
    };
    bar.finish();
    Ok(done)
}

pub async fn run(out: &Output, r: &Remote, ask: Ask) -> Result<()> {
    match ask {
        Ask::Open => {
            let v: Value = r.post("/open", json!({})).await?;
            let url = v["url"].as_str().unwrap_or_default().to_owned();
            out.result(
                &format!("Open {url} in a browser on this computer (it works once)."),
                v,
            );
        }
        Ask::Status => {
            let s: Status = r.get("/status").await?;
            out.result(&status_text(&s), value(&s));
        }
        Ask::Sphere(c) => sphere(out, r, c).await?,
        Ask::Share { sphere, path } => {
            let done = share(out, r, &sphere, &path).await?;
            out.result(
                &format!(
                    "Shared {} ({}) in {sphere}",
                    done.name,
                    human_bytes(done.size)
                ),
                value(&done),
            );
        }
        Ask::Shares { sphere } => {
            let list: Vec<ShareInfo> = r
                .get(&format!("/spheres/{}/shares", segment(&sphere)))
                .await?;
            out.result(&lines(&list, "No shares yet", share_line), value(&list));
        }
        Ask::Fetch { sphere, share } => {
            let v: Fetching = r
                .post(
                    &format!("/spheres/{}/fetch", segment(&sphere)),
                    json!({"share": share}),
                )
                .await?;
            out.result(&format!("Fetching {} in {sphere}", v.name), value(&v));
        }
        Ask::TakeBack { sphere, share } => {
            let v: ShareInfo = r
                .post(
                    &format!("/spheres/{}/take-back", segment(&sphere)),
                    json!({"share": share}),
                )
                .await?;
            out.result(
                &format!(
                    "Took back {} in {sphere}: members no longer get it (the file stays here)",
                    v.name
                ),
                value(&v),
            );
        }
        Ask::Password { password_file } => {
            let password = read_secret(&password_file)?;
            let v: Value = r.post("/password", json!({"password": password})).await?;
            out.result("The web password is set", v);
        }
        Ask::Household(HouseholdCommand::AddUser {
            user,
            password_file,
        }) => {
            let password = read_secret(&password_file)?;
            let v: Value = r
                .post(
                    "/household/users",
                    json!({"user": user, "password": password}),
                )
                .await?;
            let jid = v["jid"].as_str().unwrap_or_default().to_owned();
            out.result(&format!("Created {jid}"), v);
        }
        Ask::Contact(c) => contact(out, r, c).await?,
        Ask::Link(c) => link(out, r, c).await?,
        Ask::Chat {
            jid,
            text: Some(text),
        } => {
            let v: Value = r
                .post(&format!("/chats/{}", segment(&jid)), json!({"body": text}))
                .await?;
            let sec: ChatSecurity = r.get(&format!("/chats/{}/security", segment(&jid))).await?;
            let how = if sec.encrypted {
                " (encrypted end to end)"
            } else {
                " (not end-to-end encrypted: they use another XMPP client)"
            };
            out.result(&format!("Sent to {jid}{how}"), v);
        }
        Ask::Chat { jid, text: None } => {
            let lines_: Vec<ChatLine> = r.get(&format!("/chats/{}", segment(&jid))).await?;
            let text = lines(
                &lines_,
                &format!("Nothing said with {jid} yet: `spheres chat {jid} TEXT`"),
                |l| {
                    let who = if l.mine { "you" } else { jid.as_str() };
                    if let Some(c) = &l.call {
                        return call_text(who, c);
                    }
                    format!(
                        "{}: {}{}",
                        who,
                        if l.encrypted { "🔒 " } else { "" },
                        if l.unreadable {
                            "(encrypted for another device: not readable here)"
                        } else {
                            l.body.as_str()
                        }
                    )
                },
            );
            out.result(&text, value(&lines_));
        }
        Ask::Say { sphere, text } => {
            let v: Value = r
                .post(
                    &format!("/spheres/{}/messages", segment(&sphere)),
                    json!({"body": text}),
                )
                .await?;
            out.result(&format!("Said in {sphere}"), v);
        }
        Ask::Post(NewPost { text, to, attach }) => {
            // Files go with a post to a sphere: shared there first, then shown by the post.
            let mut shares = Vec::new();
            if !attach.is_empty() {
                let sphere = match to.as_str() {
                    "contacts" | "everyone" | "public" => anyhow::bail!(
                        "photos and videos go with posts to a sphere for now: add --to SPHERE"
                    ),
                    s => s.strip_prefix("sphere:").unwrap_or(s),
                };
                for path in &attach {
                    shares.push(share(out, r, sphere, path).await?.info_hash);
                }
            }
            let v: Posted = r
                .post("/feed", json!({"text": text, "to": to, "shares": shares}))
                .await?;
            let whom = match to.as_str() {
                "contacts" | "everyone" | "public" => format!("your {to}"),
                sphere => sphere.strip_prefix("sphere:").unwrap_or(sphere).to_owned(),
            };
            out.result(&format!("Posted to {whom}: {}", v.id), value(&v));
        }
        Ask::EditPost { id, text } => {
            let v: Value = r
                .post(
                    &format!("/feed/{}/edit", segment(&id)),
                    json!({"body": text}),
                )
                .await?;
            out.result(&format!("Changed {id}"), v);
        }
        Ask::DeletePost { id } => {
            let v: Value = r
                .post(&format!("/feed/{}/delete", segment(&id)), json!({}))
                .await?;
            out.result(&format!("Deleted {id}"), v);
        }
        Ask::Export { path } => {
            // The node writes it: give it a whole path, on this machine.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = std::fs::canonicalize(dir.unwrap_or(std::path::Path::new(".")))
                .context("cannot find the folder to write the export in")?;
            let name = path
                .file_name()
                .context("give a file name for the export")?;
            let v: Exported = r.post("/export", json!({"path": dir.join(name)})).await?;
            out.result(
                &format!(
                    "Exported {} posts, {} comments, {} contacts, {} spheres and the files of {} shares to {}",
                    v.posts, v.comments, v.contacts, v.spheres, v.files, v.path
                ),
                value(&v),
            );
        }
        Ask::Import { path } => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("cannot find {}", path.display()))?;
            let v: Imported = r.post("/import", json!({"path": path})).await?;
            let mut text = format!(
                "Asked {} contacts again, made {} spheres (invited {} members), put back {} files, published {} posts",
                v.contacts_asked,
                v.spheres_made,
                v.members_invited,
                v.files_restored,
                v.posts_restored
            );
            for line in &v.not_done {
                text.push_str(&format!("\nnot done: {}", line.sentence()));
            }
            out.result(&text, value(&v));
        }
        Ask::React { id, emoji } => {
            let v: Vec<Reaction> = r
                .post(
                    &format!("/feed/{}/react", segment(&id)),
                    json!({"emoji": emoji}),
                )
                .await?;
            let text = if v.is_empty() {
                "No reactions now".to_owned()
            } else {
                reactions_line(&v)
            };
            out.result(&text, value(&v));
        }
        Ask::Feed { from } => {
            let posts: Vec<Post> = match &from {
                Some(who) => r.get(&format!("/people/{}/posts", segment(who))).await?,
                None => r.get("/feed").await?,
            };
            let text = lines(
                &posts,
                "Nothing in your feed yet: `spheres post TEXT` writes to your contacts",
                post_line,
            );
            out.result(&text, value(&posts));
        }
        Ask::Comment {
            id,
            text: Some(text),
        } => {
            let v: Posted = r
                .post(
                    &format!("/feed/{}/comments", segment(&id)),
                    json!({"body": text}),
                )
                .await?;
            out.result(&format!("Commented: {}", v.id), value(&v));
        }
        Ask::Comment { id, text: None } => {
            let list: Vec<Comment> = r.get(&format!("/feed/{}/comments", segment(&id))).await?;
            let text = lines(
                &list,
                &format!("No comments yet: `spheres comment {id} TEXT`"),
                |c| {
                    let who = if c.mine { "you" } else { c.author.as_str() };
                    let unsure = if c.verified { "" } else { " (unverified)" };
                    format!("[{}] {who}{unsure}: {}", ago(c.published), c.text)
                },
            );
            out.result(&text, value(&list));
        }
        Ask::Messages { sphere } => {
            let list: Vec<RoomMessage> = r
                .get(&format!("/spheres/{}/messages", segment(&sphere)))
                .await?;
            let text = lines(
                &list,
                &format!("Nothing said in {sphere} yet: `spheres say {sphere:?} TEXT`"),
                |m| {
                    let who = if m.mine {
                        "you"
                    } else {
                        m.jid.as_deref().unwrap_or(&m.nick)
                    };
                    format!("[{}] {who}: {}", ago(m.stamp), m.body)
                },
            );
            out.result(&text, value(&list));
        }
    }
    Ok(())
}

async fn sphere(out: &Output, r: &Remote, c: SphereCommand) -> Result<()> {
    match c {
        SphereCommand::Create { name, open } => {
            let s: SphereInfo = r
                .post("/spheres", json!({"name": name, "encrypted": !open}))
                .await?;
            let how = if open {
                "the open sphere"
            } else {
                "the encrypted sphere"
            };
            out.result(
                &format!("Created {how} {name}; its folder is {}", s.folder),
                value(&s),
            );
        }
        SphereCommand::List => {
            let list: Vec<SphereInfo> = r.get("/spheres").await?;
            let text = lines(&list, "No spheres yet: `spheres sphere create NAME`", |s| {
                format!(
                    "{}  {}{}{}",
                    s.name,
                    s.folder,
                    if s.owned { "  (yours)" } else { "" },
                    match s.encryption {
                        Encryption::Open => "",
                        Encryption::Ready => "  (encrypted)",
                        Encryption::Waiting => {
                            "  (encrypted; waiting for the owner's node to add this one)"
                        }
                        Encryption::Holding => {
                            "  (encrypted; this node holds its files for its members without the keys)"
                        }
                    }
                )
            });
            out.result(&text, value(&list));
        }
        SphereCommand::Invite {
            sphere,
            jid,
            seeder,
        } => {
            let v: Value = r
                .post(
                    &format!("/spheres/{}/invite", segment(&sphere)),
                    json!({"jid": jid, "seeder": seeder}),
                )
                .await?;
            let how = if seeder {
                " as a keyless seeder (it holds the files, without the keys)"
            } else {
                ""
            };
            out.result(&format!("Invited {jid} to {sphere}{how}"), v);
        }
        SphereCommand::InviteLink { sphere } => {
            let v: InviteLink = r
                .post(
                    &format!("/spheres/{}/invite-link", segment(&sphere)),
                    json!({}),
                )
                .await?;
            let local = if v.this_machine_only {
                "\n  Note: the household server listens on this machine only, so the link works here and nowhere else;\n  start the node with --xmpp-listen 0.0.0.0 for the household's other computers."
            } else {
                ""
            };
            out.result(
                &format!(
                    "Send this link to the person you invite (it works once); they paste it in their node's page, or start with\n  spheres up --invite '{}'{local}",
                    v.link
                ),
                value(&v),
            );
        }
        SphereCommand::Invites => {
            let list: Vec<Invite> = r.get("/invites").await?;
            let text = lines(&list, "No pending invitations", |i| {
                format!(
                    "{} from {} ({}){}",
                    i.reason.as_deref().unwrap_or("a sphere"),
                    i.from_jid,
                    i.room,
                    if i.seeder {
                        ": to hold its encrypted files for its members, without the keys"
                    } else if i.encrypted {
                        " (encrypted)"
                    } else {
                        ""
                    }
                )
            });
            out.result(&text, value(&list));
        }
        SphereCommand::Join { invite } => {
            let s: SphereInfo = r.post("/invites/join", json!({"invite": invite})).await?;
            out.result(
                &format!("Joined {}; its folder is {}", s.name, s.folder),
                value(&s),
            );
        }
        SphereCommand::Leave { sphere } => {
            let v: Value = r
                .post(&format!("/spheres/{}/leave", segment(&sphere)), json!({}))
                .await?;
            out.result(&format!("Left {sphere}; its files stay where they are"), v);
        }
        SphereCommand::Remove { sphere, jid } => {
            let v: Value = r
                .post(
                    &format!("/spheres/{}/remove", segment(&sphere)),
                    json!({"jid": jid}),
                )
                .await?;
            out.result(&format!("Removed {jid} from {sphere}"), v);
        }
        SphereCommand::Members { sphere } => {
            let list: Vec<Member> = r
                .get(&format!("/spheres/{}/members", segment(&sphere)))
                .await?;
            let text = lines(&list, "No members", |m| {
                format!(
                    "{} ({}, {})",
                    m.jid,
                    m.affiliation,
                    if m.online { "online" } else { "offline" }
                )
            });
            out.result(&text, value(&list));
        }
        SphereCommand::Policy { sphere, policy } => {
            let v: Value = r
                .post(
                    &format!("/spheres/{}/policy", segment(&sphere)),
                    json!({"policy": policy}),
                )
                .await?;
            let now = v["policy"].as_str().unwrap_or_default().to_owned();
            out.result(&format!("{sphere}: {now}"), v);
        }
    }
    Ok(())
}

/// How far links reach, in words.
/// The household's relay for calls: where, and whether calls get through routers with it.
fn relay_line(r: &Relay) -> String {
    match (&r.outside, &r.why) {
        (Some(outside), _) => format!(
            "{} on this network, {outside} from the internet (the router forwards it, and relay ports {}): calls get through home and mobile routers, wherever the other side is",
            r.addr,
            r.ports.as_deref().unwrap_or("none")
        ),
        (None, Some(why)) => format!("{} ({}): {why}", r.addr, reach_words(r.reach)),
        (None, None) => format!("{} ({})", r.addr, reach_words(r.reach)),
    }
}

fn reach_words(r: WebReach) -> &'static str {
    match r {
        WebReach::Public => "anyone, by your public address",
        WebReach::Internet => "anyone on the internet: the router forwards the web port",
        WebReach::Network => "this network only",
        WebReach::Computer => "this computer only",
    }
}

/// A link as a line: its address, what it gives, and whether it still opens.
fn link_line(l: &LinkInfo) -> String {
    let until = match (l.state.as_str(), l.expires) {
        ("open", Some(t)) => format!(
            "opens for {} more",
            human_duration(u64::try_from(t - now()).unwrap_or(0))
        ),
        ("open", None) => "opens until revoked".to_owned(),
        (state, _) => state.to_owned(),
    };
    let mut guards = String::new();
    if l.password {
        guards.push_str(", password");
    }
    if let Some(max) = l.max_opens {
        guards.push_str(&format!(", opened by {} of {max} browsers", l.opens));
    }
    if l.direct {
        guards.push_str(", from this node only");
    }
    if matches!(l.reach, WebReach::Network | WebReach::Computer) {
        guards.push_str(&format!(", opens on {}", reach_words(l.reach)));
    }
    format!("{}  {} in {} ({until}{guards})", l.url, l.share, l.sphere)
}

async fn link(out: &Output, r: &Remote, c: LinkCommand) -> Result<()> {
    match c {
        LinkCommand::Create {
            sphere,
            share,
            expires,
            password_file,
            downloads,
            no_p2p,
        } => {
            let password = password_file.as_ref().map(read_secret).transpose()?;
            let l: LinkInfo = r
                .post(
                    "/links",
                    json!({"sphere": sphere, "share": share, "expires_in": expires,
                           "password": password, "max_opens": downloads, "direct": no_p2p}),
                )
                .await?;
            let mut text = link_line(&l);
            // A link that reaches no farther than here says why, and what to do.
            if matches!(l.reach, WebReach::Network | WebReach::Computer) {
                let s: Status = r.get("/status").await?;
                if let Some(why) = s.web.and_then(|w| w.why) {
                    text.push_str(&format!("\n{why}"));
                }
            }
            out.result(&text, value(&l));
        }
        LinkCommand::List => {
            let list: Vec<LinkInfo> = r.get("/links").await?;
            out.result(
                &lines(
                    &list,
                    "No links yet: `spheres link create SPHERE SHARE`",
                    link_line,
                ),
                value(&list),
            );
        }
        LinkCommand::Revoke { link } => {
            let l: LinkInfo = r.post("/links/revoke", json!({"link": link})).await?;
            out.result(
                &format!("Revoked: {} opens nothing from now on", l.url),
                value(&l),
            );
        }
    }
    Ok(())
}

async fn contact(out: &Output, r: &Remote, c: ContactCommand) -> Result<()> {
    match c {
        ContactCommand::Add { jid, name } => {
            let v: Value = r
                .post("/contacts", json!({"jid": jid, "name": name}))
                .await?;
            out.result(
                &format!("Added {jid}; they see you online once they accept"),
                v,
            );
        }
        ContactCommand::Remove { jid } => {
            let v: Value = r
                .post(&format!("/contacts/{}/remove", segment(&jid)), json!({}))
                .await?;
            out.result(&format!("Removed {jid} from your contacts"), v);
        }
        ContactCommand::List => {
            let c: Contacts = r.get("/contacts").await?;
            let mut text = lines(
                &c.contacts,
                "No contacts yet: `spheres contact add NAME@SERVER`",
                |p| {
                    format!(
                        "{}{} ({})",
                        p.jid,
                        p.name
                            .as_deref()
                            .map(|n| format!(" \u{201c}{n}\u{201d}"))
                            .unwrap_or_default(),
                        if p.online { "online" } else { "offline" }
                    )
                },
            );
            for who in &c.requests {
                text.push_str(&format!(
                    "\n{who} asks to be your contact: `spheres contact add {who}` to accept"
                ));
            }
            out.result(&text, value(&c));
        }
    }
    Ok(())
}
