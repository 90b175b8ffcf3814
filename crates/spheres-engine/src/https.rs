//! The HTTP client of trackers, HTTPS included: the node's TLS client configuration
//! (`spheres_net::tls`), trusting the system's certificate authorities and any the engine was
//! given.

use std::path::Path;

/// A client for trackers and web seeds; `extra_ca`: a PEM file of authorities to trust
/// besides the system's; `redirects`: which redirects it follows.
pub(crate) fn client(
    extra_ca: Option<&Path>,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, String> {
    let tls = spheres_net::tls::client_config(extra_ca)?;
    reqwest::Client::builder()
        .redirect(redirects)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}
