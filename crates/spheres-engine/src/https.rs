//! The HTTP client of trackers, HTTPS included: rustls with the ring provider (as spheres-xmpp
//! uses), trusting the system's certificate authorities and any the engine was given.

use std::path::Path;
use std::sync::Arc;

/// A client for trackers and web seeds; `extra_ca`: a PEM file of authorities to trust
/// besides the system's; `redirects`: which redirects it follows.
pub(crate) fn client(
    extra_ca: Option<&Path>,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, not fatal.
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("a bad certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("an unusable authority in {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .redirect(redirects)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}
