//! The node's JSON API and the web interface, on one port.
//!
//! Who may call `/api/` and `/torrents/` (see `access`): the CLI with `Authorization: Bearer
//! TOKEN`, or a browser with a session cookie (HttpOnly, SameSite=Strict), opened by a
//! one-time login link (`GET /login/SECRET`, from `spheres up`'s start message or `spheres
//! open`) or by the web password (`POST /api/login`). A browser's request that changes
//! something also needs `X-Spheres: 1` and our own `Origin` (CSRF).
//!
//! Anything else gets 401 with `"login": true`.

mod archive;
mod links;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::access::{self, Access};
use super::{Node, NodeError, NodeEvent};

#[derive(Clone)]
struct Api {
    node: Arc<Node>,
    access: Arc<Access>,
}

/// Who is calling, as the authentication found it.
#[derive(Clone)]
enum Caller {
    /// The CLI, with the API token.
    Cli,
    /// A browser, with the cookie of an open session.
    Browser,
}

const COOKIE: &str = "spheres_session";

/// The session cookies a request carries. Several may come: a page on another port of the
/// same host can set one of the same name (cookies ignore ports), so none is taken on trust
/// for being first.
fn sessions_of(headers: &axum::http::HeaderMap) -> Vec<String> {
    cookies_named(headers, COOKIE)
}

/// The values of the cookies called `name` a request carries (at most 8).
fn cookies_named(headers: &axum::http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .take(8)
        .collect()
}

struct ApiError(NodeError);

/// Each kind of refusal has its status; the message says what to do next.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            NodeError::NotFound(_) => StatusCode::NOT_FOUND,
            NodeError::Conflict(_) => StatusCode::CONFLICT,
            NodeError::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            NodeError::Forbidden(_) => StatusCode::FORBIDDEN,
            NodeError::BadInput(_) => StatusCode::BAD_REQUEST,
            NodeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Internal(e) => {
                tracing::warn!(error = format!("{e:#}"), "an API request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

impl<E: Into<NodeError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

type ApiResult<T = serde_json::Value> = Result<Json<T>, ApiError>;

/// Whether a browser reached us by one of our names: an IP address, `localhost`, the
/// machine's own name (and `NAME.local`), or a name given with `--http-host`. Any other name
/// is a site pointing its own name at us (DNS rebinding): its pages would count as our origin.
fn known_host(api: &Api, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // `name`, `name:port`, `[v6]` or `[v6]:port`.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" {
        return true;
    }
    // Read once: this runs on every request a browser makes.
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let machine = MACHINE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default()
    });
    (!machine.is_empty() && (name == *machine || name == format!("{machine}.local")))
        || api
            .node
            .settings
            .http_hosts
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(&name))
}

/// A browser that reached us by a name that is not ours.
const UNKNOWN_HOST: &str = "this page was reached by a name that is not this node's; use its address, or start the node with --http-host NAME";

async fn auth(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    // Stopping (or restarting as another account): what a request would read may be closed
    // under it. Everyone waits; nobody is told to log in again.
    if api.node.stopping() {
        return stopping();
    }
    let headers = req.headers();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = given {
        if api.access.is_token(given) {
            req.extensions_mut().insert(Caller::Cli);
            return next.run(req).await;
        }
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "wrong API token (it is in the node's node.json)"})),
        )
            .into_response();
    }
    if !known_host(&api, headers) {
        return Refused(UNKNOWN_HOST).into_response();
    }
    // A session the store cannot read is not a session that ended: the page waits, it is
    // not sent to log in again.
    let open = match session_open(&api.node.store, &sessions_of(headers)).await {
        Ok(open) => open,
        Err(e) => {
            tracing::info!(error = %e, "cannot read browser sessions");
            return stopping();
        }
    };
    if open {
        let changes = !matches!(
            *req.method(),
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if changes && let Err(refused) = same_origin_change(headers) {
            return refused.into_response();
        }
        req.extensions_mut().insert(Caller::Browser);
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "log in first", "login": true})),
    )
        .into_response()
}

/// What everyone is told while the node stops or restarts (503).
fn stopping() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "the node is stopping or restarting; try again in a moment"})),
    )
        .into_response()
}

/// Whether one of `cookies` opens a session (an open one is marked used). An error is the
/// store's, not a "no".
async fn session_open(
    store: &spheres_store::Store,
    cookies: &[String],
) -> Result<bool, spheres_store::StoreError> {
    for cookie in cookies {
        let open = store
            .use_session(
                &access::session_key(cookie),
                access::SESSION_IDLE,
                access::SESSION_MAX_AGE,
            )
            .await?;
        if open {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Opens a browser session; returns its `Set-Cookie` value. `Secure` when the page came
/// over TLS: the node's own HTTPS (`over_tls`), or a reverse proxy on this machine.
async fn open_session(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    over_tls: bool,
) -> anyhow::Result<String> {
    let cookie = super::random_token(32);
    api.node
        .store
        .add_session(&access::session_key(&cookie), access::MAX_SESSIONS)
        .await?;
    let tls = over_tls
        || peer.ip().is_loopback()
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    Ok(format!(
        "{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        access::SESSION_MAX_AGE,
        if tls { "; Secure" } else { "" }
    ))
}

/// A one-time login link: opens a session and goes to the page.
async fn login_link(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    over_tls: Option<axum::Extension<spheres_web::OverTls>>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    if api.node.stopping() {
        return stopping();
    }
    if !known_host(&api, &headers) {
        return Refused(UNKNOWN_HOST).into_response();
    }
    if !api.access.take_link(&secret) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This login link was used already or has expired. On the node's computer, run `spheres open` for a new one.\n",
        )
            .into_response();
    }
    match open_session(&api, &headers, peer, over_tls.is_some()).await {
        Ok(cookie) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A new one-time login link, for the CLI (`spheres open`).
async fn new_login_link(
    State(api): State<Api>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    let Caller::Cli = caller else {
        return Refused("login links are made by `spheres open` on the node's computer")
            .into_response();
    };
    let Some(http) = *super::lock(&api.node.http) else {
        return ApiError(NodeError::Unavailable(
            "the web interface is not up yet".into(),
        ))
        .into_response();
    };
    Json(json!({"url": api.access.login_link(http)})).into_response()
}

/// Checks a password against the web password, at most `access::HASHING` at once.
async fn password_is_right(api: &Api, password: &str) -> Result<bool, Response> {
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        api.access.hashing.clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(_permit)) = permit else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "the node is busy checking passwords; try again in a moment"})),
        )
            .into_response());
    };
    Ok(api.node.check_password(password).await)
}

/// A browser's request that changes something must come from our own page: it carries
/// `X-Spheres: 1` (which another site's page cannot send without a CORS preflight we never
/// grant), and its `Origin`, when the browser gives one, is this very address.
fn same_origin_change(headers: &HeaderMap) -> Result<(), Refused> {
    if headers.get("x-spheres").and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(Refused(
            "requests that change something need the X-Spheres: 1 header",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = origin.to_str().ok();
        let ours = host.is_some_and(|h| {
            origin.is_some_and(|o| o == format!("http://{h}") || o == format!("https://{h}"))
        });
        if !ours {
            return Err(Refused(
                "this request comes from another site's page; refused",
            ));
        }
    }
    Ok(())
}

/// A request refused before it reached the node: 403 with why.
struct Refused(&'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (StatusCode::FORBIDDEN, Json(json!({"error": self.0}))).into_response()
    }
}

/// Opens a browser session with the web interface's password. Wrong passwords are
/// throttled per address and overall (`access`).
async fn login(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    over_tls: Option<axum::Extension<spheres_web::OverTls>>,
    headers: HeaderMap,
    Json(b): Json<PasswordBody>,
) -> Response {
    if api.node.stopping() {
        return stopping();
    }
    if !known_host(&api, &headers) {
        return Refused(UNKNOWN_HOST).into_response();
    }
    if let Err(refused) = same_origin_change(&headers) {
        return refused.into_response();
    }
    if let Err(wait) = api.access.attempt(peer.ip()) {
        return Refused429(wait.as_secs().div_ceil(60).max(1)).into_response();
    }
    let right = match password_is_right(&api, &b.password).await {
        Ok(r) => r,
        Err(busy) => return busy,
    };
    if !right {
        let msg = if api.node.has_password().await {
            "wrong password"
        } else {
            "no password is set yet: on the node's computer, open the address `spheres up` printed (or run `spheres open`), then set one in Settings"
        };
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": msg, "login": true})),
        )
            .into_response();
    }
    api.access.succeeded(peer.ip());
    match open_session(&api, &headers, peer, over_tls.is_some()).await {
        Ok(cookie) => (
            [(header::SET_COOKIE, cookie)],
            Json(json!({"logged_in": true})),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn logout(State(api): State<Api>, headers: axum::http::HeaderMap) -> Response {
    for c in sessions_of(&headers) {
        let _ = api.node.store.end_session(&access::session_key(&c)).await;
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({"logged_in": false})),
    )
        .into_response()
}

/// Sets the web password. From a browser, once a password is set, the current one is asked
/// for. Every session ends (the browser that changed it gets a new one).
async fn set_password(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    over_tls: Option<axum::Extension<spheres_web::OverTls>>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    Json(b): Json<NewPasswordBody>,
) -> Response {
    if let Caller::Browser = caller
        && api.node.has_password().await
    {
        if let Err(wait) = api.access.attempt(peer.ip()) {
            return Refused429(wait.as_secs().div_ceil(60).max(1)).into_response();
        }
        let right = match password_is_right(&api, b.current.as_deref().unwrap_or("")).await {
            Ok(r) => r,
            Err(busy) => return busy,
        };
        if !right {
            return (
                StatusCode::FORBIDDEN,
                Json(
                    json!({"error": "the current password is not right; type the one you use now"}),
                ),
            )
                .into_response();
        }
        api.access.succeeded(peer.ip());
    }
    if let Err(e) = api.node.set_password(&b.password).await {
        return ApiError::from(e).into_response();
    }
    if let Err(e) = api.node.store.end_all_sessions().await {
        return ApiError::from(e).into_response();
    }
    match caller {
        Caller::Cli => Json(json!({"password_set": true})).into_response(),
        Caller::Browser => match open_session(&api, &headers, peer, over_tls.is_some()).await {
            Ok(cookie) => (
                [(header::SET_COOKIE, cookie)],
                Json(json!({"password_set": true})),
            )
                .into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
    }
}

/// Too many wrong passwords: 429 with when to try again.
struct Refused429(u64);

impl IntoResponse for Refused429 {
    fn into_response(self) -> Response {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, (self.0 * 60).to_string())],
            Json(json!({"error": format!("too many wrong passwords; try again in {} min", self.0), "retry_minutes": self.0, "login": true})),
        )
            .into_response()
    }
}

pub fn router(node: Arc<Node>, access: Arc<Access>) -> Router {
    let api = Api { node, access };
    let routes = Router::new()
        .route("/status", get(status))
        .route("/spheres", get(list_spheres).post(create_sphere))
        .route("/spheres/{name}/members", get(members))
        .route("/spheres/{name}/invite", post(invite))
        .route("/spheres/{name}/invite-link", post(invite_link))
        .route("/spheres/{name}/remove", post(remove))
        .route("/spheres/{name}/leave", post(leave))
        .route("/spheres/{name}/shares", get(shares).post(share))
        .route("/spheres/{name}/policy", post(policy))
        .route("/spheres/{name}/shares/{hash}/thumb", get(thumb))
        .route(
            "/spheres/{name}/shares/{hash}/files/{index}/thumb",
            get(file_thumb),
        )
        .route("/spheres/{name}/photos", get(photos))
        .route(
            "/export",
            get(archive::export_download).post(archive::export_to),
        )
        .route(
            "/import",
            post(archive::import_from).put(archive::import_upload),
        )
        .route("/spheres/{name}/fetch", post(fetch))
        .route("/spheres/{name}/take-back", post(take_back))
        .route("/links", get(links::list).post(links::create))
        .route("/links/revoke", post(links::revoke))
        .route("/invites", get(invites))
        .route("/invites/join", post(join))
        .route("/link/preview", post(link_preview))
        .route("/link/join", post(join_with_link))
        .route("/account/sign-in", post(sign_in))
        .route("/household/users", post(add_user))
        .route("/events", get(events))
        .route("/password", post(set_password))
        .route("/open", post(new_login_link))
        .route("/limits", post(set_limits))
        .route("/contacts", get(contacts).post(add_contact))
        .route("/contacts/{jid}/remove", post(remove_contact))
        .route("/qr", get(qr))
        .route("/chats/{jid}", get(conversation).post(send_chat))
        .route("/chats/{jid}/security", get(chat_security))
        .route(
            "/spheres/{name}/call",
            get(sphere_call).post(join_sphere_call),
        )
        .route("/spheres/{name}/call/leave", post(leave_sphere_call))
        .route("/calls", get(calls).post(start_call))
        .route("/calls/ice", get(ice_servers))
        .route("/calls/{id}/answer", post(answer_call))
        .route("/calls/{id}/hangup", post(hang_up))
        .route("/calls/{id}/describe", post(describe_call))
        .route("/calls/{id}/candidate", post(call_candidate))
        .route("/feed", get(feed).post(make_post))
        .route("/feed/{id}/delete", post(delete_post))
        .route("/feed/{id}/edit", post(edit_post))
        .route("/feed/{id}/react", post(react))
        .route("/feed/{id}/comments", get(comments).post(comment))
        .route("/people/{jid}/posts", get(posts_of))
        .route("/logout", post(logout))
        .route("/spheres/{name}/messages", get(messages).post(say))
        .route("/spheres/{name}/upload/{batch}/done", post(upload_done))
        .route("/spheres/{name}/upload/{batch}/cancel", post(upload_cancel))
        .route("/spheres/{name}/space", get(space))
        .route(
            "/spheres/{name}/upload/{batch}/files/{*path}",
            axum::routing::put(upload),
        )
        .route_layer(middleware::from_fn_with_state(api.clone(), auth))
        .with_state(api.clone());
    let streams = spheres_web::stream_router(api.node.engine())
        .route_layer(middleware::from_fn_with_state(api.clone(), auth));
    let open = Router::new()
        .route("/api/login", post(login))
        .route("/login/{secret}", get(login_link))
        // Public posts: no login, nothing but reads of what we published for the web.
        .route("/{handle}/", get(public_index))
        .route("/{handle}/feed.atom", get(public_atom))
        .route("/{handle}/posts/{id}", get(public_post))
        .with_state(api.clone());
    let open = open.merge(links::public(api.clone()));
    spheres_web::with_security_headers(
        spheres_web::ui_router()
            .nest("/api", routes)
            .merge(open)
            .merge(streams),
    )
}

async fn status(State(api): State<Api>) -> ApiResult<types::Status> {
    Ok(Json(api.node.status().await?))
}

use types::{
    CallBody, CandidateBody, ContactBody, DescribeBody, FetchBody, JidBody, JoinBody, LimitsBody,
    LinkBody, NameBody, NewPasswordBody, PasswordBody, PathBody, PolicyBody, SayBody, SignInBody,
    TabBody, UserBody,
};

async fn list_spheres(State(api): State<Api>) -> ApiResult<Vec<types::SphereInfo>> {
    Ok(Json(api.node.list_spheres().await?))
}

async fn create_sphere(
    State(api): State<Api>,
    Json(b): Json<NameBody>,
) -> ApiResult<types::SphereInfo> {
    Ok(Json(
        api.node
            .create_sphere(&b.name, b.encrypted.unwrap_or(true))
            .await?,
    ))
}

async fn members(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Vec<types::Member>> {
    Ok(Json(api.node.members(&name).await?))
}

async fn invite(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<types::InviteBody>,
) -> ApiResult {
    let seeder = b.seeder.unwrap_or(false);
    api.node.invite(&name, &b.jid, seeder).await?;
    Ok(Json(
        json!({"invited": b.jid, "sphere": name, "seeder": seeder}),
    ))
}

async fn invite_link(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<types::InviteLink> {
    let link = api.node.invite_link(&name).await?;
    // A household server on loopback only: the link works on this machine, nowhere else.
    let this_machine_only = api.node.household_on_loopback();
    // The same link as an address of the newcomer's own node on its usual web port: clicked
    // where spheres runs, it opens the join screen with the link filled in.
    let open = format!(
        "http://{}/#/join?link={}",
        super::settings::DEFAULT_HTTP,
        percent_encoding::utf8_percent_encode(&link, percent_encoding::NON_ALPHANUMERIC)
    );
    Ok(Json(types::InviteLink {
        link,
        open,
        sphere: name,
        this_machine_only,
    }))
}

async fn remove(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<JidBody>,
) -> ApiResult {
    api.node.remove_member(&name, &b.jid).await?;
    Ok(Json(json!({"removed": b.jid, "sphere": name})))
}

async fn leave(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    api.node.leave(&name).await?;
    Ok(Json(json!({"left": name})))
}

async fn shares(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Vec<types::ShareInfo>> {
    Ok(Json(api.node.shares(&name).await?))
}

async fn share(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<PathBody>,
) -> ApiResult<types::Shared> {
    Ok(Json(api.node.share(&name, &b.path).await?))
}

async fn policy(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<PolicyBody>,
) -> ApiResult {
    let policy = api.node.set_policy(&name, &b.policy).await?;
    Ok(Json(json!({"sphere": name, "policy": policy})))
}

async fn fetch(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<FetchBody>,
) -> ApiResult<types::Fetching> {
    Ok(Json(api.node.fetch(&name, &b.share).await?))
}

async fn take_back(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<FetchBody>,
) -> ApiResult<types::ShareInfo> {
    Ok(Json(api.node.take_back(&name, &b.share).await?))
}

async fn invites(State(api): State<Api>) -> ApiResult<Vec<types::Invite>> {
    Ok(Json(api.node.invites().await?))
}

async fn join(State(api): State<Api>, Json(b): Json<JoinBody>) -> ApiResult<types::SphereInfo> {
    Ok(Json(api.node.join(&b.invite).await?))
}

/// Takes an existing XMPP account on a fresh node; the node then starts again as it.
async fn sign_in(State(api): State<Api>, Json(b): Json<SignInBody>) -> ApiResult {
    let jid = api
        .node
        .sign_in_existing(&b.jid, &b.password, b.server.as_deref())
        .await?;
    Ok(Json(json!({"jid": jid, "restarting": true})))
}

async fn link_preview(
    State(api): State<Api>,
    Json(b): Json<LinkBody>,
) -> ApiResult<types::LinkPreview> {
    Ok(Json(api.node.link_preview(&b.link).await?))
}

/// Takes an invitation link: the node answers, then starts again as the new account.
async fn join_with_link(State(api): State<Api>, Json(b): Json<LinkBody>) -> ApiResult {
    let jid = api.node.join_with_link(&b.link, &b.name).await?;
    Ok(Json(json!({"jid": jid, "restarting": true})))
}

async fn add_user(State(api): State<Api>, Json(b): Json<UserBody>) -> ApiResult {
    let jid = api.node.add_household_user(&b.user, &b.password).await?;
    Ok(Json(json!({"jid": jid})))
}

/// Live events for the web interface (Server-Sent Events): what changed, as it happens, and a
/// `tick` every second while anything transfers, so progress moves. Browsers reconnect by
/// themselves when the node restarts.
async fn events(State(api): State<Api>) -> impl IntoResponse {
    let rx = api.node.subscribe();
    let ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    let stream = futures::stream::unfold((rx, ticks), |(mut rx, mut ticks)| async move {
        let event = tokio::select! {
            got = rx.recv() => match got {
                Ok(v) => v,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => NodeEvent::Resync,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            },
            _ = ticks.tick() => NodeEvent::Tick,
        };
        let sse = SseEvent::default().data(event.to_json());
        Some((Ok::<_, std::convert::Infallible>(sse), (rx, ticks)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn messages(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Vec<types::RoomMessage>> {
    Ok(Json(api.node.messages(&name).await?))
}

async fn say(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<SayBody>,
) -> ApiResult {
    api.node.say(&name, &b.body).await?;
    Ok(Json(json!({"said": b.body})))
}

/// A file uploaded into a sphere, streamed to disk (never held in memory) into the upload's
/// hidden staging folder; `done` then moves the upload into the sphere, and the folder watcher
/// shares it.
async fn upload(
    State(api): State<Api>,
    Path((name, batch, rel)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult {
    // Refused before anything is made or written when it cannot fit (the page checks first).
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = announced {
        let free = api.node.free_space(&name).await?;
        if len.saturating_add(crate::UPLOAD_HEADROOM) > free {
            return Err(NodeError::NoSpace(format!(
                "not enough space on the node's disk for {rel}: it needs {}, {} are free; free some space and send it again",
                crate::units::human_bytes(len),
                crate::units::human_bytes(free.saturating_sub(crate::UPLOAD_HEADROOM))
            ))
            .into());
        }
    }
    let (partial, target) = api.node.upload_path(&name, &batch, &rel).await?;
    // Nothing half-written stays behind, whatever happens: an error, or the request dropped
    // (connection lost, node stopping).
    let guard = PartialFile(Some(partial.clone()));
    let written = receive(body, &partial).await?;
    tokio::fs::rename(&partial, &target).await?;
    guard.keep();
    Ok(Json(json!({"file": rel, "bytes": written})))
}

/// Removes an upload's partial file when dropped, unless kept.
struct PartialFile(Option<std::path::PathBuf>);

impl PartialFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Streams a request body into `path`, synced to disk before it counts as received.
async fn receive(body: axum::body::Body, path: &std::path::Path) -> anyhow::Result<u64> {
    use anyhow::Context as _;
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    // A body without Content-Length (chunked) was not checked before it started: the free
    // space is looked at as it arrives, every few megabytes.
    let mut checked_at: u64 = 0;
    let folder = path.parent().unwrap_or(path).to_owned();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| NodeError::BadInput(format!("the upload was cut: {e}")))?;
        if written.saturating_sub(checked_at) >= 8 * 1024 * 1024 || checked_at == 0 {
            checked_at = written.max(1);
            let free = crate::free_bytes(&folder)?;
            if free < crate::UPLOAD_HEADROOM.saturating_add(chunk.len() as u64) {
                crate::error::refuse!(
                    NoSpace,
                    "not enough space on the node's disk: {} are free; free some space and send it again",
                    crate::units::human_bytes(free.saturating_sub(crate::UPLOAD_HEADROOM))
                );
            }
        }
        if let Err(e) = out.write_all(&chunk).await {
            if e.kind() == std::io::ErrorKind::StorageFull {
                crate::error::refuse!(
                    NoSpace,
                    "not enough space on the node's disk: it filled up during the upload; free some space and send it again"
                );
            }
            return Err(e).context("cannot write the upload");
        }
        written += chunk.len() as u64;
    }
    out.sync_all().await?;
    Ok(written)
}

async fn upload_cancel(
    State(api): State<Api>,
    Path((name, batch)): Path<(String, String)>,
) -> ApiResult {
    api.node.upload_cancel(&name, &batch).await?;
    Ok(Json(json!({"cancelled": batch})))
}

async fn space(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let free = api.node.free_space(&name).await?;
    Ok(Json(
        json!({"free": free.saturating_sub(crate::UPLOAD_HEADROOM)}),
    ))
}

async fn upload_done(
    State(api): State<Api>,
    Path((name, batch)): Path<(String, String)>,
) -> ApiResult {
    let moved = api.node.upload_done(&name, &batch).await?;
    Ok(Json(json!({"sphere": name, "added": moved})))
}

async fn photos(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Vec<types::Photo>> {
    Ok(Json(api.node.photos(&name).await?))
}

async fn file_thumb(
    State(api): State<Api>,
    Path((name, hash, index)): Path<(String, String, usize)>,
) -> Response {
    jpeg(api.node.file_thumbnail(&name, &hash, index).await).await
}

async fn thumb(State(api): State<Api>, Path((name, hash)): Path<(String, String)>) -> Response {
    jpeg(api.node.thumbnail(&name, &hash).await).await
}

/// A thumbnail the node made, or 404 when there is none.
async fn jpeg(made: Result<Option<std::path::PathBuf>, NodeError>) -> Response {
    match made {
        Ok(Some(path)) => match tokio::fs::read(&path).await {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "image/jpeg"),
                    (header::CACHE_CONTROL, "private, max-age=86400"),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no thumbnail"})),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn contacts(State(api): State<Api>) -> ApiResult<types::Contacts> {
    Ok(Json(api.node.contacts().await?))
}

async fn add_contact(State(api): State<Api>, Json(b): Json<ContactBody>) -> ApiResult {
    api.node.add_contact(&b.jid, b.name.as_deref()).await?;
    Ok(Json(json!({"added": b.jid})))
}

async fn remove_contact(State(api): State<Api>, Path(jid): Path<String>) -> ApiResult {
    api.node.remove_contact(&jid).await?;
    Ok(Json(json!({"removed": jid})))
}

async fn conversation(
    State(api): State<Api>,
    Path(jid): Path<String>,
) -> ApiResult<Vec<types::ChatLine>> {
    Ok(Json(api.node.conversation(&jid).await?))
}

async fn chat_security(
    State(api): State<Api>,
    Path(jid): Path<String>,
) -> ApiResult<types::ChatSecurity> {
    Ok(Json(api.node.chat_security(&jid).await?))
}

async fn send_chat(
    State(api): State<Api>,
    Path(jid): Path<String>,
    Json(b): Json<SayBody>,
) -> ApiResult {
    api.node.send_chat(&jid, &b.body).await?;
    Ok(Json(json!({"sent": b.body})))
}

async fn calls(State(api): State<Api>) -> ApiResult<Vec<types::CallInfo>> {
    Ok(Json(api.node.calls()))
}

async fn sphere_call(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<types::SphereCall> {
    Ok(Json(api.node.sphere_call(&name).await?))
}

async fn join_sphere_call(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<types::SphereCallBody>,
) -> ApiResult<types::SphereCall> {
    Ok(Json(
        api.node.join_sphere_call(&name, b.video, &b.tab).await?,
    ))
}

async fn leave_sphere_call(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Option<Json<types::LeaveCallBody>>,
) -> ApiResult<types::SphereCall> {
    let tab = body.and_then(|Json(b)| b.tab);
    Ok(Json(
        api.node.leave_sphere_call(&name, tab.as_deref()).await?,
    ))
}

async fn ice_servers(State(api): State<Api>) -> ApiResult<Vec<types::IceServerInfo>> {
    Ok(Json(api.node.ice_servers().await))
}

async fn start_call(State(api): State<Api>, Json(b): Json<CallBody>) -> ApiResult<types::CallInfo> {
    Ok(Json(api.node.start_call(&b.with, b.video, &b.tab).await?))
}

async fn answer_call(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<TabBody>,
) -> ApiResult<types::CallInfo> {
    Ok(Json(api.node.answer_call(&id, &b.tab).await?))
}

async fn hang_up(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<types::CallInfo> {
    Ok(Json(api.node.hang_up(&id).await?))
}

async fn describe_call(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<DescribeBody>,
) -> ApiResult<types::CallInfo> {
    Ok(Json(
        api.node.describe_call(&id, &b.tab, &b.kind, &b.sdp).await?,
    ))
}

async fn call_candidate(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<CandidateBody>,
) -> ApiResult {
    api.node
        .call_candidate(&id, &b.tab, &b.mid, &b.candidate)
        .await?;
    Ok(Json(json!({"sent": true})))
}

#[derive(Deserialize)]
struct FeedQuery {
    /// Posts published before this (seconds since 1970): the next page.
    before: Option<i64>,
    /// One person's posts only.
    author: Option<String>,
}

async fn feed(
    State(api): State<Api>,
    axum::extract::Query(q): axum::extract::Query<FeedQuery>,
) -> ApiResult<Vec<types::Post>> {
    Ok(Json(api.node.feed(q.before, q.author.as_deref()).await?))
}

async fn make_post(
    State(api): State<Api>,
    Json(b): Json<types::PostBody>,
) -> ApiResult<types::Posted> {
    let id = api
        .node
        .post(&b.text, b.to.as_deref().unwrap_or("contacts"), &b.shares)
        .await?;
    Ok(Json(types::Posted { id }))
}

async fn react(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<types::ReactBody>,
) -> ApiResult<Vec<types::Reaction>> {
    Ok(Json(api.node.react(&id, &b.emoji).await?))
}

async fn edit_post(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<SayBody>,
) -> ApiResult {
    api.node.edit_post(&id, &b.body).await?;
    Ok(Json(json!({"edited": id})))
}

async fn delete_post(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    api.node.delete_post(&id).await?;
    Ok(Json(json!({"deleted": id})))
}

async fn comments(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> ApiResult<Vec<types::Comment>> {
    Ok(Json(api.node.comments(&id).await?))
}

async fn comment(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(b): Json<SayBody>,
) -> ApiResult<types::Posted> {
    let id = api.node.comment(&id, &b.body).await?;
    Ok(Json(types::Posted { id }))
}

async fn posts_of(State(api): State<Api>, Path(jid): Path<String>) -> ApiResult<Vec<types::Post>> {
    Ok(Json(api.node.posts_of(&jid).await?))
}

/// A public page: HTML with a policy that allows no script (in the visitor's language, so
/// caches keep one per language).
fn public_answer(kind: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, crate::public::POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::VARY, "Accept-Language"),
        ],
        body,
    )
        .into_response()
}

/// The visitor's language for the public pages.
fn visitor_lang(headers: &HeaderMap) -> crate::public::Lang {
    crate::public::Lang::from_accept(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn no_public_page() -> Response {
    (StatusCode::NOT_FOUND, "No such page.").into_response()
}

async fn public_index(
    State(api): State<Api>,
    Path(handle): Path<String>,
    headers: HeaderMap,
) -> Response {
    match api.node.public_posts(&handle).await {
        Ok(Some((name, jid, posts))) => public_answer(
            "text/html; charset=utf-8",
            crate::public::index(&name, &jid, &posts, visitor_lang(&headers)),
        ),
        Ok(None) => no_public_page(),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn public_post(
    State(api): State<Api>,
    Path((handle, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match api.node.public_posts(&handle).await {
        Ok(Some((name, _, posts))) => match posts.iter().find(|p| p.item_id == id) {
            Some(p) => public_answer(
                "text/html; charset=utf-8",
                crate::public::post(&name, p, visitor_lang(&headers)),
            ),
            None => no_public_page(),
        },
        Ok(None) => no_public_page(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The Atom feed of our public posts; its links name the host the request named (as a
/// reverse proxy passes it on), over https when the proxy says so.
async fn public_atom(
    State(api): State<Api>,
    Path(handle): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto").map(|v| v.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    };
    match api.node.public_posts(&handle).await {
        Ok(Some((name, jid, posts))) => public_answer(
            "application/atom+xml; charset=utf-8",
            crate::public::atom(&name, &jid, &format!("{scheme}://{host}/{handle}/"), &posts),
        ),
        Ok(None) => no_public_page(),
        Err(e) => ApiError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct QrQuery {
    text: String,
}

/// A QR code (SVG) of `text`, e.g. an invitation link to show a phone.
async fn qr(axum::extract::Query(q): axum::extract::Query<QrQuery>) -> Response {
    match qrcode::QrCode::new(q.text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(e) => ApiError(NodeError::BadInput(format!(
            "cannot make a QR code of that: {e}"
        )))
        .into_response(),
    }
}

async fn set_limits(State(api): State<Api>, Json(b): Json<LimitsBody>) -> ApiResult {
    api.node.set_limits(b.download, b.upload).await?;
    Ok(Json(json!({"download": b.download, "upload": b.upload})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A browser polling a node that is restarting as another account used to be sent to the
    /// login screen: the store, already closed, answered "no such session". A store that
    /// cannot answer is now an error (503 for the page: wait), never a "no" (401: log in).
    #[tokio::test]
    async fn a_closed_store_is_not_a_missing_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = spheres_store::Store::open(&dir.path().join("node.db"))
            .await
            .unwrap();
        let cookie = "c".repeat(64);
        store
            .add_session(&access::session_key(&cookie), access::MAX_SESSIONS)
            .await
            .unwrap();
        assert!(
            session_open(&store, &["x".into(), cookie.clone()])
                .await
                .unwrap()
        );
        assert!(!session_open(&store, &["x".into()]).await.unwrap());
        store.close().await;
        assert!(session_open(&store, &[cookie]).await.is_err());
    }
}
