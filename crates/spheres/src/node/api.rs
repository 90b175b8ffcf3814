//! The node's JSON API, on the same port as the web interface. Every `/api/` request needs
//! `Authorization: Bearer TOKEN`, the token the node writes to DATA/node.json (mode 0600) at
//! start; the web interface will get its own login (cookies) on top.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::Node;

#[derive(Clone)]
struct Api {
    node: Arc<Node>,
    token: Arc<String>,
}

struct ApiError(anyhow::Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = format!("{:#}", self.0);
        let status =
            if text.contains("there is no sphere") || text.contains("no pending invitation") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
        (status, Json(json!({"error": text}))).into_response()
    }
}

impl<E: Into<anyhow::Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(api): State<Api>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), api.token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "missing or wrong API token (it is in the node's node.json)"})),
        )
            .into_response();
    }
    next.run(req).await
}

pub fn router(node: Arc<Node>, token: String) -> Router {
    let api = Api {
        node,
        token: Arc::new(token),
    };
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
        .route("/spheres/{name}/fetch", post(fetch))
        .route("/invites", get(invites))
        .route("/invites/join", post(join))
        .route("/household/users", post(add_user))
        .route_layer(middleware::from_fn_with_state(api.clone(), auth))
        .with_state(api);
    Router::new().route("/", get(home)).nest("/api", routes)
}

async fn home() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=en><meta charset=utf-8><title>spheres</title>\
         <body style='font-family:sans-serif;max-width:40em;margin:3em auto'>\
         <h1>spheres is running</h1><p>This node is up. The web interface is on its way; \
         meanwhile use the command line: <code>spheres status</code>, \
         <code>spheres sphere create NAME</code>, <code>spheres share NAME PATH</code>.</p></body></html>",
    )
}

async fn status(State(api): State<Api>) -> ApiResult {
    Ok(Json(api.node.status().await?))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
struct JidBody {
    jid: String,
}

#[derive(Deserialize)]
struct PathBody {
    path: PathBuf,
}

#[derive(Deserialize)]
struct PolicyBody {
    policy: String,
}

#[derive(Deserialize)]
struct FetchBody {
    share: String,
}

#[derive(Deserialize)]
struct JoinBody {
    invite: String,
}

#[derive(Deserialize)]
struct UserBody {
    user: String,
    password: String,
}

async fn list_spheres(State(api): State<Api>) -> ApiResult {
    Ok(Json(json!(api.node.list_spheres().await?)))
}

async fn create_sphere(State(api): State<Api>, Json(b): Json<NameBody>) -> ApiResult {
    Ok(Json(json!(api.node.create_sphere(&b.name).await?)))
}

async fn members(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(api.node.members(&name).await?))
}

async fn invite(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<JidBody>,
) -> ApiResult {
    api.node.invite(&name, &b.jid).await?;
    Ok(Json(json!({"invited": b.jid, "sphere": name})))
}

async fn invite_link(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let link = api.node.invite_link(&name).await?;
    Ok(Json(json!({"link": link, "sphere": name})))
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

async fn shares(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(api.node.shares(&name).await?))
}

async fn share(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(b): Json<PathBody>,
) -> ApiResult {
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
) -> ApiResult {
    Ok(Json(api.node.fetch(&name, &b.share).await?))
}

async fn invites(State(api): State<Api>) -> ApiResult {
    Ok(Json(json!(api.node.invites().await?)))
}

async fn join(State(api): State<Api>, Json(b): Json<JoinBody>) -> ApiResult {
    Ok(Json(json!(api.node.join(&b.invite).await?)))
}

async fn add_user(State(api): State<Api>, Json(b): Json<UserBody>) -> ApiResult {
    let jid = api.node.add_household_user(&b.user, &b.password).await?;
    Ok(Json(json!({"jid": jid})))
}
