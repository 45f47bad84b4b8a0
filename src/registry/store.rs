//! The generic REST store (upstream's `registry/generic/registry.Store`): get, list,
//! create, update, delete, deletecollection and watch for any resource, running the
//! resource's `Strategy` hooks in their fixed order around one storage transaction.
//!
//! Invariants: a request either stores its object with one compare-and-swap
//! transaction or stores nothing; stored bytes never carry `resourceVersion` (it is
//! the object's mod revision, set on every read); dry-run requests run every step but
//! the write.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::selector::{FieldSelector, LabelSelector};
use super::{meta, validation, Hooks, Registry, Resource};
use crate::admission::{Attributes, Chain, Operation};
use crate::apiserver::managed;
use crate::apiserver::status::{ApiError, Cause, Subject};
use crate::authn::UserInfo;
use crate::storage::{keys, EventType, Kv, ReadMode, Storage, StorageError, WatchItem};

/// How unknown fields in a request body are treated (`?fieldValidation=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Per-request context.
pub struct Ctx {
    pub user: UserInfo,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: String,
    /// A server-side apply (the fields it owns are recorded by `managed::apply`).
    pub applying: bool,
    /// `force=true`: an apply takes fields other managers own.
    pub force: bool,
    /// `Warning:` headers to send back (RFC 7234 warn-code 299).
    pub warnings: Mutex<Vec<String>>,
}

impl Ctx {
    pub fn new(user: UserInfo) -> Ctx {
        Ctx {
            user,
            dry_run: false,
            field_validation: FieldValidation::Warn,
            field_manager: String::new(),
            applying: false,
            force: false,
            warnings: Mutex::new(Vec::new()),
        }
    }

    pub fn warn(&self, text: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text);
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What `list` and `watch` select.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub resource_version: String,
    /// "", "Exact" or "NotOlderThan".
    pub resource_version_match: String,
    pub limit: i64,
    pub continue_token: String,
}

/// A page of a list.
pub struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: i64,
    pub continue_token: String,
    pub remaining: Option<i64>,
}

/// `metav1.DeleteOptions` as far as the store acts on it.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// The deprecated `orphanDependents`, as sent: upstream answers 202 instead of
    /// 200 for an object kept after a request with `orphanDependents: false`.
    pub orphan_dependents: Option<bool>,
}

/// A watch event as the API sends it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub kind: &'static str,
    pub object: Value,
}

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// A namespace's `finalize` subresource: only spec.finalizers changes.
    Finalize,
    /// A CertificateSigningRequest's `approval` subresource: only the approval
    /// conditions change.
    Approval,
}

/// The API's data plane: registry, storage and admission.
#[derive(Clone)]
pub struct Api {
    pub registry: Registry,
    pub storage: Arc<dyn Storage>,
    pub root: String,
    pub admission: Arc<Chain>,
    pub hooks: Arc<Hooks>,
}

fn subject(res: &Resource, name: &str) -> Subject {
    Subject::new(res.group, res.resource, name)
}

/// Maps storage errors to API errors for `res`/`name`.
pub fn storage_error(res: &Resource, name: &str, e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound { .. } => ApiError::not_found(&subject(res, name)),
        StorageError::KeyExists { .. } => ApiError::already_exists(&subject(res, name)),
        StorageError::Conflict { .. } => ApiError::stale(&subject(res, name)),
        StorageError::Compacted { compact_revision } => ApiError::expired(format!(
            "The resourceVersion for the provided list is too old. (compacted at {compact_revision})"
        )),
        StorageError::FutureRevision => ApiError::timeout("Too large resource version"),
        StorageError::RequestTooLarge => ApiError::too_large("etcdserver: request is too large"),
        StorageError::Unavailable(m) => ApiError::service_unavailable(m),
        StorageError::Timeout(m) => ApiError::timeout(m),
        StorageError::Internal(m) => ApiError::internal(m),
    }
}

impl Api {
    fn key(&self, res: &Resource, ns: Option<&str>, name: &str) -> String {
        keys::object_key(&self.root, res.storage_prefix, ns, name)
    }

    fn prefix(&self, res: &Resource, ns: Option<&str>) -> String {
        keys::list_prefix(&self.root, res.storage_prefix, ns)
    }

    /// Stored bytes → API object at `version`, with its resourceVersion. Conversion
    /// runs even at the storage version: a group may serve another group's stored
    /// objects in its own shape (events.k8s.io/v1 over core/v1 events).
    pub fn decode_stored(&self, res: &Resource, kv: &Kv, version: &str) -> Result<Value, ApiError> {
        let obj = self.stored_form(res, kv)?;
        let mut obj = res
            .strategy
            .convert(obj, version)
            .map_err(|e| ApiError::internal(format!("converting {}: {e}", kv.key)))?;
        meta::set_type(&mut obj, &res.api_version(version), res.kind);
        Ok(obj)
    }

    /// Stored bytes → the object as stored (storage version, no conversion), with its
    /// resourceVersion: what writes start from.
    pub fn stored_form(&self, res: &Resource, kv: &Kv) -> Result<Value, ApiError> {
        let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
            ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key))
        })?;
        meta::set_type(&mut obj, &res.api_version(res.storage_version()), res.kind);
        meta::set_resource_version(&mut obj, kv.mod_revision);
        Ok(obj)
    }

    /// API object → stored bytes (storage version, no resourceVersion).
    fn encode_for_storage(&self, res: &Resource, obj: &Value) -> Result<Bytes, ApiError> {
        let mut stored = obj.clone();
        meta::remove(&mut stored, "resourceVersion");
        meta::remove(&mut stored, "selfLink");
        meta::set_type(
            &mut stored,
            &res.api_version(res.storage_version()),
            res.kind,
        );
        serde_json::to_vec(&stored)
            .map(Bytes::from)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    pub async fn get(
        &self,
        res: &Resource,
        version: &str,
        ns: Option<&str>,
        name: &str,
        resource_version: &str,
    ) -> Result<Value, ApiError> {
        let mode = match resource_version {
            "" => ReadMode::Consistent,
            "0" => ReadMode::Any,
            _ => ReadMode::Consistent,
        };
        let key = self.key(res, ns, name);
        match self.storage.get(&key, mode).await {
            Ok(Some(kv)) => self.decode_stored(res, &kv, version),
            Ok(None) => Err(ApiError::not_found(&subject(res, name))),
            Err(e) => Err(storage_error(res, name, e)),
        }
    }

    fn field_value(res: &Resource, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_owned()),
            "metadata.namespace" => Some(meta::namespace(obj).to_owned()),
            other => res.strategy.field(obj, other),
        }
    }

    /// Checks that every field in the selector is supported (400 otherwise).
    pub fn check_field_selector(res: &Resource, sel: &FieldSelector) -> Result<(), ApiError> {
        for (f, _, _) in &sel.0 {
            if f != "metadata.name"
                && f != "metadata.namespace"
                && !res.strategy.selectable_fields().contains(&f.as_str())
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(())
    }

    fn matches(res: &Resource, opts: &ListOptions, obj: &Value) -> bool {
        opts.label_selector.matches(meta::labels(obj))
            && opts
                .field_selector
                .matches(|f| Self::field_value(res, obj, f))
    }

    pub async fn list(
        &self,
        res: &Resource,
        version: &str,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        Self::check_field_selector(res, &opts.field_selector)?;
        let prefix = self.prefix(res, ns);
        // A field selector on the name narrows the list to one key.
        let (mut start, mut mode) = (String::new(), self.read_mode(opts)?);
        if !opts.continue_token.is_empty() {
            let (rev, key) = decode_continue(&opts.continue_token, &prefix)?;
            start = key;
            mode = ReadMode::Exact(rev);
        }
        let filtering = !opts.label_selector.is_empty() || !opts.field_selector.is_empty();
        let limit = opts.limit.max(0);
        let mut items = Vec::new();
        let mut revision = 0;
        let mut next_start = None;
        let mut remaining = None;
        loop {
            let fetch = if limit == 0 {
                0
            } else {
                (limit - items.len() as i64).max(1)
            };
            let page = self
                .storage
                .list(&prefix, &start, fetch, mode)
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } if !opts.continue_token.is_empty() => {
                        expired_continue()
                    }
                    other => storage_error(res, "", other),
                })?;
            if revision == 0 {
                revision = page.revision;
                mode = ReadMode::Exact(revision);
            }
            let last_key = page.kvs.last().map(|kv| kv.key.clone());
            for kv in &page.kvs {
                let obj = self.decode_stored(res, kv, version)?;
                if !filtering || Self::matches(res, opts, &obj) {
                    items.push(obj);
                }
            }
            if !page.more {
                break;
            }
            let Some(last) = last_key else { break };
            start = format!("{last}\u{0}");
            if limit > 0 && items.len() as i64 >= limit {
                next_start = Some(start.clone());
                if !filtering {
                    remaining = Some(page.remaining);
                }
                break;
            }
        }
        let continue_token = next_start
            .map(|s| encode_continue(revision, s.strip_prefix(&prefix).unwrap_or(&s)))
            .unwrap_or_default();
        Ok(ListPage {
            items,
            resource_version: revision,
            continue_token,
            remaining,
        })
    }

    fn read_mode(&self, opts: &ListOptions) -> Result<ReadMode, ApiError> {
        let rv = opts.resource_version.as_str();
        match (rv, opts.resource_version_match.as_str()) {
            ("", "") => Ok(ReadMode::Consistent),
            ("", m) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"{m}\" is forbidden unless resourceVersion is provided"
            ))),
            ("0", "") | ("0", "NotOlderThan") => Ok(ReadMode::Any),
            (rv, "Exact") => rv
                .parse::<i64>()
                .ok()
                .filter(|r| *r > 0)
                .map(ReadMode::Exact)
                .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv}"))),
            (rv, "") | (rv, "NotOlderThan") => {
                rv.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
                Ok(ReadMode::Consistent)
            }
            (_, m) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    /// Type check, unknown fields, and kind/apiVersion consistency of a request body.
    pub fn admit_body(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        body: Value,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        let want_av = res.api_version(version);
        let (av, kind) = (
            meta::api_version(&body).to_owned(),
            meta::kind(&body).to_owned(),
        );
        if (!av.is_empty() && av != want_av) || (!kind.is_empty() && kind != res.kind) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            ))
            .with_kind_mismatch(&kind, res.kind));
        }
        let mut body = body;
        meta::set_type(&mut body, &want_av, res.kind);
        let (obj, unknown) = res
            .strategy
            .decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
        if !unknown.is_empty() {
            match ctx.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    for u in &unknown {
                        ctx.warn(format!("unknown field \"{u}\""));
                    }
                }
                FieldValidation::Ignore => {}
            }
        }
        Ok(obj)
    }

    pub async fn create(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        // Namespace from the URL must agree with the object's.
        match (ns, meta::namespace(&obj)) {
            (Some(url), body) if !body.is_empty() && body != url => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            (Some(url), _) => meta::set(&mut obj, "namespace", json!(url)),
            (None, _) if !res.namespaced => meta::remove(&mut obj, "namespace"),
            (None, _) => {}
        }
        if meta::name(&obj).is_empty() && !meta::generate_name(&obj).is_empty() {
            let generated = format!("{}{}", meta::generate_name(&obj), meta::random_suffix());
            meta::set(&mut obj, "name", json!(generated));
        }
        if version != res.storage_version() {
            obj = res
                .strategy
                .convert(obj, res.storage_version())
                .map_err(ApiError::bad_request)?;
        }
        res.strategy.default(&mut obj);
        let name = meta::name(&obj).to_owned();
        let attrs = Attributes {
            operation: Operation::Create,
            resource: res,
            subresource: "",
            namespace: ns.unwrap_or(""),
            name: &name,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.mutate(&attrs, &mut obj, None).await?;
        // Server-owned metadata.
        for f in [
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta::remove(&mut obj, f);
        }
        meta::set(&mut obj, "uid", json!(meta::new_uid()));
        meta::set(&mut obj, "creationTimestamp", json!(meta::now_rfc3339()));
        if obj.get("spec").is_some() || res.has_subresource("status") {
            meta::set(&mut obj, "generation", json!(1));
        } else {
            meta::remove(&mut obj, "generation");
        }
        res.strategy.prepare_for_create(&mut obj);
        res.strategy.prepare_for_create_by(&mut obj, &ctx.user);
        self.record_manager(ctx, None, &mut obj, version, res);
        let name = meta::name(&obj).to_owned();
        let mut causes = validation::object_meta(&obj, res.namespaced, res.name_rule);
        causes.extend(res.strategy.validate(&obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid(res.kind, res.group, &name, causes));
        }
        let attrs = Attributes {
            name: &name,
            ..attrs
        };
        self.admission.validate(&attrs, &obj, None).await?;
        res.strategy.canonicalize(&mut obj);
        res.strategy
            .before_create(&self.hooks, &mut obj, ctx.dry_run)
            .await?;
        if ctx.dry_run {
            return self.finish_dry_run(res, version, obj);
        }
        let key = self.key(res, ns.filter(|_| res.namespaced), &name);
        let bytes = self.encode_for_storage(res, &obj)?;
        let lease = self.lease_for(res, &obj).await?;
        match self.storage.create(&key, bytes, lease).await {
            Ok(kv) => self.decode_stored(res, &kv, version),
            Err(e) => {
                res.strategy.create_failed(&self.hooks, &obj).await;
                Err(storage_error(res, &name, e))
            }
        }
    }

    /// Objects that expire (events) get a lease of `--event-ttl`.
    async fn lease_for(&self, res: &Resource, _obj: &Value) -> Result<i64, ApiError> {
        if res.resource == "events" && self.hooks.config.event_ttl_seconds > 0 {
            return self
                .storage
                .grant_lease(self.hooks.config.event_ttl_seconds)
                .await
                .map_err(|e| storage_error(res, "", e));
        }
        Ok(0)
    }

    fn finish_dry_run(
        &self,
        res: &Resource,
        version: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        obj = res
            .strategy
            .convert(obj, version)
            .map_err(ApiError::internal)?;
        meta::set_type(&mut obj, &res.api_version(version), res.kind);
        Ok(obj)
    }

    /// Records a write in metadata.managedFields (see `apiserver::managed`): any write
    /// but an apply moves the fields it changed to its manager's Update entry.
    fn record_manager(
        &self,
        ctx: &Ctx,
        old: Option<&Value>,
        obj: &mut Value,
        version: &str,
        res: &Resource,
    ) {
        if ctx.applying {
            // The apply recorded what it applied (`patch.rs`), before defaulting.
            return;
        }
        let manager = if ctx.field_manager.is_empty() {
            "unknown"
        } else {
            ctx.field_manager.as_str()
        };
        let kind = managed::Kind {
            group: res.group,
            version,
            kind: res.kind,
        };
        managed::record_update(old, obj, manager, &res.api_version(version), kind);
    }

    /// PUT: replaces the object (or its status). Returns the stored object and whether
    /// it was created.
    #[allow(
        clippy::too_many_arguments,
        reason = "the REST update signature: resource, version, context, target, body, part"
    )]
    pub async fn update(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        part: Part,
    ) -> Result<(Value, bool), ApiError> {
        if meta::name(&obj) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(&obj)
            )));
        }
        if let Some(url) = ns {
            match meta::namespace(&obj) {
                "" => meta::set(&mut obj, "namespace", json!(url)),
                body if body != url => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
        }
        if version != res.storage_version() {
            obj = res
                .strategy
                .convert(obj, res.storage_version())
                .map_err(ApiError::bad_request)?;
        }
        let key = self.key(res, ns.filter(|_| res.namespaced), name);
        let current = self
            .storage
            .get(&key, ReadMode::Consistent)
            .await
            .map_err(|e| storage_error(res, name, e))?;
        let Some(current) = current else {
            if part == Part::Main && res.strategy.allow_create_on_update() {
                return self
                    .create(res, version, ctx, ns, obj)
                    .await
                    .map(|o| (o, true));
            }
            return Err(ApiError::not_found(&subject(res, name)));
        };
        let old = self.stored_form(res, &current)?;
        let requested_rv = meta::resource_version(&obj).to_owned();
        let expected = if requested_rv.is_empty() {
            if !res.strategy.allow_unconditional_update() {
                return Err(ApiError::invalid(
                    res.kind,
                    res.group,
                    name,
                    vec![crate::apiserver::status::required(
                        "metadata.resourceVersion",
                        "must be specified for an update",
                    )],
                ));
            }
            current.mod_revision
        } else {
            let rv: i64 = requested_rv.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {requested_rv:?}"))
            })?;
            if rv != current.mod_revision {
                return Err(ApiError::stale(&subject(res, name)));
            }
            rv
        };
        let new = self
            .prepare_update(res, version, ctx, &old, obj, part)
            .await?;
        if ctx.dry_run {
            return self.finish_dry_run(res, version, new).map(|o| (o, false));
        }
        self.write_update(res, version, &key, name, &old, new, expected)
            .await
            .map(|o| (o, false))
    }

    /// Runs the update hooks on `new` against `old`; returns what to store.
    async fn prepare_update(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        old: &Value,
        mut new: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let name = meta::name(old).to_owned();
        // Server-owned metadata comes from the stored object.
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match meta::metadata(old).and_then(|m| m.get(f)).cloned() {
                Some(v) => meta::set(&mut new, f, v),
                None => meta::remove(&mut new, f),
            }
        }
        res.strategy.default(&mut new);
        match part {
            Part::Main => res.strategy.prepare_for_update(&mut new, old),
            Part::Status => res.strategy.prepare_for_status_update(&mut new, old),
            Part::Approval => res.strategy.prepare_for_approval_update(&mut new, old),
            Part::Finalize => {
                let finalizers = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                new = old.clone();
                if let Some(m) = new.as_object_mut() {
                    let spec = m.entry("spec").or_insert_with(|| json!({}));
                    if let Some(s) = spec.as_object_mut() {
                        s.insert("finalizers".into(), finalizers);
                    }
                }
            }
        }
        if part == Part::Main && new.get("spec") != old.get("spec") && new.get("spec").is_some() {
            meta::set(&mut new, "generation", json!(meta::generation(old) + 1));
        }
        let subresource = match part {
            Part::Main => "",
            Part::Status => "status",
            Part::Finalize => "finalize",
            Part::Approval => "approval",
        };
        let attrs = Attributes {
            operation: Operation::Update,
            resource: res,
            subresource,
            namespace: meta::namespace(old),
            name: &name,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.mutate(&attrs, &mut new, Some(old)).await?;
        self.record_manager(ctx, Some(old), &mut new, version, res);
        let mut causes = validation::object_meta(&new, res.namespaced, res.name_rule);
        causes.extend(validation::object_meta_update(&new, old));
        causes.extend(match part {
            Part::Main | Part::Finalize => res.strategy.validate_update(&new, old),
            Part::Status => res.strategy.validate_status_update(&new, old),
            Part::Approval => res.strategy.validate_approval_update(&new, old),
        });
        if !causes.is_empty() {
            return Err(ApiError::invalid(res.kind, res.group, &name, causes));
        }
        self.admission.validate(&attrs, &new, Some(old)).await?;
        res.strategy.canonicalize(&mut new);
        res.strategy
            .before_update(&self.hooks, &mut new, old, ctx.dry_run)
            .await?;
        Ok(new)
    }

    /// Stores an update with compare-and-swap on `expected`; an object whose deletion
    /// is pending and whose last finalizer went is deleted instead, unless it waits on
    /// a grace period (upstream's ShouldDeleteDuringUpdate: a terminating pod stays
    /// through its kubelet's status writes).
    #[allow(
        clippy::too_many_arguments,
        reason = "one CAS write with everything it reports on"
    )]
    async fn write_update(
        &self,
        res: &Resource,
        version: &str,
        key: &str,
        name: &str,
        old: &Value,
        new: Value,
        expected: i64,
    ) -> Result<Value, ApiError> {
        let in_grace = || {
            meta::deletion_grace_waiting(old).is_some()
                && res.strategy.grace_period(old, None).is_some()
        };
        if meta::deletion_timestamp(&new).is_some()
            && meta::finalizers(&new).is_empty()
            && !res.strategy.pending_finalization(&new)
            && !in_grace()
        {
            let kv = self
                .storage
                .delete(key, Some(expected))
                .await
                .map_err(|e| storage_error(res, name, e))?;
            res.strategy.after_delete(&self.hooks, old).await;
            let mut out = self.decode_stored(res, &kv, version)?;
            meta::set_resource_version(&mut out, kv.mod_revision);
            return Ok(out);
        }
        let bytes = self.encode_for_storage(res, &new)?;
        let kv = self
            .storage
            .update(key, bytes, expected, 0)
            .await
            .map_err(|e| storage_error(res, name, e))?;
        self.decode_stored(res, &kv, version)
    }

    /// Read-modify-write with retries on conflict (patches, scale, finalizers):
    /// `change` gets the current object (at `version`) and returns the new one, or an
    /// error to stop. A change that sets `metadata.resourceVersion` pins it.
    #[allow(clippy::too_many_arguments, reason = "the REST patch signature")]
    pub async fn modify<F>(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        ns: Option<&str>,
        name: &str,
        part: Part,
        mut change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(Value) -> Result<Value, ApiError> + Send,
    {
        let key = self.key(res, ns.filter(|_| res.namespaced), name);
        for _ in 0..16 {
            let current = self
                .storage
                .get(&key, ReadMode::Consistent)
                .await
                .map_err(|e| storage_error(res, name, e))?
                .ok_or_else(|| ApiError::not_found(&subject(res, name)))?;
            let old = self.stored_form(res, &current)?;
            let at_version = self.decode_stored(res, &current, version)?;
            let mut new = change(at_version)?;
            let pinned = meta::resource_version(&new).to_owned();
            if !pinned.is_empty() && pinned != current.mod_revision.to_string() {
                return Err(ApiError::stale(&subject(res, name)));
            }
            if pinned.is_empty() {
                // Unpinned (a patch): compare with the stored object as of this read, so
                // a change that changes nothing is recognised below.
                meta::set(
                    &mut new,
                    "resourceVersion",
                    json!(current.mod_revision.to_string()),
                );
            }
            if meta::name(&new) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new)
                )));
            }
            if version != res.storage_version() {
                new = res
                    .strategy
                    .convert(new, res.storage_version())
                    .map_err(ApiError::bad_request)?;
            }
            let new = self
                .prepare_update(res, version, ctx, &old, new, part)
                .await?;
            if ctx.dry_run {
                return self.finish_dry_run(res, version, new);
            }
            if new == old {
                // Nothing changed: no write, same resourceVersion (as upstream).
                return self.decode_stored(res, &current, version);
            }
            match self
                .write_update(res, version, &key, name, &old, new, current.mod_revision)
                .await
            {
                Err(e) if e.reason == "Conflict" && pinned.is_empty() => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(
            &subject(res, name),
            "too many concurrent updates",
        ))
    }

    /// DELETE of one object. Returns the object and whether it is gone (false: its
    /// deletion waits on finalizers or a grace period).
    pub async fn delete(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let key = self.key(res, ns.filter(|_| res.namespaced), name);
        for _ in 0..16 {
            let current = self
                .storage
                .get(&key, ReadMode::Consistent)
                .await
                .map_err(|e| storage_error(res, name, e))?
                .ok_or_else(|| ApiError::not_found(&subject(res, name)))?;
            let obj = self.stored_form(res, &current)?;
            if let Some(uid) = &opts.precondition_uid {
                if uid != meta::uid(&obj) {
                    return Err(ApiError::conflict(
                        &subject(res, name),
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(&obj)
                        ),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if *rv != current.mod_revision.to_string() {
                    return Err(ApiError::conflict(
                        &subject(res, name),
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            current.mod_revision
                        ),
                    ));
                }
            }
            let attrs = Attributes {
                operation: Operation::Delete,
                resource: res,
                subresource: "",
                namespace: ns.unwrap_or(""),
                name,
                user: &ctx.user,
                dry_run: ctx.dry_run,
            };
            self.admission.validate(&attrs, &obj, Some(&obj)).await?;
            let mut finalizers = meta::finalizers(&obj);
            match opts.propagation_policy.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                Some("Orphan") | Some("Foreground") | Some("Background") | None => {}
                Some(other) => {
                    return Err(ApiError::invalid(
                        "DeleteOptions",
                        "",
                        "",
                        vec![crate::apiserver::status::not_supported(
                            "propagationPolicy",
                            &json!(other),
                            &["Foreground", "Background", "Orphan"],
                        )],
                    ))
                }
            }
            // Graceful deletion (pods), as upstream's BeforeDelete: a positive period
            // marks the object; once marked, only a shorter period changes anything.
            let requested = opts.grace_period_seconds.map(|g| if g < 0 { 1 } else { g });
            let mut grace: Option<(String, i64)> = None;
            if let Some(period) = res.strategy.grace_period(&obj, requested) {
                match (
                    meta::deletion_timestamp(&obj),
                    meta::deletion_grace_waiting(&obj),
                ) {
                    (Some(ts), Some(waiting)) => match requested {
                        Some(p) if p < waiting => {
                            let ts = meta::shift_rfc3339(ts, p - waiting)
                                .unwrap_or_else(|| meta::rfc3339_in(p));
                            grace = Some((ts, p));
                        }
                        _ => {
                            return self
                                .decode_stored(res, &current, version)
                                .map(|o| (o, false));
                        }
                    },
                    (None, _) if period > 0 => grace = Some((meta::rfc3339_in(period), period)),
                    _ => {}
                }
            }
            let waits = grace.as_ref().is_some_and(|(_, period)| *period > 0);
            if !waits && finalizers.is_empty() && !res.strategy.pending_finalization(&obj) {
                if ctx.dry_run {
                    return self.finish_dry_run(res, version, obj).map(|o| (o, true));
                }
                match self.storage.delete(&key, Some(current.mod_revision)).await {
                    Ok(kv) => {
                        res.strategy.after_delete(&self.hooks, &obj).await;
                        let mut out = self.decode_stored(res, &kv, version)?;
                        meta::set_resource_version(&mut out, kv.mod_revision);
                        return Ok((out, true));
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(storage_error(res, name, e)),
                }
            }
            // A grace period or finalizers pending: mark the deletion, keep the object.
            let mut marked = obj.clone();
            if let Some((ts, period)) = grace {
                meta::set(&mut marked, "deletionTimestamp", json!(ts));
                meta::set(&mut marked, "deletionGracePeriodSeconds", json!(period));
            } else if meta::deletion_timestamp(&marked).is_none() {
                meta::set(&mut marked, "deletionTimestamp", json!(meta::now_rfc3339()));
                meta::set(&mut marked, "deletionGracePeriodSeconds", json!(0));
            }
            if !finalizers.is_empty() {
                meta::set(&mut marked, "finalizers", json!(finalizers));
            }
            res.strategy.mark_deleting(&mut marked);
            if marked == obj {
                return self
                    .decode_stored(res, &current, version)
                    .map(|o| (o, false));
            }
            if ctx.dry_run {
                return self
                    .finish_dry_run(res, version, marked)
                    .map(|o| (o, false));
            }
            let bytes = self.encode_for_storage(res, &marked)?;
            match self
                .storage
                .update(&key, bytes, current.mod_revision, current.lease)
                .await
            {
                Ok(kv) => return self.decode_stored(res, &kv, version).map(|o| (o, false)),
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_error(res, name, e)),
            }
        }
        Err(ApiError::conflict(
            &subject(res, name),
            "too many concurrent updates",
        ))
    }

    /// DELETE on a collection, as upstream: one consistent list of the selection, then
    /// a delete of each listed object (`--delete-collection-workers` at once, objects
    /// already gone skipped); answers the list as it was read, or the first error once
    /// every delete has run (none is abandoned midway).
    pub async fn delete_collection(
        &self,
        res: &Resource,
        version: &str,
        ctx: &Ctx,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<ListPage, ApiError> {
        use futures::stream::{self, StreamExt};
        let page = self.list(res, version, ns, list).await?;
        let workers = self.hooks.config.delete_collection_workers.max(1);
        // Owned names: a stream of futures borrowing the items trips the compiler's
        // higher-ranked Send check on the handler.
        let targets: Vec<(Option<String>, String)> = page
            .items
            .iter()
            .map(|obj| {
                let ns = res.namespaced.then(|| meta::namespace(obj).to_owned());
                (ns, meta::name(obj).to_owned())
            })
            .collect();
        stream::iter(targets)
            .map(|(ns, name)| async move {
                match self
                    .delete(res, version, ctx, ns.as_deref(), &name, opts)
                    .await
                {
                    Err(e) if e.code != 404 => Err(e),
                    _ => Ok(()),
                }
            })
            .buffer_unordered(workers)
            .collect::<Vec<Result<(), ApiError>>>()
            .await
            .into_iter()
            .collect::<Result<(), ApiError>>()?;
        Ok(ListPage {
            continue_token: String::new(),
            remaining: None,
            ..page
        })
    }

    /// A watch: initial ADDED events when asked (no resourceVersion, "0", or
    /// sendInitialEvents), then changes, filtered by the selectors with upstream's
    /// rules for objects entering and leaving the selection.
    #[allow(clippy::too_many_arguments, reason = "the REST watch signature")]
    pub async fn watch(
        &self,
        res: Arc<Resource>,
        version: String,
        ns: Option<String>,
        name: Option<String>,
        opts: ListOptions,
        send_initial_events: Option<bool>,
        bookmarks: bool,
    ) -> Result<impl Stream<Item = WatchEvent> + Send, ApiError> {
        Self::check_field_selector(&res, &opts.field_selector)?;
        let mut opts = opts;
        if let Some(n) = &name {
            opts.field_selector
                .0
                .push(("metadata.name".into(), true, n.clone()));
        }
        let prefix = match (&name, ns.as_deref()) {
            (Some(n), ns) => self.key(&res, ns.filter(|_| res.namespaced), n),
            (None, ns) => self.prefix(&res, ns),
        };
        let rv = opts.resource_version.clone();
        let initial = match send_initial_events {
            Some(v) => v,
            None => rv.is_empty() || rv == "0",
        };
        let mut initial_events = Vec::new();
        let start = if initial {
            let mut list_opts = opts.clone();
            list_opts.limit = 0;
            list_opts.continue_token.clear();
            // sendInitialEvents with NotOlderThan: from any state for "0", else from
            // one at least as new as the version given (or the newest, without one):
            // a consistent read serves both.
            if send_initial_events == Some(true) && rv != "0" {
                list_opts.resource_version.clear();
                list_opts.resource_version_match.clear();
            }
            let page = self.list(&res, &version, ns.as_deref(), &list_opts).await?;
            for obj in page.items {
                if name.as_ref().is_none_or(|n| meta::name(&obj) == n) {
                    initial_events.push(WatchEvent {
                        kind: "ADDED",
                        object: obj,
                    });
                }
            }
            if send_initial_events == Some(true) {
                let mut b = bookmark(&res, &version, page.resource_version);
                meta::set(
                    &mut b.object,
                    "annotations",
                    json!({"k8s.io/initial-events-end": "true"}),
                );
                initial_events.push(b);
            }
            page.resource_version + 1
        } else {
            let r: i64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
            r + 1
        };
        let stream = self
            .storage
            .watch(&prefix, start)
            .await
            .map_err(|e| storage_error(&res, "", e))?;
        let api = self.clone();
        let last_rev = Arc::new(std::sync::atomic::AtomicI64::new(start - 1));
        let events = stream.filter_map(move |item| {
            let api = api.clone();
            let res = res.clone();
            let version = version.clone();
            let opts = opts.clone();
            let name = name.clone();
            let last_rev = last_rev.clone();
            async move {
                match item {
                    WatchItem::Event(ev) => {
                        if name.is_some()
                            && !ev
                                .key
                                .ends_with(&format!("/{}", name.as_deref().unwrap_or("")))
                        {
                            return None;
                        }
                        last_rev.store(ev.revision, std::sync::atomic::Ordering::Relaxed);
                        api.convert_event(&res, &version, &opts, ev)
                    }
                    WatchItem::Progress(rev) => bookmarks.then(|| bookmark(&res, &version, rev)),
                    WatchItem::Error(StorageError::Compacted { compact_revision }) => {
                        Some(WatchEvent {
                            kind: "ERROR",
                            object: ApiError::expired(format!(
                                "too old resource version: {} ({compact_revision})",
                                last_rev.load(std::sync::atomic::Ordering::Relaxed)
                            ))
                            .to_status(),
                        })
                    }
                    WatchItem::Error(e) => Some(WatchEvent {
                        kind: "ERROR",
                        object: storage_error(&res, "", e).to_status(),
                    }),
                }
            }
        });
        Ok(futures::stream::iter(initial_events).chain(events))
    }

    fn convert_event(
        &self,
        res: &Resource,
        version: &str,
        opts: &ListOptions,
        ev: crate::storage::Event,
    ) -> Option<WatchEvent> {
        let kv = Kv {
            key: ev.key.clone(),
            value: ev.value.clone(),
            create_revision: 0,
            mod_revision: ev.revision,
            lease: 0,
        };
        let obj = self.decode_stored(res, &kv, version).ok()?;
        let filtering = !opts.label_selector.is_empty() || !opts.field_selector.is_empty();
        let now = !filtering || Self::matches(res, opts, &obj);
        let before = match (&ev.prev_value, filtering) {
            (_, false) => true,
            (Some(prev), true) => {
                let kv = Kv {
                    value: prev.clone(),
                    ..kv.clone()
                };
                self.decode_stored(res, &kv, version)
                    .map(|p| Self::matches(res, opts, &p))
                    .unwrap_or(false)
            }
            (None, true) => false,
        };
        let kind = match ev.kind {
            EventType::Created => now.then_some("ADDED")?,
            EventType::Deleted => before.then_some("DELETED")?,
            EventType::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
        };
        Some(WatchEvent { kind, object: obj })
    }
}

/// A BOOKMARK event at `rev`.
pub fn bookmark(res: &Resource, version: &str, rev: i64) -> WatchEvent {
    WatchEvent {
        kind: "BOOKMARK",
        object: json!({
            "kind": res.kind,
            "apiVersion": res.api_version(version),
            "metadata": {"resourceVersion": rev.to_string()},
        }),
    }
}

/// upstream's continue token: base64url(JSON {"v":"meta.k8s.io/v1","rv":N,"start":K}).
pub fn encode_continue(rev: i64, start: &str) -> String {
    use base64::Engine;
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    if rev <= 0 {
        // An "inconsistent" token (after compaction) continues at the latest revision.
        return Err(bad());
    }
    Ok((rev, format!("{prefix}{start}")))
}

fn expired_continue() -> ApiError {
    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
}

impl ApiError {
    fn with_kind_mismatch(self, got: &str, want: &str) -> ApiError {
        if !got.is_empty() && got != want {
            ApiError::bad_request(format!(
                "the kind in the data ({got}) does not match the expected kind ({want})"
            ))
        } else {
            self
        }
    }
}

/// A periodic tick for bookmarks on idle watches.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Causes used by several strategies.
pub fn immutable(field: &str, value: &Value) -> Cause {
    crate::apiserver::status::invalid_value(field, value, "field is immutable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "default/b\u{0}");
        let (rev, key) = decode_continue(&t, "/registry/pods/").expect("decodes");
        assert_eq!(rev, 42);
        assert_eq!(key, "/registry/pods/default/b\u{0}");
        assert!(decode_continue("!!!", "/x/").is_err());
        let evil = encode_continue(1, "../secrets/x");
        assert!(decode_continue(&evil, "/x/").is_err());
    }
}
