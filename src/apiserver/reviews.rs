//! Review kinds that are answered, not stored: authentication.k8s.io TokenReview and
//! SelfSubjectReview (`kubectl auth whoami`), authorization.k8s.io
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview
//! (`kubectl auth can-i`) and SelfSubjectRulesReview (`kubectl auth can-i --list`),
//! each answered from the server's authenticator or authorizer chain with upstream's
//! validation and status fields.
//!
//! Invariant: a review never writes to storage; it returns the request object with
//! its `status` filled in (201), or one Status error.

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::handlers::Request;
use super::negotiate::{self, Output};
use super::request_info::RequestInfo;
use super::status::{forbidden, invalid_value, not_supported, required, ApiError, Cause};
use super::ApiServer;
use crate::authn::UserInfo;
use crate::authz::Decision;
use crate::registry::kinds::auth::{AUTHENTICATION_GROUP, AUTHORIZATION_GROUP};
use crate::registry::{meta, validation, Resource};

/// The review kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Review {
    Token,
    SelfSubject,
    SubjectAccess,
    LocalSubjectAccess,
    SelfSubjectAccess,
    SelfSubjectRules,
}

/// Answers the request if `res` is a review kind; None for every other resource.
pub async fn serve(
    server: &ApiServer,
    res: &Resource,
    req: &Request<'_>,
    out: &Output,
) -> Option<Result<Response, ApiError>> {
    let review = match (res.group, res.resource) {
        (AUTHENTICATION_GROUP, "tokenreviews") => Review::Token,
        (AUTHENTICATION_GROUP, "selfsubjectreviews") => Review::SelfSubject,
        (AUTHORIZATION_GROUP, "subjectaccessreviews") => Review::SubjectAccess,
        (AUTHORIZATION_GROUP, "localsubjectaccessreviews") => Review::LocalSubjectAccess,
        (AUTHORIZATION_GROUP, "selfsubjectaccessreviews") => Review::SelfSubjectAccess,
        (AUTHORIZATION_GROUP, "selfsubjectrulesreviews") => Review::SelfSubjectRules,
        _ => return None,
    };
    Some(answer(server, res, req, out, review).await)
}

async fn answer(
    server: &ApiServer,
    res: &Resource,
    req: &Request<'_>,
    out: &Output,
    review: Review,
) -> Result<Response, ApiError> {
    if req.info.verb != "create" {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let ty = negotiate::body_type(req.headers)?;
    let body = negotiate::parse_body(&req.body, ty)?;
    let mut obj = server
        .api
        .admit_body(res, &req.info.api_version, &req.ctx, body)?;
    let status = match review {
        Review::Token => token_review(server, &obj).await?,
        Review::SelfSubject => {
            meta::set(&mut obj, "creationTimestamp", json!(meta::now_rfc3339()));
            json!({ "userInfo": req.ctx.user.to_json() })
        }
        Review::SubjectAccess | Review::LocalSubjectAccess | Review::SelfSubjectAccess => {
            if review == Review::LocalSubjectAccess {
                local_namespace(&mut obj, &req.info.namespace)?;
            }
            let causes = validate_access_review(&obj, review);
            if !causes.is_empty() {
                return Err(ApiError::invalid(res.kind, res.group, "", causes));
            }
            let user = if review == Review::SelfSubjectAccess {
                req.ctx.user.clone()
            } else {
                subject_of(&obj["spec"])
            };
            access_status(server.authz.authorize(&user, &attributes(&obj["spec"])))
        }
        Review::SelfSubjectRules => {
            let namespace = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let status = rules(server, &req.ctx.user, namespace);
            obj = json!({
                "kind": res.kind,
                "apiVersion": res.api_version(&req.info.api_version),
                "metadata": {"creationTimestamp": null},
                "spec": {},
            });
            status
        }
    };
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), status);
    }
    Ok(negotiate::respond(
        201,
        &obj,
        out,
        req.headers,
        &req.ctx.take_warnings(),
    ))
}

/// TokenReview: the token offered to the bearer-token authenticators with the
/// requested audiences (default: the API audiences).
async fn token_review(server: &ApiServer, obj: &Value) -> Result<Value, ApiError> {
    let token = obj
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences = strings(obj.pointer("/spec/audiences"));
    Ok(
        match server.authn.authenticate_token(token, &audiences).await {
            Ok(Some(resp)) => json!({
                "authenticated": true,
                "user": resp.user.to_json(),
                "audiences": resp.audiences,
            }),
            Ok(None) => json!({"user": {}, "error": "invalid bearer token"}),
            Err(e) => json!({"user": {}, "error": e.to_string()}),
        },
    )
}

/// A LocalSubjectAccessReview's metadata.namespace is the request's namespace.
fn local_namespace(obj: &mut Value, request_ns: &str) -> Result<(), ApiError> {
    if request_ns.is_empty() {
        return Err(ApiError::bad_request("namespace is required on this type"));
    }
    match meta::namespace(obj) {
        "" => meta::set(obj, "namespace", json!(request_ns)),
        ns if ns != request_ns => return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {}
    }
    Ok(())
}

/// Upstream's ValidateSubjectAccessReview and friends.
fn validate_access_review(obj: &Value, review: Review) -> Vec<Cause> {
    let spec = &obj["spec"];
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let mut causes = Vec::new();
    if let (Some(_), Some(nr)) = (resource, non_resource) {
        causes.push(invalid_value(
            "spec.nonResourceAttributes",
            nr,
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if resource.is_none() && non_resource.is_none() {
        causes.push(invalid_value(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if review != Review::SelfSubjectAccess
        && spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        && strings(spec.get("groups")).is_empty()
    {
        causes.push(invalid_value(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    if let Some(attrs) = resource {
        causes.extend(validate_selector(
            attrs.get("fieldSelector"),
            "spec.resourceAttributes.fieldSelector",
            false,
        ));
        causes.extend(validate_selector(
            attrs.get("labelSelector"),
            "spec.resourceAttributes.labelSelector",
            true,
        ));
    }
    // Metadata must be empty (but for a local review's namespace), compared as Go
    // compares structs: zero values ("", 0, null, empty) are empty.
    let mut metadata = obj
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata.remove("managedFields");
    metadata.retain(|_, v| !is_zero(v));
    if review == Review::LocalSubjectAccess {
        let ns = metadata.remove("namespace");
        let ns = ns.as_ref().and_then(Value::as_str).unwrap_or("");
        if !metadata.is_empty() {
            causes.push(invalid_value(
                "metadata",
                &obj["metadata"],
                "must be empty except for namespace",
            ));
        }
        if let Some(attrs) = resource {
            let attr_ns = attrs.get("namespace").and_then(Value::as_str).unwrap_or("");
            if attr_ns != ns {
                causes.push(invalid_value(
                    "spec.resourceAttributes.namespace",
                    &json!(attr_ns),
                    "must match metadata.namespace",
                ));
            }
        }
        if let Some(nr) = non_resource {
            causes.push(invalid_value(
                "spec.nonResourceAttributes",
                nr,
                "disallowed on this kind of request",
            ));
        }
    } else if !metadata.is_empty() {
        causes.push(invalid_value("metadata", &obj["metadata"], "must be empty"));
    }
    causes
}

/// A field or label selector of resource attributes: rawSelector or requirements,
/// each requirement with a key and values that fit its operator (unknown operators
/// are allowed, for newer clients).
fn validate_selector(selector: Option<&Value>, path: &str, labels: bool) -> Vec<Cause> {
    let Some(sel) = selector.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    let raw = sel.get("rawSelector").and_then(Value::as_str).unwrap_or("");
    let reqs = sel
        .get("requirements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !raw.is_empty() && !reqs.is_empty() {
        causes.push(invalid_value(
            &format!("{path}.rawSelector"),
            &json!(raw),
            "may not specified at the same time as requirements",
        ));
    }
    if raw.is_empty() && reqs.is_empty() {
        causes.push(required(
            &format!("{path}.requirements"),
            &format!("when {path} is specified, requirements or rawSelector is required"),
        ));
    }
    for (i, r) in reqs.iter().enumerate() {
        let at = format!("{path}.requirements[{i}]");
        let key = r.get("key").and_then(Value::as_str).unwrap_or("");
        if key.is_empty() {
            causes.push(required(&format!("{at}.key"), "must be specified"));
        } else if labels {
            for msg in validation::qualified_name(key) {
                causes.push(invalid_value(&format!("{at}.key"), &json!(key), &msg));
            }
        }
        let values = strings(r.get("values"));
        match r.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" | "NotIn" if values.is_empty() => causes.push(required(
                &format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => causes.push(forbidden(
                &format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "" => causes.push(not_supported(
                &format!("{at}.operator"),
                &json!(""),
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
            _ => {}
        }
    }
    causes
}

/// The user a (Local)SubjectAccessReview asks about.
fn subject_of(spec: &Value) -> UserInfo {
    let mut extra = std::collections::BTreeMap::new();
    if let Some(m) = spec.get("extra").and_then(Value::as_object) {
        for (k, v) in m {
            extra.insert(k.clone(), strings(Some(v)));
        }
    }
    UserInfo {
        name: spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        uid: spec
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        groups: strings(spec.get("groups")),
        extra,
    }
}

/// The request a review's attributes describe, as the authorizers see requests.
fn attributes(spec: &Value) -> RequestInfo {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    match spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        Some(a) => {
            let group = s(a, "group");
            RequestInfo {
                is_resource_request: true,
                path: String::new(),
                verb: s(a, "verb"),
                api_prefix: if group.is_empty() { "api" } else { "apis" }.to_owned(),
                api_group: group,
                api_version: s(a, "version"),
                namespace: s(a, "namespace"),
                resource: s(a, "resource"),
                subresource: s(a, "subresource"),
                name: s(a, "name"),
                parts: Vec::new(),
            }
        }
        None => {
            let a = spec
                .get("nonResourceAttributes")
                .cloned()
                .unwrap_or(Value::Null);
            RequestInfo {
                is_resource_request: false,
                path: s(&a, "path"),
                verb: s(&a, "verb"),
                ..Default::default()
            }
        }
    }
}

/// SubjectAccessReviewStatus from a decision.
fn access_status(decision: Decision) -> Value {
    let mut status = Map::new();
    let reason = match decision {
        Decision::Allow => {
            status.insert("allowed".into(), json!(true));
            String::new()
        }
        Decision::Deny(why) => {
            status.insert("allowed".into(), json!(false));
            status.insert("denied".into(), json!(true));
            why
        }
        Decision::NoOpinion => {
            status.insert("allowed".into(), json!(false));
            String::new()
        }
    };
    if !reason.is_empty() {
        status.insert("reason".into(), json!(reason));
    }
    Value::Object(status)
}

/// SelfSubjectRulesReview: the authorizer chain has no rule listing, so the rules
/// are what it grants for the wildcard request — everything (`*` rules, complete),
/// or nothing that can be enumerated (no rules, `incomplete`).
fn rules(server: &ApiServer, user: &UserInfo, namespace: &str) -> Value {
    let everything = RequestInfo {
        is_resource_request: true,
        verb: "*".into(),
        api_prefix: "apis".into(),
        api_group: "*".into(),
        api_version: "*".into(),
        namespace: namespace.to_owned(),
        resource: "*".into(),
        ..Default::default()
    };
    let every_path = RequestInfo {
        is_resource_request: false,
        path: "*".into(),
        verb: "*".into(),
        ..Default::default()
    };
    let resources_allowed = server.authz.authorize(user, &everything) == Decision::Allow;
    let paths_allowed = server.authz.authorize(user, &every_path) == Decision::Allow;
    let resource_rules: Vec<Value> = if resources_allowed {
        vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})]
    } else {
        Vec::new()
    };
    let non_resource_rules: Vec<Value> = if paths_allowed {
        vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})]
    } else {
        Vec::new()
    };
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !(resources_allowed && paths_allowed),
    })
}

/// Go's zero value of a JSON field.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_reviews_are_validated_like_upstream() {
        let sar = json!({"metadata": {}, "spec": {}});
        let causes = validate_access_review(&sar, Review::SubjectAccess);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.resourceAttributes", "spec.user"]);
        assert_eq!(
            causes[0].message,
            "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"
        );
        let both = json!({"spec": {"user": "u", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x"}}});
        assert_eq!(
            validate_access_review(&both, Review::SubjectAccess)[0].field,
            "spec.nonResourceAttributes"
        );
        let named =
            json!({"metadata": {"name": "x"}, "spec": {"resourceAttributes": {"verb": "get"}}});
        assert_eq!(
            validate_access_review(&named, Review::SelfSubjectAccess)[0].field,
            "metadata"
        );
        // Zero values (as a protobuf body decodes) are empty metadata.
        let zero = json!({"metadata": {"generation": 0, "name": ""}, "spec": {"resourceAttributes": {"verb": "get"}}});
        assert!(validate_access_review(&zero, Review::SelfSubjectAccess).is_empty());
        let local = json!({"metadata": {"namespace": "a"}, "spec": {"user": "u", "resourceAttributes": {"namespace": "b"}}});
        assert_eq!(
            validate_access_review(&local, Review::LocalSubjectAccess)[0].field,
            "spec.resourceAttributes.namespace"
        );
        let selector = json!({"spec": {"resourceAttributes": {"fieldSelector": {}}}});
        let causes = validate_access_review(&selector, Review::SelfSubjectAccess);
        assert_eq!(
            causes[0].field,
            "spec.resourceAttributes.fieldSelector.requirements"
        );
    }

    #[test]
    fn attributes_become_request_info() {
        let info = attributes(
            &json!({"resourceAttributes": {"verb": "create", "group": "apps", "resource": "deployments", "namespace": "ns", "subresource": "scale"}}),
        );
        assert!(info.is_resource_request);
        assert_eq!(
            (
                info.verb.as_str(),
                info.api_group.as_str(),
                info.resource.as_str(),
                info.subresource.as_str()
            ),
            ("create", "apps", "deployments", "scale")
        );
        let info =
            attributes(&json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}));
        assert!(!info.is_resource_request);
        assert_eq!(info.path, "/healthz");
        assert_eq!(
            access_status(Decision::Deny("nope".into())),
            json!({"allowed": false, "denied": true, "reason": "nope"})
        );
        assert_eq!(access_status(Decision::Allow), json!({"allowed": true}));
    }
}
