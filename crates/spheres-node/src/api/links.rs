//! Links to a share over HTTP: made, listed and revoked by the person (logged in), opened by
//! anyone who holds one (no login). See `crate::links` for what a link gives and guards.
//!
//! Who sends what here, without a login: a visitor asks for a link's page, gives its password
//! (a form), asks for its files, their thumbnails and the whole share as a zip. Each request
//! checks the token, the link's state and, on a guarded link, the visitor's pass; wrong
//! passwords are throttled per link and address, and at most `access::HASHING` checks run at
//! once (Argon2 is memory-hard).

use std::net::SocketAddr;

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
        .route("/l/{token}", get(page).post(password))
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

/// A link's page: its files when the visitor may see them; else the password it asks, or a
/// count of one more browser (with its pass); else why it gives nothing.
async fn page(State(api): State<Api>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let lang = visitor_lang(&headers);
    let open = match api.node.open_link(&token, &passes(&headers)).await {
        Ok(o) => o,
        Err(why) => return closed(lang, why),
    };
    if open.admitted {
        return viewer(lang, &open, None);
    }
    if open.row.password.is_some() {
        return answer(
            StatusCode::OK,
            crate::links::password_page(lang, &open.row.token, false),
        );
    }
    match api.node.count_visitor(&open.row).await {
        Ok(pass) => viewer(lang, &open, Some(pass)),
        Err(why) => closed(lang, why),
    }
}

fn viewer(lang: Lang, open: &OpenLink, pass: Option<String>) -> Response {
    let mut r = answer(
        StatusCode::OK,
        crate::links::viewer(lang, &open.row.token, &open.name, &open.files()),
    );
    if let Some(cookie) =
        pass.and_then(|p| HeaderValue::from_str(&crate::links::pass_cookie(&open.row, &p)).ok())
    {
        r.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    r
}

#[derive(Deserialize)]
struct PasswordForm {
    password: String,
}

/// A password given on a link's page: right, a pass and back to the page; wrong, the form
/// again (403); too many wrong ones from this address or for this link, 429.
async fn password(
    State(api): State<Api>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let lang = visitor_lang(&headers);
    let open = match api.node.open_link(&token, &[]).await {
        Ok(o) => o,
        Err(why) => return closed(lang, why),
    };
    let Some(stored) = open.row.password.clone() else {
        return back_to(&open, None);
    };
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
    method: Method,
    headers: HeaderMap,
) -> Response {
    match api
        .node
        .link_stream(&token, &passes(&headers), Some(index))
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
    method: Method,
    headers: HeaderMap,
) -> Response {
    match api.node.link_stream(&token, &passes(&headers), None).await {
        Ok((open, keep_going)) => {
            let engine = api.node.engine();
            let folder = folder_name(&open.name);
            private(
                spheres_web::zip_response(&engine, open.hash, &folder, &method, Some(keep_going))
                    .await,
            )
        }
        Err(why) => closed(visitor_lang(&headers), why),
    }
}

/// A share's name as one folder's name.
fn folder_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
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
    match api.node.link_thumbnail(&open, index).await {
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
        Closed::Unknown | Closed::Gone => StatusCode::NOT_FOUND,
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
