//! The key layout kube-apiserver uses in etcd: `<root>/<resource prefix>/<namespace>/<name>`
//! for namespaced objects and `<root>/<resource prefix>/<name>` for cluster-scoped ones,
//! where the resource prefix is upstream's (e.g. `services/specs`, `minions`).
//!
//! Invariant: a list prefix always ends with `/`, so `pods/default/` never matches
//! `pods/default-2/...`.

/// The default storage root (`--etcd-prefix`).
pub const DEFAULT_ROOT: &str = "/registry";

/// The key of one object.
pub fn object_key(root: &str, prefix: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{root}/{prefix}/{ns}/{name}"),
        None => format!("{root}/{prefix}/{name}"),
    }
}

/// The key prefix of a list: one namespace, or every object of the resource.
pub fn list_prefix(root: &str, prefix: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{root}/{prefix}/{ns}/"),
        None => format!("{root}/{prefix}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_upstream() {
        assert_eq!(
            object_key(DEFAULT_ROOT, "configmaps", Some("default"), "a"),
            "/registry/configmaps/default/a"
        );
        assert_eq!(
            object_key(DEFAULT_ROOT, "minions", None, "n1"),
            "/registry/minions/n1"
        );
        assert_eq!(
            list_prefix(DEFAULT_ROOT, "pods", Some("default")),
            "/registry/pods/default/"
        );
        assert_eq!(list_prefix(DEFAULT_ROOT, "pods", None), "/registry/pods/");
    }
}
