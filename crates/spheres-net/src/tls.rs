//! The TLS client configuration every outgoing connection of the node uses (XMPP servers,
//! trackers and web seeds, the ACME CA): rustls with the ring provider, trusting the system's
//! certificate authorities and those of one PEM file given by the user.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

/// A client configuration trusting the system's authorities and those in `extra_ca` (a PEM
/// file), if given. A system certificate rustls cannot use is skipped; a bad one in
/// `extra_ca` is an error, since the user named it.
pub fn client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("a bad certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("an unusable authority in {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
