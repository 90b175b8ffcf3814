//! Links to a share over HTTP: made, listed and revoked by the person (logged in), opened by
//! anyone who holds one (no login). See `crate::links` for what a link gives and guards.
//!
//! Who sends what here, without a login: a visitor asks for a link's page, gives its password
//! (a form), asks for its files, their thumbnails and the whole share as a zip. Each request
//! checks the token, the link's state and, on a guarded link, the visitor's pass; wrong
//! passwords are throttled per link and address, and at most `access::HASHING` checks run at
//! once (Argon2 is memory-hard).

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::{Api, ApiResult, LinkBody, cookies_named, types, visitor_lang};
use crate::links::{Closed, OpenLink, PASS_COOKIE};
use crate::public::Lang;

pub(super) async fn list(State(api): State<Api>) -> ApiResult<Vec<types::LinkInfo>> {
    Ok(Json(api.node.links().await?))
}

pub(super) async fn create(
    State(api): State<Api>,
    Json(b): Json<types::NewLinkBody>,
) -> ApiResult<types::LinkInfo> {
    Ok(Json(
        api.node
            .create_link(
                &b.sphere,
                &b.share,
                b.expires_in,
                b.password.as_deref().filter(|p| !p.is_empty()),
                b.max_opens,
                b.direct,
            )
            .await?,
    ))
}

pub(super) async fn revoke(
    State(api): State<Api>,
    Json(b): Json<LinkBody>,
) -> ApiResult<types::LinkInfo> {
    Ok(Json(api.node.revoke_link(&b.link).await?))
}

/// The routes anyone may ask for.
pub(super) fn public(api: Api) -> Router {
    Router::new()
        .route("/l/sw.js", get(service_worker))
        .route("/l/{token}", get(page).post(enter))
        .route("/l/{token}/tracker", get(tracker))
        .route("/l/{token}/torrent", get(torrent))
        .route("/l/{token}/seed", get(seed_one).options(preflight))
        .route("/l/{token}/seed/{*path}", get(seed).options(preflight))
        .route("/l/{token}/files/{index}", get(file))
        .route("/l/{token}/thumbs/{index}", get(thumb))
        .route("/l/{token}/zip", get(zip))
        // A password form is a few bytes.
        .layer(DefaultBodyLimit::max(4096))
        .with_state(api)
}

fn passes(headers: &HeaderMap) -> Vec<String> {
    cookies_named(headers, PASS_COOKIE)
}

/// A link's page: its files when the visitor may see them; else the password it asks, or,
/// on a link for a number of browsers, a button that counts this one (only a person's click
/// counts: never a preview, a prefetch or a HEAD); else why it gives nothing.
async fn page(State(api): State<Api>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let lang = visitor_lang(&headers);
    let open = match api.node.open_link(&token, &passes(&headers)).await {
        Ok(o) => o,
        Err(why) => return closed(lang, why),
    };
    if open.admitted {
        return viewer(lang, &open);
    }
    if open.row.password.is_some() {
        return answer(
            StatusCode::OK,
            crate::links::password_page(lang, &open.row.token, false),
        );
    }
    if open.row.max_opens.is_some_and(|m| open.row.opens >= m) {
        return closed(lang, Closed::UsedUp);
    }
    answer(
        StatusCode::OK,
        crate::links::open_page(lang, &open.row.token, &open.name),
    )
}

fn viewer(lang: Lang, open: &OpenLink) -> Response {
    let nonce = (!open.sealed && !open.row.direct).then(|| hex::encode(rand::random::<[u8; 16]>()));
    let mut r = answer(
        StatusCode::OK,
        crate::links::viewer(
            lang,
            &open.row.token,
            &open.name,
            &open.files(),
            nonce.as_deref(),
        ),
    );
    if let Some(policy) = nonce
        .map(|n| crate::links::p2p_policy(&n))
        .and_then(|p| HeaderValue::from_str(&p).ok())
    {
        r.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    r
}

/// The service worker of links' pages (scope `/l/`): see `ui/link/sw.js`.
async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        spheres_web::LINK_WORKER,
    )
        .into_response()
}

#[derive(Deserialize)]
struct EnterForm {
    #[serde(default)]
    password: String,
}

/// A visitor enters a guarded link: with its password if it has one (right: a pass and back
/// to the page; wrong: the form again, 403; too many wrong ones from this address or for
/// this link, 429), counted if it opens for a number of browsers (410 past it).
async fn enter(
    State(api): State<Api>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<EnterForm>,
) -> Response {
    let lang = visitor_lang(&headers);
    let open = match api.node.open_link(&token, &passes(&headers)).await {
        Ok(o) => o,
        Err(why) => return closed(lang, why),
    };
    if !open.row.guarded() || (open.admitted && open.row.password.is_none()) {
        return back_to(&open, None);
    }
    if let Some(stored) = open.row.password.clone() {
        if let Err(wait) = api.access.link_attempt(&open.row.token, peer.ip()) {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let mut r = answer(
                StatusCode::TOO_MANY_REQUESTS,
                crate::links::too_many_tries(lang, minutes),
            );
            if let Ok(v) = HeaderValue::from_str(&(minutes * 60).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        let permit = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            api.access.hashing.clone().acquire_owned(),
        )
        .await;
        let Ok(Ok(_permit)) = permit else {
            return closed(lang, Closed::Busy);
        };
        if !crate::account::password_matches(stored, &form.password).await {
            return answer(
                StatusCode::FORBIDDEN,
                crate::links::password_page(lang, &open.row.token, true),
            );
        }
        api.access.link_succeeded(&open.row.token, peer.ip());
    }
    let pass = if open.row.max_opens.is_some() {
        api.node.count_visitor(&open.row).await
    } else {
        crate::links::new_pass(&open.row).ok_or(Closed::Busy)
    };
    match pass {
        Ok(p) => back_to(&open, Some(p)),
        Err(why) => closed(lang, why),
    }
}

/// 303 to the link's page, with a pass.
fn back_to(open: &OpenLink, pass: Option<String>) -> Response {
    let mut r = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/l/{}", open.row.token))],
    )
        .into_response();
    if let Some(cookie) =
        pass.and_then(|p| HeaderValue::from_str(&crate::links::pass_cookie(&open.row, &p)).ok())
    {
        r.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A file of a link's share, streamed (ranges, while it downloads) as the node's own player
/// gets it; only the files of that share, only while the link opens (a stream stops when a
/// link closes), never kept in a cache.
async fn file(
    State(api): State<Api>,
    Path((token, index)): Path<(String, usize)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match api
        .node
        .link_stream(&token, &passes(&headers), Some(index), peer.ip())
        .await
    {
        Ok((open, keep_going)) => {
            let engine = api.node.engine();
            private(
                spheres_web::stream(
                    &engine,
                    open.hash,
                    index,
                    &method,
                    &headers,
                    Some(keep_going),
                )
                .await,
            )
        }
        Err(why) => closed(visitor_lang(&headers), why),
    }
}

/// The share's files as one zip under a folder named after it, written as they are read.
async fn zip(
    State(api): State<Api>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match api
        .node
        .link_stream(&token, &passes(&headers), None, peer.ip())
        .await
    {
        Ok((open, keep_going)) => {
            let engine = api.node.engine();
            // The torrent's own name (checked when it was read), not the name announced.
            let folder = folder_name(&open.meta.name);
            private(
                spheres_web::zip_response(&engine, open.hash, &folder, &method, Some(keep_going))
                    .await,
            )
        }
        Err(why) => closed(visitor_lang(&headers), why),
    }
}

/// The link, for what opens it as a torrent (its tracker, torrent and web seed): a visitor
/// let in, and a share that is not sealed (that one opens in the page only).
async fn open_as_torrent(api: &Api, token: &str, headers: &HeaderMap) -> Result<OpenLink, Closed> {
    let open = api.node.open_link(token, &passes(headers)).await?;
    if let Some(why) = not_a_torrent(&open) {
        return Err(why);
    }
    if !open.admitted {
        return Err(Closed::NoPass);
    }
    Ok(open)
}

/// Why a link does not open as a torrent: a sealed share opens in its page only, and a
/// direct link (`--no-p2p`) from the node only.
fn not_a_torrent(open: &OpenLink) -> Option<Closed> {
    if open.sealed {
        Some(Closed::PageOnly)
    } else if open.row.direct {
        Some(Closed::Direct)
    } else {
        None
    }
}

/// WebTorrent's signalling for this link's torrent (a WebSocket): browsers that opened the
/// link find each other here, while the link opens; no other torrent.
async fn tracker(
    State(api): State<Api>,
    Path(token): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let open = match open_as_torrent(&api, &token, &headers).await {
        Ok(o) => o,
        Err(why) => return closed(visitor_lang(&headers), why),
    };
    let hash = open.hash.0;
    let ends = api.node.link_ends(&open.row);
    api.node
        .signalling()
        .accept(ws, Box::new(move |h| *h == hash), ends)
}

/// The link's torrent, for WebTorrent and other clients: the share's info (its info hash),
/// this link's tracker, and this link as its web seed (BEP 19).
async fn torrent(
    State(api): State<Api>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = visitor_lang(&headers);
    let open = match open_as_torrent(&api, &token, &headers).await {
        Ok(o) => o,
        Err(why) => return cors(closed(lang, why)),
    };
    let Some(bytes) = api.node.link_torrent(&open) else {
        return closed(lang, Closed::Busy);
    };
    let disposition = format!(
        "attachment; filename*=UTF-8''{}.torrent",
        percent_encoding::utf8_percent_encode(&open.meta.name, percent_encoding::NON_ALPHANUMERIC)
    );
    cors(private(
        (
            [
                (header::CONTENT_TYPE, "application/x-bittorrent".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            bytes,
        )
            .into_response(),
    ))
}

/// The link as a web seed (BEP 19, as WebTorrent asks): a single file at `seed`, the files
/// of a folder at `seed/NAME/PATH`; padding files are zeros.
async fn seed_one(
    State(api): State<Api>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    seed_file(api, &token, "", peer, &method, &headers).await
}

async fn seed(
    State(api): State<Api>,
    Path((token, path)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    seed_file(api, &token, &path, peer, &method, &headers).await
}

async fn seed_file(
    api: Api,
    token: &str,
    path: &str,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let lang = visitor_lang(headers);
    let (open, keep_going) = match api
        .node
        .link_stream(token, &passes(headers), None, peer.ip())
        .await
    {
        Ok((o, _)) if let Some(why) = not_a_torrent(&o) => return cors(closed(lang, why)),
        Ok(o) => o,
        Err(why) => return cors(closed(lang, why)),
    };
    let Some(index) = open.file_at(path) else {
        return cors(closed(lang, Closed::Unknown));
    };
    let r = match open.meta.files.get(index) {
        Some(f) if f.padding => spheres_web::zeros(f.length, method, headers),
        _ => {
            let engine = api.node.engine();
            spheres_web::stream(&engine, open.hash, index, method, headers, Some(keep_going)).await
        }
    };
    cors(private(r))
}

/// What another origin's page may read: anyone with the link reads it anyway, and no cookie
/// goes with a request from elsewhere (so a guarded link opens nothing there).
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Range, Content-Length, Accept-Ranges"),
    );
    r
}

/// A browser asks whether another origin's page may send a range request.
async fn preflight() -> Response {
    cors(
        (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD"),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, "range, cache-control"),
                (header::ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response(),
    )
}

/// A share's name as one folder's name.
fn folder_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect();
    match n.trim() {
        "" | "." | ".." => "files".to_owned(),
        t => t.to_owned(),
    }
}

/// The thumbnail of a photo of the share; until its file is here, the file itself (which
/// arrives as it is read).
async fn thumb(
    State(api): State<Api>,
    Path((token, index)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Response {
    let lang = visitor_lang(&headers);
    let open = match api.node.open_link(&token, &passes(&headers)).await {
        Ok(o) if o.admitted => o,
        Ok(_) => return closed(lang, Closed::NoPass),
        Err(why) => return closed(lang, why),
    };
    if !open.has_file(index) {
        return closed(lang, Closed::Unknown);
    }
    // A few visitors wait for thumbnails at once; the others get the photo itself.
    static WAITING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);
    let made = match WAITING.try_acquire() {
        Ok(_waiting) => api.node.link_thumbnail(&open, index).await,
        Err(_) => None,
    };
    match made {
        Some(path) => match tokio::fs::read(&path).await {
            Ok(jpeg) => private(
                (
                    [
                        (header::CONTENT_TYPE, "image/jpeg"),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ],
                    jpeg,
                )
                    .into_response(),
            ),
            Err(_) => closed(lang, Closed::Busy),
        },
        None => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/l/{}/files/{index}", open.row.token),
            )],
        )
            .into_response(),
    }
}

/// Never kept in a cache: a revoked link must not live on in one.
fn private(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    r
}

fn answer(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, crate::links::POLICY),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "Accept-Language, Cookie"),
        ],
        [("x-robots-tag", "noindex, nofollow")],
        body,
    )
        .into_response()
}

/// Why a link gives nothing: 404 unknown or no longer shared, 410 expired, revoked or used
/// up, 403 a file without a pass, 503 try again.
fn closed(lang: Lang, why: Closed) -> Response {
    let status = match why {
        Closed::Unknown | Closed::Gone | Closed::PageOnly | Closed::Direct => StatusCode::NOT_FOUND,
        Closed::Expired | Closed::Revoked | Closed::UsedUp => StatusCode::GONE,
        Closed::NoPass => StatusCode::FORBIDDEN,
        Closed::Busy => StatusCode::SERVICE_UNAVAILABLE,
    };
    answer(status, crate::links::closed(lang, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shares_name_makes_one_folder() {
        assert_eq!(folder_name("Lyon été"), "Lyon été");
        assert_eq!(folder_name("../x"), ".._x");
        assert_eq!(folder_name(".."), "files");
        assert_eq!(folder_name(" "), "files");
    }
}
