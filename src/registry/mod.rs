//! The resource catalog: every kind the API serves, with its names (group, version,
//! kind, resource, short names, categories), scope, storage prefix, subresources and
//! the `Strategy` that gives it its semantics.
//!
//! Strategy hooks run in one fixed order (upstream's `rest.BeforeCreate`):
//! decode (type check) → default → [mutating admission] → prepare_for_create →
//! validate (must not mutate) → [validating admission] → canonicalize → storage.
//! For updates: decode → default → prepare_for_update → validate_update → canonicalize.
//!
//! Invariant: the generic machinery (`store.rs`) knows nothing of any kind; everything
//! kind-specific is behind `Strategy`.

pub mod kinds;
pub mod meta;
pub mod selector;
pub mod store;
pub mod typed;
pub mod validation;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::apiserver::status::{ApiError, Cause};
use crate::storage::Storage;

/// A column of `kubectl get` output (metav1.TableColumnDefinition).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = shown by default; >0 = only with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    pub const fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    pub const fn format(mut self, format: &'static str) -> Self {
        self.format = format;
        self
    }
}

/// The "Name" column every table starts with.
pub const NAME_COLUMN: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
};

/// The "Age" column most tables end with.
pub const AGE_COLUMN: Column = Column {
    name: "Age",
    kind: "string",
    format: "",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    priority: 0,
};

/// What hooks that touch other objects (allocators, controllers) can use.
pub struct Hooks {
    pub storage: Arc<dyn Storage>,
    pub root: String,
    pub config: Arc<ApiConfig>,
}

/// API-level settings strategies need.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `--service-cluster-ip-range`.
    pub service_cidr: ipnet_lite::Ipv4Net,
    /// `--service-node-port-range`.
    pub node_port_range: (u16, u16),
    /// `--event-ttl` in seconds (0 = events never expire).
    pub event_ttl_seconds: i64,
    /// `--delete-collection-workers`: deletes one DELETE on a collection runs at once.
    pub delete_collection_workers: usize,
}

/// Kind-specific behaviour. Every method has upstream's generic default.
#[async_trait::async_trait]
pub trait Strategy: Send + Sync + 'static {
    /// Type-checks `obj` against the kind's schema. Returns the object as the typed
    /// form serializes it (unknown fields dropped) and the paths of the unknown fields,
    /// or a decode error (a 400).
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        Ok((obj, Vec::new()))
    }

    /// Scheme defaulting (e.g. a Pod's restartPolicy).
    fn default(&self, _obj: &mut Value) {}

    /// Server-set fields on create (e.g. status reset).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Fields set from the requesting user on create, after `prepare_for_create` (a
    /// CertificateSigningRequest's spec.username, uid, groups and extra).
    fn prepare_for_create_by(&self, _obj: &mut Value, _user: &crate::authn::UserInfo) {}

    /// Server-set fields on update of the main resource (e.g. status kept from `old`).
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Kind validation on create (ObjectMeta is validated by the caller). Must not mutate.
    fn validate(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }

    /// Kind validation on update (immutable fields). Defaults to `validate(new)`.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    /// Normalization after validation.
    fn canonicalize(&self, _obj: &mut Value) {}

    /// Allocations and other effects before a create is stored (e.g. a Service's
    /// ClusterIP). Undone by `after_delete` or `create_failed`. With `dry_run` it
    /// fills in and checks what it would take (as upstream's dry-run allocators) but
    /// takes nothing.
    async fn before_create(
        &self,
        _hooks: &Hooks,
        _obj: &mut Value,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Called when a create failed after `before_create` succeeded.
    async fn create_failed(&self, _hooks: &Hooks, _obj: &Value) {}

    /// Allocation changes on update; with `dry_run`, as `before_create`.
    async fn before_update(
        &self,
        _hooks: &Hooks,
        _new: &mut Value,
        _old: &Value,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Releases what `before_create` took, once the object is gone.
    async fn after_delete(&self, _hooks: &Hooks, _obj: &Value) {}

    /// Values of field selectors beyond metadata.name and metadata.namespace.
    fn field(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }

    /// The extra field selectors this kind supports.
    fn selectable_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Table columns after Name (Age is usually last).
    fn columns(&self) -> Vec<Column> {
        vec![AGE_COLUMN]
    }

    /// One row's cells after the name, matching `columns`.
    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![Value::String(age(obj))]
    }

    /// PUT on a missing object creates it (upstream's AllowCreateOnUpdate).
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// PUT without a resourceVersion overwrites (upstream's AllowUnconditionalUpdate).
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// On an update through the status subresource: keep everything from `old` but
    /// the status (and labels/annotations changes are dropped as upstream does).
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let Some(s) = status {
            if let Some(m) = merged.as_object_mut() {
                m.insert("status".into(), s);
            }
        }
        *new = merged;
    }

    /// The table's NAME cell (a default StorageClass reads "NAME (default)").
    fn name_cell(&self, obj: &Value) -> String {
        meta::name(obj).to_owned()
    }

    /// Whether the table starts with the Name column; false puts it last, as a wide
    /// column (events: `kubectl get events` starts with LAST SEEN).
    fn name_first(&self) -> bool {
        true
    }

    /// Validation of a status update.
    fn validate_status_update(&self, _new: &Value, _old: &Value) -> Vec<Cause> {
        Vec::new()
    }

    /// On an update through the `approval` subresource (CertificateSigningRequests):
    /// as a status update unless the kind says otherwise.
    fn prepare_for_approval_update(&self, new: &mut Value, old: &Value) {
        self.prepare_for_status_update(new, old);
    }

    /// Validation of an approval update.
    fn validate_approval_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        self.validate_status_update(new, old)
    }

    /// True while the kind's own finalization (beyond metadata.finalizers) is pending,
    /// e.g. a namespace's spec.finalizers.
    fn pending_finalization(&self, _obj: &Value) -> bool {
        false
    }

    /// Marks an object whose deletion must wait (e.g. a namespace turns Terminating).
    fn mark_deleting(&self, _obj: &mut Value) {}

    /// The grace period a DELETE of `obj` waits, given the one requested (already
    /// made non-negative); None for kinds deleted at once (upstream's
    /// CheckGracefulDelete). A positive period keeps the object, marked with
    /// deletionTimestamp = now + period, until a delete with a shorter one.
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Converts a stored object to another served version of the same kind (e.g.
    /// autoscaling/v1 from v2). The default serves one version only.
    fn convert(&self, obj: Value, _to_version: &str) -> Result<Value, String> {
        Ok(obj)
    }
}

/// The human age of an object, as kubectl prints it ("5m", "3d").
pub fn age(obj: &Value) -> String {
    let created = meta::str_field(obj, "creationTimestamp");
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return "<unknown>".into();
    };
    human_duration(time::OffsetDateTime::now_utc() - t)
}

/// kubectl's short duration format.
pub fn human_duration(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    if secs < 120 {
        return format!("{secs}s");
    }
    let mins = secs / 60;
    if mins < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{mins}m")
        } else {
            format!("{mins}m{s}s")
        };
    }
    if mins < 180 {
        return format!("{mins}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = mins % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if days < 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    format!("{}y", days / 365)
}

/// One served resource.
pub struct Resource {
    pub group: &'static str,
    /// Served versions, preferred first; objects are stored in the first.
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub resource: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Key prefix under the storage root (upstream's, e.g. `services/specs`).
    pub storage_prefix: &'static str,
    /// Subresources served besides the main resource.
    pub subresources: &'static [&'static str],
    /// The verbs allowed on the collection and items.
    pub verbs: &'static [&'static str],
    pub name_rule: validation::NameRule,
    pub strategy: Arc<dyn Strategy>,
}

/// Every verb of a normal CRUD resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    pub fn storage_version(&self) -> &'static str {
        self.versions[0]
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }

    pub fn api_version(&self, version: &str) -> String {
        meta::group_version(self.group, version)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// The catalog of served resources.
#[derive(Clone, Default)]
pub struct Registry {
    resources: Vec<Arc<Resource>>,
    by_path: HashMap<(String, String), Arc<Resource>>,
}

impl Registry {
    pub fn new(resources: Vec<Resource>) -> Registry {
        let resources: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        let mut by_path = HashMap::new();
        for r in &resources {
            by_path.insert((r.group.to_owned(), r.resource.to_owned()), r.clone());
        }
        Registry { resources, by_path }
    }

    /// The resource served at `group`/`version`/`resource`.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<Arc<Resource>> {
        self.by_path
            .get(&(group.to_owned(), resource.to_owned()))
            .filter(|r| r.serves(version))
            .cloned()
    }

    pub fn all(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    /// Groups and their versions, in registration order, preferred version first.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            let entry = match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some(e) => e,
                None => {
                    out.push((r.group, Vec::new()));
                    out.last_mut().expect("just pushed")
                }
            };
            for v in r.versions {
                if !entry.1.contains(v) {
                    entry.1.push(v);
                }
            }
        }
        out
    }

    /// Resources served in `group`/`version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Resource>> {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.serves(version))
    }
}

/// A lightweight IPv4 network type (`--service-cluster-ip-range`).
pub mod ipnet_lite {
    use std::net::Ipv4Addr;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Ipv4Net {
        pub addr: Ipv4Addr,
        pub prefix: u8,
    }

    impl Ipv4Net {
        pub fn parse(s: &str) -> Result<Ipv4Net, String> {
            let (a, p) = s
                .split_once('/')
                .ok_or_else(|| format!("{s:?} is not a CIDR"))?;
            let addr: Ipv4Addr = a
                .parse()
                .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
            let prefix: u8 = p
                .parse()
                .map_err(|_| format!("{p:?} is not a prefix length"))?;
            if !(8..=30).contains(&prefix) {
                return Err(format!("prefix length {prefix} must be between 8 and 30"));
            }
            let mask = u32::MAX << (32 - prefix);
            Ok(Ipv4Net {
                addr: Ipv4Addr::from(u32::from(addr) & mask),
                prefix,
            })
        }

        pub fn size(&self) -> u32 {
            1u32 << (32 - self.prefix)
        }

        /// The `i`-th address of the network.
        pub fn nth(&self, i: u32) -> Ipv4Addr {
            Ipv4Addr::from(u32::from(self.addr) + i)
        }

        pub fn contains(&self, ip: Ipv4Addr) -> bool {
            let mask = u32::MAX << (32 - self.prefix);
            (u32::from(ip) & mask) == u32::from(self.addr)
        }

        pub fn index_of(&self, ip: Ipv4Addr) -> Option<u32> {
            self.contains(ip)
                .then(|| u32::from(ip) - u32::from(self.addr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(time::Duration::seconds(42)), "42s");
        assert_eq!(human_duration(time::Duration::seconds(5 * 60 + 3)), "5m3s");
        assert_eq!(human_duration(time::Duration::minutes(45)), "45m");
        assert_eq!(human_duration(time::Duration::hours(5)), "5h");
        assert_eq!(human_duration(time::Duration::hours(30)), "30h");
        assert_eq!(human_duration(time::Duration::days(3)), "3d");
        assert_eq!(human_duration(time::Duration::days(30)), "30d");
    }

    #[test]
    fn cidrs() {
        let n = ipnet_lite::Ipv4Net::parse("10.96.0.0/12").expect("cidr");
        assert_eq!(n.size(), 1 << 20);
        assert_eq!(n.nth(1).to_string(), "10.96.0.1");
        assert!(n.contains("10.100.3.4".parse().expect("ip")));
        assert!(!n.contains("10.112.0.0".parse().expect("ip")));
        assert!(ipnet_lite::Ipv4Net::parse("10.0.0.0/31").is_err());
    }
}
