//! API errors as `metav1.Status`, with kube-apiserver's codes, reasons and messages.
//!
//! Invariant: every failed request, whatever layer refused it, is answered by exactly
//! one `Status` body with the HTTP code equal to `status.code`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One field problem of an Invalid (422) error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// upstream's cause type: FieldValueRequired, FieldValueInvalid, FieldValueDuplicate,
    /// FieldValueNotSupported, FieldValueForbidden, FieldValueTooLong, ...
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// A `metav1.Status` failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Details>>,
    /// Seconds for Retry-After (429, 503, 504).
    pub retry_after: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// Names what an error is about: `kind` is the resource (plural) for most errors, as
/// upstream's `qualifiedResource` is.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub group: String,
    pub resource: String,
    pub name: String,
}

impl Subject {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Subject {
            group: group.to_owned(),
            resource: resource.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `pods "web"` or `deployments.apps "web"` as upstream prints it.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Details {
        Details {
            name: self.name.clone(),
            group: self.group.clone(),
            kind: self.resource.clone(),
            ..Default::default()
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(
        user: &str,
        verb: &str,
        subject: &Subject,
        namespace: &str,
        why: &str,
    ) -> Self {
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        let mut target = format!("resource \"{}\"", subject.resource);
        if !subject.group.is_empty() {
            target.push_str(&format!(" in API group \"{}\"", subject.group));
        } else {
            target.push_str(" in API group \"\"");
        }
        let mut message = format!(
            "{} is forbidden: User \"{user}\" cannot {verb} {target} {scope}",
            subject.qualified_named()
        );
        if !why.is_empty() {
            message.push_str(&format!(": {why}"));
        }
        let mut e = Self::new(403, "Forbidden", message);
        e.details = Some(Box::new(subject.details()));
        e
    }

    pub fn forbidden_message(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn not_found(subject: &Subject) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", subject.qualified(), subject.name),
        );
        e.details = Some(Box::new(subject.details()));
        e
    }

    /// A path nothing serves. Upstream's answer carries an empty `details`, and
    /// kubectl reads it (`kubectl debug` dereferences it to explain that ephemeral
    /// containers are not available).
    pub fn not_found_path() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(Box::default());
        e
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    pub fn already_exists(subject: &Subject) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{}\" already exists",
                subject.qualified(),
                subject.name
            ),
        );
        e.details = Some(Box::new(subject.details()));
        e
    }

    pub fn conflict(subject: &Subject, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {why}",
                subject.qualified(),
                subject.name
            ),
        );
        e.details = Some(Box::new(subject.details()));
        e
    }

    /// A server-side apply refused for fields other managers own: upstream's message
    /// and one `FieldManagerConflict` cause per field.
    pub fn apply_conflict(subject: &Subject, conflicts: &[(String, String)]) -> Self {
        let message = match conflicts {
            [(manager, field)] => {
                format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
            }
            _ => {
                let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
                managers.sort();
                managers.dedup();
                let mut lines = Vec::new();
                for m in managers {
                    lines.push(format!("conflicts with {m}:"));
                    for (_, field) in conflicts.iter().filter(|(o, _)| o == m) {
                        lines.push(format!("- {field}"));
                    }
                }
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    lines.join("\n")
                )
            }
        };
        let mut e = Self::new(409, "Conflict", message);
        let mut details = subject.details();
        details.causes = conflicts
            .iter()
            .map(|(manager, field)| Cause {
                reason: "FieldManagerConflict",
                message: format!("conflict with {manager}"),
                field: field.clone(),
            })
            .collect();
        e.details = Some(Box::new(details));
        e
    }

    /// The stale-resourceVersion conflict every client retries on.
    pub fn stale(subject: &Subject) -> Self {
        Self::conflict(
            subject,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    /// 410 Expired: a continue token or resourceVersion older than the compaction.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(content_type: &str, supported: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: {supported}"),
        )
        .with_content_type_hint(content_type)
    }

    fn with_content_type_hint(self, _content_type: &str) -> Self {
        self
    }

    /// 422 with per-field causes.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let message = match summary.len() {
            0 => format!("{qualified} \"{name}\" is invalid"),
            1 => format!("{qualified} \"{name}\" is invalid: {}", summary[0]),
            _ => format!(
                "{qualified} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            ),
        };
        let mut e = Self::new(422, "Invalid", message);
        e.details = Some(Box::new(Details {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            causes,
            retry_after_seconds: None,
        }));
        e
    }

    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.retry_after = Some(retry_after);
        e.details = Some(Box::new(Details {
            retry_after_seconds: Some(retry_after),
            ..Default::default()
        }));
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(503, "ServiceUnavailable", message);
        e.retry_after = Some(1);
        e
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        let mut e = Self::new(504, "Timeout", message);
        e.retry_after = Some(1);
        e
    }

    /// The Status object as JSON.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if !d.name.is_empty() {
                details.insert("name".into(), json!(d.name));
            }
            if !d.group.is_empty() {
                details.insert("group".into(), json!(d.group));
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), json!(d.kind));
            }
            if !d.causes.is_empty() {
                details.insert(
                    "causes".into(),
                    Value::Array(
                        d.causes
                            .iter()
                            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                            .collect(),
                    ),
                );
            }
            if let Some(s) = d.retry_after_seconds {
                details.insert("retryAfterSeconds".into(), json!(s));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl Subject {
    fn qualified_named(&self) -> String {
        if self.name.is_empty() {
            self.qualified()
        } else {
            format!("{} \"{}\"", self.qualified(), self.name)
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// A cause constructor, named after upstream's field.ErrorType.
pub fn required(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        message: if message.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {message}")
        },
        field: field.to_owned(),
    }
}

pub fn invalid_value(field: &str, value: &Value, message: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {message}"),
        field: field.to_owned(),
    }
}

pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let shown = match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    Cause {
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {shown}: supported values: {}",
            list.join(", ")
        ),
        field: field.to_owned(),
    }
}

pub fn forbidden(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {message}"),
        field: field.to_owned(),
    }
}

pub fn duplicate(field: &str, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        message: format!("Duplicate value: {value}"),
        field: field.to_owned(),
    }
}

pub fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong",
        message: format!("Too long: may not be more than {max} bytes"),
        field: field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_upstream() {
        let e = ApiError::not_found(&Subject::new("apps", "deployments", "web"));
        let s = e.to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "deployments");
    }

    #[test]
    fn an_unknown_path_has_empty_details() {
        let s = ApiError::not_found_path().to_status();
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"], json!({}));
    }

    #[test]
    fn invalid_lists_field_causes() {
        let e = ApiError::invalid(
            "ConfigMap",
            "",
            "Bad_Name",
            vec![invalid_value("metadata.name", &json!("Bad_Name"), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")],
        );
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert!(s["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"));
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    }
}
