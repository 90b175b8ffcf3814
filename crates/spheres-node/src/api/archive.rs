//! Export and import over the API: to and from a path on the node's machine (the CLI), or
//! downloaded and uploaded (the page).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Api, ApiResult, PartialFile, receive, types};

/// A file name in the node's data folder for an archive passing through.
fn passing(api: &Api, what: &str) -> std::path::PathBuf {
    let tag: u64 = rand::random();
    api.node
        .settings
        .data_dir
        .join(format!(".{what}-{tag:016x}.tar"))
}

pub(super) async fn export_to(
    State(api): State<Api>,
    Json(b): Json<types::PathBody>,
) -> ApiResult<types::Exported> {
    Ok(Json(api.node.export(&b.path).await?))
}

/// The archive as a download: written in the data folder, opened, unlinked, then streamed
/// (nothing stays behind, even if the download stops).
pub(super) async fn export_download(State(api): State<Api>) -> Result<Response, super::ApiError> {
    let path = passing(&api, "export");
    let guard = PartialFile(Some(path.clone()));
    api.node.export(&path).await?;
    let file = tokio::fs::File::open(&path).await?;
    drop(guard);
    let user = api
        .node
        .me
        .node()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let day = chrono::DateTime::from_timestamp(crate::now_secs(), 0)
        .unwrap_or_default()
        .format("%Y-%m-%d");
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"spheres-{user}-{day}.tar\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

pub(super) async fn import_from(
    State(api): State<Api>,
    Json(b): Json<types::PathBody>,
) -> ApiResult<types::Imported> {
    Ok(Json(api.node.import(&b.path).await?))
}

/// An archive uploaded by the page: kept while it is imported, then removed.
pub(super) async fn import_upload(
    State(api): State<Api>,
    body: Body,
) -> ApiResult<types::Imported> {
    let path = passing(&api, "import");
    let _guard = PartialFile(Some(path.clone()));
    receive(body, &path).await?;
    Ok(Json(api.node.import(&path).await?))
}
