//! certificates.k8s.io/v1 kinds: certificatesigningrequests, with their `status`
//! (the signer's certificate) and `approval` (Approved/Denied conditions) subresources.
//!
//! Invariants: upstream v1.33 validation (pkg/apis/certificates/validation) with its
//! messages and field paths — the request is a PEM `CERTIFICATE REQUEST` whose DER
//! parses as PKCS#10 and whose self-signature verifies; the spec never changes after
//! creation (updates keep the stored spec, as upstream's strategy does); status is
//! reset on create; Approved, Denied and Failed conditions are never removed, and
//! Approved and Denied never coexist; an issued certificate is never replaced.

use std::sync::Arc;

use base64::Engine;
use k8s_openapi::api::certificates::v1 as api;
use serde_json::{json, Value};

use super::apps::invalid_raw;
use super::pods::{arr_at, str_at};
use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, too_long, Cause,
};
use crate::authn::UserInfo;
use crate::registry::typed::roundtrip;
use crate::registry::validation::{dns1123_label, dns1123_subdomain, NameRule};
use crate::registry::{
    age, human_duration, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS,
};

pub const GROUP: &str = "certificates.k8s.io";

/// The signer name v1 refuses (LegacyUnknownSignerName).
pub const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// Every key usage upstream knows, sorted as Go's sets.List prints them.
pub const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: GROUP,
        versions: &["v1"],
        kind: "CertificateSigningRequest",
        resource: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        namespaced: false,
        short_names: &["csr"],
        categories: &[],
        storage_prefix: "certificatesigningrequests",
        subresources: &["approval", "status"],
        verbs: ALL_VERBS,
        // ValidateCertificateRequestName accepts any name; a path segment is the least
        // a name in a URL must be.
        name_rule: NameRule::PathSegment,
        strategy: Arc::new(CertificateSigningRequests),
    }]
}

/// Records the requesting user in spec.username/uid/groups/extra, as upstream's
/// PrepareForCreate does from the request context.
pub fn set_requestor(obj: &mut Value, user: &UserInfo) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for f in ["username", "uid", "groups", "extra"] {
        spec.remove(f);
    }
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

/// Go's `%#v` of a `[]byte`.
fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(|c| format!("{c:#x}")).collect();
    format!("[]byte{{{}}}", parts.join(", "))
}

fn decode_b64(v: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .unwrap_or_default()
}

/// The PEM blocks of `data` as (label, DER); text outside blocks is skipped, as Go's
/// pem.Decode does.
fn pem_blocks(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    x509_parser::pem::Pem::iter_from_buffer(data)
        .map_while(Result::ok)
        .map(|p| (p.label, p.contents))
        .collect()
}

/// certificates.ParseCSR and CheckSignature: Ok when `pem` holds a PKCS#10 request
/// whose self-signature verifies.
pub fn check_csr(pem: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let Some((label, der)) = pem_blocks(pem).into_iter().next() else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    if label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    csr.verify_signature()
        .map_err(|e| format!("x509: signature verification failure: {e}"))
}

/// validateCertificate: empty, or only CERTIFICATE blocks that parse.
pub fn check_certificate(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let blocks = pem_blocks(pem);
    if blocks.is_empty() {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    for (label, der) in blocks {
        if label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {label:?}"
            ));
        }
        x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("x509: malformed certificate: {e}"))?;
    }
    Ok(())
}

/// ValidateSignerName (core validation): `<domain>/<path>`.
pub fn validate_signer_name(path: &str, signer: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if signer.is_empty() {
        return vec![required(path, "")];
    }
    let segments: Vec<&str> = signer.split('/').collect();
    if segments.len() != 2 {
        return vec![invalid_value(
            path,
            &json!(signer),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    }
    let (domain, rest) = (segments[0], segments[1]);
    if domain.len() > 253 {
        out.push(too_long(path, 253));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for l in &labels {
        let errs = dns1123_label(l);
        if !errs.is_empty() {
            for e in errs {
                out.push(invalid_value(
                    path,
                    &json!(domain),
                    &format!("validating label {l:?}: {e}"),
                ));
            }
            break;
        }
    }
    if labels.len() < 2 {
        out.push(invalid_value(
            path,
            &json!(domain),
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for c in rest.split('.') {
        let errs = dns1123_subdomain(c);
        if !errs.is_empty() {
            for e in errs {
                out.push(invalid_value(
                    path,
                    &json!(rest),
                    &format!("validating component {c:?}: {e}"),
                ));
            }
            break;
        }
    }
    let max = 253 + (253 + 63 + 1) + 1;
    if signer.len() > max {
        out.push(too_long(path, max));
    }
    out
}

struct CertificateSigningRequests;

fn conditions(obj: &Value) -> &[Value] {
    arr_at(obj, "/status/conditions")
}

fn of_type<'a>(obj: &'a Value, t: &str) -> Vec<&'a Value> {
    conditions(obj)
        .iter()
        .filter(|c| str_at(c, "/type") == t)
        .collect()
}

/// An Approved or Denied condition: set only through the approval subresource.
fn is_approval(condition: &Value) -> bool {
    matches!(str_at(condition, "/type"), "Approved" | "Denied")
}

/// validateConditions.
fn validate_conditions(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let (mut approved, mut denied) = (false, false);
    let mut seen = std::collections::HashSet::new();
    for (i, c) in conditions(obj).iter().enumerate() {
        let p = format!("status.conditions[{i}]");
        let t = str_at(c, "/type");
        if t.is_empty() {
            out.push(required(&format!("{p}.type"), ""));
        }
        let allowed: &[&str] = if matches!(t, "Approved" | "Denied" | "Failed") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        let status = str_at(c, "/status");
        if status.is_empty() {
            out.push(required(&format!("{p}.status"), ""));
        } else if !allowed.contains(&status) {
            out.push(not_supported(
                &format!("{p}.status"),
                &json!(status),
                allowed,
            ));
        }
        match t {
            "Approved" => {
                approved = true;
                if denied {
                    out.push(invalid_value(
                        &format!("{p}.type"),
                        &json!(t),
                        "Approved and Denied conditions are mutually exclusive",
                    ));
                }
            }
            "Denied" => {
                denied = true;
                if approved {
                    out.push(invalid_value(
                        &format!("{p}.type"),
                        &json!(t),
                        "Approved and Denied conditions are mutually exclusive",
                    ));
                }
            }
            _ => {}
        }
        if !seen.insert(t.to_owned()) {
            out.push(duplicate(&format!("{p}.type"), &json!(t)));
        }
    }
    out
}

/// Conditions added by an update get their timestamps (populateConditionTimestamps).
fn populate_condition_timestamps(new: &mut Value, old: &Value) {
    let now = meta::now_rfc3339();
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in list.iter_mut() {
        let (t, s) = (
            str_at(c, "/type").to_owned(),
            str_at(c, "/status").to_owned(),
        );
        let Some(m) = c.as_object_mut() else { continue };
        if m.get("lastUpdateTime").is_none_or(Value::is_null) {
            m.insert("lastUpdateTime".into(), json!(now));
        }
        if m.get("lastTransitionTime").is_none_or(Value::is_null) {
            let previous = conditions(old).iter().find(|o| {
                str_at(o, "/type") == t
                    && str_at(o, "/status") == s
                    && !str_at(o, "/lastTransitionTime").is_empty()
            });
            let at = previous
                .map(|o| json!(str_at(o, "/lastTransitionTime")))
                .unwrap_or_else(|| json!(now));
            m.insert("lastTransitionTime".into(), at);
        }
    }
}

impl CertificateSigningRequests {
    /// validateCertificateSigningRequest (create options; `old` relaxes the checks
    /// existing data already fails, as getValidationOptions does).
    fn validate_with(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut out = Vec::new();
        let request = decode_b64(str_at(obj, "/spec/request"));
        if let Err(e) = check_csr(&request) {
            out.push(invalid_raw("spec.request", &go_bytes(&request), &e));
        }
        let usages = arr_at(obj, "/spec/usages");
        if usages.is_empty() {
            out.push(required("spec.usages", ""));
        }
        let old_usages = old.map(|o| arr_at(o, "/spec/usages")).unwrap_or(&[]);
        let unknown = |u: &Value| !VALID_USAGES.contains(&u.as_str().unwrap_or_default());
        if !old_usages.iter().any(unknown) {
            for (i, u) in usages.iter().enumerate() {
                if unknown(u) {
                    out.push(not_supported(&format!("spec.usages[{i}]"), u, VALID_USAGES));
                }
            }
        }
        let dup = |list: &[Value]| {
            let mut seen = std::collections::HashSet::new();
            list.iter().any(|u| !seen.insert(u.to_string()))
        };
        if !dup(old_usages) {
            let mut seen = std::collections::HashSet::new();
            for (i, u) in usages.iter().enumerate() {
                if !seen.insert(u.to_string()) {
                    out.push(duplicate(&format!("spec.usages[{i}]"), u));
                }
            }
        }
        let signer = str_at(obj, "/spec/signerName");
        let legacy_ok = old.is_some_and(|o| str_at(o, "/spec/signerName") == LEGACY_UNKNOWN_SIGNER);
        if signer == LEGACY_UNKNOWN_SIGNER && !legacy_ok {
            out.push(invalid_value(
                "spec.signerName",
                &json!(signer),
                "the legacy signerName is not allowed via this API version",
            ));
        } else if signer != LEGACY_UNKNOWN_SIGNER {
            out.extend(validate_signer_name("spec.signerName", signer));
        }
        if let Some(s) = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
        {
            if s < 600 {
                out.push(invalid_value(
                    "spec.expirationSeconds",
                    &json!(s),
                    "may not specify a duration less than 600 seconds (10 minutes)",
                ));
            }
        }
        out.extend(validate_conditions(obj));
        let cert = str_at(obj, "/status/certificate");
        let old_cert = old.map(|o| str_at(o, "/status/certificate"));
        let arbitrary =
            old_cert.is_some_and(|c| c == cert || check_certificate(&decode_b64(c)).is_err());
        if !arbitrary {
            if let Err(e) = check_certificate(&decode_b64(cert)) {
                out.push(invalid_value(
                    "status.certificate",
                    &json!("<certificate data>"),
                    &e,
                ));
            }
        }
        out
    }

    /// validateCertificateSigningRequestUpdate with the subresource's allowances.
    /// `old` with its status conditions and certificate replaced (removed when None).
    fn merge_status(
        &self,
        new: &mut Value,
        old: &Value,
        conds: Option<Value>,
        cert: Option<Value>,
    ) {
        let mut merged = old.clone();
        if let Some(m) = merged.as_object_mut() {
            let status = m.entry("status").or_insert_with(|| json!({}));
            if let Some(s) = status.as_object_mut() {
                for (k, v) in [("conditions", conds), ("certificate", cert)] {
                    match v.filter(|v| !v.is_null()) {
                        Some(v) => s.insert(k.into(), v),
                        None => s.remove(k),
                    };
                }
            }
        }
        populate_condition_timestamps(&mut merged, old);
        *new = merged;
    }

    fn validate_update_with(
        &self,
        new: &Value,
        old: &Value,
        allow_approval: bool,
        allow_certificate: bool,
    ) -> Vec<Cause> {
        let mut out = self.validate_with(new, Some(old));
        for t in ["Approved", "Denied", "Failed"] {
            if of_type(new, t).len() < of_type(old, t).len() {
                out.push(forbidden(
                    "status.conditions",
                    &format!("updates may not remove a condition of type {t:?}"),
                ));
            }
        }
        if !allow_approval {
            for t in ["Approved", "Denied"] {
                let (n, o) = (of_type(new, t), of_type(old, t));
                if n.len() > o.len() {
                    out.push(forbidden(
                        "status.conditions",
                        &format!("updates may not add a condition of type {t:?}"),
                    ));
                } else if n.len() == o.len() && n != o {
                    out.push(forbidden(
                        "status.conditions",
                        &format!("updates may not modify a condition of type {t:?}"),
                    ));
                }
            }
        }
        let (nc, oc) = (
            str_at(new, "/status/certificate"),
            str_at(old, "/status/certificate"),
        );
        if nc != oc {
            if !allow_certificate {
                out.push(forbidden(
                    "status.certificate",
                    "updates may not set certificate content",
                ));
            } else if !oc.is_empty() {
                out.push(forbidden(
                    "status.certificate",
                    "updates may not modify existing certificate content",
                ));
            }
        }
        out
    }
}

/// extractCSRStatus: Denied|Approved|Pending, then ",Failed" and ",Issued".
fn condition_summary(obj: &Value) -> String {
    let has = |t: &str| !of_type(obj, t).is_empty();
    let mut s = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        s.push_str(",Failed");
    }
    if !str_at(obj, "/status/certificate").is_empty() {
        s.push_str(",Issued");
    }
    s
}

impl Strategy for CertificateSigningRequests {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::CertificateSigningRequest>(obj)
    }

    /// Clears user-set requestor fields and the status; nobody creates a request
    /// already approved.
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            for f in ["username", "uid", "groups", "extra"] {
                spec.remove(f);
            }
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({}));
        }
    }

    /// The requestor is whoever creates the request, as upstream's PrepareForCreate
    /// takes it from the request context.
    fn prepare_for_create_by(&self, obj: &mut Value, user: &UserInfo) {
        set_requestor(obj, user);
    }

    /// Main-resource updates change only metadata.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            for f in ["spec", "status"] {
                match old.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        self.validate_with(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        self.validate_update_with(new, old, false, false)
    }

    /// Both `status` and `approval` writes land here: only status.conditions and
    /// status.certificate change.
    /// The status subresource sets the certificate and the other conditions; the
    /// Approved and Denied conditions stay as they were (upstream's
    /// csrStatusStrategy).
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        let mut conds: Vec<Value> = new
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter(|c| !is_approval(c)).cloned().collect())
            .unwrap_or_default();
        conds.extend(
            old.pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter(|c| is_approval(c))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        let conds = (!conds.is_empty()).then(|| json!(conds));
        let cert = new.pointer("/status/certificate").cloned();
        self.merge_status(new, old, conds, cert);
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        self.validate_update_with(new, old, false, true)
    }

    /// The approval subresource changes the conditions only; the certificate stays
    /// (upstream's csrApprovalStrategy).
    fn prepare_for_approval_update(&self, new: &mut Value, old: &Value) {
        let conds = new.pointer("/status/conditions").cloned();
        let cert = old.pointer("/status/certificate").cloned();
        self.merge_status(new, old, conds, cert);
    }

    fn validate_approval_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        self.validate_update_with(new, old, true, false)
    }

    /// Upstream's strategy keeps no generation.
    fn canonicalize(&self, obj: &mut Value) {
        meta::remove(obj, "generation");
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "spec.signerName" => Some(str_at(obj, "/spec/signerName").to_owned()),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.signerName"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            AGE_COLUMN,
            Column::new("SignerName", "string", "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`."),
            Column::new("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
            Column::new("RequestedDuration", "string", "expirationSeconds is the requested duration of validity of the issued certificate."),
            Column::new("Condition", "string", "Conditions applied to the request, such as approval or denial."),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let signer = match str_at(obj, "/spec/signerName") {
            "" => "<none>",
            s => s,
        };
        let duration = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .map(|s| human_duration(time::Duration::seconds(s)))
            .unwrap_or_else(|| "<none>".into());
        vec![
            json!(age(obj)),
            json!(signer),
            json!(str_at(obj, "/spec/username")),
            json!(duration),
            json!(condition_summary(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_csr() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["node.example".into()]).expect("params");
        params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    fn csr(pem: &str) -> Value {
        json!({"metadata": {"name": "c"}, "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "example.com/signer", "usages": ["client auth"]}})
    }

    #[test]
    fn requests_must_be_signed_pem_csrs() {
        let good = csr(&pem_csr());
        assert!(CertificateSigningRequests.validate(&good).is_empty());
        let bad = csr("hello");
        let c = CertificateSigningRequests.validate(&bad);
        assert_eq!(c[0].field, "spec.request");
        assert!(c[0]
            .message
            .starts_with("Invalid value: []byte{0x68, 0x65, 0x6c, 0x6c, 0x6f}: PEM block type must be CERTIFICATE REQUEST"));
        let mut short = good.clone();
        short["spec"]["expirationSeconds"] = json!(60);
        short["spec"]["signerName"] = json!("nodomain");
        short["spec"]["usages"] = json!(["client auth", "bogus", "client auth"]);
        let fields: Vec<String> = CertificateSigningRequests
            .validate(&short)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.usages[1]",
                "spec.usages[2]",
                "spec.signerName",
                "spec.expirationSeconds"
            ]
        );
    }

    #[test]
    fn approval_rules() {
        let s = CertificateSigningRequests;
        let mut old = csr(&pem_csr());
        s.prepare_for_create(&mut old);
        let mut approved = old.clone();
        approved["status"]["conditions"] =
            json!([{"type": "Approved", "status": "True", "reason": "r"}]);
        s.prepare_for_approval_update(&mut approved, &old);
        assert_eq!(approved["status"]["conditions"][0]["status"], "True");
        assert!(approved["status"]["conditions"][0]["lastUpdateTime"].is_string());
        assert!(s.validate_approval_update(&approved, &old).is_empty());
        // The status subresource keeps the approval conditions as they were.
        let mut via_status = old.clone();
        via_status["status"]["conditions"] =
            json!([{"type": "Approved", "status": "True", "reason": "r"}]);
        s.prepare_for_status_update(&mut via_status, &old);
        assert!(via_status["status"]["conditions"].is_null(), "{via_status}");
        // The approval subresource cannot set the certificate.
        let mut cert = approved.clone();
        cert["status"]["certificate"] = json!("Y2VydA==");
        s.prepare_for_approval_update(&mut cert, &approved);
        assert!(cert["status"]["certificate"].is_null(), "{cert}");
        assert_eq!(condition_summary(&approved), "Approved");
        // The main resource cannot approve.
        let c = s.validate_update(&approved, &old);
        assert_eq!(
            c[0].message,
            "Forbidden: updates may not add a condition of type \"Approved\""
        );
        // Approved and Denied together, and removals, are refused.
        let mut both = approved.clone();
        both["status"]["conditions"]
            .as_array_mut()
            .expect("list")
            .push(json!({"type": "Denied", "status": "True"}));
        let c = s.validate_approval_update(&both, &approved);
        assert_eq!(c[0].field, "status.conditions[1].type");
        let c = s.validate_approval_update(&old, &approved);
        assert_eq!(
            c[0].message,
            "Forbidden: updates may not remove a condition of type \"Approved\""
        );
    }

    #[test]
    fn cells_match_columns() {
        let mut c = csr(&pem_csr());
        c["spec"]["expirationSeconds"] = json!(86400);
        c["spec"]["username"] = json!("jane");
        let cells = CertificateSigningRequests.cells(&c);
        assert_eq!(cells.len(), CertificateSigningRequests.columns().len());
        assert_eq!(cells[1], "example.com/signer");
        assert_eq!(cells[2], "jane");
        assert_eq!(cells[3], "24h");
        assert_eq!(cells[4], "Pending");
        let mut user_set = c.clone();
        set_requestor(
            &mut user_set,
            &UserInfo {
                name: "bob".into(),
                groups: vec!["g".into()],
                ..Default::default()
            },
        );
        assert_eq!(user_set["spec"]["username"], "bob");
        assert_eq!(user_set["spec"]["groups"], json!(["g"]));
    }
}
