//! The HTTP/2 client of `bench k8s`: a few TLS connections to the API server, each
//! carrying many concurrent streams, and one-call helpers for JSON requests.
//!
//! Invariant: every connection has negotiated `h2` by ALPN before it is handed out,
//! and a request ends either in a complete response (any status) or in a `CallError`,
//! within the per-request timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::bench::BenchError;

/// One HTTP/2 connection; cloning shares it.
pub type Conn = http2::SendRequest<Full<Bytes>>;

/// A complete response.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A one-line description for error logs: status and the start of the body.
    pub fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let mut text: String = body.chars().take(400).collect();
        if body.len() > text.len() {
            text.push('…');
        }
        format!("{}: {}", self.status, text.trim())
    }
}

/// Why a request produced no response.
#[derive(Debug)]
pub enum CallError {
    /// No complete response within the timeout.
    Timeout,
    /// The connection or the stream failed.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => write!(f, "timed out"),
            CallError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// The API server: where it is, and how to reach it.
#[derive(Clone)]
pub struct Server {
    /// `https://host:port`, without a trailing slash.
    pub base: String,
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Server {
    /// Checks `url` (must be https) and keeps the TLS configuration.
    pub fn new(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Server, BenchError> {
        let bad = |reason: &str| BenchError::Endpoint {
            endpoint: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("the Kubernetes API is served over https only"));
        }
        let host = uri
            .host()
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        Ok(Server {
            base: format!(
                "https://{}",
                uri.authority().map(|a| a.as_str()).unwrap_or("")
            ),
            host,
            port,
            tls,
            timeout,
        })
    }

    /// Opens one connection: TCP, TLS (h2 by ALPN), HTTP/2 handshake.
    pub async fn connect(&self) -> Result<Conn, BenchError> {
        let fail = |reason: String| BenchError::Endpoint {
            endpoint: self.base.clone(),
            reason,
        };
        let open = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| fail(format!("connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| fail(format!("nodelay: {e}")))?;
            let name = ServerName::try_from(self.host.clone())
                .map_err(|e| fail(format!("server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| fail(format!("TLS: {e}")))?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(fail("the server did not agree to HTTP/2 (ALPN h2)".into()));
            }
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(tls))
                .await
                .map_err(|e| fail(format!("HTTP/2 handshake: {e}")))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "bench k8s: connection ended");
                }
            });
            Ok(sender)
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| fail("connect timed out".into()))?
    }

    /// Opens `n` connections.
    pub async fn connect_many(&self, n: usize) -> Result<Vec<Conn>, BenchError> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(self.connect().await?);
        }
        Ok(conns)
    }

    /// Sends one request and reads the whole response, within the timeout.
    pub async fn call(
        &self,
        conn: &Conn,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Answer, CallError> {
        let run = async {
            let response = self.send(conn, method, path, body).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Transport(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| CallError::Timeout)?
    }

    /// Sends a request and returns the response with its body still streaming (a
    /// watch); only the response head is awaited within the timeout.
    pub async fn open_stream(
        &self,
        conn: &Conn,
        path: &str,
    ) -> Result<http::Response<Incoming>, CallError> {
        tokio::time::timeout(self.timeout, self.send(conn, Method::GET, path, None))
            .await
            .map_err(|_| CallError::Timeout)?
    }

    async fn send(
        &self,
        conn: &Conn,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<http::Response<Incoming>, CallError> {
        let mut sender = conn.clone();
        sender
            .ready()
            .await
            .map_err(|e| CallError::Transport(format!("connection: {e}")))?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header(http::header::ACCEPT, "application/json");
        let payload = match body {
            Some((bytes, content_type)) => {
                request = request.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| CallError::Transport(e.to_string()))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| CallError::Transport(e.to_string()))
    }
}
