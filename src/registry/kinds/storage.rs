//! storage.k8s.io/v1 kinds: storageclasses, csidrivers and volumeattachments (with
//! its status subresource).
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/storage/v1/defaults.go), validation
//! messages and field paths (pkg/apis/storage/validation) and printer columns; a
//! storage class's provisioner, parameters, reclaim policy and binding mode never
//! change after creation; a CSI driver's attachRequired and lifecycle modes never
//! change; a volume attachment's spec never changes and its status changes only
//! through `/status`. CSI drivers and volume attachments carry a generation only once
//! upstream's strategies would set one (never on create).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::storage::v1 as api;
use serde_json::{json, Value};

use super::apps::{invalid_raw, keep_status, reset_status};
use super::networking::{decode_with, dedup, go_quote};
use super::pods::{arr_at, map_at, str_at};
use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, too_long, Cause,
};
use crate::registry::store::immutable;
use crate::registry::validation::{dns1123_subdomain, qualified_name, NameRule};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub const GROUP: &str = "storage.k8s.io";

/// The annotations that mark the default storage class (IsDefaultAnnotation).
pub const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "StorageClass",
            resource: "storageclasses",
            singular: "storageclass",
            namespaced: false,
            short_names: &["sc"],
            categories: &[],
            storage_prefix: "storageclasses",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(StorageClasses),
        },
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "CSIDriver",
            resource: "csidrivers",
            singular: "csidriver",
            namespaced: false,
            short_names: &[],
            categories: &[],
            storage_prefix: "csidrivers",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(CsiDrivers),
        },
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "VolumeAttachment",
            resource: "volumeattachments",
            singular: "volumeattachment",
            namespaced: false,
            short_names: &[],
            categories: &[],
            storage_prefix: "volumeattachments",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(VolumeAttachments),
        },
    ]
}

/// True when the class carries a default-class annotation set to "true".
pub fn is_default_class(obj: &Value) -> bool {
    let annotations = meta::metadata(obj).and_then(|m| m.get("annotations"));
    DEFAULT_CLASS_ANNOTATIONS
        .iter()
        .any(|a| annotations.and_then(|m| m.get(*a)).and_then(Value::as_str) == Some("true"))
}

fn bool_at(obj: &Value, ptr: &str, default: bool) -> bool {
    obj.pointer(ptr).and_then(Value::as_bool).unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// StorageClasses.
// ---------------------------------------------------------------------------------

struct StorageClasses;

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

/// validateParameters (empty maps allowed).
fn validate_parameters(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some(params) = map_at(obj, "/parameters") else {
        return out;
    };
    if params.len() > MAX_PARAMETERS {
        out.push(too_long("parameters", MAX_PARAMETERS));
        return out;
    }
    let mut total = 0usize;
    for (k, v) in params {
        if k.is_empty() {
            out.push(invalid_value(
                "parameters",
                &json!(k),
                "field can not be empty.",
            ));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > MAX_PARAMETERS_SIZE {
        out.push(too_long("parameters", MAX_PARAMETERS_SIZE));
    }
    out
}

/// ValidateTopologySelectorTerm for each allowed topology, plus the duplicate-term
/// rule of validateAllowedTopologies.
fn validate_allowed_topologies(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut seen: Vec<BTreeMap<String, BTreeSet<String>>> = Vec::new();
    for (i, term) in arr_at(obj, "/allowedTopologies").iter().enumerate() {
        let base = format!("allowedTopologies[{i}].matchLabelExpressions");
        let mut exprs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (j, req) in arr_at(term, "/matchLabelExpressions").iter().enumerate() {
            let p = format!("{base}[{j}]");
            let values = arr_at(req, "/values");
            if values.is_empty() {
                out.push(required(&format!("{p}.values"), ""));
            }
            let mut set = BTreeSet::new();
            for (k, v) in values.iter().enumerate() {
                let s = v.as_str().unwrap_or("").to_owned();
                if !set.insert(s) {
                    out.push(duplicate(&format!("{p}.values[{k}]"), v));
                }
            }
            let key = str_at(req, "/key");
            for e in qualified_name(key) {
                out.push(invalid_value(&format!("{p}.key"), &json!(key), &e));
            }
            if exprs.contains_key(key) {
                out.push(duplicate(&format!("{p}.key"), &json!(key)));
            }
            exprs.insert(key.to_owned(), set);
        }
        if seen.contains(&exprs) {
            out.push(duplicate(&base, &json!("")));
        }
        seen.push(exprs);
    }
    out
}

/// An absent and an empty parameter map are the same parameters.
fn parameters(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    map_at(obj, "/parameters").filter(|m| !m.is_empty())
}

impl Strategy for StorageClasses {
    /// printStorageClass: the default class is marked in the NAME column.
    fn name_cell(&self, obj: &Value) -> String {
        let name = meta::name(obj);
        if is_default_class(obj) {
            format!("{name} (default)")
        } else {
            name.to_owned()
        }
    }

    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::StorageClass>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/provisioner", json!(""), true),
                (
                    "/allowedTopologies/*/matchLabelExpressions/*/key",
                    json!(""),
                    true,
                ),
                (
                    "/allowedTopologies/*/matchLabelExpressions/*/values",
                    json!([]),
                    true,
                ),
            ],
        )
    }

    /// SetDefaults_StorageClass.
    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            if m.get("reclaimPolicy").is_none_or(Value::is_null) {
                m.insert("reclaimPolicy".into(), json!("Delete"));
            }
            if m.get("volumeBindingMode").is_none_or(Value::is_null) {
                m.insert("volumeBindingMode".into(), json!("Immediate"));
            }
        }
    }

    /// ValidateStorageClass.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let provisioner = str_at(obj, "/provisioner");
        if provisioner.is_empty() {
            out.push(required("provisioner", ""));
        } else {
            for e in qualified_name(&provisioner.to_lowercase()) {
                out.push(invalid_value("provisioner", &json!(provisioner), &e));
            }
        }
        out.extend(validate_parameters(obj));
        let reclaim = str_at(obj, "/reclaimPolicy");
        if !reclaim.is_empty() && reclaim != "Delete" && reclaim != "Retain" {
            out.push(not_supported(
                "reclaimPolicy",
                &json!(reclaim),
                &["Delete", "Retain"],
            ));
        }
        match obj.get("volumeBindingMode").and_then(Value::as_str) {
            None => out.push(required("volumeBindingMode", "")),
            Some("Immediate" | "WaitForFirstConsumer") => {}
            Some(other) => out.push(not_supported(
                "volumeBindingMode",
                &json!(other),
                &["Immediate", "WaitForFirstConsumer"],
            )),
        }
        out.extend(validate_allowed_topologies(obj));
        out
    }

    /// ValidateStorageClass plus ValidateStorageClassUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if parameters(new) != parameters(old) {
            out.push(forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if str_at(new, "/provisioner") != str_at(old, "/provisioner") {
            out.push(forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if str_at(new, "/reclaimPolicy") != str_at(old, "/reclaimPolicy") {
            out.push(forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        let mode = str_at(new, "/volumeBindingMode");
        if mode != str_at(old, "/volumeBindingMode") {
            out.push(immutable("volumeBindingMode", &json!(mode)));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Provisioner", "string", "Indicates the type of the provisioner."),
            Column::new("ReclaimPolicy", "string", "Dynamically provisioned PersistentVolumes of this storage class are created with this reclaimPolicy. Defaults to Delete."),
            Column::new("VolumeBindingMode", "string", "VolumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound. When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
            Column::new("AllowVolumeExpansion", "string", "AllowVolumeExpansion shows whether the storage class allow volume expand."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let or = |ptr: &str, default: &str| match str_at(obj, ptr) {
            "" => default.to_owned(),
            s => s.to_owned(),
        };
        vec![
            json!(str_at(obj, "/provisioner")),
            json!(or("/reclaimPolicy", "Delete")),
            json!(or("/volumeBindingMode", "Immediate")),
            json!(bool_at(obj, "/allowVolumeExpansion", false)),
            json!(age(obj)),
        ]
    }
}

// ---------------------------------------------------------------------------------
// CSIDrivers.
// ---------------------------------------------------------------------------------

struct CsiDrivers;

/// A Go `%#v` rendering of a list of lifecycle modes (immutability errors).
fn modes_repr(obj: &Value) -> String {
    match obj
        .pointer("/spec/volumeLifecycleModes")
        .and_then(Value::as_array)
    {
        None => "[]storage.VolumeLifecycleMode(nil)".to_owned(),
        Some(modes) => {
            let items: Vec<String> = modes
                .iter()
                .map(|m| go_quote(m.as_str().unwrap_or("")))
                .collect();
            format!("[]storage.VolumeLifecycleMode{{{}}}", items.join(", "))
        }
    }
}

impl Strategy for CsiDrivers {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::CSIDriver>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec", json!({}), true),
                ("/spec/tokenRequests/*/audience", json!(""), true),
            ],
        )
    }

    /// SetDefaults_CSIDriver (SELinuxMountReadWriteOncePod is on in v1.33).
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for (field, value) in [
            ("attachRequired", json!(true)),
            ("podInfoOnMount", json!(false)),
            ("storageCapacity", json!(false)),
            ("fsGroupPolicy", json!("ReadWriteOnceWithFSType")),
            ("requiresRepublish", json!(false)),
            ("seLinuxMount", json!(false)),
        ] {
            if spec.get(field).is_none_or(Value::is_null) {
                spec.insert(field.into(), value);
            }
        }
        let no_modes = spec
            .get("volumeLifecycleModes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_modes {
            spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        meta::remove(obj, "generation");
    }

    /// validateCSIDriverSpec (upstream's field path for attachRequired is
    /// `spec.attachedRequired`).
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let set = |f: &str| spec.get(f).is_some_and(|v| !v.is_null());
        if !set("attachRequired") {
            out.push(required("spec.attachedRequired", ""));
        }
        if !set("podInfoOnMount") {
            out.push(required("spec.podInfoOnMount", ""));
        }
        if !set("storageCapacity") {
            out.push(required("spec.storageCapacity", ""));
        }
        if let Some(p) = spec.get("fsGroupPolicy").and_then(Value::as_str) {
            if !matches!(p, "File" | "None" | "ReadWriteOnceWithFSType") {
                out.push(not_supported(
                    "spec.fsGroupPolicy",
                    &json!(p),
                    &["File", "None", "ReadWriteOnceWithFSType"],
                ));
            }
        }
        let mut audiences = BTreeSet::new();
        for (i, t) in arr_at(&spec, "/tokenRequests").iter().enumerate() {
            let p = format!("spec.tokenRequests[{i}]");
            let audience = str_at(t, "/audience");
            if !audiences.insert(audience) {
                out.push(duplicate(&format!("{p}.audience"), &json!(audience)));
                continue;
            }
            if let Some(secs) = t.get("expirationSeconds").and_then(Value::as_i64) {
                if secs < 600 {
                    out.push(invalid_value(
                        &format!("{p}.expirationSeconds"),
                        &json!(secs),
                        "may not specify a duration less than 10 minutes",
                    ));
                }
                if secs > 1 << 32 {
                    out.push(invalid_value(
                        &format!("{p}.expirationSeconds"),
                        &json!(secs),
                        "may not specify a duration larger than 2^32 seconds",
                    ));
                }
            }
        }
        for m in arr_at(&spec, "/volumeLifecycleModes") {
            let s = m.as_str().unwrap_or("");
            if s != "Persistent" && s != "Ephemeral" {
                out.push(not_supported(
                    "spec.volumeLifecycleModes",
                    m,
                    &["Persistent", "Ephemeral"],
                ));
            }
        }
        if !set("seLinuxMount") {
            out.push(required("spec.seLinuxMount", ""));
        }
        if let Some(p) = spec
            .get("nodeAllocatableUpdatePeriodSeconds")
            .and_then(Value::as_i64)
        {
            if p < 10 {
                out.push(invalid_value(
                    "spec.nodeAllocatableUpdatePeriodSeconds",
                    &json!(p),
                    "must be greater than or equal to 10 seconds",
                ));
            }
        }
        out
    }

    /// ValidateCSIDriverUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let attach = new.pointer("/spec/attachRequired");
        if attach != old.pointer("/spec/attachRequired") {
            out.push(immutable(
                "spec.attachedRequired",
                attach.unwrap_or(&Value::Null),
            ));
        }
        if new.pointer("/spec/volumeLifecycleModes") != old.pointer("/spec/volumeLifecycleModes") {
            out.push(invalid_raw(
                "spec.volumeLifecycleModes",
                &modes_repr(new),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver and updates the volumeattachment status when the attach operation is complete. If the value is set to false, the attach operation will be skipped. Otherwise the attach operation will be called.\n\nThis field is immutable."),
            Column::new("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true. If set to false, pod information will not be passed on mount. Default is false."),
            Column::new("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true."),
            Column::new("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication. Kubelet will pass the tokens in VolumeContext in the CSI NodePublishVolume calls."),
            Column::new("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume. This field defaults to false."),
            Column::new("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. The default if the list is empty is \"Persistent\", which is the usage defined by the CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let audiences: Vec<&str> = arr_at(obj, "/spec/tokenRequests")
            .iter()
            .map(|t| str_at(t, "/audience"))
            .collect();
        let token_requests = if audiences.is_empty() {
            "<unset>".to_owned()
        } else {
            audiences.join(",")
        };
        let modes: Vec<&str> = arr_at(obj, "/spec/volumeLifecycleModes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let modes = if modes.is_empty() {
            "<none>".to_owned()
        } else {
            modes.join(",")
        };
        vec![
            json!(bool_at(obj, "/spec/attachRequired", true)),
            json!(bool_at(obj, "/spec/podInfoOnMount", false)),
            json!(bool_at(obj, "/spec/storageCapacity", false)),
            json!(token_requests),
            json!(bool_at(obj, "/spec/requiresRepublish", false)),
            json!(modes),
            json!(age(obj)),
        ]
    }
}

// ---------------------------------------------------------------------------------
// VolumeAttachments.
// ---------------------------------------------------------------------------------

struct VolumeAttachments;

const MAX_ATTACHMENT_METADATA_SIZE: usize = 256 * 1024;
const MAX_VOLUME_ERROR_MESSAGE: usize = 1024;

/// validateVolumeAttachmentStatus.
fn validate_attachment_status(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(md) = map_at(obj, "/status/attachmentMetadata") {
        let size: usize = md
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map(str::len).unwrap_or(0))
            .sum();
        if size > MAX_ATTACHMENT_METADATA_SIZE {
            out.push(too_long(
                "status.attachmentMetadata",
                MAX_ATTACHMENT_METADATA_SIZE,
            ));
        }
    }
    for field in ["attachError", "detachError"] {
        let Some(e) = obj
            .pointer(&format!("/status/{field}"))
            .filter(|e| e.is_object())
        else {
            continue;
        };
        if str_at(e, "/message").len() > MAX_VOLUME_ERROR_MESSAGE {
            // upstream reports the metadata limit here.
            out.push(too_long(
                &format!("status.{field}.message"),
                MAX_ATTACHMENT_METADATA_SIZE,
            ));
        }
        if let Some(code) = e.get("errorCode").and_then(Value::as_i64) {
            if code < 0 {
                out.push(invalid_value(
                    &format!("status.{field}.errorCode"),
                    &json!(code),
                    "must be between 0 and 2147483647, inclusive",
                ));
            }
        }
    }
    out
}

/// ValidateVolumeAttachment (without the v1 create-only checks).
fn validate_attachment(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if str_at(obj, "/spec/attacher").is_empty() {
        out.push(required("spec.attacher", ""));
    }
    let source = obj.pointer("/spec/source");
    let pv = source
        .and_then(|s| s.get("persistentVolumeName"))
        .and_then(Value::as_str);
    let inline = source
        .and_then(|s| s.get("inlineVolumeSpec"))
        .filter(|v| !v.is_null());
    match (pv, inline) {
        (None, None) => out.push(required(
            "spec.source",
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(_), Some(_)) => out.push(forbidden(
            "spec.source",
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(""), None) => out.push(required(
            "spec.source.persistentVolumeName",
            "must specify non empty persistentVolumeName",
        )),
        _ => {}
    }
    let node = str_at(obj, "/spec/nodeName");
    for e in dns1123_subdomain(node) {
        out.push(invalid_value("spec.nodeName", &json!(node), &e));
    }
    out.extend(validate_attachment_status(obj));
    out
}

/// A Go `%#v`-like rendering of a spec (the value of the immutability error).
fn attachment_spec_repr(obj: &Value) -> String {
    let pv = match obj
        .pointer("/spec/source/persistentVolumeName")
        .and_then(Value::as_str)
    {
        Some(name) => format!("&{}", go_quote(name)),
        None => "(*string)(nil)".to_owned(),
    };
    format!(
        "storage.VolumeAttachmentSpec{{Attacher:{}, Source:storage.VolumeAttachmentSource{{PersistentVolumeName:{pv}}}, NodeName:{}}}",
        go_quote(str_at(obj, "/spec/attacher")),
        go_quote(str_at(obj, "/spec/nodeName")),
    )
}

impl Strategy for VolumeAttachments {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::VolumeAttachment>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec", json!({}), true),
                ("/spec/attacher", json!(""), true),
                ("/spec/nodeName", json!(""), true),
                ("/spec/source", json!({}), true),
                ("/status/attached", json!(false), true),
            ],
        )
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({"attached": false}));
        meta::remove(obj, "generation");
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    /// ValidateVolumeAttachment plus ValidateVolumeAttachmentV1.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = validate_attachment(obj);
        let attacher = str_at(obj, "/spec/attacher");
        if attacher.is_empty() {
            out.push(required("spec.attacher", ""));
        }
        if attacher.len() > 63 {
            out.push(too_long("spec.attacher", 63));
        }
        for e in dns1123_subdomain(&attacher.to_lowercase()) {
            out.push(invalid_value("spec.attacher", &json!(attacher), &e));
        }
        if let Some(pv) = obj
            .pointer("/spec/source/persistentVolumeName")
            .and_then(Value::as_str)
        {
            for e in dns1123_subdomain(pv) {
                out.push(invalid_value(
                    "spec.source.persistentVolumeName",
                    &json!(pv),
                    &e,
                ));
            }
        }
        dedup(out)
    }

    /// ValidateVolumeAttachmentUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = validate_attachment(new);
        if new.get("spec") != old.get("spec") {
            out.push(invalid_raw(
                "spec",
                &attachment_spec_repr(new),
                "field is immutable",
            ));
        }
        dedup(out)
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        self.validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Attacher", "string", "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().").format("name"),
            Column::new("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach."),
            Column::new("Node", "string", "nodeName represents the node that the volume should be attached to."),
            Column::new("Attached", "boolean", "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            json!(str_at(obj, "/spec/attacher")),
            json!(str_at(obj, "/spec/source/persistentVolumeName")),
            json!(str_at(obj, "/spec/nodeName")),
            json!(bool_at(obj, "/status/attached", false)),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::registry::kinds::cause_fields as fields;

    #[test]
    fn storage_classes_default_validate_and_print() {
        let mut sc = json!({"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "example.com/fast"});
        StorageClasses.default(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(StorageClasses.validate(&sc).is_empty());
        assert!(is_default_class(&sc));
        let cells = StorageClasses.cells(&sc);
        assert_eq!(cells.len(), StorageClasses.columns().len());
        assert_eq!(cells[0], "example.com/fast");
        assert_eq!(cells[3], false);

        let bad =
            json!({"provisioner": "", "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"});
        let causes = StorageClasses.validate(&bad);
        assert_eq!(
            fields(&causes),
            ["provisioner", "reclaimPolicy", "volumeBindingMode"]
        );
        assert_eq!(
            causes[1].message,
            "Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
        );

        let mut new = sc.clone();
        new["provisioner"] = json!("example.com/slow");
        new["parameters"] = json!({"type": "ssd"});
        new["volumeBindingMode"] = json!("WaitForFirstConsumer");
        let upd = StorageClasses.validate_update(&new, &sc);
        assert_eq!(
            fields(&upd),
            ["parameters", "provisioner", "volumeBindingMode"]
        );
        assert_eq!(
            upd[1].message,
            "Forbidden: updates to provisioner are forbidden."
        );
    }

    #[test]
    fn csi_drivers_default_and_keep_attach_required() {
        let mut d = json!({"metadata": {"name": "csi.example.com"}, "spec": {"tokenRequests": [{"audience": "a"}, {"audience": "a"}]}});
        CsiDrivers.default(&mut d);
        assert_eq!(d["spec"]["attachRequired"], true);
        assert_eq!(d["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
        assert_eq!(d["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
        let causes = CsiDrivers.validate(&d);
        assert_eq!(fields(&causes), ["spec.tokenRequests[1].audience"]);
        let cells = CsiDrivers.cells(&d);
        assert_eq!(cells.len(), CsiDrivers.columns().len());
        assert_eq!(cells[3], "a,a");
        assert_eq!(cells[5], "Persistent");
        let mut new = d.clone();
        new["spec"]["attachRequired"] = json!(false);
        new["spec"]["tokenRequests"] = json!([]);
        let upd = CsiDrivers.validate_update(&new, &d);
        assert_eq!(fields(&upd), ["spec.attachedRequired"]);
        assert_eq!(upd[0].message, "Invalid value: false: field is immutable");
    }

    #[test]
    fn volume_attachments_validate_spec_and_print() {
        let va = json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
        assert!(VolumeAttachments.validate(&va).is_empty());
        let cells = VolumeAttachments.cells(&va);
        assert_eq!(cells.len(), VolumeAttachments.columns().len());
        assert_eq!(cells[1], "pv-1");
        assert_eq!(cells[3], true);
        let bad = json!({"spec": {"attacher": "", "nodeName": "", "source": {}}});
        let causes = VolumeAttachments.validate(&bad);
        assert_eq!(
            fields(&causes),
            [
                "spec.attacher",
                "spec.source",
                "spec.nodeName",
                "spec.attacher"
            ]
        );
        let mut moved = va.clone();
        moved["spec"]["nodeName"] = json!("node-2");
        let upd = VolumeAttachments.validate_update(&moved, &va);
        assert_eq!(fields(&upd), ["spec"]);
        assert!(upd[0].message.ends_with("field is immutable"));
    }
}
