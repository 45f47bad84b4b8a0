//! Request info, as kube-apiserver derives it from the URL and method before anything
//! else runs: verb, API group and version, namespace, resource, subresource, name.
//!
//! Invariant: pure parsing — the same request always yields the same info, and
//! authorization, audit, metrics and routing all read this one value.

use http::Method;

/// What a request is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// True for /api and /apis paths; false for /healthz, /version, /openapi, ...
    pub is_resource_request: bool,
    pub path: String,
    /// Kubernetes verb: get list watch create update patch delete deletecollection,
    /// or the lowercase HTTP method for non-resource requests.
    pub verb: String,
    /// "api" or "apis".
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after the name/subresource (e.g. proxy paths).
    pub parts: Vec<String>,
}

/// Query parameters that matter to the verb.
fn query_flag(query: Option<&str>, key: &str) -> bool {
    query
        .map(|q| {
            q.split('&').any(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                k == key && matches!(v, "" | "1" | "true" | "True")
            })
        })
        .unwrap_or(false)
}

/// Derives the request info from the method, path and query.
pub fn parse(method: &Method, path: &str, query: Option<&str>) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_owned(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let mut parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect();
    if parts.is_empty() || (parts[0] != "api" && parts[0] != "apis") {
        return info;
    }
    info.api_prefix = parts.remove(0);
    if info.api_prefix == "apis" {
        if parts.is_empty() {
            return info;
        }
        info.api_group = parts.remove(0);
    }
    if parts.is_empty() {
        return info;
    }
    info.api_version = parts.remove(0);
    if parts.is_empty() {
        return info;
    }
    info.is_resource_request = true;

    // The verb from the method; the legacy /watch/ prefix forces watch.
    info.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_owned();
    if parts[0] == "watch" {
        parts.remove(0);
        info.verb = "watch".into();
    }

    // /namespaces/{ns}/{resource}...; /namespaces/{name}[/status|/finalize] is the
    // namespace itself, with its name as the namespace too (as upstream has it).
    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].clone();
        if parts.len() > 2 && !matches!(parts[2].as_str(), "status" | "finalize") {
            parts.drain(..2);
        }
    }
    info.resource = parts[0].clone();
    if parts.len() > 1 {
        info.name = parts[1].clone();
    }
    if parts.len() > 2 {
        info.subresource = parts[2].clone();
    }
    if parts.len() > 3 {
        info.parts = parts[3..].to_vec();
    }

    // Collection verbs.
    if info.name.is_empty() {
        match info.verb.as_str() {
            "get" => {
                info.verb = if query_flag(query, "watch") {
                    "watch"
                } else {
                    "list"
                }
                .into();
            }
            "delete" => info.verb = "deletecollection".into(),
            _ => {}
        }
    } else if info.verb == "get" && query_flag(query, "watch") {
        // ?watch=1 on a named object watches that object (upstream lists with a
        // field selector on metadata.name); the verb stays watch.
        info.verb = "watch".into();
    }
    info
}

/// Decodes %XX escapes in a path segment (names may not contain '/', but clients
/// escape other characters).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: Method, path: &str, query: Option<&str>) -> RequestInfo {
        parse(&method, path, query)
    }

    #[test]
    fn core_and_group_resources() {
        let i = p(Method::GET, "/api/v1/namespaces/default/pods/web-1", None);
        assert!(i.is_resource_request);
        assert_eq!(
            (
                i.verb.as_str(),
                i.api_group.as_str(),
                i.api_version.as_str()
            ),
            ("get", "", "v1")
        );
        assert_eq!(
            (i.namespace.as_str(), i.resource.as_str(), i.name.as_str()),
            ("default", "pods", "web-1")
        );
        let i = p(
            Method::GET,
            "/apis/apps/v1/namespaces/kube-system/deployments",
            None,
        );
        assert_eq!(
            (i.verb.as_str(), i.api_group.as_str(), i.resource.as_str()),
            ("list", "apps", "deployments")
        );
        let i = p(Method::GET, "/apis/apps/v1/deployments", Some("watch=1"));
        assert_eq!(i.verb, "watch");
        let i = p(
            Method::PUT,
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            None,
        );
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("update", "scale")
        );
        let i = p(Method::DELETE, "/api/v1/namespaces/a/configmaps", None);
        assert_eq!(i.verb, "deletecollection");
    }

    #[test]
    fn namespaces_themselves() {
        let i = p(Method::GET, "/api/v1/namespaces", None);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.name.as_str()),
            ("list", "namespaces", "")
        );
        let i = p(Method::GET, "/api/v1/namespaces/kube-system", None);
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str()
            ),
            ("get", "namespaces", "kube-system", "kube-system")
        );
        let i = p(Method::PUT, "/api/v1/namespaces/x/finalize", None);
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.namespace.as_str()
            ),
            ("namespaces", "x", "finalize", "x")
        );
    }

    #[test]
    fn legacy_watch_and_non_resource_paths() {
        let i = p(Method::GET, "/api/v1/watch/namespaces/default/pods", None);
        assert_eq!((i.verb.as_str(), i.resource.as_str()), ("watch", "pods"));
        let i = p(Method::GET, "/healthz", None);
        assert!(!i.is_resource_request);
        assert_eq!(i.verb, "get");
        let i = p(Method::GET, "/apis/apps/v1", None);
        assert!(!i.is_resource_request);
        assert_eq!(i.api_group, "apps");
    }
}
