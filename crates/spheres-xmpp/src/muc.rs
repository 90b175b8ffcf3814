//! Spheres as rooms (XEP-0045): create and configure a persistent, members-only,
//! non-anonymous, archived room; manage members by affiliation; invite (XEP-0249); join,
//! leave, kick; read who is there from presence; catch up on the room's archive (XEP-0313).
//!
//! Room configuration works on any server: we fetch the room's own form and fill in the
//! fields we know when the form has them (Prosody and ejabberd name some differently).

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::iq::{Iq, IqGetPayload, IqResultPayload, IqSetPayload};
use xmpp_parsers::mam;
use xmpp_parsers::message::Message;
use xmpp_parsers::muc::Muc;
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::user::MucUser;
pub use xmpp_parsers::muc::user::{Affiliation, Role};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::rsm::SetQuery;
use xso::{AsXml, FromXml};

use crate::protocol::{DirectInvite, Endpoints};
use crate::{BareJid, Client, FullJid, Jid, XmppError};

pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";

/// `<query xmlns='…muc#owner'/>`: the room configuration form (get) or its submission (set).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_MUC_OWNER, name = "query")]
pub struct OwnerQuery {
    #[xml(child(default))]
    pub form: Option<DataForm>,
}

impl IqGetPayload for OwnerQuery {}
impl IqSetPayload for OwnerQuery {}
impl IqResultPayload for OwnerQuery {}

/// An item of a muc#admin query: an affiliation or a role change, or a list entry.
///
/// Affiliation and role are plain strings here: xmpp-parsers' enums leave out their default
/// value (`none`) when written, and `none` is exactly what removing and kicking send.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_MUC_ADMIN, name = "item")]
pub struct AdminItem {
    #[xml(attribute(default))]
    pub affiliation: Option<String>,
    #[xml(attribute(default))]
    pub role: Option<String>,
    #[xml(attribute(default))]
    pub jid: Option<Jid>,
    #[xml(attribute(default))]
    pub nick: Option<String>,
    #[xml(extract(name = "reason", default, fields(text(type_ = String))))]
    pub reason: Option<String>,
}

/// `<query xmlns='…muc#admin'/>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_MUC_ADMIN, name = "query")]
pub struct AdminQuery {
    #[xml(child(n = ..))]
    pub items: Vec<AdminItem>,
}

impl IqGetPayload for AdminQuery {}
impl IqSetPayload for AdminQuery {}
impl IqResultPayload for AdminQuery {}

/// How a sphere's room is set up.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// The sphere's name, shown by clients.
    pub name: String,
    pub description: Option<String>,
}

/// The configuration we want, as (candidate field names, value). The first name the room's
/// form knows is used; servers differ (e.g. archiving).
fn wanted_fields(s: &RoomSettings) -> Vec<(&'static [&'static str], Vec<String>)> {
    let t = || vec!["1".to_owned()];
    let f = || vec!["0".to_owned()];
    vec![
        (&["muc#roomconfig_roomname"], vec![s.name.clone()]),
        (
            &["muc#roomconfig_roomdesc"],
            vec![s.description.clone().unwrap_or_default()],
        ),
        (&["muc#roomconfig_persistentroom"], t()),
        (&["muc#roomconfig_membersonly"], t()),
        (&["muc#roomconfig_publicroom"], f()),
        (&["muc#roomconfig_whois"], vec!["anyone".to_owned()]),
        (&["muc#roomconfig_passwordprotectedroom"], f()),
        (&["muc#roomconfig_moderatedroom"], f()),
        (&["muc#roomconfig_allowinvites"], f()),
        // Prosody's mod_muc_mam, then ejabberd's.
        (&["muc#roomconfig_enablearchiving", "mam"], t()),
    ]
}

/// Fills the room's own form with what we want; fields the server does not offer are left
/// alone. Returns the submission and the names of the fields we could not set.
fn fill_form(offered: &DataForm, settings: &RoomSettings) -> (DataForm, Vec<&'static str>) {
    let mut fields = Vec::new();
    let mut missing = Vec::new();
    for (names, values) in wanted_fields(settings) {
        let known = names
            .iter()
            .find(|n| offered.fields.iter().any(|f| f.var.as_deref() == Some(**n)));
        match known {
            Some(var) => {
                let mut field = Field::new(var, FieldType::TextSingle);
                field.values = values;
                fields.push(field);
            }
            None => missing.push(names[0]),
        }
    }
    let form = DataForm::new(
        DataFormType::Submit,
        "http://jabber.org/protocol/muc#roomconfig",
        fields,
    );
    (form, missing)
}

fn affiliation_name(a: &Affiliation) -> &'static str {
    match a {
        Affiliation::Owner => "owner",
        Affiliation::Admin => "admin",
        Affiliation::Member => "member",
        Affiliation::Outcast => "outcast",
        Affiliation::None => "none",
    }
}

fn refused(what: &str, iq: &Iq) -> XmppError {
    match iq {
        Iq::Error { error, .. } => {
            XmppError::Refused(format!("{what}: {:?}", error.defined_condition))
        }
        _ => XmppError::Protocol(format!("{what}: unexpected answer")),
    }
}

/// Someone in a room, as their presence shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    pub room: BareJid,
    pub nick: String,
    /// Their real JID (the room is non-anonymous).
    pub jid: Option<FullJid>,
    pub affiliation: Affiliation,
    pub role: Role,
    /// `false` when this presence says they left (or were removed).
    pub present: bool,
    /// This presence is about us (status 110).
    pub is_self: bool,
    /// Status codes (e.g. 307 kicked, 321 removed because of an affiliation change).
    pub codes: Vec<u16>,
    /// Their node's BitTorrent endpoints, if they publish any.
    pub endpoints: Option<Endpoints>,
    /// What they say about the room's call (XEP-0272), if anything.
    pub muji: Option<crate::call::muji::Muji>,
}

impl Occupant {
    /// The room occupant a presence is about, if it comes from a room.
    pub fn from_presence(p: &Presence) -> Option<Occupant> {
        let from = p.from.as_ref()?;
        let nick = from.resource()?.as_str().to_owned();
        let user = p
            .payloads
            .iter()
            .find(|e| e.is("x", "http://jabber.org/protocol/muc#user"))?;
        let user = match MucUser::try_from(user.clone()) {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(error = %e, "ignoring a malformed room presence");
                return None;
            }
        };
        let item = user.items.first()?;
        let codes: Vec<u16> = user
            .status
            .iter()
            .filter_map(|s| {
                let el = Element::from(s.clone());
                el.attr("code").and_then(|c| c.parse().ok())
            })
            .collect();
        Some(Occupant {
            room: from.to_bare(),
            nick,
            jid: item.jid.clone(),
            affiliation: item.affiliation.clone(),
            role: item.role.clone(),
            present: p.type_ != PresenceType::Unavailable,
            is_self: codes.contains(&110),
            codes,
            endpoints: Endpoints::from_presence(p),
            muji: crate::call::muji::Muji::from_payloads(&p.payloads),
        })
    }
}

/// A message from a room's archive.
#[derive(Debug, Clone)]
pub struct Archived {
    /// The archive's id for it: where to resume the next catch-up from.
    pub id: String,
    pub message: Message,
    /// When the room received it.
    pub stamp: Option<String>,
    /// The same, in seconds since 1970.
    pub unix_time: Option<i64>,
}

impl Archived {
    /// Who sent it, as the room recorded them: their real bare JID and affiliation, which a
    /// non-anonymous room adds to what it archives (Prosody appends a muc#user `<x/>` with an
    /// `<item jid=…/>`). An occupant can put such an `<x/>` into its own message, and the
    /// room keeps it; so one means the room's, and none or several mean nobody can tell.
    pub fn sender(&self) -> Option<(BareJid, Affiliation)> {
        let mut items = self
            .message
            .payloads
            .iter()
            .filter(|e| e.is("x", "http://jabber.org/protocol/muc#user"))
            .flat_map(|x| x.children().filter(|c| c.name() == "item"));
        let item = items.next()?;
        if items.next().is_some() {
            return None;
        }
        // Prosody records the bare JID, ejabberd the full one.
        let jid = Jid::new(item.attr("jid")?).ok()?.to_bare();
        let affiliation = match item.attr("affiliation") {
            Some("owner") => Affiliation::Owner,
            Some("admin") => Affiliation::Admin,
            Some("member") => Affiliation::Member,
            Some("outcast") => Affiliation::Outcast,
            _ => Affiliation::None,
        };
        Some((jid, affiliation))
    }
}

fn occupant(room: &BareJid, nick: &str) -> Result<FullJid, XmppError> {
    room.with_resource_str(nick)
        .map_err(|e| XmppError::Config(format!("{nick:?} cannot be a nickname: {e}")))
}

impl Client {
    /// Joins `room` as `nick`, publishing `endpoints` in our presence. Asks for no old
    /// messages: [`Client::room_history`] catches up from the archive, exactly.
    pub async fn join_room(
        &self,
        room: &BareJid,
        nick: &str,
        endpoints: Option<Endpoints>,
    ) -> Result<(), XmppError> {
        self.room_presence(room, nick, endpoints, None).await
    }

    /// Our presence in `room` (joining it, or saying something new there): our `endpoints`,
    /// and whether we are in the room's call (`muji`, XEP-0272).
    pub async fn room_presence(
        &self,
        room: &BareJid,
        nick: &str,
        endpoints: Option<Endpoints>,
        muji: Option<&crate::call::muji::Muji>,
    ) -> Result<(), XmppError> {
        let mut p = Presence::available()
            .with_to(occupant(room, nick)?)
            .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0)));
        if let Some(e) = endpoints {
            p = p.with_payload(e);
        }
        if let Some(m) = muji {
            p.payloads.push(m.to_element());
        }
        self.send(p).await
    }

    /// Leaves `room`.
    pub async fn leave_room(&self, room: &BareJid, nick: &str) -> Result<(), XmppError> {
        let mut p = Presence::new(PresenceType::Unavailable);
        p.to = Some(Jid::from(occupant(room, nick)?));
        self.send(p).await
    }

    /// Creates `room` (or takes an existing one of ours) and configures it as a sphere:
    /// persistent, members-only, non-anonymous, hidden, archived. We join as `nick` and
    /// become its owner.
    pub async fn create_room(
        &self,
        room: &BareJid,
        nick: &str,
        settings: &RoomSettings,
    ) -> Result<(), XmppError> {
        self.join_room(room, nick, None).await?;
        // Our presence reaches the room before this request (same stream, in order), so the
        // room exists, with us as owner, by the time the form is asked for.
        let answer = self
            .iq(Iq::from_get("", OwnerQuery { form: None }).with_to(Jid::from(room.clone())))
            .await?;
        let offered = match answer {
            Iq::Result {
                payload: Some(p), ..
            } => OwnerQuery::try_from(p)
                .ok()
                .and_then(|q| q.form)
                .ok_or_else(|| XmppError::Protocol("the room sent no configuration form".into()))?,
            other => return Err(refused("room configuration", &other)),
        };
        let (form, missing) = fill_form(&offered, settings);
        if !missing.is_empty() {
            tracing::info!(room = %room, ?missing, "the server's room form lacks some settings");
        }
        let answer = self
            .iq(Iq::from_set("", OwnerQuery { form: Some(form) }).with_to(Jid::from(room.clone())))
            .await?;
        match answer {
            Iq::Result { .. } => Ok(()),
            other => Err(refused("room configuration", &other)),
        }
    }

    async fn admin_set(&self, room: &BareJid, item: AdminItem) -> Result<(), XmppError> {
        let answer = self
            .iq(Iq::from_set("", AdminQuery { items: vec![item] }).with_to(Jid::from(room.clone())))
            .await?;
        match answer {
            Iq::Result { .. } => Ok(()),
            other => Err(refused("room administration", &other)),
        }
    }

    /// Sets `who`'s affiliation with `room` (member to let them in, none to remove them:
    /// the server then also removes them from a members-only room).
    pub async fn set_affiliation(
        &self,
        room: &BareJid,
        who: &BareJid,
        affiliation: Affiliation,
        reason: Option<&str>,
    ) -> Result<(), XmppError> {
        self.admin_set(
            room,
            AdminItem {
                affiliation: Some(affiliation_name(&affiliation).to_owned()),
                role: None,
                jid: Some(Jid::from(who.clone())),
                nick: None,
                reason: reason.map(str::to_owned),
            },
        )
        .await
    }

    /// Makes `who` leave the room now (role none); they may come back if still a member.
    pub async fn kick(
        &self,
        room: &BareJid,
        nick: &str,
        reason: Option<&str>,
    ) -> Result<(), XmppError> {
        self.admin_set(
            room,
            AdminItem {
                affiliation: None,
                role: Some("none".to_owned()),
                jid: None,
                nick: Some(nick.to_owned()),
                reason: reason.map(str::to_owned),
            },
        )
        .await
    }

    /// Removes `who` from the sphere: affiliation none (which also ends their presence in a
    /// members-only room).
    pub async fn remove_member(&self, room: &BareJid, who: &BareJid) -> Result<(), XmppError> {
        self.set_affiliation(
            room,
            who,
            Affiliation::None,
            Some("removed from the sphere"),
        )
        .await
    }

    /// The JIDs with `affiliation` in `room`.
    pub async fn affiliated(
        &self,
        room: &BareJid,
        affiliation: Affiliation,
    ) -> Result<Vec<BareJid>, XmppError> {
        let query = AdminQuery {
            items: vec![AdminItem {
                affiliation: Some(affiliation_name(&affiliation).to_owned()),
                role: None,
                jid: None,
                nick: None,
                reason: None,
            }],
        };
        let answer = self
            .iq(Iq::from_get("", query).with_to(Jid::from(room.clone())))
            .await?;
        match answer {
            Iq::Result {
                payload: Some(p), ..
            } => {
                let q = AdminQuery::try_from(p)
                    .map_err(|e| XmppError::Protocol(format!("bad member list: {e}")))?;
                Ok(q.items
                    .into_iter()
                    .filter_map(|i| i.jid.map(|j| j.to_bare()))
                    .collect())
            }
            Iq::Result { payload: None, .. } => Ok(Vec::new()),
            other => Err(refused("member list", &other)),
        }
    }

    /// Everyone the sphere counts as a member: owners, admins and members.
    pub async fn room_members(
        &self,
        room: &BareJid,
    ) -> Result<Vec<(BareJid, Affiliation)>, XmppError> {
        let mut all = Vec::new();
        for a in [Affiliation::Owner, Affiliation::Admin, Affiliation::Member] {
            for jid in self.affiliated(room, a.clone()).await? {
                all.push((jid, a.clone()));
            }
        }
        Ok(all)
    }

    /// Invites `who` to `room` (XEP-0249), saying whether its sphere is `encrypted` and
    /// whether their node is to hold its files as a keyless `seeder`. Make them a member first
    /// in a members-only room.
    pub async fn invite(
        &self,
        room: &BareJid,
        who: &BareJid,
        reason: Option<&str>,
        encrypted: bool,
        seeder: bool,
    ) -> Result<(), XmppError> {
        let invite = DirectInvite {
            jid: room.clone(),
            reason: reason.map(str::to_owned),
            password: None,
        };
        let mut m = invite.into_message(who.clone());
        if encrypted || seeder {
            m.payloads.push(crate::protocol::encrypted_mark());
        }
        if seeder {
            m.payloads.push(crate::protocol::seeder_mark());
        }
        self.send(m).await
    }

    /// Says `body` in `room`.
    pub async fn say(&self, room: &BareJid, body: &str) -> Result<(), XmppError> {
        self.send(
            Message::groupchat(Some(Jid::from(room.clone())))
                .with_body(xmpp_parsers::message::Lang::from(""), body.to_owned()),
        )
        .await
    }

    /// The group chat service of our server (XEP-0030: the first item of the server's domain
    /// whose identity is a `conference`), if it has one.
    pub async fn find_muc_service(&self) -> Result<Option<Jid>, XmppError> {
        use xmpp_parsers::disco::{
            DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult,
        };
        let me = self.jid();
        let domain = Jid::new(me.domain().as_str())
            .map_err(|e| XmppError::Protocol(format!("our own domain is not an address: {e}")))?;
        let items = self
            .iq(Iq::from_get(
                "",
                DiscoItemsQuery {
                    node: None,
                    rsm: None,
                },
            )
            .with_to(domain))
            .await?;
        let items = match items {
            Iq::Result {
                payload: Some(p), ..
            } => {
                DiscoItemsResult::try_from(p)
                    .map_err(|e| XmppError::Protocol(format!("bad service list: {e}")))?
                    .items
            }
            _ => Vec::new(),
        };
        for item in items {
            let info = self
                .iq(Iq::from_get("", DiscoInfoQuery { node: None }).with_to(item.jid.clone()))
                .await;
            if let Ok(Iq::Result {
                payload: Some(p), ..
            }) = info
                && let Ok(info) = DiscoInfoResult::try_from(p)
                && info.identities.iter().any(|i| i.category == "conference")
            {
                return Ok(Some(item.jid));
            }
        }
        Ok(None)
    }

    /// Every message the room archived after the archive id `after` (all when `None`),
    /// oldest first, fetched page by page.
    pub async fn room_history(
        &self,
        room: &BareJid,
        after: Option<String>,
    ) -> Result<Vec<Archived>, XmppError> {
        self.history(Some(room.clone()), after).await
    }

    /// Pages through an archive (ours with `archive = None`, or a room's).
    pub async fn history(
        &self,
        archive: Option<BareJid>,
        after: Option<String>,
    ) -> Result<Vec<Archived>, XmppError> {
        self.history_filtered(archive, None, after).await
    }

    /// Pages through an archive with a XEP-0313 filter form.
    pub(crate) async fn history_filtered(
        &self,
        archive: Option<BareJid>,
        form: Option<DataForm>,
        mut after: Option<String>,
    ) -> Result<Vec<Archived>, XmppError> {
        let mut out = Vec::new();
        // Bounded: a misbehaving server that never says `complete` cannot keep us here.
        for _ in 0..1000 {
            let query = mam::Query {
                queryid: None,
                node: None,
                form: form.clone(),
                set: Some(SetQuery {
                    max: Some(100),
                    after: after.clone(),
                    before: None,
                    index: None,
                }),
                flip_page: false,
            };
            let page = self.archive_page(archive.clone(), query).await?;
            let got = page.messages.len();
            for r in page.messages {
                out.push(Archived {
                    id: r.id,
                    stamp: r.forwarded.delay.as_ref().map(|d| d.stamp.0.to_rfc3339()),
                    unix_time: r.forwarded.delay.as_ref().map(|d| d.stamp.0.timestamp()),
                    message: r.forwarded.message,
                });
            }
            if page.fin.complete || got == 0 {
                return Ok(out);
            }
            match page.fin.set.last {
                Some(last) if Some(&last) != after.as_ref() => after = Some(last),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_written_out_in_admin_items() {
        let item = AdminItem {
            affiliation: Some(affiliation_name(&Affiliation::None).to_owned()),
            role: None,
            jid: None,
            nick: None,
            reason: None,
        };
        let xml = String::from(&Element::from(AdminQuery { items: vec![item] }));
        assert!(xml.contains("affiliation='none'"), "{xml}");
    }

    #[test]
    fn the_form_is_filled_with_the_names_the_server_uses() {
        let offered = DataForm::new(
            DataFormType::Form,
            "http://jabber.org/protocol/muc#roomconfig",
            vec![
                Field::text_single("muc#roomconfig_roomname", ""),
                Field::new("muc#roomconfig_persistentroom", FieldType::Boolean),
                Field::new("muc#roomconfig_membersonly", FieldType::Boolean),
                Field::new("mam", FieldType::Boolean),
            ],
        );
        let settings = RoomSettings {
            name: "Family".into(),
            description: None,
        };
        let (form, missing) = fill_form(&offered, &settings);
        let vars: Vec<_> = form.fields.iter().filter_map(|f| f.var.clone()).collect();
        assert!(vars.contains(&"mam".to_owned()), "{vars:?}");
        assert!(vars.contains(&"muc#roomconfig_membersonly".to_owned()));
        assert!(!vars.contains(&"muc#roomconfig_whois".to_owned()));
        assert!(missing.contains(&"muc#roomconfig_whois"));
        assert_eq!(
            form.form_type(),
            Some("http://jabber.org/protocol/muc#roomconfig")
        );
    }
}
