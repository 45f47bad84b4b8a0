//! The `paths` of the OpenAPI documents: one path item per collection, item,
//! subresource and (deprecated) watch URL of each served resource version, with
//! operations carrying `x-kubernetes-action`, `x-kubernetes-group-version-kind`, their
//! query parameters (`dryRun`, `fieldManager`, `fieldValidation`, ...) and the media
//! types the server reads and writes, as kube-apiserver publishes them.
//!
//! Invariant: an operation exists only for a verb the resource serves, and every PATCH
//! lists `fieldValidation` and `application/strategic-merge-patch+json` (kubectl decides
//! on server-side field validation and on strategic merge from exactly these).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::registry::Resource;

/// Swagger 2.0 or OpenAPI 3.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    V2,
    V3,
}

impl Dialect {
    /// A reference to definition `name`.
    pub fn reference(self, name: &str) -> Value {
        match self {
            Dialect::V2 => json!({ "$ref": format!("#/definitions/{name}") }),
            Dialect::V3 => json!({ "$ref": format!("#/components/schemas/{name}") }),
        }
    }
}

/// A group, version and kind, as the `x-kubernetes-group-version-kind` extension spells it.
pub fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// A subresource whose requests and responses carry another kind than its parent.
pub struct SubKind {
    pub subresource: &'static str,
    pub gvk: Value,
    pub definition: String,
}

/// One served resource version and the definitions its operations use.
pub struct Endpoint<'a> {
    pub resource: &'a Resource,
    pub version: &'a str,
    pub definition: &'a str,
    pub list_definition: Option<&'a str>,
    pub sub_kinds: Vec<SubKind>,
}

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_STREAM: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const CONSUMES_OBJECT: &[&str] = &["*/*"];
const CONSUMES_PATCH: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const PRODUCES_TEXT: &[&str] = &[
    "text/plain",
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_ANY: &[&str] = &["*/*"];

/// A request parameter.
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: &'static str,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
    }
}

const PRETTY: Param = query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).");
const DRY_RUN: Param = query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed");
const FIELD_MANAGER: Param = query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.");
const FIELD_VALIDATION: Param = query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are dropped silently and only the last of duplicate fields is kept. - Warn: unknown and duplicate fields are reported in a warning header for each field, and the request succeeds. This is the default in v1.23+ - Strict: the request fails with a BadRequest error naming every unknown and duplicate field.");
const FORCE: Param = query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.");
const GRACE_PERIOD: Param = query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.");
const IGNORE_STORE_READ_ERROR: Param = query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it");
const ORPHAN_DEPENDENTS: Param = query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.");
const PROPAGATION_POLICY: Param = query("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.");
const ALLOW_WATCH_BOOKMARKS: Param = query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.");
const CONTINUE: Param = query("continue", "string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token.");
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = query("limit", "integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available.");
const RESOURCE_VERSION: Param = query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
const RESOURCE_VERSION_MATCH: Param = query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
const SEND_INITIAL_EVENTS: Param = query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation.");
const TIMEOUT_SECONDS: Param = query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.");
const WATCH: Param = query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.");

const LIST_PARAMS: &[&Param] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
    &WATCH,
];
const WRITE_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
const PATCH_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
const DELETE_PARAMS: &[&Param] = &[
    &DRY_RUN,
    &GRACE_PERIOD,
    &IGNORE_STORE_READ_ERROR,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[&Param] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD,
    &IGNORE_STORE_READ_ERROR,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
];

fn render_param(p: &Param, d: Dialect, required: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), p.name.into());
    m.insert("in".into(), p.location.into());
    m.insert("description".into(), p.description.into());
    if required {
        m.insert("required".into(), true.into());
    }
    match d {
        Dialect::V2 => {
            m.insert("type".into(), p.ty.into());
            m.insert("uniqueItems".into(), true.into());
        }
        Dialect::V3 => {
            m.insert(
                "schema".into(),
                json!({ "type": p.ty, "uniqueItems": true }),
            );
        }
    }
    Value::Object(m)
}

fn path_param(name: &'static str, description: &'static str, d: Dialect) -> Value {
    let p = Param {
        name,
        location: "path",
        ty: "string",
        description,
    };
    render_param(&p, d, true)
}

/// The body an operation reads.
enum Body<'a> {
    None,
    Object(&'a str),
    Patch,
    Delete,
}

/// What an operation answers with.
enum Answer<'a> {
    Object(&'a str),
    Text,
}

/// One operation before it is rendered in a dialect.
struct Op<'a> {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: Option<Value>,
    params: &'static [&'static Param],
    body: Body<'a>,
    answer: Answer<'a>,
    codes: &'static [u16],
    produces: &'static [&'static str],
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "Unauthorized",
    }
}

fn render_op(op: &Op, tag: &str, d: Dialect) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), op.description.clone().into());
    m.insert("operationId".into(), op.id.clone().into());
    m.insert("tags".into(), json!([tag]));
    let mut params: Vec<Value> = Vec::new();
    let (consumes, body_schema) = match op.body {
        Body::None => (None, None),
        Body::Object(def) => (Some(CONSUMES_OBJECT), Some(d.reference(def))),
        Body::Patch => (Some(CONSUMES_PATCH), Some(d.reference(PATCH))),
        Body::Delete => (Some(CONSUMES_OBJECT), Some(d.reference(DELETE_OPTIONS))),
    };
    let body_required = matches!(op.body, Body::Object(_) | Body::Patch);
    let answer_schema = match op.answer {
        Answer::Object(def) => d.reference(def),
        Answer::Text => json!({ "type": "string" }),
    };
    match d {
        Dialect::V2 => {
            if let (Some(c), Some(schema)) = (consumes, &body_schema) {
                m.insert("consumes".into(), json!(c));
                let mut b = json!({ "in": "body", "name": "body", "schema": schema });
                if body_required {
                    b["required"] = true.into();
                }
                params.push(b);
            }
            m.insert("produces".into(), json!(op.produces));
            m.insert("schemes".into(), json!(["https"]));
            let mut responses = Map::new();
            for code in op.codes {
                responses.insert(
                    code.to_string(),
                    json!({ "description": reason(*code), "schema": answer_schema }),
                );
            }
            responses.insert("401".into(), json!({ "description": "Unauthorized" }));
            m.insert("responses".into(), Value::Object(responses));
        }
        Dialect::V3 => {
            if let (Some(c), Some(schema)) = (consumes, &body_schema) {
                let content: Map<String, Value> = c
                    .iter()
                    .map(|t| ((*t).to_owned(), json!({ "schema": schema })))
                    .collect();
                let mut b = json!({ "content": content });
                if body_required {
                    b["required"] = true.into();
                }
                m.insert("requestBody".into(), b);
            }
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|t| ((*t).to_owned(), json!({ "schema": answer_schema })))
                .collect();
            let mut responses = Map::new();
            for code in op.codes {
                responses.insert(
                    code.to_string(),
                    json!({ "description": reason(*code), "content": content }),
                );
            }
            responses.insert("401".into(), json!({ "description": "Unauthorized" }));
            m.insert("responses".into(), Value::Object(responses));
        }
    }
    params.extend(op.params.iter().map(|p| render_param(p, d, false)));
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    m.insert("x-kubernetes-action".into(), op.action.into());
    if let Some(g) = &op.gvk {
        m.insert("x-kubernetes-group-version-kind".into(), g.clone());
    }
    Value::Object(m)
}

/// `rbac.authorization.k8s.io` → `["Rbac", "Authorization"]`; the core group is `Core`.
fn group_words(group: &str) -> Vec<String> {
    if group.is_empty() {
        return vec!["Core".into()];
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The tag operations of a group version carry (`core_v1`, `rbacAuthorization_v1`).
pub fn tag(group: &str, version: &str) -> String {
    let words = group_words(group);
    let mut t = String::new();
    for (i, w) in words.iter().enumerate() {
        if i == 0 {
            t.push_str(&w.to_lowercase());
        } else {
            t.push_str(w);
        }
    }
    format!("{t}_{version}")
}

/// The URL prefix of a group version.
pub fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The path items of one served resource version, added to `paths`.
pub fn add_resource(paths: &mut BTreeMap<String, Value>, e: &Endpoint, d: Dialect) {
    let r = e.resource;
    let gv = format!("{}{}", group_words(r.group).concat(), capitalize(e.version));
    let tag = tag(r.group, e.version);
    let kind = r.kind;
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let own_gvk = gvk(r.group, e.version, kind);
    let prefix = prefix(r.group, e.version);
    let (collection, watch_root) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.resource),
            format!("{prefix}/watch/namespaces/{{namespace}}/{}", r.resource),
        )
    } else {
        (
            format!("{prefix}/{}", r.resource),
            format!("{prefix}/watch/{}", r.resource),
        )
    };
    let item = format!("{collection}/{{name}}");
    let name_param = path_param("name", "name of the resource", d);
    let ns_param = path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
        d,
    );
    let def = e.definition;
    let list_def = e.list_definition;
    let add = |paths: &mut BTreeMap<String, Value>,
               path: String,
               named: bool,
               cluster_wide: bool,
               ops: Vec<Op>| {
        if ops.is_empty() {
            return;
        }
        let mut item = Map::new();
        for op in &ops {
            item.insert(op.method.into(), render_op(op, &tag, d));
        }
        let mut params = Vec::new();
        if named {
            params.push(name_param.clone());
        }
        if r.namespaced && !cluster_wide {
            params.push(ns_param.clone());
        }
        params.push(render_param(&PRETTY, d, false));
        item.insert("parameters".into(), Value::Array(params));
        paths.insert(path, Value::Object(item));
    };

    // The collection: list, create, deletecollection.
    let mut ops = Vec::new();
    if let (true, Some(list)) = (r.has_verb("list"), list_def) {
        ops.push(Op {
            method: "get",
            action: "list",
            id: format!("list{gv}{ns}{kind}"),
            description: format!("list or watch objects of kind {kind}"),
            gvk: Some(own_gvk.clone()),
            params: LIST_PARAMS,
            body: Body::None,
            answer: Answer::Object(list),
            codes: &[200],
            produces: PRODUCES_STREAM,
        });
    }
    if r.has_verb("create") {
        ops.push(Op {
            method: "post",
            action: "post",
            id: format!("create{gv}{ns}{kind}"),
            description: format!("create {}", article(kind)),
            gvk: Some(own_gvk.clone()),
            params: WRITE_PARAMS,
            body: Body::Object(def),
            answer: Answer::Object(def),
            codes: &[200, 201, 202],
            produces: PRODUCES,
        });
    }
    if r.has_verb("deletecollection") {
        ops.push(Op {
            method: "delete",
            action: "deletecollection",
            id: format!("delete{gv}Collection{ns}{kind}"),
            description: format!("delete collection of {kind}"),
            gvk: Some(own_gvk.clone()),
            params: DELETE_COLLECTION_PARAMS,
            body: Body::Delete,
            answer: Answer::Object(STATUS),
            codes: &[200],
            produces: PRODUCES,
        });
    }
    add(paths, collection.clone(), false, false, ops);

    // The item: read, replace, patch, delete.
    let mut ops = Vec::new();
    if r.has_verb("get") {
        ops.push(Op {
            method: "get",
            action: "get",
            id: format!("read{gv}{ns}{kind}"),
            description: format!("read the specified {kind}"),
            gvk: Some(own_gvk.clone()),
            params: &[],
            body: Body::None,
            answer: Answer::Object(def),
            codes: &[200],
            produces: PRODUCES,
        });
    }
    if r.has_verb("update") {
        ops.push(Op {
            method: "put",
            action: "put",
            id: format!("replace{gv}{ns}{kind}"),
            description: format!("replace the specified {kind}"),
            gvk: Some(own_gvk.clone()),
            params: WRITE_PARAMS,
            body: Body::Object(def),
            answer: Answer::Object(def),
            codes: &[200, 201],
            produces: PRODUCES,
        });
    }
    if r.has_verb("patch") {
        ops.push(Op {
            method: "patch",
            action: "patch",
            id: format!("patch{gv}{ns}{kind}"),
            description: format!("partially update the specified {kind}"),
            gvk: Some(own_gvk.clone()),
            params: PATCH_PARAMS,
            body: Body::Patch,
            answer: Answer::Object(def),
            codes: &[200, 201],
            produces: PRODUCES,
        });
    }
    if r.has_verb("delete") {
        ops.push(Op {
            method: "delete",
            action: "delete",
            id: format!("delete{gv}{ns}{kind}"),
            description: format!("delete {}", article(kind)),
            gvk: Some(own_gvk.clone()),
            params: DELETE_PARAMS,
            body: Body::Delete,
            answer: Answer::Object(STATUS),
            codes: &[200, 202],
            produces: PRODUCES,
        });
    }
    add(paths, item.clone(), true, false, ops);

    // Namespaced kinds are also listed across namespaces.
    if r.namespaced && r.has_verb("list") {
        if let Some(list) = list_def {
            let op = Op {
                method: "get",
                action: "list",
                id: format!("list{gv}{kind}ForAllNamespaces"),
                description: format!("list or watch objects of kind {kind}"),
                gvk: Some(own_gvk.clone()),
                params: LIST_PARAMS,
                body: Body::None,
                answer: Answer::Object(list),
                codes: &[200],
                produces: PRODUCES_STREAM,
            };
            add(
                paths,
                format!("{prefix}/{}", r.resource),
                false,
                true,
                vec![op],
            );
        }
    }

    // The deprecated watch URLs.
    if r.has_verb("watch") {
        let watch_op = |id: String, action: &'static str, description: String| Op {
            method: "get",
            action,
            id,
            description,
            gvk: Some(own_gvk.clone()),
            params: LIST_PARAMS,
            body: Body::None,
            answer: Answer::Object(WATCH_EVENT),
            codes: &[200],
            produces: PRODUCES_STREAM,
        };
        add(
            paths,
            format!("{watch_root}/{{name}}"),
            true,
            false,
            vec![watch_op(
                format!("watch{gv}{ns}{kind}"),
                "watch",
                format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            )],
        );
        add(
            paths,
            watch_root.clone(),
            false,
            false,
            vec![watch_op(
                format!("watch{gv}{ns}{kind}List"),
                "watchlist",
                format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
            )],
        );
        if r.namespaced {
            add(
                paths,
                format!("{prefix}/watch/{}", r.resource),
                false,
                true,
                vec![watch_op(
                    format!("watch{gv}{kind}ListForAllNamespaces"),
                    "watchlist",
                    format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                )],
            );
        }
    }

    // Subresources.
    for sub in r.subresources {
        let title = capitalize(sub);
        let other = e.sub_kinds.iter().find(|s| s.subresource == *sub);
        let (sub_def, sub_gvk): (&str, Value) = match other {
            Some(s) => (s.definition.as_str(), s.gvk.clone()),
            None => (def, own_gvk.clone()),
        };
        let read = || Op {
            method: "get",
            action: "get",
            id: format!("read{gv}{ns}{kind}{title}"),
            description: format!("read {sub} of the specified {kind}"),
            gvk: Some(sub_gvk.clone()),
            params: &[],
            body: Body::None,
            answer: Answer::Object(sub_def),
            codes: &[200],
            produces: PRODUCES,
        };
        let replace = || Op {
            method: "put",
            action: "put",
            id: format!("replace{gv}{ns}{kind}{title}"),
            description: format!("replace {sub} of the specified {kind}"),
            gvk: Some(sub_gvk.clone()),
            params: WRITE_PARAMS,
            body: Body::Object(sub_def),
            answer: Answer::Object(sub_def),
            codes: &[200, 201],
            produces: PRODUCES,
        };
        let patch = || Op {
            method: "patch",
            action: "patch",
            id: format!("patch{gv}{ns}{kind}{title}"),
            description: format!("partially update {sub} of the specified {kind}"),
            gvk: Some(sub_gvk.clone()),
            params: PATCH_PARAMS,
            body: Body::Patch,
            answer: Answer::Object(sub_def),
            codes: &[200, 201],
            produces: PRODUCES,
        };
        let create = || Op {
            method: "post",
            action: "post",
            id: format!("create{gv}{ns}{kind}{title}"),
            description: format!("create {sub} of {}", article(kind)),
            gvk: Some(sub_gvk.clone()),
            params: WRITE_PARAMS,
            body: Body::Object(sub_def),
            answer: Answer::Object(sub_def),
            codes: &[200, 201, 202],
            produces: PRODUCES,
        };
        let connect = |method: &'static str, verb: &str| {
            let options = match *sub {
                "portforward" => "PortForward".to_owned(),
                other => capitalize(other),
            };
            Op {
                method,
                action: "connect",
                id: format!("connect{gv}{verb}{ns}{kind}{title}"),
                description: format!(
                    "connect {} requests to {sub} of {kind}",
                    method.to_uppercase()
                ),
                gvk: Some(gvk(r.group, e.version, &format!("{kind}{options}Options"))),
                params: &[],
                body: Body::None,
                answer: Answer::Text,
                codes: &[200],
                produces: PRODUCES_ANY,
            }
        };
        let ops = match *sub {
            "status" | "scale" | "ephemeralcontainers" | "resize" => {
                vec![read(), replace(), patch()]
            }
            "finalize" => vec![replace()],
            "binding" | "eviction" | "token" => vec![create()],
            "log" => vec![Op {
                method: "get",
                action: "get",
                id: format!("read{gv}{ns}{kind}Log"),
                description: format!("read log of the specified {kind}"),
                gvk: Some(own_gvk.clone()),
                params: &[],
                body: Body::None,
                answer: Answer::Text,
                codes: &[200],
                produces: PRODUCES_TEXT,
            }],
            "exec" | "attach" | "portforward" => {
                vec![connect("get", "Get"), connect("post", "Post")]
            }
            "proxy" => vec![
                connect("get", "Get"),
                connect("put", "Put"),
                connect("post", "Post"),
                connect("patch", "Patch"),
                connect("delete", "Delete"),
            ],
            _ => Vec::new(),
        };
        add(paths, format!("{item}/{sub}"), true, false, ops);
    }
}

/// The group version's resource list (`GET /api/v1/`).
pub fn add_resource_list(
    paths: &mut BTreeMap<String, Value>,
    group: &str,
    version: &str,
    d: Dialect,
) {
    let gv = format!("{}{}", group_words(group).concat(), capitalize(version));
    let op = Op {
        method: "get",
        action: "get",
        id: format!("get{gv}APIResources"),
        description: "get available resources".into(),
        gvk: None,
        params: &[],
        body: Body::None,
        answer: Answer::Object(RESOURCE_LIST),
        codes: &[200],
        produces: PRODUCES,
    };
    let mut item = Map::new();
    let mut rendered = render_op(&op, &tag(group, version), d);
    if let Value::Object(m) = &mut rendered {
        m.remove("x-kubernetes-action");
    }
    item.insert("get".into(), rendered);
    paths.insert(format!("{}/", prefix(group, version)), Value::Object(item));
}

/// "a Pod", "an Ingress".
fn article(kind: &str) -> String {
    match kind.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("apps", "v1"), "apps_v1");
        assert_eq!(
            group_words("flowcontrol.apiserver.k8s.io").concat(),
            "FlowcontrolApiserver"
        );
        assert_eq!(prefix("", "v1"), "/api/v1");
        assert_eq!(prefix("apps", "v1"), "/apis/apps/v1");
        assert_eq!(article("Ingress"), "an Ingress");
    }
}
