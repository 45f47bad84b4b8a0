//! Generator of `src/apiserver/protobuf/schema.txt`, the Kubernetes protobuf schema
//! table the apiserver's transcoder runs on. Run through `tools/gen-proto-schema`,
//! which hands it the unpacked sources of two published crates: `k8s-pb` (prost types:
//! every message with its field numbers and wire types) and `k8s-openapi` (serde code:
//! the JSON name of every field, and whether it is required). std only, so it builds
//! with a bare `rustc`.
//!
//! Invariant: the table is a pure function of the two crates' sources; every layout
//! the transcoder relies on (the well-known messages, the module → API group rule) is
//! checked here, so an upgrade that breaks an assumption fails generation instead of
//! mis-encoding objects.
//!
//! Usage: `proto_schema <k8s-pb dir> <k8s-openapi dir> > schema.txt` (crate roots).

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn Error>>;

/// The k8s-openapi version module kuberaft enables (feature `v1_33`); names missing
/// there (fields newer than 1.33 that k8s-pb knows) come from the later modules.
const OPENAPI_PRIMARY: &str = "v1_33";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: proto_schema <k8s-pb crate dir> <k8s-openapi crate dir>");
        std::process::exit(2);
    }
    match generate(Path::new(&args[1]), Path::new(&args[2])) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("proto_schema: {e}");
            std::process::exit(1);
        }
    }
}

fn generate(pb_root: &Path, openapi_root: &Path) -> Res<String> {
    let pb_version = crate_version(pb_root)?;
    let openapi_version = crate_version(openapi_root)?;
    let (mut messages, groups) = parse_k8s_pb(&pb_root.join("src"))?;
    let names = OpenApiNames::new(&openapi_root.join("src"))?;
    render(
        &mut messages,
        &groups,
        &names,
        &pb_version,
        &openapi_version,
    )
}

/// `version = "…"` of the crate's Cargo.toml.
fn crate_version(root: &Path) -> Res<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"').to_owned())
        .ok_or_else(|| format!("no version in {}", root.join("Cargo.toml").display()).into())
}

// ---------------------------------------------------------------------------
// k8s-pb: prost messages.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Single,
    Repeated,
    Map,
}

#[derive(Debug)]
struct PbField {
    tag: u32,
    /// prost's snake_case name (`r#` removed).
    rust: String,
    ty: Scalar,
    label: Label,
    /// The referenced message, `module/Name`, for message fields and message-valued maps.
    message: Option<String>,
}

#[derive(Debug)]
struct PbMessage {
    module: String,
    name: String,
    fields: Vec<PbField>,
}

impl PbMessage {
    fn path(&self) -> String {
        format!("{}/{}", self.module, self.name)
    }
}

/// The messages, and the API group of every module that serves one (`api/apps/v1` →
/// `apps`).
fn parse_k8s_pb(src: &Path) -> Res<(Vec<PbMessage>, BTreeMap<String, String>)> {
    let mut files = Vec::new();
    walk(src, &mut files)?;
    files.sort();
    let mut messages = Vec::new();
    let mut resources: Vec<(String, String)> = Vec::new();
    for file in files {
        if file.file_name().and_then(|n| n.to_str()) != Some("mod.rs") {
            continue;
        }
        let module = file
            .parent()
            .and_then(|p| p.strip_prefix(src).ok())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .ok_or("bad k8s-pb path")?;
        if module.contains("testapigroup") {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        parse_module(&module, &text, &mut messages, &mut resources)?;
    }
    // The module → API group rule must agree with every group k8s-pb names.
    for (module, group) in &resources {
        let derived = group_of(module).ok_or_else(|| format!("no API group rule for {module}"))?;
        if &derived != group {
            return Err(
                format!("module {module} is group {group:?}, the rule says {derived:?}").into(),
            );
        }
    }
    let groups = messages
        .iter()
        .filter_map(|m| group_of(&m.module).map(|g| (m.module.clone(), g)))
        .collect();
    Ok((messages, groups))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn parse_module(
    module: &str,
    text: &str,
    messages: &mut Vec<PbMessage>,
    resources: &mut Vec<(String, String)>,
) -> Res<()> {
    let mut lines = text.lines().peekable();
    let mut derive_message = false;
    let mut current: Option<PbMessage> = None;
    let mut resource_group: Option<String> = None;
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("#[derive(") {
            derive_message = t.contains("::prost::Message");
            continue;
        }
        if let Some(rest) = t.strip_prefix("pub struct ") {
            if derive_message {
                let (name, empty) = match rest.strip_suffix("{}") {
                    Some(n) => (n, true),
                    None => (rest.trim_end_matches('{'), false),
                };
                let m = PbMessage {
                    module: module.to_owned(),
                    name: name.trim().to_owned(),
                    fields: Vec::new(),
                };
                if empty {
                    messages.push(m);
                } else {
                    current = Some(m);
                }
            }
            derive_message = false;
            continue;
        }
        if t.starts_with("impl crate::Resource for ") {
            resource_group = Some(String::new());
            continue;
        }
        if let (Some(_), Some(g)) = (
            &resource_group,
            t.strip_prefix("const GROUP: &'static str = \""),
        ) {
            resources.push((module.to_owned(), g.trim_end_matches("\";").to_owned()));
            resource_group = None;
            continue;
        }
        if t == "}" {
            if let Some(m) = current.take() {
                messages.push(m);
            }
            continue;
        }
        let Some(attr) = t
            .strip_prefix("#[prost(")
            .and_then(|a| a.strip_suffix(")]"))
        else {
            continue;
        };
        let Some(msg) = current.as_mut() else {
            return Err(format!("prost attribute outside a message in {module}").into());
        };
        // The field declaration follows, possibly over several lines, up to its comma.
        let mut decl = String::new();
        for l in lines.by_ref() {
            decl.push_str(l.trim());
            if decl.ends_with(',') && depth_balanced(&decl) {
                break;
            }
        }
        let field =
            parse_field(module, attr, &decl).map_err(|e| format!("{module}/{}: {e}", msg.name))?;
        msg.fields.push(field);
    }
    Ok(())
}

fn depth_balanced(s: &str) -> bool {
    s.matches('<').count() == s.matches('>').count()
}

fn parse_field(module: &str, attr: &str, decl: &str) -> Res<PbField> {
    let tag: u32 = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or("no tag")?
        .parse()?;
    let decl = decl.trim_end_matches(',');
    let (name, ty) = decl
        .strip_prefix("pub ")
        .and_then(|d| d.split_once(':'))
        .ok_or_else(|| format!("cannot read field declaration {decl:?}"))?;
    let rust = name.trim().trim_start_matches("r#").to_owned();
    // rustfmt may break a long type over lines, leaving a comma before a closing `>`.
    let ty: String = ty
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace(",>", ">");
    let first = attr.split(',').next().unwrap_or("").trim();
    let (scalar, label) = if let Some(map) = attr.split("map = \"").nth(1) {
        let spec = map.split('"').next().unwrap_or("");
        let (k, v) = spec.split_once(',').ok_or("bad map spec")?;
        if k.trim() != "string" {
            return Err(format!("map key {k} is not a string").into());
        }
        (scalar_of(v.trim())?, Label::Map)
    } else {
        let label = if attr.contains(" repeated") {
            Label::Repeated
        } else {
            Label::Single
        };
        (scalar_of(first)?, label)
    };
    let message = if scalar == Scalar::Message {
        let inner = if label == Label::Map {
            let args = ty
                .split_once("BTreeMap<")
                .map(|(_, r)| r)
                .ok_or("map without BTreeMap")?;
            args.split_once(',')
                .map(|(_, v)| v)
                .ok_or("map without value type")?
                .to_owned()
        } else {
            let mut t = ty.as_str();
            loop {
                let before = t;
                for w in [
                    "::core::option::Option<",
                    "::prost::alloc::vec::Vec<",
                    "::prost::alloc::boxed::Box<",
                ] {
                    t = t.strip_prefix(w).unwrap_or(t);
                }
                if t == before {
                    break;
                }
            }
            t.to_owned()
        };
        Some(resolve(module, inner.trim_end_matches('>'))?)
    } else {
        None
    };
    Ok(PbField {
        tag,
        rust,
        ty: scalar,
        label,
        message,
    })
}

fn scalar_of(s: &str) -> Res<Scalar> {
    Ok(match s {
        "string" => Scalar::String,
        "bytes" | "bytes = \"vec\"" => Scalar::Bytes,
        "bool" => Scalar::Bool,
        "int32" => Scalar::Int32,
        "int64" => Scalar::Int64,
        "double" => Scalar::Double,
        "message" => Scalar::Message,
        other => return Err(format!("unsupported protobuf type {other:?}").into()),
    })
}

/// Resolves a Rust type path used in `module` to `module/Name`.
fn resolve(module: &str, path: &str) -> Res<String> {
    let mut parts: Vec<&str> = module.split('/').collect();
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (name, mods) = segs.split_last().ok_or("empty type path")?;
    let mut mods = mods.iter().peekable();
    if mods.peek() == Some(&&"crate") {
        parts.clear();
        mods.next();
    }
    for m in mods {
        if *m == "super" {
            parts.pop().ok_or("super beyond the crate root")?;
        } else {
            parts.push(m);
        }
    }
    Ok(format!("{}/{name}", parts.join("/")))
}

/// The API group served from a k8s-pb module (`api/apps/v1` → `apps`), None for
/// modules that hold no API group (apimachinery).
fn group_of(module: &str) -> Option<String> {
    let segs: Vec<&str> = module.split('/').collect();
    let short = match segs.as_slice() {
        ["api", short, _version] => *short,
        [_, "pkg", "apis", short, _version] if segs[0] != "apimachinery" => *short,
        _ => return None,
    };
    Some(
        match short {
            "core" => "",
            "apps" | "batch" | "autoscaling" | "policy" | "extensions" => short,
            "rbac" => "rbac.authorization.k8s.io",
            "flowcontrol" => "flowcontrol.apiserver.k8s.io",
            "apiserverinternal" => "internal.apiserver.k8s.io",
            "custom_metrics" => "custom.metrics.k8s.io",
            "external_metrics" => "external.metrics.k8s.io",
            _ => return Some(format!("{short}.k8s.io")),
        }
        .to_owned(),
    )
}

// ---------------------------------------------------------------------------
// k8s-openapi: JSON names.

/// For one k8s-openapi type: JSON name and whether required, by normalized name.
type JsonFields = HashMap<String, (String, bool)>;

/// How a prost field appears in JSON.
enum Naming {
    /// Under this name; required fields keep their zero value when decoded.
    Json(String, bool),
    /// A Go embedded struct (`json:",inline"`): its fields sit in the parent object.
    Inline,
}

struct OpenApiNames {
    /// Version modules (`v1_33`, `v1_34`, …), primary first.
    roots: Vec<PathBuf>,
    /// Every field name of every type in the primary version, by normalized name: the
    /// fallback for messages k8s-openapi has no type for (lists, embedded structs,
    /// option kinds, versions it no longer ships).
    global: HashMap<String, String>,
}

impl OpenApiNames {
    fn new(src: &Path) -> Res<Self> {
        let mut versions: Vec<String> = std::fs::read_dir(src)?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.starts_with("v1_") && src.join(n).is_dir())
            .collect();
        if !versions.iter().any(|v| v == OPENAPI_PRIMARY) {
            return Err(format!("k8s-openapi has no {OPENAPI_PRIMARY}").into());
        }
        versions.sort_by_key(|v| {
            (
                v != OPENAPI_PRIMARY,
                v.trim_start_matches("v1_").parse::<u32>().unwrap_or(0),
            )
        });
        let roots: Vec<PathBuf> = versions.into_iter().map(|v| src.join(v)).collect();
        let mut files = Vec::new();
        walk(&roots[0], &mut files)?;
        files.sort();
        let mut global = HashMap::new();
        for f in files {
            if f.file_name().and_then(|n| n.to_str()) == Some("mod.rs") {
                continue;
            }
            for (norm, (json, _)) in parse_openapi_type(&std::fs::read_to_string(&f)?) {
                global.entry(norm).or_insert(json);
            }
        }
        Ok(OpenApiNames { roots, global })
    }

    /// The JSON fields of the k8s-openapi type for message `module/Name`: the union over
    /// every version of that module, else over the other versions of its API group
    /// (k8s-pb still ships versions k8s-openapi dropped). None when no type matches.
    /// The flag says whether the type came from the message's own module.
    fn counterpart(&self, module: &str, name: &str) -> Res<Option<(JsonFields, bool)>> {
        let want = format!("{}.rs", normalize(name));
        let mut found: Option<JsonFields> = None;
        let group_dir = module.rsplit_once('/').map_or(module, |(g, _)| g);
        for exact in [true, false] {
            for root in &self.roots {
                let dirs: Vec<PathBuf> = if exact {
                    vec![root.join(module)]
                } else {
                    std::fs::read_dir(root.join(group_dir))
                        .map(|rd| {
                            rd.flatten()
                                .map(|e| e.path())
                                .filter(|p| p.is_dir())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                for dir in dirs {
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        let fname = e.file_name().to_string_lossy().into_owned();
                        if fname
                            .strip_suffix(".rs")
                            .map(|n| format!("{}.rs", normalize(n)))
                            == Some(want.clone())
                        {
                            let fields = parse_openapi_type(&std::fs::read_to_string(e.path())?);
                            let acc = found.get_or_insert_with(JsonFields::new);
                            for (k, v) in fields {
                                acc.entry(k).or_insert(v);
                            }
                        }
                    }
                }
            }
            if let Some(f) = found {
                return Ok(Some((f, exact)));
            }
        }
        Ok(None)
    }

    /// How field `f` of a message whose k8s-openapi counterpart is `counterpart` appears
    /// in JSON. `target_fields` are the prost names of the fields of the message `f`
    /// refers to: a message field the counterpart lacks is an embedded struct when the
    /// counterpart has one of those fields (all of them when the counterpart is the
    /// type of another version of the group, whose fields may differ).
    fn naming(
        &self,
        counterpart: Option<&(JsonFields, bool)>,
        f: &PbField,
        target_fields: &[String],
    ) -> Naming {
        let norm = normalize(&f.rust);
        if let Some((fields, exact)) = counterpart {
            if let Some((json, required)) = fields.get(&norm) {
                return Naming::Json(json.clone(), *required);
            }
            if f.ty == Scalar::Message
                && f.label == Label::Single
                && !target_fields.is_empty()
                && if *exact {
                    target_fields
                        .iter()
                        .any(|t| fields.contains_key(&normalize(t)))
                } else {
                    target_fields
                        .iter()
                        .all(|t| fields.contains_key(&normalize(t)))
                }
            {
                return Naming::Inline;
            }
        }
        match self.global.get(&norm) {
            Some(json) => Naming::Json(json.clone(), false),
            None => Naming::Json(camel(&f.rust), false),
        }
    }
}

/// Lowercase alphanumerics only: `volume_id`, `volumeID` and `VolumeId` all become
/// `volumeid`; `pod_i_ps` and `podIPs` become `podips`; `$ref` becomes `ref`.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn parse_openapi_type(text: &str) -> JsonFields {
    // Rust field name → required (its type is not an Option).
    let mut required: HashMap<String, bool> = HashMap::new();
    let mut in_struct = false;
    for line in text.lines() {
        if line.starts_with("pub struct ") && line.ends_with('{') {
            in_struct = true;
            continue;
        }
        if in_struct {
            if line.starts_with('}') {
                in_struct = false;
                continue;
            }
            if let Some((name, ty)) = line
                .trim()
                .strip_prefix("pub ")
                .and_then(|l| l.split_once(':'))
            {
                required.insert(name.trim().to_owned(), !ty.trim().starts_with("Option<"));
            }
        }
    }
    let mut out = JsonFields::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some((json, rest)) = t
            .strip_prefix('"')
            .and_then(|l| l.split_once("\" => Field::Key_"))
        {
            let rust = rest.trim_end_matches(',');
            let req = required.get(rust).copied().unwrap_or(false);
            out.insert(normalize(json), (json.to_owned(), req));
        }
    }
    out
}

/// lowerCamelCase from prost's snake_case, for fields k8s-openapi does not know
/// (acronyms come out as `volumeId`; only messages outside every k8s-openapi version).
fn camel(rust: &str) -> String {
    let mut out = String::new();
    for (i, part) in rust.split('_').enumerate() {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            if i == 0 {
                out.push(c);
            } else {
                out.push(c.to_ascii_uppercase());
            }
            out.extend(cs);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Output.

/// Messages whose JSON form is not an object of their fields, by path, with the
/// fields (tag, type, label) the transcoder expects them to have.
const SPECIAL: &[(&str, &str, &[(u32, Scalar, Label)])] = &[
    (
        "apimachinery/pkg/apis/meta/v1/Time",
        "Time",
        &[
            (1, Scalar::Int64, Label::Single),
            (2, Scalar::Int32, Label::Single),
        ],
    ),
    (
        "apimachinery/pkg/apis/meta/v1/MicroTime",
        "MicroTime",
        &[
            (1, Scalar::Int64, Label::Single),
            (2, Scalar::Int32, Label::Single),
        ],
    ),
    (
        "apimachinery/pkg/apis/meta/v1/Duration",
        "Duration",
        &[(1, Scalar::Int64, Label::Single)],
    ),
    (
        "apimachinery/pkg/api/resource/Quantity",
        "Quantity",
        &[(1, Scalar::String, Label::Single)],
    ),
    (
        "apimachinery/pkg/util/intstr/IntOrString",
        "IntOrString",
        &[
            (1, Scalar::Int64, Label::Single),
            (2, Scalar::Int32, Label::Single),
            (3, Scalar::String, Label::Single),
        ],
    ),
    (
        "apimachinery/pkg/runtime/RawExtension",
        "RawJson",
        &[(1, Scalar::Bytes, Label::Single)],
    ),
    (
        "apimachinery/pkg/apis/meta/v1/FieldsV1",
        "RawJson",
        &[(1, Scalar::Bytes, Label::Single)],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1/Json",
        "RawJson",
        &[(1, Scalar::Bytes, Label::Single)],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1beta1/Json",
        "RawJson",
        &[(1, Scalar::Bytes, Label::Single)],
    ),
    (
        "apimachinery/pkg/apis/meta/v1/Verbs",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/authentication/v1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/authentication/v1beta1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/authorization/v1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/authorization/v1beta1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/certificates/v1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "api/certificates/v1beta1/ExtraValue",
        "StringList",
        &[(1, Scalar::String, Label::Repeated)],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrArray",
        "SchemaOrArray",
        &[
            (1, Scalar::Message, Label::Single),
            (2, Scalar::Message, Label::Repeated),
        ],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1beta1/JsonSchemaPropsOrArray",
        "SchemaOrArray",
        &[
            (1, Scalar::Message, Label::Single),
            (2, Scalar::Message, Label::Repeated),
        ],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrBool",
        "SchemaOrBool",
        &[
            (1, Scalar::Bool, Label::Single),
            (2, Scalar::Message, Label::Single),
        ],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1beta1/JsonSchemaPropsOrBool",
        "SchemaOrBool",
        &[
            (1, Scalar::Bool, Label::Single),
            (2, Scalar::Message, Label::Single),
        ],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaPropsOrStringArray",
        "SchemaOrStringArray",
        &[
            (1, Scalar::Message, Label::Single),
            (2, Scalar::String, Label::Repeated),
        ],
    ),
    (
        "apiextensions_apiserver/pkg/apis/apiextensions/v1beta1/JsonSchemaPropsOrStringArray",
        "SchemaOrStringArray",
        &[
            (1, Scalar::Message, Label::Single),
            (2, Scalar::String, Label::Repeated),
        ],
    ),
];

fn render(
    messages: &mut [PbMessage],
    groups: &BTreeMap<String, String>,
    names: &OpenApiNames,
    pb_version: &str,
    openapi_version: &str,
) -> Res<String> {
    messages.sort_by_key(|m| m.path());
    let index: BTreeMap<String, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path(), i))
        .collect();
    if index.len() != messages.len() {
        return Err("duplicate message paths in k8s-pb".into());
    }
    for (path, _, fields) in SPECIAL {
        let i = index
            .get(*path)
            .ok_or_else(|| format!("k8s-pb lacks {path}"))?;
        let got: Vec<(u32, Scalar, Label)> = messages[*i]
            .fields
            .iter()
            .map(|f| (f.tag, f.ty, f.label))
            .collect();
        if got != *fields {
            return Err(format!("{path} has fields {got:?}, expected {fields:?}").into());
        }
    }
    for path in WELL_KNOWN {
        index
            .get(*path)
            .ok_or_else(|| format!("k8s-pb lacks {path}"))?;
    }
    let counterparts = messages
        .iter()
        .map(|m| names.counterpart(&m.module, &m.name))
        .collect::<Res<Vec<_>>>()?;
    let field_names: Vec<Vec<String>> = messages
        .iter()
        .map(|m| m.fields.iter().map(|f| f.rust.clone()).collect())
        .collect();
    let mut s = String::new();
    writeln!(
        s,
        "# The Kubernetes protobuf schema for src/apiserver/protobuf: generated by"
    )?;
    writeln!(
        s,
        "# tools/gen-proto-schema from the crates named below. Do not edit."
    )?;
    writeln!(
        s,
        "# group <module> <API group>: the API group whose kinds are the module's messages."
    )?;
    writeln!(
        s,
        "# message <module>/<Name> [<special JSON form>], then its fields, by tag:"
    )?;
    writeln!(
        s,
        "#   <tag> <JSON name> one|rep|map|inline <type> [required]"
    )?;
    writeln!(
        s,
        "# with <type> a scalar, or a message (its bare name when in the same module)."
    )?;
    writeln!(s, "crate k8s-pb {pb_version}")?;
    writeln!(s, "crate k8s-openapi {openapi_version}")?;
    for (module, group) in groups {
        writeln!(
            s,
            "group {module} {}",
            if group.is_empty() { "core" } else { group }
        )?;
    }
    for (mi, m) in messages.iter_mut().enumerate() {
        m.fields.sort_by_key(|f| f.tag);
        match SPECIAL.iter().find(|(p, _, _)| *p == m.path()) {
            Some((_, special, _)) => writeln!(s, "message {} {special}", m.path())?,
            None => writeln!(s, "message {}", m.path())?,
        }
        for f in &m.fields {
            let target = f
                .message
                .as_deref()
                .and_then(|t| index.get(t))
                .map_or(&[][..], |i| &field_names[*i][..]);
            let (json, required, label) = match names.naming(counterparts[mi].as_ref(), f, target) {
                Naming::Inline => ("-".to_owned(), false, "inline"),
                Naming::Json(json, required) => (
                    json,
                    required,
                    match f.label {
                        Label::Single => "one",
                        Label::Repeated => "rep",
                        Label::Map => "map",
                    },
                ),
            };
            if json.is_empty() || json.contains(char::is_whitespace) {
                return Err(format!("{}.{}: unusable JSON name {json:?}", m.path(), f.rust).into());
            }
            let ty = match f.ty {
                Scalar::String => "string".to_owned(),
                Scalar::Bytes => "bytes".to_owned(),
                Scalar::Bool => "bool".to_owned(),
                Scalar::Int32 => "int32".to_owned(),
                Scalar::Int64 => "int64".to_owned(),
                Scalar::Double => "double".to_owned(),
                Scalar::Message => {
                    let target = f.message.as_deref().unwrap_or("");
                    if !index.contains_key(target) {
                        return Err(
                            format!("{}.{} refers to unknown {target}", m.path(), f.rust).into(),
                        );
                    }
                    match target.rsplit_once('/') {
                        Some((module, name)) if module == m.module => name.to_owned(),
                        _ => target.to_owned(),
                    }
                }
            };
            let req = if required { " required" } else { "" };
            writeln!(s, "{} {json} {label} {ty}{req}", f.tag)?;
        }
    }
    Ok(s)
}

/// The envelope and watch messages the transcoder addresses by path.
const WELL_KNOWN: &[&str] = &[
    "apimachinery/pkg/runtime/Unknown",
    "apimachinery/pkg/runtime/TypeMeta",
    "apimachinery/pkg/apis/meta/v1/WatchEvent",
    "apimachinery/pkg/apis/meta/v1/Status",
];
