//! Opens the benchmark's HTTP/2 connections to etcd v3 endpoints, plain or TLS.
//!
//! Invariant: connection `j` goes to endpoint `j % endpoints`, and every connection is
//! established before the caller measures anything, so a bad endpoint fails the run
//! up front instead of showing up as errors in the result.

use std::fs::File;
use std::future::Future;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::error::BenchError;
use crate::etcd::proto::etcdserverpb::{kv_client::KvClient, RangeRequest};

/// Client-side TLS material, as named on the command line.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// PEM bundle of the CAs that sign the servers' certificates.
    pub cacert: Option<PathBuf>,
    /// PEM client certificate chain, for servers that require client auth.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

/// Normalises the endpoint list: trims entries, drops empty ones and prefixes a bare
/// `host:port` with `http://`.
pub fn normalize_endpoints(raw: &[String]) -> Result<Vec<String>, BenchError> {
    let endpoints: Vec<String> = raw
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            if e.contains("://") {
                e.to_owned()
            } else {
                format!("http://{e}")
            }
        })
        .collect();
    if endpoints.is_empty() {
        return Err(BenchError::InvalidArgs("--endpoints is empty".into()));
    }
    for e in &endpoints {
        let uri: Uri = e
            .parse()
            .map_err(|err: http::uri::InvalidUri| BenchError::Endpoint {
                endpoint: e.clone(),
                reason: err.to_string(),
            })?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(BenchError::Endpoint {
                    endpoint: e.clone(),
                    reason: "scheme must be http or https".into(),
                })
            }
        }
        if uri.host().is_none() {
            return Err(BenchError::Endpoint {
                endpoint: e.clone(),
                reason: "no host".into(),
            });
        }
    }
    Ok(endpoints)
}

/// Opens `conns` connections spread round-robin over `endpoints`, and proves each
/// one with a serializable single-key Range (so a refused client certificate or a
/// server that is not etcd fails here, not as errors of the measured phase).
pub async fn connect_all(
    endpoints: &[String],
    conns: usize,
    tls: &TlsFiles,
    connect_timeout: Duration,
) -> Result<Vec<Channel>, BenchError> {
    let needs_tls = endpoints.iter().any(|e| e.starts_with("https://"));
    let tls_config = if needs_tls {
        Some(Arc::new(client_config(tls)?))
    } else {
        if tls.cacert.is_some() || tls.cert.is_some() {
            tracing::warn!("--cacert/--cert given but no endpoint is https://; ignoring them");
        }
        None
    };
    let mut channels = Vec::with_capacity(conns);
    for j in 0..conns {
        let endpoint = &endpoints[j % endpoints.len()];
        let builder = Endpoint::from_shared(endpoint.clone())
            .map_err(|source| BenchError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout);
        let connected = match (&tls_config, endpoint.starts_with("https://")) {
            (Some(config), true) => {
                builder
                    .connect_with_connector(TlsConnector {
                        config: Arc::clone(config),
                    })
                    .await
            }
            _ => builder.connect().await,
        };
        let channel = connected.map_err(|source| BenchError::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
        probe(endpoint, channel.clone(), connect_timeout).await?;
        channels.push(channel);
    }
    Ok(channels)
}

async fn probe(endpoint: &str, channel: Channel, timeout: Duration) -> Result<(), BenchError> {
    let request = RangeRequest {
        key: Bytes::from_static(b"kuberaft-bench-probe"),
        serializable: true,
        ..RangeRequest::default()
    };
    let failed = |status: Status| BenchError::Probe {
        endpoint: endpoint.to_owned(),
        status: Box::new(status),
    };
    tokio::time::timeout(timeout, KvClient::new(channel).range(request))
        .await
        .map_err(|_| failed(Status::deadline_exceeded("no answer within --timeout")))?
        .map_err(failed)?;
    Ok(())
}

/// Builds the rustls client configuration (ring provider, ALPN h2) from the files.
fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, BenchError> {
    let Some(cacert) = &files.cacert else {
        return Err(BenchError::InvalidArgs(
            "an https:// endpoint needs --cacert (no system trust store is used)".into(),
        ));
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(cacert)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(BenchError::InvalidArgs(
                "--cert and --key go together".into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn open(path: &Path) -> Result<BufReader<File>, BenchError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|err| BenchError::TlsFile {
            path: path.to_owned(),
            reason: err.to_string(),
        })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, BenchError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| BenchError::TlsFile {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(BenchError::TlsFile {
            path: path.to_owned(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, BenchError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|err| BenchError::TlsFile {
            path: path.to_owned(),
            reason: err.to_string(),
        })?
        .ok_or_else(|| BenchError::TlsFile {
            path: path.to_owned(),
            reason: "no PEM private key in it".into(),
        })
}

/// A tonic connector that dials TCP and runs a rustls handshake, verifying the
/// server's name (DNS name or IP address) taken from the endpoint URL.
#[derive(Clone)]
struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
}

type TlsIo = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let invalid =
                |reason: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, reason);
            let host = uri
                .host()
                .ok_or_else(|| invalid(format!("{uri}: no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host).map_err(|err| invalid(err.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        let got = normalize_endpoints(&[
            " 127.0.0.1:2379".into(),
            "".into(),
            "https://[::1]:2379".into(),
        ])
        .expect("valid");
        assert_eq!(got, vec!["http://127.0.0.1:2379", "https://[::1]:2379"]);
        assert!(normalize_endpoints(&["ftp://x:1".into()]).is_err());
        assert!(normalize_endpoints(&[]).is_err());
    }
}
