//! core/v1 services and endpoints: upstream's service defaulting and validation, the
//! ClusterIP and NodePort allocators, the `kubernetes` service, and the tables.
//!
//! The allocators keep their state in the store, as kube-apiserver does: one
//! `RangeAllocation` record per range (`<root>/ranges/serviceips`,
//! `<root>/ranges/servicenodeports`) holding the range and a bitmap of the offsets in
//! use, changed only by compare-and-swap. Service IP offset 0 is the range's first
//! host address (10.96.0.1 for 10.96.0.0/12: the `kubernetes` service's); the network
//! and broadcast addresses are never handed out. Requested values come from the whole
//! range; dynamic ones from the upper band first (upstream's static/dynamic split):
//! IPs lowest-free-first (which keeps the bitmap record small), node ports at random.
//!
//! Invariants: a value is handed to at most one service (the CAS on the record makes
//! concurrent creates on any replica agree); a service's values are released when it
//! is deleted, when its create fails, and when an update stops using them. A value
//! left marked by a write that failed after allocating is reclaimed by
//! `AllocationRepair`, which also re-marks values that services hold.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use k8s_openapi::api::core::v1 as api;
use serde_json::{json, Map, Value};

use super::pods::{
    arr_at, format_labels, map_at, port_name_errors, port_num_error, str_at, INVALID_IP,
};
use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, ApiError, Cause,
};
use crate::authn::UserInfo;
use crate::registry::store::{storage_error, Api, Ctx, ListOptions, Part};
use crate::registry::typed::roundtrip;
use crate::registry::validation::{
    dns1123_label, dns1123_subdomain, labels as validate_labels, NameRule,
};
use crate::registry::{age, meta, Column, Hooks, Resource, Strategy, AGE_COLUMN, ALL_VERBS};
use crate::storage::{keys, ReadMode, StorageError};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Service",
            resource: "services",
            singular: "service",
            namespaced: true,
            short_names: &["svc"],
            categories: &["all"],
            storage_prefix: "services/specs",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Dns1035,
            strategy: Arc::new(Services),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Endpoints",
            resource: "endpoints",
            singular: "endpoints",
            namespaced: true,
            short_names: &["ep"],
            categories: &[],
            storage_prefix: "services/endpoints",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(EndpointsStrategy),
        },
    ]
}

// ---------------------------------------------------------------------------------
// Range allocations in the store.
// ---------------------------------------------------------------------------------

/// A range handed out by offset: value = `base + offset`, offsets `0..size`.
#[derive(Clone, Debug)]
struct Pool {
    /// Key under `<root>/ranges/`.
    name: &'static str,
    /// The range as recorded (`10.96.0.0/12`, `30000-32767`).
    text: String,
    base: u64,
    size: u32,
    /// Offsets below this are handed out only on request (upstream's static band).
    static_band: u32,
    /// Dynamic offsets at random (ports) or lowest free first (IPs).
    random: bool,
}

impl Pool {
    fn ips(hooks: &Hooks) -> Pool {
        let net = hooks.config.service_cidr;
        let size = net.size().saturating_sub(2);
        Pool {
            name: "serviceips",
            text: format!("{}/{}", net.addr, net.prefix),
            base: u64::from(u32::from(net.addr)) + 1,
            size,
            static_band: (size / 16).clamp(16, 256).min(size),
            random: false,
        }
    }

    fn ports(hooks: &Hooks) -> Pool {
        let (lo, hi) = hooks.config.node_port_range;
        let size = u32::from(hi.saturating_sub(lo)) + 1;
        Pool {
            name: "servicenodeports",
            text: format!("{lo}-{hi}"),
            base: u64::from(lo),
            size,
            static_band: (size / 32).clamp(16, 128).min(size),
            random: true,
        }
    }

    /// The (base, size) a recorded range text describes, for re-mapping a record
    /// written under another configuration.
    fn parse_text(&self, text: &str) -> Option<(u64, u32)> {
        if self.name == "serviceips" {
            let net = crate::registry::ipnet_lite::Ipv4Net::parse(text).ok()?;
            Some((
                u64::from(u32::from(net.addr)) + 1,
                net.size().saturating_sub(2),
            ))
        } else {
            let (lo, hi) = text.split_once('-')?;
            let (lo, hi): (u64, u64) = (lo.parse().ok()?, hi.parse().ok()?);
            (hi >= lo).then(|| (lo, (hi - lo + 1) as u32))
        }
    }

    fn offset(&self, value: u64) -> Option<u32> {
        value
            .checked_sub(self.base)
            .filter(|o| *o < u64::from(self.size))
            .map(|o| o as u32)
    }

    fn value(&self, offset: u32) -> u64 {
        self.base + u64::from(offset)
    }

    fn ip_offset(&self, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        self.offset(u64::from(u32::from(ip)))
    }

    fn ip(&self, offset: u32) -> String {
        Ipv4Addr::from(self.value(offset) as u32).to_string()
    }
}

/// The bitmap of offsets in use (bit i of byte i/8 is offset i).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Bits(Vec<u8>);

impl Bits {
    fn has(&self, i: u32) -> bool {
        self.0
            .get((i / 8) as usize)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    fn set(&mut self, i: u32) {
        let byte = (i / 8) as usize;
        if self.0.len() <= byte {
            self.0.resize(byte + 1, 0);
        }
        self.0[byte] |= 1 << (i % 8);
    }

    fn clear(&mut self, i: u32) {
        if let Some(b) = self.0.get_mut((i / 8) as usize) {
            *b &= !(1 << (i % 8));
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, b)| {
            (0..8)
                .filter(move |bit| b & (1 << bit) != 0)
                .map(move |bit| (i * 8 + bit) as u32)
        })
    }

    /// The first free offset in `from..to`, scanning from `start` and wrapping.
    fn free_in(&self, from: u32, to: u32, start: u32) -> Option<u32> {
        if from >= to {
            return None;
        }
        let start = start.clamp(from, to - 1);
        (start..to).chain(from..start).find(|i| !self.has(*i))
    }

    /// A dynamic offset: the upper band first, then the static band.
    fn next_free(&self, pool: &Pool) -> Option<u32> {
        let start = if pool.random {
            pool.static_band + random_u32() % (pool.size - pool.static_band).max(1)
        } else {
            pool.static_band
        };
        self.free_in(pool.static_band, pool.size, start)
            .or_else(|| self.free_in(0, pool.static_band, 0))
    }

    /// The record: upstream's `RangeAllocation` with `data` the bitmap as a
    /// big-endian integer (bit i = offset i), base64 in JSON.
    fn encode(&self, pool: &Pool) -> Bytes {
        let mut be = self.0.clone();
        while be.last() == Some(&0) {
            be.pop();
        }
        be.reverse();
        let record = json!({
            "kind": "RangeAllocation",
            "apiVersion": "v1",
            "metadata": {"name": pool.name, "creationTimestamp": meta::now_rfc3339()},
            "range": pool.text,
            "data": base64::engine::general_purpose::STANDARD.encode(be),
        });
        Bytes::from(serde_json::to_vec(&record).unwrap_or_default())
    }

    /// Reads a record; offsets recorded under another range are mapped by value.
    fn decode(bytes: &[u8], pool: &Pool) -> Bits {
        let Ok(record) = serde_json::from_slice::<Value>(bytes) else {
            return Bits::default();
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(str_at(&record, "/data"))
            .unwrap_or_default();
        let mut le = data;
        le.reverse();
        let stored = Bits(le);
        let text = str_at(&record, "/range");
        if text == pool.text {
            return stored;
        }
        let Some((base, size)) = pool.parse_text(text) else {
            return Bits::default();
        };
        let mut out = Bits::default();
        for i in stored.ones().filter(|i| *i < size) {
            if let Some(o) = pool.offset(base + u64::from(i)) {
                out.set(o);
            }
        }
        out
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let rng = ring::rand::SystemRandom::new();
    let _ = ring::rand::SecureRandom::fill(&rng, &mut b);
    u32::from_le_bytes(b)
}

/// Reads, changes and writes back a range record with compare-and-swap, retrying on
/// conflicts. `change` may run more than once; it must start from the bits it gets.
/// With `dry_run` the change is worked out on the current record and not written.
async fn update_range<T, F>(
    hooks: &Hooks,
    pool: &Pool,
    dry_run: bool,
    mut change: F,
) -> Result<T, ApiError>
where
    F: FnMut(&mut Bits) -> Result<T, ApiError> + Send,
    T: Send,
{
    let key = format!("{}/ranges/{}", hooks.root, pool.name);
    for _ in 0..64 {
        let current = hooks
            .storage
            .get(&key, ReadMode::Consistent)
            .await
            .map_err(|e| ApiError::internal(format!("reading {key}: {e}")))?;
        let (mut bits, rev) = match &current {
            Some(kv) => (Bits::decode(&kv.value, pool), Some(kv.mod_revision)),
            None => (Bits::default(), None),
        };
        let before = bits.clone();
        let out = change(&mut bits)?;
        if dry_run || (bits == before && rev.is_some()) {
            return Ok(out);
        }
        let bytes = bits.encode(pool);
        let written = match rev {
            Some(r) => hooks.storage.update(&key, bytes, r, 0).await,
            None => hooks.storage.create(&key, bytes, 0).await,
        };
        match written {
            Ok(_) => return Ok(out),
            Err(StorageError::Conflict { .. } | StorageError::KeyExists { .. }) => continue,
            Err(e) => return Err(ApiError::internal(format!("writing {key}: {e}"))),
        }
    }
    Err(ApiError::service_unavailable(format!(
        "too many concurrent changes to {key}"
    )))
}

async fn release(hooks: &Hooks, pool: &Pool, offsets: &[u32]) {
    if offsets.is_empty() {
        return;
    }
    let r = update_range(hooks, pool, false, |bits| {
        for o in offsets {
            bits.clear(*o);
        }
        Ok(())
    })
    .await;
    if let Err(e) = r {
        tracing::warn!(range = pool.name, error = %e, "could not release allocations; repair will");
    }
}

// ---------------------------------------------------------------------------------
// What a service holds.
// ---------------------------------------------------------------------------------

fn svc_type(obj: &Value) -> &str {
    match str_at(obj, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn needs_cluster_ip(obj: &Value) -> bool {
    svc_type(obj) != "ExternalName"
}

fn needs_node_ports(obj: &Value) -> bool {
    match svc_type(obj) {
        "NodePort" => true,
        "LoadBalancer" => {
            obj.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

fn may_have_node_ports(obj: &Value) -> bool {
    matches!(svc_type(obj), "NodePort" | "LoadBalancer")
}

fn needs_health_check_port(obj: &Value) -> bool {
    svc_type(obj) == "LoadBalancer" && str_at(obj, "/spec/externalTrafficPolicy") == "Local"
}

fn is_headless(obj: &Value) -> bool {
    str_at(obj, "/spec/clusterIP") == "None"
}

fn externally_accessible(obj: &Value) -> bool {
    matches!(svc_type(obj), "NodePort" | "LoadBalancer")
        || (svc_type(obj) == "ClusterIP" && !arr_at(obj, "/spec/externalIPs").is_empty())
}

/// The IP offsets a service holds.
fn held_ips(pool: &Pool, obj: &Value) -> Vec<u32> {
    if !needs_cluster_ip(obj) {
        return Vec::new();
    }
    let mut out: Vec<u32> = arr_at(obj, "/spec/clusterIPs")
        .iter()
        .filter_map(|v| v.as_str())
        .chain(std::iter::once(str_at(obj, "/spec/clusterIP")))
        .filter_map(|ip| pool.ip_offset(ip))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The node-port offsets a service holds (node ports and health check port).
fn held_ports(pool: &Pool, obj: &Value) -> Vec<u32> {
    let mut out = Vec::new();
    if may_have_node_ports(obj) {
        for p in arr_at(obj, "/spec/ports") {
            if let Some(o) = p
                .get("nodePort")
                .and_then(Value::as_u64)
                .and_then(|n| pool.offset(n))
            {
                out.push(o);
            }
        }
    }
    if needs_health_check_port(obj) {
        if let Some(o) = obj
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_u64)
            .and_then(|n| pool.offset(n))
        {
            out.push(o);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn allocation_error(obj: &Value, cause: Cause) -> ApiError {
    ApiError::invalid("Service", "", meta::name(obj), vec![cause])
}

fn ips_cause(obj: &Value, message: &str) -> Cause {
    let ips: Vec<String> = arr_at(obj, "/spec/clusterIPs")
        .iter()
        .map(|v| format!("\"{}\"", v.as_str().unwrap_or("")))
        .collect();
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: []string{{{}}}: {message}", ips.join(", ")),
        field: "spec.clusterIPs".into(),
    }
}

/// Gives the service a ClusterIP when it needs one: the requested address, or the next
/// free one. Returns the offsets it newly took.
async fn allocate_ip(
    hooks: &Hooks,
    obj: &mut Value,
    already: &[u32],
    dry_run: bool,
) -> Result<Vec<u32>, ApiError> {
    if !needs_cluster_ip(obj) || is_headless(obj) {
        return Ok(Vec::new());
    }
    let pool = Pool::ips(hooks);
    let requested = str_at(obj, "/spec/clusterIP").to_owned();
    if !requested.is_empty() {
        let Some(offset) = pool.ip_offset(&requested) else {
            let msg = format!(
                "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                pool.text
            );
            return Err(allocation_error(obj, ips_cause(obj, &msg)));
        };
        if already.contains(&offset) {
            return Ok(Vec::new());
        }
        let taken = update_range(hooks, &pool, dry_run, |bits| {
            if bits.has(offset) {
                return Ok(false);
            }
            bits.set(offset);
            Ok(true)
        })
        .await?;
        if !taken {
            let msg =
                format!("failed to allocate IP {requested}: provided IP is already allocated");
            return Err(allocation_error(obj, ips_cause(obj, &msg)));
        }
        return Ok(vec![offset]);
    }
    let offset = update_range(hooks, &pool, dry_run, |bits| {
        let Some(o) = bits.next_free(&pool) else {
            return Err(ApiError::internal(
                "failed to allocate a serviceIP: range is full",
            ));
        };
        bits.set(o);
        Ok(o)
    })
    .await?;
    let ip = pool.ip(offset);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    Ok(vec![offset])
}

/// Gives the service its node ports (and health check port) where it needs them:
/// requested ports, or free ones. `already` are the offsets it holds from before.
/// Returns the offsets it newly took.
async fn allocate_ports(
    hooks: &Hooks,
    obj: &mut Value,
    already: &[u32],
    dry_run: bool,
) -> Result<Vec<u32>, ApiError> {
    let pool = Pool::ports(hooks);
    let range = pool.text.clone();
    let wants_ports = needs_node_ports(obj);
    let wants_hc = needs_health_check_port(obj);
    if !wants_ports && !wants_hc && !may_have_node_ports(obj) {
        return Ok(Vec::new());
    }
    // What is requested, by index (None: allocate one).
    let ports: Vec<(u64, i64, String)> = arr_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            (
                p.get("nodePort").and_then(Value::as_u64).unwrap_or(0),
                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                str_at(p, "/protocol").to_owned(),
            )
        })
        .collect();
    let hc = obj
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    for (i, (np, _, _)) in ports.iter().enumerate() {
        if *np != 0 && pool.offset(*np).is_none() {
            let msg = format!(
                "provided port is not in the valid range. The range of valid ports is {range}"
            );
            return Err(allocation_error(
                obj,
                invalid_value(&format!("spec.ports[{i}].nodePort"), &json!(np), &msg),
            ));
        }
    }
    if wants_hc && hc != 0 && pool.offset(hc).is_none() {
        let msg =
            format!("provided port is not in the valid range. The range of valid ports is {range}");
        return Err(allocation_error(
            obj,
            invalid_value("spec.healthCheckNodePort", &json!(hc), &msg),
        ));
    }
    let outcome = update_range(hooks, &pool, dry_run, |bits| {
        // On a refused request the record is written back unchanged.
        let original = bits.clone();
        let mut taken: Vec<u32> = Vec::new();
        let mut assigned: Vec<u64> = ports.iter().map(|p| p.0).collect();
        // Requested ports first; one node port may serve one port number over
        // several protocols.
        let mut seen = HashSet::new();
        for (i, np) in assigned.iter().enumerate() {
            if *np == 0 {
                continue;
            }
            let Some(o) = pool.offset(*np) else { continue };
            if already.contains(&o) || !seen.insert(o) {
                continue;
            }
            if bits.has(o) {
                *bits = original;
                return Ok(Err((i, *np)));
            }
            bits.set(o);
            taken.push(o);
        }
        if wants_ports {
            let mut by_port: HashMap<i64, u64> = HashMap::new();
            for (i, np) in assigned.iter_mut().enumerate() {
                if *np != 0 {
                    by_port.insert(ports[i].1, *np);
                    continue;
                }
                if let Some(existing) = by_port.get(&ports[i].1) {
                    *np = *existing;
                    continue;
                }
                let Some(o) = bits.next_free(&pool) else {
                    return Err(ApiError::internal(
                        "failed to allocate a nodePort: range is full",
                    ));
                };
                bits.set(o);
                taken.push(o);
                *np = pool.value(o);
                by_port.insert(ports[i].1, *np);
            }
        }
        let mut hc_port = hc;
        if wants_hc {
            if hc_port != 0 {
                if let Some(o) = pool
                    .offset(hc_port)
                    .filter(|o| !already.contains(o) && !seen.contains(o))
                {
                    if bits.has(o) {
                        *bits = original;
                        return Ok(Err((usize::MAX, hc_port)));
                    }
                    bits.set(o);
                    taken.push(o);
                }
            } else {
                let Some(o) = bits.next_free(&pool) else {
                    return Err(ApiError::internal(
                        "failed to allocate a nodePort: range is full",
                    ));
                };
                bits.set(o);
                taken.push(o);
                hc_port = pool.value(o);
            }
        }
        Ok(Ok((taken, assigned, hc_port)))
    })
    .await?;
    match outcome {
        Err((i, np)) => {
            let field = if i == usize::MAX {
                "spec.healthCheckNodePort".to_owned()
            } else {
                format!("spec.ports[{i}].nodePort")
            };
            Err(allocation_error(
                obj,
                invalid_value(&field, &json!(np), "provided port is already allocated"),
            ))
        }
        Ok((taken, assigned, hc_port)) => {
            if let Some(list) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for (p, np) in list.iter_mut().zip(assigned) {
                    if let Some(m) = p.as_object_mut() {
                        if np != 0 {
                            m.insert("nodePort".into(), json!(np));
                        }
                    }
                }
            }
            if wants_hc {
                if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("healthCheckNodePort".into(), json!(hc_port));
                }
            }
            Ok(taken)
        }
    }
}

// ---------------------------------------------------------------------------------
// Services.
// ---------------------------------------------------------------------------------

struct Services;

const IP_FAMILY_POLICIES: &[&str] = &["SingleStack", "PreferDualStack", "RequireDualStack"];

impl Services {
    /// clusterIP and clusterIPs[0] agree (upstream's normalizeClusterIPs).
    fn normalize_cluster_ips(obj: &mut Value, old: Option<&Value>) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let ips: Vec<Value> = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let first = ips.first().and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(old) = old {
            // The user changed clusterIP but not clusterIPs: follow clusterIP.
            let old_ip = str_at(old, "/spec/clusterIP");
            let old_ips = arr_at(old, "/spec/clusterIPs");
            if ip != old_ip && ips.as_slice() == old_ips {
                if ip.is_empty() {
                    spec.remove("clusterIPs");
                } else {
                    let mut list = ips.clone();
                    if list.is_empty() {
                        list.push(json!(ip));
                    } else {
                        list[0] = json!(ip);
                    }
                    spec.insert("clusterIPs".into(), Value::Array(list));
                }
                return;
            }
        }
        if !ip.is_empty() && ips.is_empty() {
            spec.insert("clusterIPs".into(), json!([ip]));
        } else if ip.is_empty() && !first.is_empty() {
            spec.insert("clusterIP".into(), json!(first));
        }
    }

    /// ipFamilies and ipFamilyPolicy for a single-stack IPv4 cluster.
    fn init_ip_families(obj: &mut Value, old: Option<&Value>) {
        if !needs_cluster_ip(obj) {
            return;
        }
        let headless_selectorless =
            is_headless(obj) && map_at(obj, "/spec/selector").is_none_or(Map::is_empty);
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let old_ok = old.filter(|o| needs_cluster_ip(o));
        if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
            let policy = match old_ok
                .and_then(|o| o.pointer("/spec/ipFamilyPolicy"))
                .filter(|v| !v.is_null())
            {
                Some(p) => p.clone(),
                None if headless_selectorless => json!("RequireDualStack"),
                None => json!("SingleStack"),
            };
            spec.insert("ipFamilyPolicy".into(), policy);
        }
        if spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            let families = old_ok
                .and_then(|o| o.pointer("/spec/ipFamilies"))
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                .cloned()
                .unwrap_or_else(|| json!(["IPv4"]));
            spec.insert("ipFamilies".into(), families);
        }
    }

    /// upstream's dropTypeDependentFields: values a type change makes meaningless are
    /// wiped when the user left them as they were.
    fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
        let new_needs_ip = needs_cluster_ip(new);
        let new_needs_np = may_have_node_ports(new);
        let new_needs_hc = needs_health_check_port(new);
        let new_lb = svc_type(new) == "LoadBalancer";
        let new_external = externally_accessible(new);
        let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let same =
            |spec: &Map<String, Value>, f: &str| spec.get(f) == old.pointer(&format!("/spec/{f}"));
        if needs_cluster_ip(old) && !new_needs_ip {
            if same(spec, "clusterIP") && same(spec, "clusterIPs") {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if same(spec, "ipFamilies") {
                spec.remove("ipFamilies");
            }
            if same(spec, "ipFamilyPolicy") {
                spec.remove("ipFamilyPolicy");
            }
        }
        if may_have_node_ports(old) && !new_needs_np {
            let old_ports: HashSet<u64> = arr_at(old, "/spec/ports")
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .collect();
            if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                let subset = list
                    .iter()
                    .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                    .all(|n| n == 0 || old_ports.contains(&n));
                if subset {
                    for p in list.iter_mut() {
                        if let Some(m) = p.as_object_mut() {
                            m.remove("nodePort");
                        }
                    }
                }
            }
        }
        if needs_health_check_port(old) && !new_needs_hc && same(spec, "healthCheckNodePort") {
            spec.remove("healthCheckNodePort");
        }
        if svc_type(old) == "LoadBalancer" && !new_lb {
            if same(spec, "allocateLoadBalancerNodePorts") {
                spec.remove("allocateLoadBalancerNodePorts");
            }
            if same(spec, "loadBalancerClass") {
                spec.remove("loadBalancerClass");
            }
        }
        if externally_accessible(old) && !new_external && same(spec, "externalTrafficPolicy") {
            spec.remove("externalTrafficPolicy");
        }
        if !new_lb {
            if let Some(st) = new.get_mut("status").and_then(Value::as_object_mut) {
                st.insert("loadBalancer".into(), json!({}));
            }
        }
    }

    /// upstream's patchAllocatedValues: allocated values the client left out of an
    /// update are kept.
    fn patch_allocated_values(new: &mut Value, old: &Value) {
        if needs_cluster_ip(old) && needs_cluster_ip(new) {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                if spec
                    .get("clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    if let Some(ip) = old.pointer("/spec/clusterIP").filter(|v| !v.is_null()) {
                        spec.insert("clusterIP".into(), ip.clone());
                    }
                }
                if spec
                    .get("clusterIPs")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                {
                    if let Some(ips) = old
                        .pointer("/spec/clusterIPs")
                        .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                    {
                        spec.insert("clusterIPs".into(), ips.clone());
                    }
                }
            }
        }
        if may_have_node_ports(old) && may_have_node_ports(new) {
            let used = |o: &Value| -> HashSet<u64> {
                arr_at(o, "/spec/ports")
                    .iter()
                    .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                    .filter(|n| *n != 0)
                    .collect()
            };
            let both: HashSet<u64> = used(old).intersection(&used(new)).copied().collect();
            let by_name: HashMap<String, u64> = arr_at(old, "/spec/ports")
                .iter()
                .map(|p| {
                    (
                        str_at(p, "/name").to_owned(),
                        p.get("nodePort").and_then(Value::as_u64).unwrap_or(0),
                    )
                })
                .collect();
            if let Some(list) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in list.iter_mut() {
                    let Some(m) = p.as_object_mut() else { continue };
                    if m.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                        continue;
                    }
                    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
                    if let Some(np) = by_name.get(name).filter(|n| **n != 0 && !both.contains(n)) {
                        m.insert("nodePort".into(), json!(np));
                    }
                }
            }
        }
        if needs_health_check_port(old) && needs_health_check_port(new) {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                if spec
                    .get("healthCheckNodePort")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    == 0
                {
                    if let Some(hc) = old
                        .pointer("/spec/healthCheckNodePort")
                        .filter(|v| !v.is_null())
                    {
                        spec.insert("healthCheckNodePort".into(), hc.clone());
                    }
                }
            }
        }
    }

    fn validate_ports(obj: &Value, out: &mut Vec<Cause>) {
        let ports = arr_at(obj, "/spec/ports");
        let ty = svc_type(obj);
        if ports.is_empty() && !is_headless(obj) && ty != "ExternalName" {
            out.push(required("spec.ports", ""));
        }
        let mut names = HashSet::new();
        let mut pairs = HashSet::new();
        let mut node_ports = HashSet::new();
        for (i, p) in ports.iter().enumerate() {
            let pp = format!("spec.ports[{i}]");
            let name = str_at(p, "/name");
            if ports.len() > 1 && name.is_empty() {
                out.push(required(&format!("{pp}.name"), ""));
            } else if !name.is_empty() {
                for e in dns1123_label(name) {
                    out.push(invalid_value(&format!("{pp}.name"), &json!(name), &e));
                }
                if !names.insert(name) {
                    out.push(duplicate(&format!("{pp}.name"), &json!(name)));
                }
            }
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            if let Some(e) = port_num_error(port) {
                out.push(invalid_value(&format!("{pp}.port"), &json!(port), e));
            }
            let protocol = str_at(p, "/protocol");
            match protocol {
                "" => out.push(required(&format!("{pp}.protocol"), "")),
                "TCP" | "UDP" | "SCTP" => {}
                other => out.push(not_supported(
                    &format!("{pp}.protocol"),
                    &json!(other),
                    &["SCTP", "TCP", "UDP"],
                )),
            }
            if !pairs.insert((port, protocol)) {
                out.push(duplicate(&pp, &json!(format!("{port}/{protocol}"))));
            }
            match p.get("targetPort") {
                Some(Value::Number(n)) => {
                    if let Some(e) = port_num_error(n.as_i64().unwrap_or(0)) {
                        out.push(invalid_value(&format!("{pp}.targetPort"), &json!(n), e));
                    }
                }
                Some(Value::String(s)) => {
                    for e in port_name_errors(s) {
                        out.push(invalid_value(&format!("{pp}.targetPort"), &json!(s), e));
                    }
                }
                _ => {}
            }
            let np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            if np != 0 {
                if ty == "ClusterIP" {
                    out.push(forbidden(
                        &format!("{pp}.nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                } else if ty == "ExternalName" {
                    out.push(forbidden(
                        &format!("{pp}.nodePort"),
                        "may not be used when `type` is 'ExternalName'",
                    ));
                } else if let Some(e) = port_num_error(np) {
                    out.push(invalid_value(&format!("{pp}.nodePort"), &json!(np), e));
                } else if !node_ports.insert((np, protocol)) {
                    out.push(duplicate(&format!("{pp}.nodePort"), &json!(np)));
                }
            }
            let app = str_at(p, "/appProtocol");
            if !app.is_empty() {
                for e in crate::registry::validation::qualified_name(app) {
                    out.push(invalid_value(&format!("{pp}.appProtocol"), &json!(app), &e));
                }
            }
        }
    }

    fn validate_ips(obj: &Value, out: &mut Vec<Cause>) {
        let ty = svc_type(obj);
        let ips = arr_at(obj, "/spec/clusterIPs");
        if ty == "ExternalName" {
            if !ips.is_empty() {
                out.push(forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr_at(obj, "/spec/ipFamilies").is_empty() {
                out.push(forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if obj
                .pointer("/spec/ipFamilyPolicy")
                .is_some_and(|v| !v.is_null())
            {
                out.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            return;
        }
        let ip = str_at(obj, "/spec/clusterIP");
        if !ip.is_empty() && ips.first().and_then(Value::as_str) != Some(ip) {
            out.push(invalid_value(
                "spec.clusterIPs",
                &Value::Array(ips.to_vec()),
                "element [0] must match clusterIP",
            ));
        }
        for (i, v) in ips.iter().enumerate() {
            let s = v.as_str().unwrap_or("");
            if s == "None" {
                if i > 0 || ips.len() > 1 {
                    out.push(invalid_value(
                        &format!("spec.clusterIPs[{i}]"),
                        v,
                        "'None' must be the first and only value",
                    ));
                } else if ty != "ClusterIP" {
                    out.push(invalid_value(
                        &format!("spec.clusterIPs[{i}]"),
                        v,
                        &format!("may not be set to 'None' for {ty} services"),
                    ));
                }
            } else if s.parse::<IpAddr>().is_err() {
                out.push(invalid_value(
                    &format!("spec.clusterIPs[{i}]"),
                    v,
                    INVALID_IP,
                ));
            } else if s.parse::<Ipv4Addr>().is_err() {
                out.push(invalid_value(
                    &format!("spec.clusterIPs[{i}]"),
                    v,
                    "IPv6 is not configured on this cluster",
                ));
            }
        }
        if let Some(policy) = obj.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str) {
            if !IP_FAMILY_POLICIES.contains(&policy) {
                out.push(not_supported(
                    "spec.ipFamilyPolicy",
                    &json!(policy),
                    IP_FAMILY_POLICIES,
                ));
            } else if policy == "RequireDualStack"
                && !(is_headless(obj) && map_at(obj, "/spec/selector").is_none_or(Map::is_empty))
            {
                out.push(invalid_value(
                    "spec.ipFamilyPolicy",
                    &json!(policy),
                    "this cluster is not configured for dual-stack services",
                ));
            }
        }
        let families = arr_at(obj, "/spec/ipFamilies");
        for (i, f) in families.iter().enumerate() {
            match f.as_str().unwrap_or("") {
                "IPv4" => {}
                "IPv6" => out.push(invalid_value(
                    &format!("spec.ipFamilies[{i}]"),
                    f,
                    "not configured on this cluster",
                )),
                _ => out.push(not_supported(
                    &format!("spec.ipFamilies[{i}]"),
                    f,
                    &["IPv4", "IPv6"],
                )),
            }
        }
        if families.len() > 1 {
            out.push(invalid_value(
                "spec.ipFamilies",
                &Value::Array(families.to_vec()),
                "when multiple IP families are specified, IP family policy must be RequireDualStack or PreferDualStack",
            ));
        }
    }
}

#[async_trait::async_trait]
impl Strategy for Services {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::Service>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(m) = obj.as_object_mut() else { return };
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        let Some(spec) = spec.as_object_mut() else {
            return;
        };
        if spec
            .get("sessionAffinity")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            spec.insert("sessionAffinity".into(), json!("None"));
        }
        let affinity = spec
            .get("sessionAffinity")
            .and_then(Value::as_str)
            .unwrap_or("");
        let has_timeout = spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
            .is_some_and(|v| !v.is_null());
        if affinity == "None" {
            spec.remove("sessionAffinityConfig");
        } else if affinity == "ClientIP" && !has_timeout {
            spec.insert(
                "sessionAffinityConfig".into(),
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
        if spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            spec.insert("type".into(), json!("ClusterIP"));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                let Some(p) = p.as_object_mut() else { continue };
                if p.get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    p.insert("protocol".into(), json!("TCP"));
                }
                let unset = match p.get("targetPort") {
                    None | Some(Value::Null) => true,
                    Some(Value::Number(n)) => n.as_i64() == Some(0),
                    Some(Value::String(s)) => s.is_empty(),
                    _ => false,
                };
                if unset {
                    let port = p.get("port").cloned().unwrap_or(json!(0));
                    p.insert("targetPort".into(), port);
                }
            }
        }
        let ty = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let external = matches!(ty.as_str(), "NodePort" | "LoadBalancer")
            || (ty == "ClusterIP"
                && spec
                    .get("externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()));
        if external
            && spec
                .get("externalTrafficPolicy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
        }
        if spec.get("internalTrafficPolicy").is_none_or(Value::is_null)
            && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
        {
            spec.insert("internalTrafficPolicy".into(), json!("Cluster"));
        }
        if ty == "LoadBalancer"
            && spec
                .get("allocateLoadBalancerNodePorts")
                .is_none_or(Value::is_null)
        {
            spec.insert("allocateLoadBalancerNodePorts".into(), json!(true));
        }
        if ty == "LoadBalancer" {
            let ingress = m
                .get_mut("status")
                .and_then(|s| s.pointer_mut("/loadBalancer/ingress"))
                .and_then(Value::as_array_mut);
            if let Some(ingress) = ingress {
                for ing in ingress {
                    if let Some(i) = ing.as_object_mut() {
                        if i.get("ip")
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                            && i.get("ipMode").is_none_or(Value::is_null)
                        {
                            i.insert("ipMode".into(), json!("VIP"));
                        }
                    }
                }
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"loadBalancer": {}}));
        }
        Self::normalize_cluster_ips(obj, None);
        Self::init_ip_families(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            m.insert(
                "status".into(),
                old.get("status")
                    .cloned()
                    .unwrap_or(json!({"loadBalancer": {}})),
            );
        }
        Self::drop_type_dependent_fields(new, old);
        Self::patch_allocated_values(new, old);
        Self::normalize_cluster_ips(new, Some(old));
        Self::init_ip_families(new, Some(old));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let ty = svc_type(obj);
        let types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
        if !types.contains(&ty) {
            out.push(not_supported("spec.type", &json!(ty), &types));
        }
        Self::validate_ports(obj, &mut out);
        Self::validate_ips(obj, &mut out);
        if ty == "ExternalName" {
            let cname = str_at(obj, "/spec/externalName").trim_end_matches('.');
            if cname.is_empty() {
                out.push(required("spec.externalName", ""));
            } else {
                for e in dns1123_subdomain(cname) {
                    out.push(invalid_value("spec.externalName", &json!(cname), &e));
                }
            }
        }
        out.extend(validate_labels(
            "spec.selector",
            map_at(obj, "/spec/selector"),
        ));
        match str_at(obj, "/spec/sessionAffinity") {
            "None" | "ClientIP" => {}
            "" => out.push(required("spec.sessionAffinity", "")),
            other => out.push(not_supported(
                "spec.sessionAffinity",
                &json!(other),
                &["ClientIP", "None"],
            )),
        }
        if let Some(t) = obj
            .pointer("/spec/sessionAffinityConfig/clientIP/timeoutSeconds")
            .and_then(Value::as_i64)
        {
            if !(1..=86400).contains(&t) {
                out.push(invalid_value(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    &json!(t),
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        for (i, ip) in arr_at(obj, "/spec/externalIPs").iter().enumerate() {
            if ip.as_str().and_then(|s| s.parse::<IpAddr>().ok()).is_none() {
                out.push(invalid_value(
                    &format!("spec.externalIPs[{i}]"),
                    ip,
                    INVALID_IP,
                ));
            }
        }
        let etp = str_at(obj, "/spec/externalTrafficPolicy");
        if !etp.is_empty() {
            if !externally_accessible(obj) {
                out.push(invalid_value(
                    "spec.externalTrafficPolicy",
                    &json!(etp),
                    "may only be set for externally-accessible services",
                ));
            } else if etp != "Cluster" && etp != "Local" {
                out.push(not_supported(
                    "spec.externalTrafficPolicy",
                    &json!(etp),
                    &["Cluster", "Local"],
                ));
            }
        } else if externally_accessible(obj) {
            out.push(required("spec.externalTrafficPolicy", ""));
        }
        let hc = obj
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if hc != 0 && !needs_health_check_port(obj) {
            out.push(invalid_value(
                "spec.healthCheckNodePort",
                &json!(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
        match obj
            .pointer("/spec/internalTrafficPolicy")
            .and_then(Value::as_str)
        {
            None if ty != "ExternalName" => out.push(required("spec.internalTrafficPolicy", "")),
            Some(p) if p != "Cluster" && p != "Local" => out.push(not_supported(
                "spec.internalTrafficPolicy",
                &json!(p),
                &["Cluster", "Local"],
            )),
            _ => {}
        }
        if ty != "LoadBalancer" {
            for f in [
                "loadBalancerSourceRanges",
                "loadBalancerClass",
                "allocateLoadBalancerNodePorts",
            ] {
                let present = obj.pointer(&format!("/spec/{f}")).is_some_and(|v| match v {
                    Value::Array(a) => !a.is_empty(),
                    Value::Null => false,
                    _ => true,
                });
                if present {
                    let msg = match f {
                        "loadBalancerSourceRanges" => {
                            "may only be used when `type` is 'LoadBalancer'"
                        }
                        "loadBalancerClass" => {
                            "may only be used when service type is 'LoadBalancer'"
                        }
                        _ => "may only be used when `type` is 'LoadBalancer'",
                    };
                    out.push(forbidden(&format!("spec.{f}"), msg));
                }
            }
        }
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if svc_type(new) != "ExternalName" && svc_type(old) != "ExternalName" {
            let old_first = arr_at(old, "/spec/clusterIPs")
                .first()
                .and_then(Value::as_str)
                .unwrap_or("");
            let new_first = arr_at(new, "/spec/clusterIPs")
                .first()
                .and_then(Value::as_str)
                .unwrap_or("");
            if !old_first.is_empty() && old_first != new_first {
                out.push(invalid_value(
                    "spec.clusterIPs[0]",
                    &json!(new_first),
                    "may not change once set",
                ));
            }
            let old_family = arr_at(old, "/spec/ipFamilies").first();
            let new_family = arr_at(new, "/spec/ipFamilies").first();
            if old_family.is_some() && old_family != new_family {
                out.push(invalid_value(
                    "spec.ipFamilies[0]",
                    new_family.unwrap_or(&Value::Null),
                    "may not change once set",
                ));
            }
        }
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (i, ing) in arr_at(new, "/status/loadBalancer/ingress")
            .iter()
            .enumerate()
        {
            let ip = str_at(ing, "/ip");
            if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
                out.push(invalid_value(
                    &format!("status.loadBalancer.ingress[{i}].ip"),
                    &json!(ip),
                    INVALID_IP,
                ));
            }
            let host = str_at(ing, "/hostname");
            if !host.is_empty() {
                for e in dns1123_subdomain(host) {
                    out.push(invalid_value(
                        &format!("status.loadBalancer.ingress[{i}].hostname"),
                        &json!(host),
                        &e,
                    ));
                }
            }
        }
        out
    }

    async fn before_create(
        &self,
        hooks: &Hooks,
        obj: &mut Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let ips = allocate_ip(hooks, obj, &[], dry_run).await?;
        if let Err(e) = allocate_ports(hooks, obj, &[], dry_run).await {
            if !dry_run {
                release(hooks, &Pool::ips(hooks), &ips).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn create_failed(&self, hooks: &Hooks, obj: &Value) {
        self.after_delete(hooks, obj).await;
    }

    async fn before_update(
        &self,
        hooks: &Hooks,
        new: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let ip_pool = Pool::ips(hooks);
        let port_pool = Pool::ports(hooks);
        let old_ips = held_ips(&ip_pool, old);
        let old_ports = held_ports(&port_pool, old);
        let new_ips = allocate_ip(hooks, new, &old_ips, dry_run).await?;
        if let Err(e) = allocate_ports(hooks, new, &old_ports, dry_run).await {
            if !dry_run {
                release(hooks, &ip_pool, &new_ips).await;
            }
            return Err(e);
        }
        if dry_run {
            return Ok(());
        }
        // What the new object no longer holds goes back to the pools.
        let keep_ips = held_ips(&ip_pool, new);
        let keep_ports = held_ports(&port_pool, new);
        let drop_ips: Vec<u32> = old_ips
            .into_iter()
            .filter(|o| !keep_ips.contains(o))
            .collect();
        let drop_ports: Vec<u32> = old_ports
            .into_iter()
            .filter(|o| !keep_ports.contains(o))
            .collect();
        release(hooks, &ip_pool, &drop_ips).await;
        release(hooks, &port_pool, &drop_ports).await;
        Ok(())
    }

    async fn after_delete(&self, hooks: &Hooks, obj: &Value) {
        let ip_pool = Pool::ips(hooks);
        let port_pool = Pool::ports(hooks);
        release(hooks, &ip_pool, &held_ips(&ip_pool, obj)).await;
        release(hooks, &port_pool, &held_ports(&port_pool, obj)).await;
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "spec.clusterIP" => Some(str_at(obj, "/spec/clusterIP").to_owned()),
            "spec.type" => Some(str_at(obj, "/spec/type").to_owned()),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
            Column::new("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
            Column::new("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            Column::new("Port(s)", "string", "The list of ports that are exposed by this service."),
            AGE_COLUMN,
            Column::new("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let cluster_ip = arr_at(obj, "/spec/clusterIPs")
            .first()
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_owned();
        vec![
            json!(str_at(obj, "/spec/type")),
            json!(cluster_ip),
            json!(external_ip(obj)),
            json!(port_string(obj)),
            json!(age(obj)),
            json!(format_labels(map_at(obj, "/spec/selector"))),
        ]
    }
}

/// printService's EXTERNAL-IP.
fn external_ip(obj: &Value) -> String {
    let external: Vec<&str> = arr_at(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(obj, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb: Vec<&str> = arr_at(obj, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match str_at(i, "/ip") {
                    "" => str_at(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            lb.sort_unstable();
            lb.dedup();
            let mut all: Vec<&str> = lb;
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(obj, "/spec/externalName").to_owned(),
        _ => "<unknown>".into(),
    }
}

/// makePortString: `80/TCP` or `80:30080/TCP`, comma-joined, or `<none>`.
fn port_string(obj: &Value) -> String {
    let parts: Vec<String> = arr_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = str_at(p, "/protocol");
            match p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) {
                0 => format!("{port}/{proto}"),
                np => format!("{port}:{np}/{proto}"),
            }
        })
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

// ---------------------------------------------------------------------------------
// Endpoints.
// ---------------------------------------------------------------------------------

struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::Endpoints>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
            for ss in subsets {
                if let Some(ports) = ss.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(p) = p.as_object_mut() {
                            if p.get("protocol")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .is_empty()
                            {
                                p.insert("protocol".into(), json!("TCP"));
                            }
                        }
                    }
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (i, ss) in arr_at(obj, "/subsets").iter().enumerate() {
            let sp = format!("subsets[{i}]");
            let addrs = arr_at(ss, "/addresses");
            let not_ready = arr_at(ss, "/notReadyAddresses");
            if addrs.is_empty() && not_ready.is_empty() {
                out.push(required(
                    &sp,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (list, items) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
                for (j, a) in items.iter().enumerate() {
                    let ap = format!("{sp}.{list}[{j}]");
                    let ip = str_at(a, "/ip");
                    match ip.parse::<IpAddr>() {
                        Err(_) => {
                            out.push(invalid_value(&format!("{ap}.ip"), &json!(ip), INVALID_IP))
                        }
                        Ok(addr) => {
                            let msg = if addr.is_unspecified() {
                                Some("may not be unspecified (0.0.0.0)")
                            } else if addr.is_loopback() {
                                Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
                            } else if addr.is_multicast() {
                                Some("may not be in the multicast range (224.0.0.0/4, ff00::/8)")
                            } else if matches!(addr, IpAddr::V4(v4) if v4.is_link_local()) {
                                Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
                            } else {
                                None
                            };
                            if let Some(m) = msg {
                                out.push(invalid_value(&format!("{ap}.ip"), &json!(ip), m));
                            }
                        }
                    }
                    let host = str_at(a, "/hostname");
                    if !host.is_empty() {
                        for e in dns1123_label(host) {
                            out.push(invalid_value(&format!("{ap}.hostname"), &json!(host), &e));
                        }
                    }
                    let node = str_at(a, "/nodeName");
                    if !node.is_empty() {
                        for e in dns1123_subdomain(node) {
                            out.push(invalid_value(&format!("{ap}.nodeName"), &json!(node), &e));
                        }
                    }
                }
            }
            let ports = arr_at(ss, "/ports");
            let mut names = HashSet::new();
            for (j, p) in ports.iter().enumerate() {
                let pp = format!("{sp}.ports[{j}]");
                let name = str_at(p, "/name");
                if ports.len() > 1 && name.is_empty() {
                    out.push(required(&format!("{pp}.name"), ""));
                } else if !name.is_empty() {
                    for e in dns1123_label(name) {
                        out.push(invalid_value(&format!("{pp}.name"), &json!(name), &e));
                    }
                    if !names.insert(name) {
                        out.push(duplicate(&format!("{pp}.name"), &json!(name)));
                    }
                }
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                if let Some(e) = port_num_error(port) {
                    out.push(invalid_value(&format!("{pp}.port"), &json!(port), e));
                }
                match str_at(p, "/protocol") {
                    "TCP" | "UDP" | "SCTP" => {}
                    "" => out.push(required(&format!("{pp}.protocol"), "")),
                    other => out.push(not_supported(
                        &format!("{pp}.protocol"),
                        &json!(other),
                        &["SCTP", "TCP", "UDP"],
                    )),
                }
            }
        }
        out
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Endpoints",
                "string",
                "The set of all endpoints is the union of all subsets.",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(format_endpoints(obj)), json!(age(obj))]
    }
}

/// formatEndpoints: up to three `ip:port`, then `+ N more...`; `<none>` when empty.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut count = 0;
    let mut more = false;
    for ss in subsets {
        let addrs = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_owned());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------------
// The `kubernetes` service and the allocation repair.
// ---------------------------------------------------------------------------------

fn system_ctx() -> Ctx {
    Ctx::new(UserInfo {
        name: "system:apiserver".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    })
}

fn find(api: &Api, resource: &str) -> Option<Arc<Resource>> {
    api.registry
        .all()
        .iter()
        .find(|r| r.group.is_empty() && r.resource == resource)
        .cloned()
}

/// Creates or corrects `default/kubernetes` (ClusterIP = the range's first address,
/// port 443 → `port`) and its Endpoints (`advertise`:`port`), as kube-apiserver's
/// master controller does. Failures are logged; the caller runs this periodically.
pub async fn ensure_kubernetes_service(api: &Api, advertise: IpAddr, port: u16) {
    let (Some(svc_res), Some(ep_res)) = (find(api, "services"), find(api, "endpoints")) else {
        return;
    };
    let ctx = system_ctx();
    let first_ip = api.hooks.config.service_cidr.nth(1).to_string();
    let ports = json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]);
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": first_ip,
            "ports": ports,
            "sessionAffinity": "None",
        },
    });
    match api
        .get(&svc_res, "v1", Some("default"), "kubernetes", "")
        .await
    {
        Err(e) if e.code == 404 => {
            if let Err(e) = api
                .create(&svc_res, "v1", &ctx, Some("default"), service)
                .await
            {
                if e.code != 409 {
                    tracing::warn!(error = %e, "could not create the kubernetes service");
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "could not read the kubernetes service"),
        Ok(current) => {
            let current_ports: Vec<(String, i64, String, Value)> = arr_at(&current, "/spec/ports")
                .iter()
                .map(|p| {
                    (
                        str_at(p, "/name").to_owned(),
                        p.get("port").and_then(Value::as_i64).unwrap_or(0),
                        str_at(p, "/protocol").to_owned(),
                        p.get("targetPort").cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            let wanted = vec![("https".to_owned(), 443, "TCP".to_owned(), json!(port))];
            if current_ports != wanted || svc_type(&current) != "ClusterIP" {
                let r = api
                    .modify(
                        &svc_res,
                        "v1",
                        &ctx,
                        Some("default"),
                        "kubernetes",
                        Part::Main,
                        |mut cur| {
                            if let Some(spec) = cur.get_mut("spec").and_then(Value::as_object_mut) {
                                spec.insert("type".into(), json!("ClusterIP"));
                                spec.insert("ports".into(), ports.clone());
                            }
                            Ok(cur)
                        },
                    )
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not correct the kubernetes service");
                }
            }
        }
    }
    let subsets = json!([{
        "addresses": [{"ip": advertise.to_string()}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }]);
    let endpoints = Reconciled {
        api_version: "v1",
        kind: "Endpoints",
        labels: json!({"endpointslice.kubernetes.io/skip-mirror": "true"}),
        fields: vec![("subsets", subsets)],
    };
    if let Err(e) = put_kubernetes_object(api, &ep_res, &endpoints).await {
        tracing::warn!(error = %e, "could not write the kubernetes endpoints");
    }
    // The EndpointSlice kube-proxy reads for `kubernetes.default`, written by the same
    // reconciler upstream (the Endpoints are not mirrored: skip-mirror).
    if let Some(slice_res) = api
        .registry
        .lookup("discovery.k8s.io", "v1", "endpointslices")
    {
        let slice = Reconciled {
            api_version: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            labels: json!({"kubernetes.io/service-name": "kubernetes"}),
            fields: vec![
                (
                    "addressType",
                    json!(if advertise.is_ipv4() { "IPv4" } else { "IPv6" }),
                ),
                (
                    "endpoints",
                    json!([{"addresses": [advertise.to_string()], "conditions": {"ready": true}}]),
                ),
                (
                    "ports",
                    json!([{"name": "https", "port": port, "protocol": "TCP"}]),
                ),
            ],
        };
        if let Err(e) = put_kubernetes_object(api, &slice_res, &slice).await {
            tracing::warn!(error = %e, "could not write the kubernetes endpoint slice");
        }
    }
}

/// An object the server itself keeps in shape: top-level fields and labels.
struct Reconciled {
    api_version: &'static str,
    kind: &'static str,
    labels: Value,
    fields: Vec<(&'static str, Value)>,
}

/// Writes `default/kubernetes` of `res` straight to storage (compare-and-swap), as
/// kube-apiserver's endpoint reconciler owns those objects: a local replica
/// advertises a loopback address, which validation refuses in user-written
/// Endpoints and EndpointSlices.
async fn put_kubernetes_object(
    api: &Api,
    res: &Resource,
    want: &Reconciled,
) -> Result<(), ApiError> {
    let key = keys::object_key(&api.root, res.storage_prefix, Some("default"), "kubernetes");
    let wanted_labels = want.labels.as_object().cloned().unwrap_or_default();
    for _ in 0..16 {
        let current = api
            .storage
            .get(&key, ReadMode::Consistent)
            .await
            .map_err(|e| storage_error(res, "kubernetes", e))?;
        let written = match current {
            None => {
                let mut obj = json!({
                    "apiVersion": want.api_version,
                    "kind": want.kind,
                    "metadata": {
                        "name": "kubernetes",
                        "namespace": "default",
                        "uid": meta::new_uid(),
                        "creationTimestamp": meta::now_rfc3339(),
                        "labels": want.labels,
                    },
                });
                if let Some(m) = obj.as_object_mut() {
                    for (field, value) in &want.fields {
                        m.insert((*field).into(), value.clone());
                    }
                }
                let bytes =
                    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
                api.storage.create(&key, bytes.into(), 0).await
            }
            Some(kv) => {
                let mut obj: Value = serde_json::from_slice(&kv.value)
                    .map_err(|e| ApiError::internal(format!("stored {key} is not JSON: {e}")))?;
                let labels_match = wanted_labels
                    .iter()
                    .all(|(k, v)| meta::labels(&obj).and_then(|l| l.get(k)) == Some(v));
                let fields_match = want
                    .fields
                    .iter()
                    .all(|(field, value)| obj.get(*field) == Some(value));
                if labels_match && fields_match {
                    return Ok(());
                }
                if let Some(m) = obj.as_object_mut() {
                    for (field, value) in &want.fields {
                        m.insert((*field).into(), value.clone());
                    }
                }
                let md = meta::metadata_mut(&mut obj);
                let l = md.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = l.as_object_mut() {
                    for (k, v) in &wanted_labels {
                        l.insert(k.clone(), v.clone());
                    }
                }
                let bytes =
                    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
                api.storage
                    .update(&key, bytes.into(), kv.mod_revision, kv.lease)
                    .await
            }
        };
        match written {
            Ok(_) => return Ok(()),
            Err(StorageError::Conflict { .. } | StorageError::KeyExists { .. }) => continue,
            Err(e) => return Err(storage_error(res, "kubernetes", e)),
        }
    }
    Err(ApiError::conflict(
        &crate::apiserver::status::Subject::new(res.group, res.resource, "kubernetes"),
        "too many concurrent updates",
    ))
}

/// upstream's repair controllers for service IPs and node ports: marks values that
/// services hold but the records lack, and frees values no service holds once they
/// were found unheld on two consecutive runs (a create in flight holds a value
/// before its service is stored).
#[derive(Default)]
pub struct AllocationRepair {
    leaked_ips: HashSet<u32>,
    leaked_ports: HashSet<u32>,
}

impl AllocationRepair {
    /// One pass over every service. Run it periodically on one replica (the leader).
    pub async fn run_once(&mut self, api: &Api) -> Result<(), ApiError> {
        let Some(res) = find(api, "services") else {
            return Ok(());
        };
        let page = api.list(&res, "v1", None, &ListOptions::default()).await?;
        let hooks = &api.hooks;
        let ip_pool = Pool::ips(hooks);
        let port_pool = Pool::ports(hooks);
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        for svc in &page.items {
            ips.extend(held_ips(&ip_pool, svc));
            ports.extend(held_ports(&port_pool, svc));
        }
        self.leaked_ips = Self::reconcile(hooks, &ip_pool, &ips, &self.leaked_ips).await?;
        self.leaked_ports = Self::reconcile(hooks, &port_pool, &ports, &self.leaked_ports).await?;
        Ok(())
    }

    async fn reconcile(
        hooks: &Hooks,
        pool: &Pool,
        used: &HashSet<u32>,
        suspected: &HashSet<u32>,
    ) -> Result<HashSet<u32>, ApiError> {
        update_range(hooks, pool, false, |bits| {
            let mut leaked = HashSet::new();
            for o in used {
                if !bits.has(*o) {
                    tracing::warn!(
                        range = pool.name,
                        offset = o,
                        "re-marking a value a service holds"
                    );
                    bits.set(*o);
                }
            }
            let unheld: Vec<u32> = bits.ones().filter(|o| !used.contains(o)).collect();
            for o in unheld {
                if suspected.contains(&o) {
                    tracing::info!(range = pool.name, offset = o, "releasing a leaked value");
                    bits.clear(o);
                } else {
                    leaked.insert(o);
                }
            }
            Ok(leaked)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ipnet_lite::Ipv4Net;
    use crate::registry::ApiConfig;

    fn pool() -> Pool {
        let hooks_like = ApiConfig {
            service_cidr: Ipv4Net::parse("10.96.0.0/12").expect("cidr"),
            node_port_range: (30000, 32767),
            event_ttl_seconds: 0,
            delete_collection_workers: 1,
        };
        let net = hooks_like.service_cidr;
        let size = net.size() - 2;
        Pool {
            name: "serviceips",
            text: "10.96.0.0/12".into(),
            base: u64::from(u32::from(net.addr)) + 1,
            size,
            static_band: (size / 16).clamp(16, 256),
            random: false,
        }
    }

    #[test]
    fn ip_offsets_skip_the_network_address() {
        let p = pool();
        assert_eq!(p.ip(0), "10.96.0.1");
        assert_eq!(p.ip_offset("10.96.0.1"), Some(0));
        assert_eq!(p.ip_offset("10.96.0.0"), None);
        assert_eq!(p.ip_offset("10.111.255.255"), None, "broadcast");
        assert_eq!(p.ip_offset("10.111.255.254"), Some(p.size - 1));
        assert_eq!(p.static_band, 256);
    }

    #[test]
    fn bitmaps_round_trip_and_allocate_dynamic_first() {
        let p = pool();
        let mut b = Bits::default();
        b.set(0);
        let first = b.next_free(&p).expect("free");
        assert_eq!(first, 256);
        b.set(first);
        assert_eq!(b.next_free(&p), Some(257));
        let back = Bits::decode(&b.encode(&p), &p);
        assert_eq!(back, b);
        b.clear(256);
        assert!(!b.has(256) && b.has(0));
    }

    #[test]
    fn records_from_another_range_are_remapped_by_value() {
        let p = pool();
        let mut old = p.clone();
        old.text = "10.96.0.0/16".into();
        let mut b = Bits::default();
        b.set(9); // 10.96.0.10
        let bytes = b.encode(&old);
        let remapped = Bits::decode(&bytes, &p);
        assert!(remapped.has(9));
    }

    #[test]
    fn services_default_like_upstream() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        Services.default(&mut svc);
        Services.prepare_for_create(&mut svc);
        let s = &svc["spec"];
        assert_eq!(s["sessionAffinity"], "None");
        assert_eq!(s["ports"][0]["protocol"], "TCP");
        assert_eq!(s["ports"][0]["targetPort"], 80);
        assert_eq!(s["externalTrafficPolicy"], "Cluster");
        assert_eq!(s["internalTrafficPolicy"], "Cluster");
        assert_eq!(s["ipFamilyPolicy"], "SingleStack");
        assert_eq!(s["ipFamilies"], json!(["IPv4"]));
        assert!(
            Services.validate(&svc).is_empty(),
            "{:?}",
            Services.validate(&svc)
        );
    }

    #[test]
    fn service_validation_names_fields() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "nodePort": 30001}, {"port": 0, "protocol": "XYZ"}]}});
        Services.default(&mut svc);
        Services.prepare_for_create(&mut svc);
        let fields: Vec<String> = Services
            .validate(&svc)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(
            fields.contains(&"spec.ports[0].name".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"spec.ports[0].nodePort".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"spec.ports[1].port".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"spec.ports[1].protocol".to_owned()),
            "{fields:?}"
        );
    }

    #[test]
    fn type_changes_drop_what_no_longer_applies() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "externalTrafficPolicy": "Cluster"}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        Services.prepare_for_update(&mut new, &old);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(new["spec"]["clusterIP"], "10.96.1.1");
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("example.com");
        Services.prepare_for_update(&mut ext, &old);
        assert!(ext["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn tables_print_ports_and_endpoints() {
        let svc = json!({"spec": {"type": "NodePort", "clusterIPs": ["10.96.1.1"], "ports": [
            {"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(port_string(&svc), "80:30080/TCP,53/UDP");
        assert_eq!(external_ip(&svc), "<none>");
        let cells = Services.cells(&svc);
        assert_eq!(cells.len(), Services.columns().len());
        assert_eq!(cells[1], "10.96.1.1");
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
    }
}
