//! A small HTTP/1.1 client for the drill: one keep-alive connection per session,
//! plain or TLS (the cluster's CA and admin client certificate), over hyper's
//! connection API.
//!
//! Invariant: a request is sent again only when it certainly never left this process
//! (the reused connection was already closed, or hyper cancelled it before writing),
//! as Go's transport does for client-go; any other failure is the caller's to count.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::tls::MaybeTlsStream;

/// How one request failed.
#[derive(Debug, Clone)]
pub enum HttpError {
    /// No answer within the request timeout.
    Timeout,
    /// TCP connect, TLS handshake or HTTP handshake failed.
    Connect(String),
    /// The request may have reached the server, but no complete response came back.
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => write!(f, "timeout"),
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Where and how to connect: an address, and TLS or not.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub fn plain(addr: SocketAddr) -> Target {
        Target { addr, tls: None }
    }

    /// TLS with `config`; ALPN is forced to http/1.1.
    pub fn tls(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Target {
        let mut c = (**config).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Target {
            addr,
            tls: Some(Arc::new(c)),
        }
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, HttpError> {
        let fail = |e: &dyn std::fmt::Display| HttpError::Connect(e.to_string());
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| fail(&e))?;
        tcp.set_nodelay(true).map_err(|e| fail(&e))?;
        let io = match &self.tls {
            None => MaybeTlsStream::Plain(tcp),
            Some(config) => {
                let name = ServerName::IpAddress(self.addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| fail(&e))?;
                MaybeTlsStream::Tls(Box::new(tls))
            }
        };
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// One keep-alive connection to a target, reopened when it breaks.
pub struct Session {
    target: Target,
    conn: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Session {
    pub fn new(target: Target) -> Session {
        Session { target, conn: None }
    }

    /// Sends one request and reads the whole response, all within `timeout`.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let run = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Failed(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(HttpError::Timeout)
            }
        }
    }

    /// Sends a request and returns the response with its body still streaming (a
    /// watch). The connection is given up to the stream.
    pub async fn open_stream(
        &mut self,
        path: &str,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, HttpError> {
        let result = tokio::time::timeout(timeout, self.send(Method::GET, path, None)).await;
        self.conn = None;
        match result {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>, HttpError> {
        // At most two attempts: the second only when the first certainly was not sent.
        for attempt in 0..2 {
            let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
            if !reused {
                self.conn = Some(self.target.connect().await?);
            }
            let Some(sender) = self.conn.as_mut() else {
                continue;
            };
            if sender.ready().await.is_err() {
                // Closed by the server while idle: nothing was sent on it.
                self.conn = None;
                if reused && attempt == 0 {
                    continue;
                }
                return Err(HttpError::Failed("connection closed before sending".into()));
            }
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(http::header::HOST, self.target.addr.to_string())
                .header(http::header::ACCEPT, "application/json");
            if body.is_some() {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| HttpError::Failed(e.to_string()))?;
            match sender.send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_canceled() && reused && attempt == 0 => {
                    self.conn = None;
                }
                Err(e) => {
                    self.conn = None;
                    return Err(HttpError::Failed(e.to_string()));
                }
            }
        }
        Err(HttpError::Failed("connection closed before sending".into()))
    }
}
