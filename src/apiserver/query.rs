//! Query-string parsing (application/x-www-form-urlencoded), and the typed options
//! the verbs read from it.
//!
//! Invariant: malformed values of known parameters are 400s, never silently ignored.

use std::collections::HashMap;

use super::status::ApiError;
use crate::registry::selector::{FieldSelector, LabelSelector};
use crate::registry::store::{DeleteOptions, FieldValidation, ListOptions};

/// Decoded query parameters (the last value wins for repeated keys).
#[derive(Clone, Debug, Default)]
pub struct Query(pub HashMap<String, String>);

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for kv in q.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            map.insert(decode(k), decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1") | Some("true") | Some("True") => Ok(true),
            Some("0") | Some("false") | Some("False") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid boolean value {v:?} for {key}"
            ))),
        }
    }

    pub fn opt_flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            _ => self.flag(key).map(Some),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid integer value {v:?} for {key}"))
            }),
        }
    }

    pub fn list_options(&self) -> Result<ListOptions, ApiError> {
        Ok(ListOptions {
            label_selector: LabelSelector::parse(self.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            field_selector: FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))
                .map_err(ApiError::bad_request)?,
            resource_version: self.get("resourceVersion").unwrap_or("").to_owned(),
            resource_version_match: self.get("resourceVersionMatch").unwrap_or("").to_owned(),
            limit: self.int("limit")?.unwrap_or(0).max(0),
            continue_token: self.get("continue").unwrap_or("").to_owned(),
        })
    }

    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
            ))),
        }
    }

    pub fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(v) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{v}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }

    /// DeleteOptions from query parameters (a body may override them).
    pub fn delete_options(&self) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            grace_period_seconds: self.int("gracePeriodSeconds")?,
            propagation_policy: self
                .get("propagationPolicy")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            ..Default::default()
        };
        if self.get("orphanDependents").is_some_and(|v| !v.is_empty()) {
            opts.orphan_dependents = Some(self.flag("orphanDependents")?);
        }
        if opts.orphan_dependents == Some(true) && opts.propagation_policy.is_none() {
            opts.propagation_policy = Some("Orphan".into());
        }
        Ok(opts)
    }
}

/// `dryRun` from a DeleteOptions body: it counts as it does in the query, and kubectl
/// sends `--dry-run=server` for deletes only there.
pub fn body_dry_run(body: &serde_json::Value) -> Result<bool, ApiError> {
    let Some(modes) = body.get("dryRun") else {
        return Ok(false);
    };
    let modes = modes
        .as_array()
        .ok_or_else(|| ApiError::bad_request("dryRun: must be a list of strings"))?;
    let mut dry_run = false;
    for mode in modes {
        match mode.as_str() {
            Some("All") => dry_run = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: \"{}\": supported values: \"All\"",
                    other.unwrap_or_default()
                )))
            }
        }
    }
    Ok(dry_run)
}

/// Merges a DeleteOptions body into options from the query.
pub fn delete_options_body(mut opts: DeleteOptions, body: &serde_json::Value) -> DeleteOptions {
    if let Some(g) = body
        .get("gracePeriodSeconds")
        .and_then(serde_json::Value::as_i64)
    {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = body
        .get("propagationPolicy")
        .and_then(serde_json::Value::as_str)
    {
        opts.propagation_policy = Some(p.to_owned());
    }
    if let Some(o) = body
        .get("orphanDependents")
        .and_then(serde_json::Value::as_bool)
    {
        opts.orphan_dependents = Some(o);
    }
    if opts.orphan_dependents == Some(true) && opts.propagation_policy.is_none() {
        opts.propagation_policy = Some("Orphan".into());
    }
    if let Some(pre) = body.get("preconditions") {
        opts.precondition_uid = pre
            .get("uid")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        opts.precondition_resource_version = pre
            .get("resourceVersion")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_options() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&limit=5&watch=1&dryRun=All",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch").expect("bool"));
        let opts = q.list_options().expect("opts");
        assert_eq!(opts.limit, 5);
        assert_eq!(opts.label_selector.0.len(), 2);
        assert!(q.dry_run().expect("dry"));
        assert_eq!(
            Query::parse(Some("dryRun=Some"))
                .dry_run()
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            Query::parse(Some("limit=x"))
                .list_options()
                .unwrap_err()
                .code,
            400
        );
    }
}
