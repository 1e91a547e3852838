//! TLS for both protocols from one PEM certificate chain and key. Loaded and checked
//! before anything listens: a missing or bad file stops the start, never a fallback
//! to plaintext.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    if !cert.is_file() {
        return Err(Error::input(
            cert.display(),
            "TLS certificate (tls_cert) not found",
        ));
    }
    if !key.is_file() {
        return Err(Error::input(key.display(), "TLS key (tls_key) not found"));
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::input(cert.display(), format!("cannot read TLS certificate: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::input(cert.display(), format!("bad TLS certificate: {e}")))?;
    if chain.is_empty() {
        return Err(Error::input(
            cert.display(),
            "no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::input(
            key.display(),
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            Error::input(
                cert.display(),
                format!(
                    "the certificate and the key {} do not make a TLS identity: {e}",
                    key.display()
                ),
            )
        })?;
    Ok(Arc::new(config))
}
