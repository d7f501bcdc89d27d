//! The bench's own certificate authority and the server's certificate for
//! `*.eyeballs.test`, made fresh for each run, and the clients' trust in it.

use crate::server::ZONE;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("making the bench's certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("the server's TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The server side and the CA file a client is told to trust.
pub struct BenchTls {
    pub server: Arc<rustls::ServerConfig>,
    pub ca_pem: String,
}

pub fn make() -> Result<BenchTls, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "v6scope eyeballs bench CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::new(vec![ZONE.to_string(), format!("*.{ZONE}")])?;
    leaf_params.distinguished_name.push(DnType::CommonName, ZONE);
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // The bench's web server speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(BenchTls {
        server: Arc::new(server),
        ca_pem: ca.pem(),
    })
}

/// Gives a client namespace a trust store with the bench's CA added:
/// `ip netns exec` mounts `/etc/netns/NS/ssl` over `/etc/ssl`, where
/// OpenSSL (curl, wget, python) looks. Returns the CA file's path for
/// clients told by flag (`{ca}` in a command).
pub fn trust_in_namespace(namespace: &str, ca_pem: &str, workdir: &Path) -> Result<PathBuf, TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    let ssl = PathBuf::from(format!("/etc/netns/{namespace}/ssl"));
    std::fs::create_dir_all(&ssl).map_err(io(&ssl))?;
    // The public half only: the trust store and OpenSSL's configuration.
    for part in ["/etc/ssl/certs", "/etc/ssl/openssl.cnf"] {
        let status = std::process::Command::new("cp")
            .args(["-a", part])
            .arg(&ssl)
            .status()
            .map_err(io(&ssl))?;
        if !status.success() {
            return Err(TlsError::Io {
                path: ssl,
                source: std::io::Error::other(format!("cp -a {part} failed")),
            });
        }
    }
    let bundle = ssl.join("certs/ca-certificates.crt");
    let mut all = std::fs::read_to_string(&bundle).unwrap_or_default();
    all.push_str(ca_pem);
    // The bundle may be a symlink into the host's tree: replace, never write through.
    let _ = std::fs::remove_file(&bundle);
    std::fs::write(&bundle, all).map_err(io(&bundle))?;
    let ca_file = workdir.join("bench-ca.pem");
    std::fs::write(&ca_file, ca_pem).map_err(io(&ca_file))?;
    Ok(ca_file)
}
