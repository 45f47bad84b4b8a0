//! core/v1 cluster and policy kinds: nodes, persistentvolumes, persistentvolumeclaims,
//! limitranges, resourcequotas and (core/v1) events — upstream's defaulting,
//! validation, immutability rules, table columns and field selectors.
//!
//! Invariants: status is written only through the status subresource (create resets
//! it where upstream does); a PV's volume source and mode, a node's podCIDRs and
//! providerID once set, and a PVC's spec (but its storage request once bound) never
//! change on update.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as api;
use serde_json::{json, Map, Value};

use super::pods::{
    arr_at, check_quantities, map_at, quantity_of, quantity_text, spec_diff, str_at,
};
use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, Cause,
};
use crate::registry::store::immutable;
use crate::registry::typed::roundtrip;
use crate::registry::validation::{dns1123_subdomain, qualified_name, NameRule};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Node",
            resource: "nodes",
            singular: "node",
            namespaced: false,
            short_names: &["no"],
            categories: &[],
            storage_prefix: "minions",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Nodes),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "PersistentVolume",
            resource: "persistentvolumes",
            singular: "persistentvolume",
            namespaced: false,
            short_names: &["pv"],
            categories: &[],
            storage_prefix: "persistentvolumes",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(PersistentVolumes),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "PersistentVolumeClaim",
            resource: "persistentvolumeclaims",
            singular: "persistentvolumeclaim",
            namespaced: true,
            short_names: &["pvc"],
            categories: &[],
            storage_prefix: "persistentvolumeclaims",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(PersistentVolumeClaims),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "LimitRange",
            resource: "limitranges",
            singular: "limitrange",
            namespaced: true,
            short_names: &["limits"],
            categories: &[],
            storage_prefix: "limitranges",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(LimitRanges),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "ResourceQuota",
            resource: "resourcequotas",
            singular: "resourcequota",
            namespaced: true,
            short_names: &["quota"],
            categories: &[],
            storage_prefix: "resourcequotas",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ResourceQuotas),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Event",
            resource: "events",
            singular: "event",
            namespaced: true,
            short_names: &["ev"],
            categories: &[],
            storage_prefix: "events",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Events),
        },
    ]
}

fn keep_status(new: &mut Value, old: &Value) {
    if let Some(m) = new.as_object_mut() {
        match old.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
}

fn set_status(obj: &mut Value, status: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), status);
    }
}

/// A resource-list field must hold valid, non-negative quantities.
fn non_negative_quantities(obj: &Value, ptr: &str, path: &str, out: &mut Vec<Cause>) {
    for (k, v) in map_at(obj, ptr).into_iter().flatten() {
        if quantity_of(v).is_some_and(|q| q < 0) {
            out.push(invalid_value(
                &format!("{path}[{k}]"),
                &json!(quantity_text(v)),
                "must be greater than or equal to 0",
            ));
        }
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn validate_access_modes(modes: &[Value], path: &str, out: &mut Vec<Cause>) {
    for m in modes {
        let s = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&s) {
            out.push(not_supported(path, m, ACCESS_MODES));
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        out.push(forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// GetAccessModesAsString: RWO, ROX, RWX, RWOP in that order.
fn access_modes_text(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v == m);
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

fn volume_mode(obj: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(m) = obj.pointer("/spec/volumeMode").and_then(Value::as_str) {
        if m != "Block" && m != "Filesystem" {
            out.push(not_supported(path, &json!(m), &["Block", "Filesystem"]));
        }
    }
}

// ---------------------------------------------------------------------------------
// Nodes.
// ---------------------------------------------------------------------------------

struct Nodes;

impl Nodes {
    fn status_text(obj: &Value) -> String {
        let mut status = Vec::new();
        if let Some(c) = arr_at(obj, "/status/conditions")
            .iter()
            .rev()
            .find(|c| str_at(c, "/type") == "Ready")
        {
            status.push(if str_at(c, "/status") == "True" {
                "Ready"
            } else {
                "NotReady"
            });
        }
        if status.is_empty() {
            status.push("Unknown");
        }
        if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
            status.push("SchedulingDisabled");
        }
        status.join(",")
    }

    fn roles(obj: &Value) -> String {
        let mut roles = std::collections::BTreeSet::new();
        for (k, v) in meta::labels(obj).into_iter().flatten() {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_owned());
                }
            }
        }
        if roles.is_empty() {
            "<none>".into()
        } else {
            roles.into_iter().collect::<Vec<_>>().join(",")
        }
    }

    fn address(obj: &Value, ty: &str) -> String {
        arr_at(obj, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == ty)
            .map(|a| str_at(a, "/address").to_owned())
            .unwrap_or_else(|| "<none>".into())
    }

    fn validate_status(obj: &Value, out: &mut Vec<Cause>) {
        for (i, a) in arr_at(obj, "/status/addresses").iter().enumerate() {
            let t = str_at(a, "/type");
            let allowed = [
                "ExternalDNS",
                "ExternalIP",
                "Hostname",
                "InternalDNS",
                "InternalIP",
            ];
            if !allowed.contains(&t) {
                out.push(not_supported(
                    &format!("status.addresses[{i}].type"),
                    &json!(t),
                    &allowed,
                ));
            }
        }
        for part in ["capacity", "allocatable"] {
            non_negative_quantities(
                obj,
                &format!("/status/{part}"),
                &format!("status.{part}"),
                out,
            );
        }
    }
}

impl Strategy for Nodes {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_quantities(&obj, &["/status/capacity", "/status/allocatable"])?;
        roundtrip::<api::Node>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            if status.get("allocatable").is_none_or(Value::is_null) {
                if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                    status.insert("allocatable".into(), cap);
                }
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (i, t) in arr_at(obj, "/spec/taints").iter().enumerate() {
            let p = format!("spec.taints[{i}]");
            let key = str_at(t, "/key");
            if key.is_empty() {
                out.push(required(&format!("{p}.key"), ""));
            } else {
                for e in qualified_name(key) {
                    out.push(invalid_value(&format!("{p}.key"), &json!(key), &e));
                }
            }
            let value = str_at(t, "/value");
            for e in crate::registry::validation::label_value(value) {
                out.push(invalid_value(&format!("{p}.value"), &json!(value), &e));
            }
            let effect = str_at(t, "/effect");
            let effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
            if effect.is_empty() {
                out.push(required(&format!("{p}.effect"), ""));
            } else if !effects.contains(&effect) {
                out.push(not_supported(
                    &format!("{p}.effect"),
                    &json!(effect),
                    &effects,
                ));
            }
            if !seen.insert((key, effect)) {
                out.push(duplicate(&p, &json!({"key": key, "effect": effect})));
                if let Some(last) = out.last_mut() {
                    last.message =
                        "Duplicate value: taints must be unique by key and effect pair".into();
                }
            }
        }
        let mut cidrs: Vec<&str> = arr_at(obj, "/spec/podCIDRs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let single = str_at(obj, "/spec/podCIDR");
        if cidrs.is_empty() && !single.is_empty() {
            cidrs.push(single);
        }
        for (i, c) in cidrs.iter().enumerate() {
            let ok = c.split_once('/').is_some_and(|(ip, len)| {
                ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128)
            });
            if !ok {
                out.push(invalid_value(
                    &format!("spec.podCIDRs[{i}]"),
                    &json!(c),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
        Self::validate_status(obj, &mut out);
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let old_cidrs = arr_at(old, "/spec/podCIDRs");
        if !old_cidrs.is_empty() && arr_at(new, "/spec/podCIDRs") != old_cidrs {
            out.push(forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_pid = str_at(old, "/spec/providerID");
        if !old_pid.is_empty() && str_at(new, "/spec/providerID") != old_pid {
            out.push(forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        Self::validate_status(new, &mut out);
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "spec.unschedulable" => Some(
                (obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true))
                    .to_string(),
            ),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Status", "string", "The status of the node"),
            Column::new("Roles", "string", "The roles of the node"),
            AGE_COLUMN,
            Column::new("Version", "string", "Kubelet Version reported by the node."),
            Column::new("Internal-IP", "string", "List of addresses reachable to the node.").wide(),
            Column::new("External-IP", "string", "List of addresses reachable to the node.").wide(),
            Column::new("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
            Column::new("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
            Column::new("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let info = |f: &str| match str_at(obj, &format!("/status/nodeInfo/{f}")) {
            "" => "<unknown>".to_owned(),
            s => s.to_owned(),
        };
        vec![
            json!(Self::status_text(obj)),
            json!(Self::roles(obj)),
            json!(age(obj)),
            json!(str_at(obj, "/status/nodeInfo/kubeletVersion")),
            json!(Self::address(obj, "InternalIP")),
            json!(Self::address(obj, "ExternalIP")),
            json!(info("osImage")),
            json!(info("kernelVersion")),
            json!(info("containerRuntimeVersion")),
        ]
    }
}

// ---------------------------------------------------------------------------------
// PersistentVolumes.
// ---------------------------------------------------------------------------------

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

struct PersistentVolumes;

impl PersistentVolumes {
    fn source(obj: &Value) -> Map<String, Value> {
        PV_SOURCES
            .iter()
            .filter_map(|s| {
                obj.pointer(&format!("/spec/{s}"))
                    .filter(|v| !v.is_null())
                    .map(|v| ((*s).to_owned(), v.clone()))
            })
            .collect()
    }

    fn storage_class(obj: &Value) -> String {
        let annotated = meta::metadata(obj)
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
            .and_then(Value::as_str);
        match annotated {
            Some(c) => c.to_owned(),
            None => str_at(obj, "/spec/storageClassName").to_owned(),
        }
    }
}

impl Strategy for PersistentVolumes {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_quantities(&obj, &["/spec/capacity"])?;
        roundtrip::<api::PersistentVolume>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(m) = obj.as_object_mut() else { return };
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            if spec
                .get("persistentVolumeReclaimPolicy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                spec.insert("persistentVolumeReclaimPolicy".into(), json!("Retain"));
            }
            if spec.get("volumeMode").is_none_or(Value::is_null) {
                spec.insert("volumeMode".into(), json!("Filesystem"));
            }
            if let Some(h) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
                if h.get("type").is_none_or(Value::is_null) {
                    h.insert("type".into(), json!(""));
                }
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_status(
            obj,
            json!({"phase": "Pending", "lastPhaseTransitionTime": meta::now_rfc3339()}),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let (Some(m), Some(mut s)) = (merged.as_object_mut(), status) {
            let phase_changed = s.get("phase") != old.pointer("/status/phase");
            let time_unchanged =
                s.get("lastPhaseTransitionTime") == old.pointer("/status/lastPhaseTransitionTime");
            if phase_changed && time_unchanged {
                if let Some(sm) = s.as_object_mut() {
                    sm.insert("lastPhaseTransitionTime".into(), json!(meta::now_rfc3339()));
                }
            }
            m.insert("status".into(), s);
        }
        *new = merged;
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let modes = arr_at(obj, "/spec/accessModes");
        if modes.is_empty() {
            out.push(required("spec.accessModes", ""));
        }
        validate_access_modes(modes, "spec.accessModes", &mut out);
        let capacity = map_at(obj, "/spec/capacity");
        match capacity {
            None => out.push(required("spec.capacity", "")),
            Some(c) if c.is_empty() => out.push(required("spec.capacity", "")),
            Some(c) => {
                if !c.contains_key("storage") || c.len() > 1 {
                    let keys: Vec<&String> = c.keys().collect();
                    out.push(Cause {
                        reason: "FieldValueNotSupported",
                        message: format!(
                            "Unsupported value: {keys:?}: supported values: \"storage\""
                        ),
                        field: "spec.capacity".into(),
                    });
                }
                for (k, v) in c {
                    if quantity_of(v).is_some_and(|q| q <= 0) {
                        out.push(invalid_value(
                            &format!("spec.capacity[{k}]"),
                            &json!(quantity_text(v)),
                            "must be greater than zero",
                        ));
                    }
                }
            }
        }
        let policy = str_at(obj, "/spec/persistentVolumeReclaimPolicy");
        if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
            out.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                &json!(policy),
                &["Delete", "Recycle", "Retain"],
            ));
        }
        let sources: Vec<&str> = PV_SOURCES
            .iter()
            .copied()
            .filter(|s| {
                obj.pointer(&format!("/spec/{s}"))
                    .is_some_and(|v| !v.is_null())
            })
            .collect();
        match sources.as_slice() {
            [] => out.push(required("spec", "must specify a volume type")),
            [_] => {}
            [_, second, ..] => out.push(forbidden(
                &format!("spec.{second}"),
                "may not specify more than 1 volume type",
            )),
        }
        if obj.pointer("/spec/hostPath").is_some_and(Value::is_object)
            && str_at(obj, "/spec/hostPath/path").is_empty()
        {
            out.push(required("spec.hostPath.path", ""));
        }
        if obj.pointer("/spec/local").is_some_and(Value::is_object)
            && str_at(obj, "/spec/local/path").is_empty()
        {
            out.push(required("spec.local.path", ""));
        }
        if obj.pointer("/spec/claimRef").is_some_and(Value::is_object) {
            if str_at(obj, "/spec/claimRef/name").is_empty() {
                out.push(required("spec.claimRef.name", ""));
            }
            if str_at(obj, "/spec/claimRef/namespace").is_empty() {
                out.push(required("spec.claimRef.namespace", ""));
            }
        }
        let class = str_at(obj, "/spec/storageClassName");
        if !class.is_empty() {
            for e in dns1123_subdomain(class) {
                out.push(invalid_value("spec.storageClassName", &json!(class), &e));
            }
        }
        volume_mode(obj, "spec.volumeMode", &mut out);
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if Self::source(new) != Self::source(old) {
            out.push(forbidden(
                "spec.persistentvolumesource",
                &format!(
                    "spec.persistentvolumesource is immutable after creation\n{}",
                    spec_diff(
                        "core.PersistentVolumeSource",
                        &Value::Object(Self::source(old)),
                        &Value::Object(Self::source(new))
                    )
                ),
            ));
        }
        if new.pointer("/spec/volumeMode") != old.pointer("/spec/volumeMode") {
            out.push(immutable(
                "spec.volumeMode",
                new.pointer("/spec/volumeMode").unwrap_or(&Value::Null),
            ));
        }
        if old
            .pointer("/spec/nodeAffinity")
            .is_some_and(|v| !v.is_null())
            && new.pointer("/spec/nodeAffinity") != old.pointer("/spec/nodeAffinity")
        {
            out.push(immutable(
                "spec.nodeAffinity",
                new.pointer("/spec/nodeAffinity").unwrap_or(&Value::Null),
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
            Column::new("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
            Column::new("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
            Column::new("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
            Column::new("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
            Column::new("StorageClass", "string", "StorageClass of the pv"),
            Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            Column::new("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            AGE_COLUMN,
            Column::new("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let claim = if obj.pointer("/spec/claimRef").is_some_and(Value::is_object) {
            format!(
                "{}/{}",
                str_at(obj, "/spec/claimRef/namespace"),
                str_at(obj, "/spec/claimRef/name")
            )
        } else {
            String::new()
        };
        let phase = if meta::deletion_timestamp(obj).is_some() {
            "Terminating".to_owned()
        } else {
            str_at(obj, "/status/phase").to_owned()
        };
        let or_unset = |p: &str| match str_at(obj, p) {
            "" => "<unset>".to_owned(),
            s => s.to_owned(),
        };
        vec![
            json!(obj
                .pointer("/spec/capacity/storage")
                .map(quantity_text)
                .unwrap_or_else(|| "0".into())),
            json!(access_modes_text(arr_at(obj, "/spec/accessModes"))),
            json!(str_at(obj, "/spec/persistentVolumeReclaimPolicy")),
            json!(phase),
            json!(claim),
            json!(Self::storage_class(obj)),
            json!(or_unset("/spec/volumeAttributesClassName")),
            json!(str_at(obj, "/status/reason")),
            json!(age(obj)),
            json!(or_unset("/spec/volumeMode")),
        ]
    }
}

// ---------------------------------------------------------------------------------
// PersistentVolumeClaims.
// ---------------------------------------------------------------------------------

struct PersistentVolumeClaims;

impl PersistentVolumeClaims {
    fn storage_class(obj: &Value) -> String {
        let annotated = meta::metadata(obj)
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
            .and_then(Value::as_str);
        match annotated {
            Some(c) => c.to_owned(),
            None => str_at(obj, "/spec/storageClassName").to_owned(),
        }
    }
}

impl Strategy for PersistentVolumeClaims {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_quantities(
            &obj,
            &["/spec/resources/requests", "/spec/resources/limits"],
        )?;
        roundtrip::<api::PersistentVolumeClaim>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(m) = obj.as_object_mut() else { return };
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            if spec.get("volumeMode").is_none_or(Value::is_null) {
                spec.insert("volumeMode".into(), json!("Filesystem"));
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_status(obj, json!({"phase": "Pending"}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let modes = arr_at(obj, "/spec/accessModes");
        if modes.is_empty() {
            out.push(required(
                "spec.accessModes",
                "at least 1 access mode is required",
            ));
        }
        validate_access_modes(modes, "spec.accessModes", &mut out);
        match obj.pointer("/spec/resources/requests/storage") {
            None => out.push(required("spec.resources[storage]", "")),
            Some(v) => {
                if quantity_of(v).is_some_and(|q| q <= 0) {
                    out.push(invalid_value(
                        "spec.resources[storage]",
                        &json!(quantity_text(v)),
                        "must be greater than zero",
                    ));
                }
            }
        }
        non_negative_quantities(
            obj,
            "/spec/resources/requests",
            "spec.resources.requests",
            &mut out,
        );
        non_negative_quantities(
            obj,
            "/spec/resources/limits",
            "spec.resources.limits",
            &mut out,
        );
        let class = str_at(obj, "/spec/storageClassName");
        if !class.is_empty() {
            for e in dns1123_subdomain(class) {
                out.push(invalid_value("spec.storageClassName", &json!(class), &e));
            }
        }
        volume_mode(obj, "spec.volumeMode", &mut out);
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let empty = json!({});
        let mut old_spec = old.get("spec").cloned().unwrap_or_else(|| empty.clone());
        let mut new_spec = new.get("spec").cloned().unwrap_or(empty);
        // The volume name may be set once (binding).
        if str_at(&old_spec, "/volumeName").is_empty() {
            match new_spec.get("volumeName") {
                Some(v) => old_spec["volumeName"] = v.clone(),
                None => {
                    if let Some(m) = old_spec.as_object_mut() {
                        m.remove("volumeName");
                    }
                }
            }
        }
        // The attributes class may change; a bound claim's storage request may grow.
        for spec in [&mut old_spec, &mut new_spec] {
            if let Some(m) = spec.as_object_mut() {
                m.remove("volumeAttributesClassName");
            }
        }
        let bound = str_at(new, "/status/phase") == "Bound";
        if bound {
            let old_storage = old_spec.pointer("/resources/requests/storage").cloned();
            if let Some(req) = new_spec
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut)
            {
                match old_storage {
                    Some(s) => req.insert("storage".into(), s),
                    None => req.remove("storage"),
                };
            }
        }
        if new_spec != old_spec {
            out.push(forbidden(
                "spec",
                &format!(
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                    spec_diff("core.PersistentVolumeClaimSpec", &old_spec, &new_spec)
                ),
            ));
        }
        let old_size = old
            .pointer("/spec/resources/requests/storage")
            .and_then(quantity_of);
        let new_size = new
            .pointer("/spec/resources/requests/storage")
            .and_then(quantity_of);
        if let (Some(o), Some(n)) = (old_size, new_size) {
            if n < o {
                out.push(forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than previous value",
                ));
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Status",
                "string",
                "phase represents the current phase of PersistentVolumeClaim.",
            ),
            Column::new(
                "Volume",
                "string",
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
            ),
            Column::new(
                "Capacity",
                "string",
                "capacity represents the actual resources of the underlying volume.",
            ),
            Column::new(
                "Access Modes",
                "string",
                "accessModes contains the actual access modes the volume backing the PVC has.",
            ),
            Column::new("StorageClass", "string", "StorageClass of the pvc"),
            Column::new(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
            ),
            AGE_COLUMN,
            Column::new(
                "VolumeMode",
                "string",
                "volumeMode defines what type of volume is required by the claim.",
            )
            .wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let phase = if meta::deletion_timestamp(obj).is_some() {
            "Terminating".to_owned()
        } else {
            str_at(obj, "/status/phase").to_owned()
        };
        let volume = str_at(obj, "/spec/volumeName");
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                obj.pointer("/status/capacity/storage")
                    .map(quantity_text)
                    .unwrap_or_else(|| "0".into()),
                access_modes_text(arr_at(obj, "/status/accessModes")),
            )
        };
        let or_unset = |p: &str| match str_at(obj, p) {
            "" => "<unset>".to_owned(),
            s => s.to_owned(),
        };
        vec![
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(Self::storage_class(obj)),
            json!(or_unset("/spec/volumeAttributesClassName")),
            json!(age(obj)),
            json!(or_unset("/spec/volumeMode")),
        ]
    }
}

// ---------------------------------------------------------------------------------
// LimitRanges.
// ---------------------------------------------------------------------------------

struct LimitRanges;

const LIMIT_PARTS: &[&str] = &[
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

impl Strategy for LimitRanges {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        for item in arr_at(&obj, "/spec/limits") {
            check_quantities(
                item,
                &[
                    "/max",
                    "/min",
                    "/default",
                    "/defaultRequest",
                    "/maxLimitRequestRatio",
                ],
            )?;
        }
        roundtrip::<api::LimitRange>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(limits) = obj
            .pointer_mut("/spec/limits")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for item in limits {
            let Some(m) = item.as_object_mut() else {
                continue;
            };
            if m.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            let get = |m: &Map<String, Value>, k: &str| {
                m.get(k)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let max = get(m, "max");
            let min = get(m, "min");
            let mut default = get(m, "default");
            for (k, v) in &max {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut default_request = get(m, "defaultRequest");
            for (k, v) in default.iter().chain(min.iter()) {
                default_request
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            if !default.is_empty() {
                m.insert("default".into(), Value::Object(default));
            }
            if !default_request.is_empty() {
                m.insert("defaultRequest".into(), Value::Object(default_request));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let mut types = HashSet::new();
        for (i, item) in arr_at(obj, "/spec/limits").iter().enumerate() {
            let p = format!("spec.limits[{i}]");
            let ty = str_at(item, "/type");
            if !types.insert(ty) {
                out.push(duplicate(&format!("{p}.type"), &json!(ty)));
            }
            if ty == "Pod" {
                for f in ["default", "defaultRequest"] {
                    if map_at(item, &format!("/{f}")).is_some_and(|m| !m.is_empty()) {
                        out.push(forbidden(
                            &format!("{p}.{f}"),
                            "may not be specified when `type` is 'Pod'",
                        ));
                    }
                }
            }
            let q = |part: &str, k: &str| {
                item.pointer(&format!("/{part}/{k}"))
                    .and_then(|v| quantity_of(v).map(|n| (n, quantity_text(v))))
            };
            let mut keys: Vec<&String> = LIMIT_PARTS
                .iter()
                .flat_map(|part| {
                    map_at(item, &format!("/{part}"))
                        .into_iter()
                        .flat_map(|m| m.keys())
                })
                .collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (max, min, def, dreq) = (
                    q("max", k),
                    q("min", k),
                    q("default", k),
                    q("defaultRequest", k),
                );
                if let (Some(min), Some(max)) = (&min, &max) {
                    if min.0 > max.0 {
                        out.push(invalid_value(
                            &format!("{p}.min[{k}]"),
                            &json!(min.1),
                            &format!("min value {} is greater than max value {}", min.1, max.1),
                        ));
                    }
                }
                if let (Some(dreq), Some(min)) = (&dreq, &min) {
                    if min.0 > dreq.0 {
                        out.push(invalid_value(
                            &format!("{p}.defaultRequest[{k}]"),
                            &json!(dreq.1),
                            &format!(
                                "min value {} is greater than default request value {}",
                                min.1, dreq.1
                            ),
                        ));
                    }
                }
                if let (Some(dreq), Some(max)) = (&dreq, &max) {
                    if dreq.0 > max.0 {
                        out.push(invalid_value(
                            &format!("{p}.defaultRequest[{k}]"),
                            &json!(dreq.1),
                            &format!(
                                "default request value {} is greater than max value {}",
                                dreq.1, max.1
                            ),
                        ));
                    }
                }
                if let (Some(dreq), Some(def)) = (&dreq, &def) {
                    if dreq.0 > def.0 {
                        out.push(invalid_value(
                            &format!("{p}.defaultRequest[{k}]"),
                            &json!(dreq.1),
                            &format!(
                                "default request value {} is greater than default limit value {}",
                                dreq.1, def.1
                            ),
                        ));
                    }
                }
                if let (Some(def), Some(min)) = (&def, &min) {
                    if min.0 > def.0 {
                        out.push(invalid_value(
                            &format!("{p}.default[{k}]"),
                            &json!(min.1),
                            &format!(
                                "min value {} is greater than default value {}",
                                min.1, def.1
                            ),
                        ));
                    }
                }
                if let (Some(def), Some(max)) = (&def, &max) {
                    if def.0 > max.0 {
                        out.push(invalid_value(
                            &format!("{p}.default[{k}]"),
                            &json!(max.1),
                            &format!(
                                "default value {} is greater than max value {}",
                                def.1, max.1
                            ),
                        ));
                    }
                }
                if let Some(ratio) = q("maxLimitRequestRatio", k) {
                    if ratio.0 < 1_000_000_000 {
                        out.push(invalid_value(
                            &format!("{p}.maxLimitRequestRatio[{k}]"),
                            &json!(ratio.1),
                            "ratio must be greater than or equal to 1",
                        ));
                    }
                }
            }
        }
        out
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    /// The default table (no printer upstream): Name and "Created At".
    fn columns(&self) -> Vec<Column> {
        vec![Column::new(
            "Created At",
            "date",
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        )]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(meta::str_field(obj, "creationTimestamp"))]
    }
}

// ---------------------------------------------------------------------------------
// ResourceQuotas.
// ---------------------------------------------------------------------------------

struct ResourceQuotas;

const QUOTA_SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];

impl Strategy for ResourceQuotas {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_quantities(&obj, &["/spec/hard", "/status/hard", "/status/used"])?;
        roundtrip::<api::ResourceQuota>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_status(obj, json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (k, _) in map_at(obj, "/spec/hard").into_iter().flatten() {
            for e in qualified_name(k) {
                out.push(invalid_value("spec.hard", &json!(k), &e));
            }
        }
        non_negative_quantities(obj, "/spec/hard", "spec.hard", &mut out);
        for (i, s) in arr_at(obj, "/spec/scopes").iter().enumerate() {
            let scope = s.as_str().unwrap_or("");
            if !QUOTA_SCOPES.contains(&scope) {
                out.push(not_supported(&format!("spec.scopes[{i}]"), s, QUOTA_SCOPES));
            }
        }
        let scopes: Vec<&str> = arr_at(obj, "/spec/scopes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for (a, b) in [
            ("BestEffort", "NotBestEffort"),
            ("Terminating", "NotTerminating"),
        ] {
            if scopes.contains(&a) && scopes.contains(&b) {
                out.push(invalid_value(
                    "spec.scopes",
                    &json!(scopes),
                    "conflicting scopes",
                ));
            }
        }
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        non_negative_quantities(new, "/status/hard", "status.hard", &mut out);
        non_negative_quantities(new, "/status/used", "status.used", &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
            Column::new("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let hard: BTreeMap<&String, &Value> =
            map_at(obj, "/status/hard").into_iter().flatten().collect();
        let mut request = Vec::new();
        let mut limit = Vec::new();
        for (k, h) in hard {
            let used = obj.pointer(&format!(
                "/status/used/{}",
                k.replace('~', "~0").replace('/', "~1")
            ));
            let text = format!(
                "{k}: {}/{}",
                used.map(quantity_text).unwrap_or_else(|| "0".into()),
                quantity_text(h)
            );
            if k.split('.').next() == Some("limits") && k.contains('.') {
                limit.push(text);
            } else {
                request.push(text);
            }
        }
        vec![
            json!(request.join(", ")),
            json!(limit.join(", ")),
            json!(age(obj)),
        ]
    }
}

// ---------------------------------------------------------------------------------
// Events (core/v1).
// ---------------------------------------------------------------------------------

/// The core/v1 events strategy (events.k8s.io/v1 shares its table).
pub(crate) struct Events;

impl Events {
    fn since(ts: &str) -> String {
        match time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339) {
            Ok(t) => crate::registry::human_duration(time::OffsetDateTime::now_utc() - t),
            Err(_) => "<unknown>".into(),
        }
    }
}

impl Strategy for Events {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::Event>(obj)
    }

    /// printEvent: LAST SEEN first, the name last and wide.
    fn name_first(&self) -> bool {
        false
    }

    /// legacyValidateEvent as a core/v1 request sees it.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let ns = meta::namespace(obj);
        let involved_ns = str_at(obj, "/involvedObject/namespace");
        let event_time = str_at(obj, "/eventTime");
        if event_time.is_empty() {
            let ok = if involved_ns.is_empty() {
                ns.is_empty() || ns == "default"
            } else {
                ns == involved_ns
            };
            if !ok {
                out.push(invalid_value(
                    "involvedObject.namespace",
                    &json!(involved_ns),
                    "does not match event.namespace",
                ));
            }
        } else {
            if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
                out.push(invalid_value(
                    "involvedObject.namespace",
                    &json!(involved_ns),
                    "does not match event.namespace",
                ));
            }
            let controller = str_at(obj, "/reportingComponent");
            if controller.is_empty() {
                out.push(required("reportingComponent", ""));
            } else {
                for e in qualified_name(controller) {
                    out.push(invalid_value("reportingComponent", &json!(controller), &e));
                }
            }
            for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
                let v = str_at(obj, &format!("/{field}"));
                if v.is_empty() {
                    out.push(required(field, ""));
                } else if v.len() > limit {
                    out.push(invalid_value(
                        field,
                        &json!(v),
                        &format!("can have at most {limit} characters"),
                    ));
                }
            }
            let msg = str_at(obj, "/message");
            if msg.len() > 1024 {
                out.push(invalid_value(
                    "message",
                    &json!(msg),
                    "can have at most 1024 characters",
                ));
            }
        }
        let ty = str_at(obj, "/type");
        if !ty.is_empty() && ty != "Normal" && ty != "Warning" && !event_time.is_empty() {
            out.push(not_supported("type", &json!(ty), &["Normal", "Warning"]));
        }
        out
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        let s = |p: &str| Some(str_at(obj, p).to_owned());
        match field {
            "involvedObject.kind" => s("/involvedObject/kind"),
            "involvedObject.namespace" => s("/involvedObject/namespace"),
            "involvedObject.name" => s("/involvedObject/name"),
            "involvedObject.uid" => s("/involvedObject/uid"),
            "involvedObject.apiVersion" => s("/involvedObject/apiVersion"),
            "involvedObject.resourceVersion" => s("/involvedObject/resourceVersion"),
            "involvedObject.fieldPath" => s("/involvedObject/fieldPath"),
            "reason" => s("/reason"),
            "reportingComponent" => s("/reportingComponent"),
            "source" => match str_at(obj, "/source/component") {
                "" => s("/reportingComponent"),
                c => Some(c.to_owned()),
            },
            "type" => s("/type"),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    /// printEvent's columns; the name leads (the generic table puts it first) instead
    /// of trailing as upstream's wide-only Name column.
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
            Column::new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
            Column::new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            Column::new("Object", "string", "The object that this event is about."),
            Column::new("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.").wide(),
            Column::new("Source", "string", "The component reporting this event. Should be a short machine understandable string.").wide(),
            Column::new("Message", "string", "A human-readable description of the status of this operation."),
            Column::new("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
            Column::new("Count", "string", "The number of times this event has occurred.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let first_ts = str_at(obj, "/firstTimestamp");
        let first = if first_ts.is_empty() {
            Self::since(str_at(obj, "/eventTime"))
        } else {
            Self::since(first_ts)
        };
        let last_ts = str_at(obj, "/lastTimestamp");
        let mut last = if last_ts.is_empty() {
            first.clone()
        } else {
            Self::since(last_ts)
        };
        let mut count = obj.get("count").and_then(Value::as_i64).unwrap_or(0);
        if obj.get("series").is_some_and(Value::is_object) {
            last = Self::since(str_at(obj, "/series/lastObservedTime"));
            count = obj
                .pointer("/series/count")
                .and_then(Value::as_i64)
                .unwrap_or(0);
        } else if count == 0 {
            count = 1;
        }
        let kind = str_at(obj, "/involvedObject/kind").to_lowercase();
        let name = str_at(obj, "/involvedObject/name");
        let target = if name.is_empty() {
            kind
        } else {
            format!("{kind}/{name}")
        };
        let component = match str_at(obj, "/source/component") {
            "" => str_at(obj, "/reportingComponent"),
            c => c,
        };
        let instance = match str_at(obj, "/source/host") {
            "" => str_at(obj, "/reportingInstance"),
            h => h,
        };
        let source = if instance.is_empty() {
            component.to_owned()
        } else {
            format!("{component}, {instance}")
        };
        vec![
            json!(last),
            json!(str_at(obj, "/type")),
            json!(str_at(obj, "/reason")),
            json!(target),
            json!(str_at(obj, "/involvedObject/fieldPath")),
            json!(source),
            json!(str_at(obj, "/message").trim()),
            json!(first),
            json!(count),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_print_status_and_roles() {
        let n = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        let cells = Nodes.cells(&n);
        assert_eq!(cells.len(), Nodes.columns().len());
        assert_eq!(cells[0], "Ready,SchedulingDisabled");
        assert_eq!(cells[1], "control-plane");
        assert_eq!(cells[3], "v1.33.0");
        assert_eq!(cells[4], "10.0.0.5");
        assert_eq!(
            Nodes.field(&n, "spec.unschedulable").as_deref(),
            Some("true")
        );
        let bare = json!({"metadata": {"name": "n2"}});
        assert_eq!(Nodes.cells(&bare)[0], "Unknown");
    }

    #[test]
    fn persistent_volumes_default_and_validate() {
        let mut pv = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
        PersistentVolumes.default(&mut pv);
        PersistentVolumes.prepare_for_create(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["status"]["phase"], "Pending");
        assert!(
            PersistentVolumes.validate(&pv).is_empty(),
            "{:?}",
            PersistentVolumes.validate(&pv)
        );
        let cells = PersistentVolumes.cells(&pv);
        assert_eq!(cells.len(), PersistentVolumes.columns().len());
        assert_eq!(cells[0], "1Gi");
        assert_eq!(cells[1], "RWO");
        let mut other = pv.clone();
        other["spec"]["hostPath"]["path"] = json!("/other");
        let causes = PersistentVolumes.validate_update(&other, &pv);
        assert_eq!(causes[0].field, "spec.persistentvolumesource");
        let none = json!({"metadata": {"name": "x"}, "spec": {}});
        let fields: Vec<String> = PersistentVolumes
            .validate(&none)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.accessModes", "spec.capacity", "spec"]);
    }

    #[test]
    fn claims_are_immutable_but_for_their_request_when_bound() {
        let mut pvc = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        PersistentVolumeClaims.default(&mut pvc);
        PersistentVolumeClaims.prepare_for_create(&mut pvc);
        assert!(PersistentVolumeClaims.validate(&pvc).is_empty());
        let mut bigger = pvc.clone();
        bigger["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        let causes = PersistentVolumeClaims.validate_update(&bigger, &pvc);
        assert_eq!(causes.len(), 1, "unbound claims keep their request");
        assert_eq!(causes[0].field, "spec");
        bigger["status"]["phase"] = json!("Bound");
        assert!(PersistentVolumeClaims
            .validate_update(&bigger, &pvc)
            .is_empty());
        let missing = json!({"metadata": {"name": "c"}, "spec": {}});
        let fields: Vec<String> = PersistentVolumeClaims
            .validate(&missing)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["spec.accessModes", "spec.resources[storage]"]);
    }

    #[test]
    fn limit_ranges_default_requests_from_limits() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}});
        LimitRanges.default(&mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"]["cpu"], "2");
        assert_eq!(item["defaultRequest"]["cpu"], "2");
        assert_eq!(item["defaultRequest"]["memory"], "1Mi");
        let bad = json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}});
        let causes = LimitRanges.validate(&bad);
        assert_eq!(causes[0].field, "spec.limits[0].min[cpu]");
        assert!(causes[0]
            .message
            .contains("min value 2 is greater than max value 1"));
    }

    #[test]
    fn quotas_print_used_over_hard() {
        let q = json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"}, "used": {"pods": "3"}}});
        let cells = ResourceQuotas.cells(&q);
        assert_eq!(cells[0], "pods: 3/10, requests.memory: 0/1Gi");
        assert_eq!(cells[1], "limits.cpu: 0/2");
    }

    #[test]
    fn events_select_and_print() {
        let e = json!({"metadata": {"name": "p.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Scheduled", "type": "Normal", "message": "ok ", "source": {"component": "default-scheduler"}});
        assert!(Events.validate(&e).is_empty());
        assert_eq!(
            Events.field(&e, "involvedObject.name").as_deref(),
            Some("p")
        );
        assert_eq!(
            Events.field(&e, "source").as_deref(),
            Some("default-scheduler")
        );
        let cells = Events.cells(&e);
        assert_eq!(cells.len(), Events.columns().len());
        assert_eq!(cells[3], "pod/p");
        assert_eq!(cells[6], "ok");
        assert_eq!(cells[8], 1);
        let mut wrong = e.clone();
        wrong["involvedObject"]["namespace"] = json!("other");
        assert_eq!(Events.validate(&wrong)[0].field, "involvedObject.namespace");
    }

    #[test]
    fn node_cidrs_are_checked() {
        let n = json!({"spec": {"podCIDRs": ["10.0.0.0/24", "bogus"]}});
        let causes = Nodes.validate(&n);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.podCIDRs[1]");
    }
}
