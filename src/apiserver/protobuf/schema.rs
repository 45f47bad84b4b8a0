//! The schema table: every Kubernetes protobuf message with its fields (number, wire
//! type, JSON name, label), loaded once from the committed `schema.txt` that
//! `tools/gen-proto-schema` derives from the k8s-pb and k8s-openapi crates, joined with
//! `zero_omitted.txt` (which Go fields leave their zero value out of JSON) that
//! `tools/gen-zero-omitted` derives from the Go API types.
//!
//! Invariant: after `schema()` succeeds every message reference resolves (a field's
//! `Ty::Message` index is in range), fields are sorted by tag, and every
//! (apiVersion, kind) names exactly one message.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::Error;

/// A field's protobuf type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// Index into `Schema::messages`.
    Message(u16),
}

/// How a field repeats, and where its JSON goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    One,
    Repeated,
    /// `map<string, ty>`: entries are messages {key = 1; value = 2}.
    Map,
    /// A Go embedded struct: a message field whose fields sit in the parent's JSON object.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// {int64 seconds = 1; int32 nanos = 2}; JSON RFC 3339 in seconds.
    Time,
    /// Like Time; JSON RFC 3339 with microseconds.
    MicroTime,
    /// {int64 duration = 1} in nanoseconds; JSON Go duration ("1m30s").
    Duration,
    /// {string string = 1}; JSON string.
    Quantity,
    /// {int64 type = 1; int32 intVal = 2; string strVal = 3}; JSON number or string.
    IntOrString,
    /// {bytes raw = 1} holding JSON (RawExtension, FieldsV1, apiextensions JSON); JSON:
    /// the embedded value.
    RawJson,
    /// {repeated string items = 1}; JSON array of strings.
    StringList,
    /// JSONSchemaPropsOrArray {schema = 1; repeated jSONSchemas = 2}; JSON object or array.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool {bool allows = 1; schema = 2}; JSON bool or object.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray {schema = 1; repeated string property = 2}.
    SchemaOrStringArray,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub label: Label,
    /// Required in the OpenAPI schema.
    pub required: bool,
    /// A plain (non-pointer) Go scalar tagged `omitempty`: its zero value means unset.
    pub zero_omitted: bool,
}

#[derive(Debug)]
pub struct Message {
    /// `api/core/v1/Pod`: the k8s-pb module path and the message name.
    pub path: &'static str,
    pub special: Special,
    /// Sorted by tag.
    pub fields: Vec<Field>,
    /// `zero_omitted.txt` lists the Go struct, so `Field::zero_omitted` is known.
    pub go_known: bool,
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

pub struct Schema {
    pub messages: Vec<Message>,
    /// apiVersion → kind → message.
    kinds: HashMap<String, HashMap<&'static str, u16>>,
    by_path: HashMap<&'static str, u16>,
    pub watch_event: u16,
    /// The crate versions the table was generated from ("k8s-openapi 0.29.0").
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the staleness test"))]
    pub sources: Vec<&'static str>,
}

/// Kinds that every API group version serves from meta.k8s.io/v1 (upstream's
/// `metav1.AddToGroupVersion` and the unversioned Status).
const META_KINDS: &[&str] = &[
    "Status",
    "WatchEvent",
    "ListOptions",
    "GetOptions",
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
];

const META_V1: &str = "apimachinery/pkg/apis/meta/v1";

static SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    let mut s = Schema::parse(include_str!("schema.txt"))?;
    s.add_zero_omitted(include_str!("zero_omitted.txt"));
    Ok(s)
});

/// The schema table.
pub fn schema() -> Result<&'static Schema, Error> {
    SCHEMA.as_ref().map_err(|e| Error::Schema(e.clone()))
}

impl Schema {
    /// The message of a kind, as the envelope names it.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<u16> {
        if let Some(i) = self.kinds.get(api_version).and_then(|k| k.get(kind)) {
            return Some(*i);
        }
        if META_KINDS.contains(&kind) {
            return self
                .by_path
                .get(format!("{META_V1}/{kind}").as_str())
                .copied();
        }
        None
    }

    pub fn message(&self, i: u16) -> &Message {
        &self.messages[usize::from(i)]
    }

    pub fn by_path(&self, path: &str) -> Option<u16> {
        self.by_path.get(path).copied()
    }

    /// Marks the fields of `zero_omitted.txt` (`<module>/<Go struct> <JSON name>...`);
    /// Go struct names match message names case-insensitively (`AWSElastic…` is
    /// `AwsElastic…`). Structs without a message (no protobuf form) are skipped.
    fn add_zero_omitted(&mut self, text: &str) {
        let by_lower: HashMap<String, u16> = self
            .by_path
            .iter()
            .map(|(p, i)| (p.to_ascii_lowercase(), *i))
            .collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.split(' ');
            let Some(&i) = words
                .next()
                .and_then(|p| by_lower.get(&p.to_ascii_lowercase()))
            else {
                continue;
            };
            let m = &mut self.messages[usize::from(i)];
            m.go_known = true;
            for name in words {
                if let Some(f) = m.fields.iter_mut().find(|f| f.json == name) {
                    f.zero_omitted = true;
                }
            }
        }
    }

    fn parse(text: &'static str) -> Result<Schema, String> {
        struct Pending {
            path: &'static str,
            special: Special,
            fields: Vec<(u32, &'static str, &'static str, &'static str, bool)>,
        }
        let mut pending: Vec<Pending> = Vec::new();
        let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
        let mut sources = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || format!("schema.txt line {}: cannot read {line:?}", n + 1);
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let words: Vec<&'static str> = line.split(' ').collect();
            match words.as_slice() {
                ["crate", _, _] => sources.push(line.strip_prefix("crate ").unwrap_or(line)),
                ["group", module, group] => groups.push((module, group)),
                ["message", path] | ["message", path, _] => pending.push(Pending {
                    path,
                    special: match words.get(2).copied() {
                        None => Special::None,
                        Some("Time") => Special::Time,
                        Some("MicroTime") => Special::MicroTime,
                        Some("Duration") => Special::Duration,
                        Some("Quantity") => Special::Quantity,
                        Some("IntOrString") => Special::IntOrString,
                        Some("RawJson") => Special::RawJson,
                        Some("StringList") => Special::StringList,
                        Some("SchemaOrArray") => Special::SchemaOrArray,
                        Some("SchemaOrBool") => Special::SchemaOrBool,
                        Some("SchemaOrStringArray") => Special::SchemaOrStringArray,
                        Some(_) => return Err(bad()),
                    },
                    fields: Vec::new(),
                }),
                [tag, json, label, ty, rest @ ..] => {
                    let tag: u32 = tag.parse().map_err(|_| bad())?;
                    let required = match rest {
                        [] => false,
                        ["required"] => true,
                        _ => return Err(bad()),
                    };
                    pending
                        .last_mut()
                        .ok_or_else(bad)?
                        .fields
                        .push((tag, json, label, ty, required));
                }
                _ => return Err(bad()),
            }
        }
        let by_path: HashMap<&'static str, u16> = pending
            .iter()
            .enumerate()
            .map(|(i, p)| u16::try_from(i).map(|i| (p.path, i)))
            .collect::<Result<_, _>>()
            .map_err(|_| "schema.txt: too many messages".to_owned())?;
        let mut messages = Vec::with_capacity(pending.len());
        for p in &pending {
            let module = p.path.rsplit_once('/').map_or("", |(m, _)| m);
            let mut fields = Vec::with_capacity(p.fields.len());
            for &(tag, json, label, ty, required) in &p.fields {
                let ty = match ty {
                    "string" => Ty::String,
                    "bytes" => Ty::Bytes,
                    "bool" => Ty::Bool,
                    "int32" => Ty::Int32,
                    "int64" => Ty::Int64,
                    "double" => Ty::Double,
                    name => {
                        let path = if name.contains('/') {
                            name.to_owned()
                        } else {
                            format!("{module}/{name}")
                        };
                        Ty::Message(*by_path.get(path.as_str()).ok_or_else(|| {
                            format!("schema.txt: {} refers to unknown {path}", p.path)
                        })?)
                    }
                };
                let label = match label {
                    "one" => Label::One,
                    "rep" => Label::Repeated,
                    "map" => Label::Map,
                    "inline" if matches!(ty, Ty::Message(_)) => Label::Inline,
                    _ => return Err(format!("schema.txt: {}: bad label {label}", p.path)),
                };
                fields.push(Field {
                    tag,
                    json,
                    ty,
                    label,
                    required,
                    zero_omitted: false,
                });
            }
            fields.sort_by_key(|f| f.tag);
            messages.push(Message {
                path: p.path,
                special: p.special,
                fields,
                go_known: false,
            });
        }
        let mut kinds: HashMap<String, HashMap<&'static str, u16>> = HashMap::new();
        for (module, group) in groups {
            let version = module.rsplit('/').next().unwrap_or("");
            let api_version = if group == "core" {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            };
            let prefix = format!("{module}/");
            for (i, m) in messages.iter().enumerate() {
                if let Some(name) = m.path.strip_prefix(prefix.as_str()) {
                    if !name.contains('/') {
                        kinds
                            .entry(api_version.clone())
                            .or_default()
                            .insert(name, i as u16);
                    }
                }
            }
        }
        let need = |path: &str| {
            by_path
                .get(path)
                .copied()
                .ok_or_else(|| format!("schema.txt lacks {path}"))
        };
        Ok(Schema {
            watch_event: need("apimachinery/pkg/apis/meta/v1/WatchEvent")?,
            messages,
            kinds,
            by_path,
            sources,
        })
    }
}
