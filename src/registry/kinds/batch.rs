//! batch/v1 kinds: jobs and cronjobs, with upstream's generated job selector and
//! labels, and cron schedules checked by a port of the parser kube-apiserver uses
//! (robfig/cron v3 `ParseStandard`), error texts included.
//!
//! Invariant: upstream v1.33 defaults (pkg/apis/batch/v1/defaults.go plus the
//! embedded pod template's core/v1 defaults), validation messages and field paths
//! (pkg/apis/batch/validation), status reset on create and kept on main-resource
//! updates, and the printers' columns.

use std::sync::Arc;

use k8s_openapi::api::batch::v1 as api;
use serde_json::{json, Value};

use super::apps::{
    container_cells, decode_filled, default_field, default_pod_template, int_at, keep_status,
    nonnegative, reset_status, selector_cell, selector_matches_template, validate_label_selector,
    validate_pod_template, CONTAINERS_COLUMN, IMAGES_COLUMN,
};
use crate::apiserver::status::{invalid_value, not_supported, required, Cause};
use crate::registry::store::immutable;
use crate::registry::validation::NameRule;
use crate::registry::{
    age, human_duration, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS,
};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "batch",
            versions: &["v1"],
            kind: "Job",
            resource: "jobs",
            singular: "job",
            namespaced: true,
            short_names: &[],
            categories: &["all"],
            storage_prefix: "jobs",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Jobs),
        },
        Resource {
            group: "batch",
            versions: &["v1"],
            kind: "CronJob",
            resource: "cronjobs",
            singular: "cronjob",
            namespaced: true,
            short_names: &["cj"],
            categories: &["all"],
            storage_prefix: "cronjobs",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(CronJobs),
        },
    ]
}

/// The job-name labels (legacy and prefixed) upstream puts on a job's pod template.
const JOB_NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];
/// The controller-uid labels; the selector uses the prefixed one.
const CONTROLLER_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";

fn manual_selector(obj: &Value) -> bool {
    obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
}

/// validateJobSpec: the checks a job and a cronjob's job template share. `path` is
/// the JobSpec's field path.
fn validate_job_spec(spec: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        out.extend(nonnegative(spec, &format!("/{f}"), &format!("{path}.{f}")));
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            out.push(not_supported(
                &format!("{path}.completionMode"),
                &json!(m),
                &["NonIndexed", "Indexed"],
            ));
        }
        if m == "Indexed" && spec.get("completions").is_none_or(Value::is_null) {
            out.push(required(
                &format!("{path}.completions"),
                "when completion mode is Indexed",
            ));
        }
    }
    if spec
        .get("backoffLimitPerIndex")
        .is_some_and(|v| !v.is_null())
        && mode != Some("Indexed")
    {
        out.push(crate::apiserver::status::forbidden(
            &format!("{path}.backoffLimitPerIndex"),
            "requires indexed completion mode",
        ));
    }
    if let Some(p) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let has_pfp = spec.get("podFailurePolicy").is_some_and(|v| !v.is_null());
        if has_pfp && p != "Failed" {
            out.push(not_supported(
                &format!("{path}.podReplacementPolicy"),
                &json!(p),
                &["Failed"],
            ));
        } else if p != "Failed" && p != "TerminatingOrFailed" {
            out.push(not_supported(
                &format!("{path}.podReplacementPolicy"),
                &json!(p),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    out.extend(validate_pod_template(
        spec.get("template"),
        &format!("{path}.template"),
    ));
    let rp = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    let rp_field = format!("{path}.template.spec.restartPolicy");
    match rp {
        "" | "Always" => out.push(required(
            &rp_field,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) && rp != "Never" {
                out.push(invalid_value(
                    &rp_field,
                    &json!(rp),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => out.push(not_supported(
            &rp_field,
            &json!(other),
            &["OnFailure", "Never"],
        )),
    }
    out
}

// ---------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------

struct Jobs;

impl Jobs {
    /// generateSelector: job-name and controller-uid labels on the template, the
    /// selector on the prefixed controller-uid, unless the user chose manualSelector.
    fn generate_selector(obj: &mut Value) {
        if manual_selector(obj) {
            return;
        }
        let name = meta::name(obj).to_owned();
        let uid = meta::uid(obj).to_owned();
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(labels) = super::apps::object_at(
            spec.entry("template").or_insert_with(|| json!({})),
            &["metadata", "labels"],
        ) {
            for l in JOB_NAME_LABELS {
                labels.entry(l).or_insert_with(|| json!(name));
            }
            for l in CONTROLLER_UID_LABELS {
                labels.entry(l).or_insert_with(|| json!(uid));
            }
        }
        let sel = spec.entry("selector").or_insert_with(|| json!({}));
        if let Some(ml) = super::apps::object_at(sel, &["matchLabels"]) {
            ml.entry(CONTROLLER_UID).or_insert_with(|| json!(uid));
        }
    }

    fn has_condition(obj: &Value, ty: &str) -> bool {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c.get("type").and_then(Value::as_str) == Some(ty)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
    }

    fn status_cell(obj: &Value) -> &'static str {
        if Self::has_condition(obj, "Complete") {
            "Complete"
        } else if Self::has_condition(obj, "Failed") {
            "Failed"
        } else if meta::deletion_timestamp(obj).is_some() {
            "Terminating"
        } else if Self::has_condition(obj, "Suspended") {
            "Suspended"
        } else if Self::has_condition(obj, "FailureTarget") {
            "FailureTarget"
        } else if Self::has_condition(obj, "SuccessCriteriaMet") {
            "SuccessCriteriaMet"
        } else {
            "Running"
        }
    }

    fn completions_cell(obj: &Value) -> String {
        let succeeded = int_at(obj, "/status/succeeded");
        match obj.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(c) => format!("{succeeded}/{c}"),
            None => {
                let parallelism = int_at(obj, "/spec/parallelism");
                if parallelism > 1 {
                    format!("{succeeded}/1 of {parallelism}")
                } else {
                    format!("{succeeded}/1")
                }
            }
        }
    }

    fn duration_cell(obj: &Value) -> String {
        let parse = |p: &str| {
            obj.pointer(p).and_then(Value::as_str).and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
        };
        match (parse("/status/startTime"), parse("/status/completionTime")) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration(time::OffsetDateTime::now_utc() - start),
            (Some(start), Some(end)) => human_duration(end - start),
        }
    }

    /// A suspended job that never started may change its scheduling directives.
    fn template_update(new: &Value, old: &Value) -> Vec<Cause> {
        let (a, b) = (new.pointer("/spec/template"), old.pointer("/spec/template"));
        if a == b {
            return Vec::new();
        }
        let suspended = old.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let never_started = old.pointer("/status/startTime").is_none_or(Value::is_null);
        if suspended && never_started {
            let strip = |t: Option<&Value>| {
                let mut t = t.cloned().unwrap_or(Value::Null);
                if let Some(md) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                    md.remove("labels");
                    md.remove("annotations");
                }
                if let Some(s) = t.get_mut("spec").and_then(Value::as_object_mut) {
                    for f in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                        s.remove(f);
                    }
                }
                t
            };
            if strip(a) == strip(b) {
                return Vec::new();
            }
        }
        vec![immutable("spec.template", a.unwrap_or(&Value::Null))]
    }
}

impl Strategy for Jobs {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::Job>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec/template", json!({}), true),
                ("/spec/template/spec", json!({}), true),
                ("/spec/template/spec/containers", json!([]), true),
            ],
        )
    }

    fn default(&self, obj: &mut Value) {
        let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let unset =
            |spec: &serde_json::Map<String, Value>, f: &str| spec.get(f).is_none_or(Value::is_null);
        if unset(spec, "completions") && unset(spec, "parallelism") {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        if unset(spec, "parallelism") {
            spec.insert("parallelism".into(), json!(1));
        }
        if unset(spec, "backoffLimit") {
            let limit = if unset(spec, "backoffLimitPerIndex") {
                6
            } else {
                i64::from(i32::MAX)
            };
            spec.insert("backoffLimit".into(), json!(limit));
        }
        default_field(spec, "completionMode", json!("NonIndexed"));
        if unset(spec, "suspend") {
            spec.insert("suspend".into(), json!(false));
        }
        if unset(spec, "podReplacementPolicy") {
            let p = if unset(spec, "podFailurePolicy") {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            spec.insert("podReplacementPolicy".into(), json!(p));
        }
        if unset(spec, "manualSelector") {
            spec.insert("manualSelector".into(), json!(false));
        }
        if let Some(Value::Array(rules)) = spec
            .get_mut("podFailurePolicy")
            .and_then(|p| p.get_mut("rules"))
        {
            for r in rules.iter_mut() {
                if let Some(Value::Array(pats)) = r.get_mut("onPodConditions") {
                    for p in pats.iter_mut().filter_map(Value::as_object_mut) {
                        default_field(p, "status", json!("True"));
                    }
                }
            }
        }
        if let Some(labels) =
            template_labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        {
            if meta::labels(obj).is_none_or(|l| l.is_empty()) {
                meta::set(obj, "labels", labels);
            }
        }
        default_pod_template(obj, &["spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        Self::generate_selector(obj);
        reset_status(obj, json!({}));
        // Defaulting on every read copies the (now generated) template labels to an
        // unlabeled job; doing it once here stores what upstream serves.
        if meta::labels(obj).is_none_or(|l| l.is_empty()) {
            if let Some(labels) = obj.pointer("/spec/template/metadata/labels").cloned() {
                meta::set(obj, "labels", labels);
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let mut out = validate_job_spec(&spec, "spec");
        match spec.get("selector").filter(|s| !s.is_null()) {
            None => out.push(required("spec.selector", "")),
            Some(sel) => {
                out.extend(validate_label_selector(sel, "spec.selector"));
                out.extend(selector_matches_template(
                    sel,
                    spec.get("template"),
                    "spec.template.metadata.labels",
                ));
            }
        }
        if !manual_selector(obj) {
            let uid = meta::uid(obj);
            if uid.is_empty() {
                out.push(required("metadata.uid", ""));
            }
            if let Some(v) = spec
                .pointer("/selector/matchLabels")
                .and_then(|m| m.get(CONTROLLER_UID))
                .and_then(Value::as_str)
            {
                if v != uid {
                    out.push(invalid_value(
                        "spec.selector",
                        spec.get("selector").unwrap_or(&Value::Null),
                        "`selector` not auto-generated",
                    ));
                }
            }
        }
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        for f in [
            "completions",
            "selector",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ] {
            let ptr = format!("/spec/{f}");
            let (a, b) = (new.pointer(&ptr), old.pointer(&ptr));
            let elastic = f == "completions"
                && new.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed")
                && new.pointer("/spec/completions") == new.pointer("/spec/parallelism")
                && old.pointer("/spec/completions") == old.pointer("/spec/parallelism");
            if a != b && !elastic {
                out.push(immutable(&format!("spec.{f}"), a.unwrap_or(&Value::Null)));
            }
        }
        out.extend(Self::template_update(new, old));
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.successful" => Some(int_at(obj, "/status/succeeded").to_string()),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Status", "string", "Status of the job."),
            Column::new("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
            Column::new("Duration", "string", "Time required to complete the job."),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column::new("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(obj.pointer("/spec/template/spec"));
        vec![
            json!(Self::status_cell(obj)),
            json!(Self::completions_cell(obj)),
            json!(Self::duration_cell(obj)),
            json!(age(obj)),
            json!(containers),
            json!(images),
            json!(selector_cell(obj.pointer("/spec/selector"))),
        ]
    }
}

// ---------------------------------------------------------------------------------
// CronJobs
// ---------------------------------------------------------------------------------

struct CronJobs;

impl CronJobs {
    fn validate_spec(obj: &Value, allow_tz_in_schedule: bool, create: bool) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
        let time_zone = spec.get("timeZone").and_then(Value::as_str);
        if schedule.is_empty() {
            out.push(required("spec.schedule", ""));
        } else {
            if let Err(e) = parse_standard(schedule) {
                out.push(invalid_value("spec.schedule", &json!(schedule), &e));
            }
            if allow_tz_in_schedule && schedule.contains("TZ") && time_zone.is_some() {
                out.push(invalid_value(
                    "spec.schedule",
                    &json!(schedule),
                    "cannot use both timeZone field and TZ or CRON_TZ in schedule",
                ));
            } else if !allow_tz_in_schedule && schedule.contains("TZ") {
                out.push(invalid_value(
                    "spec.schedule",
                    &json!(schedule),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        out.extend(nonnegative(
            &spec,
            "/startingDeadlineSeconds",
            "spec.startingDeadlineSeconds",
        ));
        match spec
            .get("concurrencyPolicy")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "" => out.push(required("spec.concurrencyPolicy", "")),
            "Allow" | "Forbid" | "Replace" => {}
            other => out.push(not_supported(
                "spec.concurrencyPolicy",
                &json!(other),
                &["Allow", "Forbid", "Replace"],
            )),
        }
        let job_spec = spec
            .pointer("/jobTemplate/spec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        out.extend(validate_job_spec(&job_spec, "spec.jobTemplate.spec"));
        if let Some(sel) = job_spec.get("selector").filter(|s| !s.is_null()) {
            out.push(invalid_value(
                "spec.jobTemplate.spec.selector",
                sel,
                "`selector` will be auto-generated",
            ));
        }
        if job_spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
            out.push(not_supported(
                "spec.jobTemplate.spec.manualSelector",
                &json!(true),
                &["nil", "false"],
            ));
        }
        out.extend(nonnegative(
            &spec,
            "/successfulJobsHistoryLimit",
            "spec.successfulJobsHistoryLimit",
        ));
        out.extend(nonnegative(
            &spec,
            "/failedJobsHistoryLimit",
            "spec.failedJobsHistoryLimit",
        ));
        if let Some(tz) = time_zone {
            if let Err(e) = validate_time_zone(tz) {
                out.push(invalid_value("spec.timeZone", &json!(tz), &e));
            }
        }
        // Job names are the cronjob's name plus an 11-character suffix.
        let name = meta::name(obj);
        if create && name.len() > 52 {
            out.push(invalid_value(
                "metadata.name",
                &json!(name),
                "must be no more than 52 characters",
            ));
        }
        out
    }
}

impl Strategy for CronJobs {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::CronJob>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec/schedule", json!(""), true),
                ("/spec/jobTemplate", json!({}), true),
                ("/spec/jobTemplate/spec", json!({}), true),
                ("/spec/jobTemplate/spec/template", json!({}), true),
                ("/spec/jobTemplate/spec/template/spec", json!({}), true),
                (
                    "/spec/jobTemplate/spec/template/spec/containers",
                    json!([]),
                    true,
                ),
            ],
        )
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        default_field(spec, "concurrencyPolicy", json!("Allow"));
        for (f, v) in [
            ("suspend", json!(false)),
            ("successfulJobsHistoryLimit", json!(3)),
            ("failedJobsHistoryLimit", json!(1)),
        ] {
            if spec.get(f).is_none_or(Value::is_null) {
                spec.insert(f.into(), v);
            }
        }
        default_pod_template(obj, &["spec", "jobTemplate", "spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        Self::validate_spec(obj, false, true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        // A TZ in the stored schedule stays allowed; the name length is not rechecked.
        let old_schedule = old
            .pointer("/spec/schedule")
            .and_then(Value::as_str)
            .unwrap_or("");
        Self::validate_spec(new, old_schedule.contains("TZ"), false)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
            Column::new("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
            Column::new("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
            Column::new("Active", "integer", "A list of pointers to currently running jobs."),
            Column::new("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column::new("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) =
            container_cells(obj.pointer("/spec/jobTemplate/spec/template/spec"));
        let last = match obj
            .pointer("/status/lastScheduleTime")
            .and_then(Value::as_str)
        {
            Some(t) => age(&json!({"metadata": {"creationTimestamp": t}})),
            None => "<none>".to_owned(),
        };
        let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let active = obj
            .pointer("/status/active")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        vec![
            json!(obj
                .pointer("/spec/schedule")
                .and_then(Value::as_str)
                .unwrap_or("")),
            json!(obj
                .pointer("/spec/timeZone")
                .and_then(Value::as_str)
                .unwrap_or("<none>")),
            json!(suspend),
            json!(active),
            json!(last),
            json!(age(obj)),
            json!(containers),
            json!(images),
            json!(selector_cell(
                obj.pointer("/spec/jobTemplate/spec/selector")
            )),
        ]
    }
}

// ---------------------------------------------------------------------------------
// Cron schedules and time zones
// ---------------------------------------------------------------------------------

/// A field's bounds and, for months and weekdays, its names.
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `strconv.Atoi` followed by cron's non-negative check.
fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        let digits = expr.strip_prefix(['-', '+']).unwrap_or(expr);
        let why = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: {why}")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        )
    })
}

fn parse_int_or_name(expr: &str, names: &[(&str, u32)]) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

fn check_range(expr: &str, r: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (r.min, r.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], r.names)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], r.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn check_field(field: &str, r: &Bounds) -> Result<(), String> {
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        check_range(expr, r)?;
    }
    Ok(())
}

/// Go's `time.ParseDuration` grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or "0".
fn valid_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let units = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"];
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_len..];
        let Some(unit) = units
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// Checks a schedule as robfig/cron v3's `ParseStandard` does (five fields or a
/// descriptor, an optional `TZ=`/`CRON_TZ=` prefix); the error texts are its own.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec.to_owned();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(space) = spec.find(' ') else {
            return Err(format!(
                "provided bad location {}: unknown time zone {}",
                &spec[eq + 1..],
                &spec[eq + 1..]
            ));
        };
        let loc = &spec[eq + 1..space];
        if let Err(e) = load_location(loc) {
            return Err(format!("provided bad location {loc}: {e}"));
        }
        spec = spec[space..].trim().to_owned();
    }
    if let Some(desc) = spec.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = &spec["@every ".len()..];
                if valid_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {dur:?}"
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    check_field(fields[0], &MINUTES)?;
    check_field(fields[1], &HOURS)?;
    check_field(fields[2], &DOM)?;
    check_field(fields[3], &MONTHS)?;
    check_field(fields[4], &DOW)?;
    Ok(())
}

/// Go's `time.LoadLocation` against the system zone database. Without one on this
/// machine any well-formed name is accepted (kube-apiserver embeds the database).
fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    let root = std::path::Path::new("/usr/share/zoneinfo");
    if !root.is_dir() || root.join(name).is_file() {
        return Ok(());
    }
    Err(format!("unknown time zone {name}"))
}

/// validateTimeZone.
fn validate_time_zone(tz: &str) -> Result<(), String> {
    if tz.is_empty() {
        return Err("timeZone must be nil or non-empty string".into());
    }
    if tz.eq_ignore_ascii_case("local") {
        return Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        );
    }
    load_location(tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_like_robfig_cron() {
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan mon",
            "@hourly",
            "@every 1h30m",
            "0-30/10 9-17 * * 1-5",
            "CRON_TZ=UTC 0 * * * *",
        ] {
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            parse_standard("bad").unwrap_err(),
            "expected exactly 5 fields, found 1: [bad]"
        );
        assert_eq!(
            parse_standard("61 * * * *").unwrap_err(),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            parse_standard("* * * * 7").unwrap_err(),
            "end of range (7) above maximum (6): 7"
        );
        assert_eq!(
            parse_standard("@often").unwrap_err(),
            "unrecognized descriptor: @often"
        );
        assert_eq!(
            parse_standard("x * * * *").unwrap_err(),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse_standard("5-1 * * * *").unwrap_err(),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
    }

    fn job() -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}
        })
    }

    #[test]
    fn jobs_get_generated_selectors_and_labels() {
        let mut j = job();
        Jobs.default(&mut j);
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(j["spec"]["manualSelector"], false);
        Jobs.prepare_for_create(&mut j);
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        let labels = &j["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(
            j["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "pi"
        );
        assert!(Jobs.validate(&j).is_empty(), "{:?}", Jobs.validate(&j));
        let cells = Jobs.cells(&j);
        assert_eq!(cells.len(), Jobs.columns().len());
        assert_eq!(cells[0], "Running");
        assert_eq!(cells[1], "0/1");
    }

    #[test]
    fn job_restart_policy_and_immutability() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        Jobs.default(&mut j);
        Jobs.prepare_for_create(&mut j);
        let causes = Jobs.validate(&j);
        assert!(causes
            .iter()
            .any(|c| c.field == "spec.template.spec.restartPolicy"
                && c.reason == "FieldValueRequired"));
        let mut old = job();
        Jobs.default(&mut old);
        Jobs.prepare_for_create(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
        assert!(Jobs
            .validate_update(&new, &old)
            .iter()
            .any(|c| c.field == "spec.template"));
    }

    #[test]
    fn cronjobs_default_and_validate() {
        let mut c = json!({"metadata": {"name": "tick", "namespace": "default"}, "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}
        }});
        CronJobs.default(&mut c);
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(
            c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(
            CronJobs.validate(&c).is_empty(),
            "{:?}",
            CronJobs.validate(&c)
        );
        c["spec"]["schedule"] = json!("every minute");
        let causes = CronJobs.validate(&c);
        assert_eq!(causes[0].field, "spec.schedule");
        assert!(
            causes[0]
                .message
                .contains("expected exactly 5 fields, found 2"),
            "{}",
            causes[0].message
        );
        c["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        assert!(CronJobs
            .validate(&c)
            .iter()
            .any(|c| c.message.contains("use timeZone field instead")));
        let cells = CronJobs.cells(&c);
        assert_eq!(cells.len(), CronJobs.columns().len());
        assert_eq!(cells[1], "<none>");
        assert_eq!(cells[2], "False");
    }

    #[test]
    fn time_zones() {
        assert!(validate_time_zone("Local").is_err());
        assert!(validate_time_zone("../etc/passwd").is_err());
        assert!(validate_time_zone("UTC").is_ok());
    }
}
