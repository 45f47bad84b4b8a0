//! The audit stage of the filter chain: every request gets an `Audit-Id` (echoed in
//! the response header, as kube-apiserver does) and, with `--audit-log-path`, one
//! `audit.k8s.io/v1` `Event` per request written as a JSON line when the response
//! starts (stage `ResponseComplete`, or `ResponseStarted` for watches and other
//! long-running requests, whose end the log does not wait for).
//!
//! Without `--audit-policy-file` (not supported yet) every request is logged at the
//! `Metadata` level: who, what, which object, the response code — never bodies, so
//! secrets never reach the log.
//!
//! Invariant: one line per request, written whole under a lock (lines never
//! interleave); a failing log write is reported and never fails the request.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::request_info::RequestInfo;
use crate::authn::UserInfo;

/// Where audit events go.
pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AuditLog {
    /// Opens `--audit-log-path`: `-` is standard output, anything else a file
    /// appended to (created with its directory when missing).
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        Ok(AuditLog {
            out: Mutex::new(out),
        })
    }

    /// Writes one event line.
    pub fn write(&self, event: &Value) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "could not encode an audit event");
                return;
            }
        };
        line.push(b'\n');
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
            metrics::counter!("apiserver_audit_error_total", "plugin" => "log").increment(1);
            tracing::warn!(error = %e, "could not write an audit event");
        } else {
            metrics::counter!("apiserver_audit_event_total").increment(1);
        }
    }
}

/// What an event needs from the request as it arrived (the request itself moves on
/// down the chain).
pub struct Arrival {
    /// When the request arrived, RFC 3339 with microseconds.
    pub received: String,
    pub uri: http::Uri,
    pub user_agent: Option<String>,
    pub source_ip: Option<std::net::IpAddr>,
}

impl Arrival {
    pub fn of<B>(req: &http::Request<B>) -> Arrival {
        Arrival {
            received: crate::registry::meta::now_rfc3339_micro(),
            uri: req.uri().clone(),
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            source_ip: req
                .extensions()
                .get::<crate::server::RemoteAddr>()
                .map(|r| r.0.ip()),
        }
    }
}

/// What the chain learns about a request while serving it.
pub struct Record<'a> {
    pub audit_id: &'a str,
    pub info: &'a RequestInfo,
    pub arrival: &'a Arrival,
    pub user: Option<&'a UserInfo>,
    pub code: u16,
    pub long_running: bool,
}

/// The `audit.k8s.io/v1` Event of a finished (or started, when long-running) request.
pub fn event(r: &Record<'_>) -> Value {
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": r.audit_id,
        "stage": if r.long_running { "ResponseStarted" } else { "ResponseComplete" },
        "requestURI": r.arrival.uri.to_string(),
        "verb": r.info.verb,
        "responseStatus": {"metadata": {}, "code": r.code},
        "requestReceivedTimestamp": r.arrival.received,
        "stageTimestamp": crate::registry::meta::now_rfc3339_micro(),
    });
    let user = match r.user {
        Some(u) => {
            let mut user = json!({"username": u.name, "groups": u.groups});
            if !u.uid.is_empty() {
                user["uid"] = json!(u.uid);
            }
            user
        }
        None => json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
    };
    ev["user"] = user;
    if let Some(ip) = r.arrival.source_ip {
        ev["sourceIPs"] = json!([ip.to_string()]);
    }
    if let Some(ua) = &r.arrival.user_agent {
        ev["userAgent"] = json!(ua);
    }
    if r.info.is_resource_request {
        let mut obj = json!({"resource": r.info.resource, "apiVersion": r.info.api_version});
        if !r.info.api_group.is_empty() {
            obj["apiGroup"] = json!(r.info.api_group);
        }
        for (field, value) in [
            ("namespace", &r.info.namespace),
            ("name", &r.info.name),
            ("subresource", &r.info.subresource),
        ] {
            if !value.is_empty() {
                obj[field] = json!(value);
            }
        }
        ev["objectRef"] = obj;
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_the_user_the_object_and_the_code() {
        let info = super::super::request_info::parse(
            &http::Method::GET,
            "/api/v1/namespaces/default/configmaps/cm1",
            None,
        );
        let user = UserInfo {
            name: "kubernetes-admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        let uri: http::Uri = "/api/v1/namespaces/default/configmaps/cm1"
            .parse()
            .expect("uri");
        let arrival = Arrival {
            received: "2026-11-29T10:00:00.000000Z".into(),
            uri,
            user_agent: Some("kubectl/v1.32.0".into()),
            source_ip: Some("127.0.0.1".parse().expect("ip")),
        };
        let ev = event(&Record {
            audit_id: "abc",
            info: &info,
            arrival: &arrival,
            user: Some(&user),
            code: 404,
            long_running: false,
        });
        assert_eq!(ev["auditID"], "abc");
        assert_eq!(ev["stage"], "ResponseComplete");
        assert_eq!(ev["verb"], "get");
        assert_eq!(ev["user"]["username"], "kubernetes-admin");
        assert_eq!(ev["objectRef"]["resource"], "configmaps");
        assert_eq!(ev["objectRef"]["namespace"], "default");
        assert_eq!(ev["objectRef"]["name"], "cm1");
        assert_eq!(ev["responseStatus"]["code"], 404);
        assert_eq!(ev["sourceIPs"][0], "127.0.0.1");
    }

    #[test]
    fn events_are_appended_as_whole_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit/audit.log");
        let log = AuditLog::open(&path).expect("open");
        log.write(&json!({"n": 1}));
        log.write(&json!({"n": 2}));
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines, vec![json!({"n": 1}), json!({"n": 2})]);
    }
}
