//! discovery.k8s.io/v1 kinds: endpointslices.
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/discovery/v1/defaults.go),
//! validation messages and field paths (pkg/apis/discovery/validation) and printer
//! columns (printEndpointSlice); the address type never changes after creation; the
//! generation starts at 1 and grows with every change outside metadata, as upstream's
//! strategy counts it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1 as api;
use serde_json::{json, Map, Value};

use super::networking::decode_with;
use super::pods::{arr_at, map_at, str_at};
use crate::apiserver::status::{duplicate, invalid_value, not_supported, required, Cause};
use crate::registry::store::immutable;
use crate::registry::validation::{
    dns1123_label, dns1123_subdomain, label_value, labels as validate_labels, qualified_name,
    NameRule,
};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub const GROUP: &str = "discovery.k8s.io";

const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: GROUP,
        versions: &["v1"],
        kind: "EndpointSlice",
        resource: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        categories: &[],
        storage_prefix: "endpointslices",
        subresources: &[],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(EndpointSlices),
    }]
}

/// upstream's `field.TooMany`.
pub(crate) fn too_many(field: &str, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        message: format!("Too many: {actual}: must have at most {max} items"),
        field: field.to_owned(),
    }
}

/// ValidateEndpointIP: addresses that make no sense as endpoints.
fn endpoint_ip_errors(s: &str) -> Vec<String> {
    let Ok(ip) = s.parse::<IpAddr>() else {
        return vec!["must be a valid IP address".to_owned()];
    };
    let mut out = Vec::new();
    if ip.is_unspecified() {
        out.push(format!("may not be unspecified ({s})"));
    }
    if ip.is_loopback() {
        out.push("may not be in the loopback range (127.0.0.0/8, ::1/128)".to_owned());
    }
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        out.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)".to_owned());
    }
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        out.push(
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".to_owned(),
        );
    }
    out
}

/// IsFullyQualifiedDomainName.
fn fqdn_errors(path: &str, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![invalid_value(path, &json!(name), &errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![invalid_value(
            path,
            &json!(name),
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = dns1123_label(label);
        if !errs.is_empty() {
            return vec![invalid_value(path, &json!(label), &errs.join(","))];
        }
    }
    Vec::new()
}

fn validate_address(path: &str, address_type: &str, address: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let ip_checks = |out: &mut Vec<Cause>| {
        for e in endpoint_ip_errors(address) {
            out.push(invalid_value(path, &json!(address), &e));
        }
    };
    match address_type {
        "IPv4" => {
            if !matches!(address.parse::<IpAddr>(), Ok(IpAddr::V4(_))) {
                out.push(invalid_value(
                    path,
                    &json!(address),
                    "must be a valid IPv4 address",
                ));
            }
            ip_checks(&mut out);
        }
        "IPv6" => {
            if !matches!(address.parse::<IpAddr>(), Ok(IpAddr::V6(_))) {
                out.push(invalid_value(
                    path,
                    &json!(address),
                    "must be a valid IPv6 address",
                ));
            }
            ip_checks(&mut out);
        }
        "FQDN" => out.extend(fqdn_errors(path, address)),
        _ => {}
    }
    out
}

fn validate_endpoints(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let endpoints = arr_at(obj, "/endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        out.push(too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
        return out;
    }
    let address_type = str_at(obj, "/addressType");
    for (i, ep) in endpoints.iter().enumerate() {
        let base = format!("endpoints[{i}]");
        let addresses = arr_at(ep, "/addresses");
        let addr_path = format!("{base}.addresses");
        if addresses.is_empty() {
            out.push(required(&addr_path, "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            out.push(too_many(&addr_path, addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            out.extend(validate_address(
                &format!("{addr_path}[{j}]"),
                address_type,
                a.as_str().unwrap_or(""),
            ));
        }
        if let Some(node) = ep.get("nodeName").and_then(Value::as_str) {
            for e in dns1123_subdomain(node) {
                out.push(invalid_value(&format!("{base}.nodeName"), &json!(node), &e));
            }
        }
        let topology_path = format!("{base}.deprecatedTopology");
        let topology = map_at(ep, "/deprecatedTopology");
        let n = topology.map(Map::len).unwrap_or(0);
        if n > MAX_TOPOLOGY_LABELS {
            out.push(too_many(&topology_path, n, MAX_TOPOLOGY_LABELS));
        }
        out.extend(validate_labels(&topology_path, topology));
        if let Some(host) = ep.get("hostname").and_then(Value::as_str) {
            for e in dns1123_label(host) {
                out.push(invalid_value(&format!("{base}.hostname"), &json!(host), &e));
            }
        }
        if let Some(hints) = ep.get("hints").filter(|h| h.is_object()) {
            let fz_path = format!("{base}.hints.forZones");
            let zones = arr_at(hints, "/forZones");
            if zones.len() > MAX_ZONE_HINTS {
                out.push(too_many(&fz_path, zones.len(), MAX_ZONE_HINTS));
                continue;
            }
            let mut names = BTreeSet::new();
            for (j, z) in zones.iter().enumerate() {
                let p = format!("{fz_path}[{j}].name");
                let name = str_at(z, "/name");
                if !names.insert(name) {
                    out.push(duplicate(&p, &json!(name)));
                }
                for e in label_value(name) {
                    out.push(invalid_value(&p, &json!(name), &e));
                }
            }
        }
    }
    out
}

fn validate_ports(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let ports = arr_at(obj, "/ports");
    if ports.len() > MAX_PORTS {
        out.push(too_many("ports", ports.len(), MAX_PORTS));
        return out;
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let base = format!("ports[{i}]");
        let name = str_at(p, "/name");
        if !name.is_empty() {
            for e in dns1123_label(name) {
                out.push(invalid_value(&format!("{base}.name"), &json!(name), &e));
            }
        }
        if !names.insert(name) {
            out.push(duplicate(&format!("{base}.name"), &json!(name)));
        }
        match p.get("protocol").and_then(Value::as_str) {
            None => out.push(required(&format!("{base}.protocol"), "")),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => out.push(not_supported(
                &format!("{base}.protocol"),
                &json!(other),
                &["SCTP", "TCP", "UDP"],
            )),
        }
        if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
            for e in qualified_name(ap) {
                out.push(invalid_value(
                    &format!("{base}.appProtocol"),
                    &json!(ap),
                    &e,
                ));
            }
        }
    }
    out
}

/// The object without metadata (what upstream compares to bump the generation).
fn without_metadata(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

/// The first three items of a list, then `+ N more...`; `<unset>` when empty
/// (listWithMoreString).
fn list_with_more(items: Vec<String>, count: usize) -> String {
    const MAX: usize = 3;
    let ret = items.join(",");
    if count > MAX {
        format!("{ret} + {} more...", count - MAX)
    } else if ret.is_empty() {
        "<unset>".to_owned()
    } else {
        ret
    }
}

struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::EndpointSlice>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/addressType", json!(""), false),
                ("/endpoints", json!([]), true),
                ("/endpoints/*/addresses", json!([]), true),
                ("/endpoints/*/hints/forZones/*/name", json!(""), true),
                ("/endpoints/*/hints/forNodes/*/name", json!(""), true),
            ],
        )
    }

    /// SetDefaults_EndpointPort.
    fn default(&self, obj: &mut Value) {
        for p in obj
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_object_mut() {
                if p.get("name").is_none_or(Value::is_null) {
                    p.insert("name".into(), json!(""));
                }
                if p.get("protocol").is_none_or(Value::is_null) {
                    p.insert("protocol".into(), json!("TCP"));
                }
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        meta::set(obj, "generation", json!(1));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if without_metadata(new) != without_metadata(old) {
            meta::set(new, "generation", json!(meta::generation(old) + 1));
        }
    }

    /// ValidateEndpointSlice.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        match obj.get("addressType").and_then(Value::as_str) {
            None | Some("") => out.push(required("addressType", "")),
            Some("IPv4" | "IPv6" | "FQDN") => {}
            Some(other) => out.push(not_supported(
                "addressType",
                &json!(other),
                &["FQDN", "IPv4", "IPv6"],
            )),
        }
        out.extend(validate_endpoints(obj));
        out.extend(validate_ports(obj));
        out
    }

    /// ValidateEndpointSliceUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let t = str_at(new, "/addressType");
        if t != str_at(old, "/addressType") {
            out.push(immutable("addressType", &json!(t)));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."),
            Column::new("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports."),
            Column::new("Endpoints", "string", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let ports = arr_at(obj, "/ports");
        let port_list: Vec<String> = ports
            .iter()
            .take(3)
            .map(
                |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(Value::String(name))) => name.clone(),
                    _ => "*".to_owned(),
                },
            )
            .collect();
        let addresses: Vec<&str> = arr_at(obj, "/endpoints")
            .iter()
            .flat_map(|e| arr_at(e, "/addresses"))
            .filter_map(Value::as_str)
            .collect();
        let address_list: Vec<String> = addresses.iter().take(3).map(|a| (*a).to_owned()).collect();
        vec![
            json!(str_at(obj, "/addressType")),
            json!(list_with_more(port_list, ports.len())),
            json!(list_with_more(address_list, addresses.len())),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::registry::kinds::cause_fields as fields;

    #[test]
    fn slices_default_validate_and_print() {
        let mut s = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "https", "port": 443}],
            "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3", "10.0.0.4"]}]});
        EndpointSlices.default(&mut s);
        assert_eq!(s["ports"][0]["name"], "");
        assert_eq!(s["ports"][0]["protocol"], "TCP");
        assert!(EndpointSlices.validate(&s).is_empty());
        let cells = EndpointSlices.cells(&s);
        assert_eq!(cells.len(), EndpointSlices.columns().len());
        assert_eq!(cells[1], "80,443");
        assert_eq!(cells[2], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
        let empty = EndpointSlices.cells(&json!({"addressType": "FQDN", "endpoints": []}));
        assert_eq!(empty[1], "<unset>");
        assert_eq!(empty[2], "<unset>");
    }

    #[test]
    fn slice_validation_names_fields() {
        let bad = json!({"addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP"}, {"name": "http", "protocol": "ICMP"}],
            "endpoints": [{"addresses": []}, {"addresses": ["fd00::1", "127.0.0.1"], "hostname": "A"}]});
        let causes = EndpointSlices.validate(&bad);
        assert_eq!(
            fields(&causes),
            [
                "endpoints[0].addresses",
                "endpoints[1].addresses[0]",
                "endpoints[1].addresses[1]",
                "endpoints[1].hostname",
                "ports[1].name",
                "ports[1].protocol",
            ]
        );
        assert_eq!(
            causes[0].message,
            "Required value: must contain at least 1 address"
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: \"fd00::1\": must be a valid IPv4 address"
        );
        let missing = EndpointSlices.validate(&json!({"endpoints": []}));
        assert_eq!(fields(&missing), ["addressType"]);
        let fq = EndpointSlices.validate(
            &json!({"addressType": "FQDN", "endpoints": [{"addresses": ["example.com", "localhost"]}]}),
        );
        assert_eq!(fields(&fq), ["endpoints[0].addresses[1]"]);
        let mut new = bad.clone();
        new["addressType"] = json!("IPv6");
        let upd = EndpointSlices.validate_update(&new, &bad);
        assert_eq!(upd.last().map(|c| c.field.as_str()), Some("addressType"));
    }

    #[test]
    fn generation_counts_changes_outside_metadata() {
        let old = json!({"metadata": {"name": "a", "generation": 3}, "addressType": "IPv4", "endpoints": []});
        let mut same = old.clone();
        same["metadata"]["labels"] = json!({"x": "y"});
        EndpointSlices.prepare_for_update(&mut same, &old);
        assert_eq!(same["metadata"]["generation"], 3);
        let mut changed = old.clone();
        changed["endpoints"] = json!([{"addresses": ["10.0.0.1"]}]);
        EndpointSlices.prepare_for_update(&mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 4);
    }
}
