//! Where and as whom `bench k8s` connects: the API server URL and the rustls client
//! configuration, read from a kubeconfig (YAML) or from --server/--cacert/--cert/--key.
//!
//! Invariant: the TLS configuration always verifies the server against an explicit CA
//! (no system trust store) and offers only `h2` by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::bench::BenchError;

/// PEM material, each either inline (`*-data`, base64 in a kubeconfig) or read from a file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// API server URL, `https://host:port`.
    pub server: String,
    /// PEM bundle of the CA that signs the serving certificate.
    pub ca_pem: Vec<u8>,
    /// PEM client certificate chain, when the user has one.
    pub cert_pem: Option<Vec<u8>>,
    /// PEM private key of `cert_pem`.
    pub key_pem: Option<Vec<u8>>,
}

/// The subset of a kubeconfig that `bench k8s` reads.
#[derive(Debug, Deserialize)]
struct KubeConfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default, rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    item: T,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    server: String,
    #[serde(default, rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(default, rename = "certificate-authority")]
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    #[serde(default, rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(default, rename = "client-certificate")]
    cert_file: Option<PathBuf>,
    #[serde(default, rename = "client-key-data")]
    key_data: Option<String>,
    #[serde(default, rename = "client-key")]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

/// Reads the current context of the kubeconfig at `path` (or its only/first cluster and
/// user when it names no context).
pub fn from_kubeconfig(path: &Path) -> Result<Credentials, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir).map_err(|reason| BenchError::TlsFile {
        path: path.to_owned(),
        reason,
    })
}

/// Reads credentials from PEM files named on the command line.
pub fn from_files(
    server: &str,
    cacert: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Credentials, BenchError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| file_error(p, e));
    Ok(Credentials {
        server: server.to_owned(),
        ca_pem: read(cacert)?,
        cert_pem: cert.map(read).transpose()?,
        key_pem: key.map(read).transpose()?,
    })
}

/// Parses kubeconfig YAML; relative file paths resolve against `dir`.
fn parse(text: &str, dir: &Path) -> Result<Credentials, String> {
    let config: KubeConfig =
        serde_saphyr::from_str(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
    let context = match &config.current_context {
        Some(name) if !name.is_empty() => Some(
            config
                .contexts
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| format!("current-context {name:?} is not in contexts"))?,
        ),
        _ => config.contexts.first(),
    };
    let cluster = match context {
        Some(c) => config
            .clusters
            .iter()
            .find(|n| n.name == c.item.cluster)
            .ok_or_else(|| format!("cluster {:?} is not in clusters", c.item.cluster))?,
        None => config.clusters.first().ok_or("no cluster in it")?,
    };
    let user = match context.and_then(|c| c.item.user.as_ref()) {
        Some(name) => Some(
            config
                .users
                .iter()
                .find(|n| &n.name == name)
                .ok_or_else(|| format!("user {name:?} is not in users"))?,
        ),
        None => config.users.first(),
    };
    let cluster = &cluster.item;
    let ca_pem = pem(&cluster.ca_data, &cluster.ca_file, dir)?
        .ok_or("the cluster has no certificate-authority(-data)")?;
    let (cert_pem, key_pem) = match user {
        Some(u) => (
            pem(&u.item.cert_data, &u.item.cert_file, dir)?,
            pem(&u.item.key_data, &u.item.key_file, dir)?,
        ),
        None => (None, None),
    };
    Ok(Credentials {
        server: cluster.server.trim_end_matches('/').to_owned(),
        ca_pem,
        cert_pem,
        key_pem,
    })
}

/// Inline base64 data wins over a file, as in kubectl.
fn pem(
    data: &Option<String>,
    file: &Option<PathBuf>,
    dir: &Path,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = data {
        let compact: String = data.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map(Some)
            .map_err(|e| format!("bad base64: {e}"));
    }
    match file {
        Some(f) => {
            let path = if f.is_absolute() {
                f.clone()
            } else {
                dir.join(f)
            };
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        None => Ok(None),
    }
}

/// Builds the rustls client configuration (ring provider, ALPN h2) from `creds`.
pub fn client_config(creds: &Credentials) -> Result<Arc<rustls::ClientConfig>, BenchError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(&creds.ca_pem, "certificate authority")? {
        roots.add(cert)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&creds.cert_pem, &creds.key_pem) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certs(cert, "client certificate")?, private_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(BenchError::InvalidArgs(
                "a client certificate needs its key, and a key its certificate".into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, BenchError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BenchError::InvalidArgs(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(BenchError::InvalidArgs(format!(
            "{what}: no PEM certificate"
        )));
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, BenchError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| BenchError::InvalidArgs(format!("client key: {e}")))?
        .ok_or_else(|| BenchError::InvalidArgs("client key: no PEM private key".into()))
}

fn file_error(path: &Path, e: std::io::Error) -> BenchError {
    BenchError::TlsFile {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_kubeconfig_parses() {
        let text = crate::pki::kubeconfig(
            "https://127.0.0.1:6443",
            "CA PEM",
            "CERT PEM",
            "KEY PEM",
            "admin",
        );
        let creds = parse(&text, Path::new("/nonexistent")).expect("parses");
        assert_eq!(
            creds,
            Credentials {
                server: "https://127.0.0.1:6443".into(),
                ca_pem: b"CA PEM".to_vec(),
                cert_pem: Some(b"CERT PEM".to_vec()),
                key_pem: Some(b"KEY PEM".to_vec()),
            }
        );
    }

    #[test]
    fn files_resolve_against_the_kubeconfig_directory_and_contexts_are_followed() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("ca.crt"), "FILE CA").expect("write");
        let text = "
clusters:
- name: a
  cluster: {server: 'https://a:1', certificate-authority-data: QQ==}
- name: b
  cluster: {server: 'https://b:2/', certificate-authority: ca.crt}
users:
- name: u
  user: {}
contexts:
- name: ctx
  context: {cluster: b, user: u}
current-context: ctx
";
        let creds = parse(text, dir.path()).expect("parses");
        assert_eq!(creds.server, "https://b:2");
        assert_eq!(creds.ca_pem, b"FILE CA");
        assert_eq!(creds.cert_pem, None);
        assert!(parse("current-context: missing\n", dir.path()).is_err());
    }
}
