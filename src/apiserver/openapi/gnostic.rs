//! The Swagger 2.0 document in its protobuf form: the `openapi.v2.Document` message
//! that client-go's discovery client and kubectl ask for (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) when they load the
//! v2 schema, for example to validate a `kind: List` or a review object.
//!
//! Invariant: every field is written under the number the published `openapi.v2`
//! wire format gives it, so a generated Go decoder reads exactly what the JSON form
//! says; values the message types hold only as text (defaults, enums, examples,
//! `x-` extensions) are written as their JSON text, which is valid YAML, in the
//! `Any.yaml` field, as the reference encoder does. Keys the message has no field
//! for (`oneOf`) are left out, as they are from upstream's v2 document.

use prost::encoding::{encode_key, encode_varint, WireType};
use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 document given as JSON.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    m.string(1, str_at(doc, "swagger"));
    if let Some(info) = doc.get("info") {
        m.message(2, &info_msg(info));
    }
    m.string(3, str_at(doc, "host"));
    m.string(4, str_at(doc, "basePath"));
    m.strings(5, doc.get("schemes"));
    m.strings(6, doc.get("consumes"));
    m.strings(7, doc.get("produces"));
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, item) in paths {
            if let Some(ext) = vendor(name, item) {
                p.message(1, &ext);
            } else {
                p.message(2, &named(name, &path_item(item)));
            }
        }
        m.message(8, &p);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, schema) in defs {
            d.message(1, &named(name, &schema_msg(schema)));
        }
        m.message(9, &d);
    }
    for req in array(doc, "security") {
        m.message(12, &security_requirement(req));
    }
    if let Some(defs) = doc.get("securityDefinitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, def) in defs {
            d.message(1, &named(name, &security_definition(def)));
        }
        m.message(13, &d);
    }
    for tag in array(doc, "tags") {
        let mut t = Msg::default();
        t.string(1, str_at(tag, "name"));
        t.string(2, str_at(tag, "description"));
        t.extensions(4, tag);
        m.message(14, &t);
    }
    m.extensions(16, doc);
    m.buf
}

fn info_msg(info: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, str_at(info, "title"));
    m.string(2, str_at(info, "version"));
    m.string(3, str_at(info, "description"));
    m.string(4, str_at(info, "termsOfService"));
    m.extensions(7, info);
    m
}

fn path_item(item: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, str_at(item, "$ref"));
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(verb) {
            m.message(field, &operation(op));
        }
    }
    for p in array(item, "parameters") {
        m.message(9, &parameters_item(p));
    }
    m.extensions(10, item);
    m
}

fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    m.strings(1, op.get("tags"));
    m.string(2, str_at(op, "summary"));
    m.string(3, str_at(op, "description"));
    m.string(5, str_at(op, "operationId"));
    m.strings(6, op.get("produces"));
    m.strings(7, op.get("consumes"));
    for p in array(op, "parameters") {
        m.message(8, &parameters_item(p));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        let mut r = Msg::default();
        for (code, resp) in responses {
            if let Some(ext) = vendor(code, resp) {
                r.message(2, &ext);
                continue;
            }
            let mut value = Msg::default();
            match resp.get("$ref").and_then(Value::as_str) {
                Some(reference) => value.message(2, &json_reference(reference, resp)),
                None => value.message(1, &response(resp)),
            }
            r.message(1, &named(code, &value));
        }
        m.message(9, &r);
    }
    m.strings(10, op.get("schemes"));
    m.bool(11, bool_at(op, "deprecated"));
    for req in array(op, "security") {
        m.message(12, &security_requirement(req));
    }
    m.extensions(13, op);
    m
}

fn response(resp: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, str_at(resp, "description"));
    if let Some(schema) = resp.get("schema") {
        let mut item = Msg::default();
        item.message(1, &schema_msg(schema));
        m.message(2, &item);
    }
    m.extensions(5, resp);
    m
}

fn json_reference(reference: &str, v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, reference);
    m.string(2, str_at(v, "description"));
    m
}

/// `ParametersItem`: a reference, a body parameter, or one of the four non-body
/// kinds (each a oneof level of its own).
fn parameters_item(p: &Value) -> Msg {
    let mut item = Msg::default();
    if let Some(reference) = p.get("$ref").and_then(Value::as_str) {
        item.message(2, &json_reference(reference, p));
        return item;
    }
    let mut parameter = Msg::default();
    let location = str_at(p, "in");
    if location == "body" {
        let mut b = Msg::default();
        b.string(1, str_at(p, "description"));
        b.string(2, str_at(p, "name"));
        b.string(3, location);
        b.bool(4, bool_at(p, "required"));
        if let Some(schema) = p.get("schema") {
            b.message(5, &schema_msg(schema));
        }
        b.extensions(6, p);
        parameter.message(1, &b);
    } else {
        // Query and formData carry allowEmptyValue at 5 and their primitive fields
        // from 6; path and header have no allowEmptyValue and start at 5.
        let (kind, first) = match location {
            "header" => (1, 5),
            "formData" => (2, 6),
            "path" => (4, 5),
            _ => (3, 6),
        };
        let mut s = Msg::default();
        s.bool(1, bool_at(p, "required"));
        s.string(2, location);
        s.string(3, str_at(p, "description"));
        s.string(4, str_at(p, "name"));
        if first == 6 {
            s.bool(5, bool_at(p, "allowEmptyValue"));
        }
        primitive_fields(&mut s, first, p);
        let mut non_body = Msg::default();
        non_body.message(kind, &s);
        parameter.message(2, &non_body);
    }
    item.message(1, &parameter);
    item
}

/// The run of fields parameters and `PrimitivesItems` share, in this order from
/// `first`: type, format, items, collectionFormat, default, maximum,
/// exclusiveMaximum, minimum, exclusiveMinimum, maxLength, minLength, pattern,
/// maxItems, minItems, uniqueItems, enum, multipleOf, vendor extensions.
fn primitive_fields(m: &mut Msg, first: u32, v: &Value) {
    let f = |i: u32| first + i;
    m.string(f(0), str_at(v, "type"));
    m.string(f(1), str_at(v, "format"));
    if let Some(items) = v.get("items") {
        let mut it = Msg::default();
        primitive_fields(&mut it, 1, items);
        m.message(f(2), &it);
    }
    m.string(f(3), str_at(v, "collectionFormat"));
    if let Some(d) = v.get("default") {
        m.message(f(4), &any(d));
    }
    m.double(f(5), v.get("maximum"));
    m.bool(f(6), bool_at(v, "exclusiveMaximum"));
    m.double(f(7), v.get("minimum"));
    m.bool(f(8), bool_at(v, "exclusiveMinimum"));
    m.int64(f(9), v.get("maxLength"));
    m.int64(f(10), v.get("minLength"));
    m.string(f(11), str_at(v, "pattern"));
    m.int64(f(12), v.get("maxItems"));
    m.int64(f(13), v.get("minItems"));
    m.bool(f(14), bool_at(v, "uniqueItems"));
    for e in array(v, "enum") {
        m.message(f(15), &any(e));
    }
    m.double(f(16), v.get("multipleOf"));
    m.extensions(f(17), v);
}

fn schema_msg(s: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, str_at(s, "$ref"));
    m.string(2, str_at(s, "format"));
    m.string(3, str_at(s, "title"));
    m.string(4, str_at(s, "description"));
    if let Some(d) = s.get("default") {
        m.message(5, &any(d));
    }
    m.double(6, s.get("multipleOf"));
    m.double(7, s.get("maximum"));
    m.bool(8, bool_at(s, "exclusiveMaximum"));
    m.double(9, s.get("minimum"));
    m.bool(10, bool_at(s, "exclusiveMinimum"));
    m.int64(11, s.get("maxLength"));
    m.int64(12, s.get("minLength"));
    m.string(13, str_at(s, "pattern"));
    m.int64(14, s.get("maxItems"));
    m.int64(15, s.get("minItems"));
    m.bool(16, bool_at(s, "uniqueItems"));
    m.int64(17, s.get("maxProperties"));
    m.int64(18, s.get("minProperties"));
    m.strings(19, s.get("required"));
    for e in array(s, "enum") {
        m.message(20, &any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.bool_always(2, *b);
            m.message(21, &a);
        }
        Some(schema @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.message(1, &schema_msg(schema));
            m.message(21, &a);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.string(1, t);
            m.message(22, &t_msg);
        }
        Some(types @ Value::Array(_)) => {
            let mut t_msg = Msg::default();
            t_msg.strings(1, Some(types));
            m.message(22, &t_msg);
        }
        _ => {}
    }
    match s.get("items") {
        Some(Value::Array(list)) => {
            let mut items = Msg::default();
            for i in list {
                items.message(1, &schema_msg(i));
            }
            m.message(23, &items);
        }
        Some(one @ Value::Object(_)) => {
            let mut items = Msg::default();
            items.message(1, &schema_msg(one));
            m.message(23, &items);
        }
        _ => {}
    }
    for a in array(s, "allOf") {
        m.message(24, &schema_msg(a));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, schema) in props {
            p.message(1, &named(name, &schema_msg(schema)));
        }
        m.message(25, &p);
    }
    m.string(26, str_at(s, "discriminator"));
    m.bool(27, bool_at(s, "readOnly"));
    if let Some(e) = s.get("example") {
        m.message(30, &any(e));
    }
    m.extensions(31, s);
    m
}

fn security_requirement(req: &Value) -> Msg {
    let mut m = Msg::default();
    for (name, scopes) in req.as_object().into_iter().flatten() {
        let mut array = Msg::default();
        array.strings(1, Some(scopes));
        m.message(1, &named(name, &array));
    }
    m
}

/// `SecurityDefinitionsItem`: basic (1) or apiKey (2); the OAuth2 flows are not
/// served by this API.
fn security_definition(def: &Value) -> Msg {
    let mut item = Msg::default();
    let mut d = Msg::default();
    match str_at(def, "type") {
        "basic" => {
            d.string(1, "basic");
            d.string(2, str_at(def, "description"));
            d.extensions(3, def);
            item.message(1, &d);
        }
        t => {
            d.string(1, t);
            d.string(2, str_at(def, "name"));
            d.string(3, str_at(def, "in"));
            d.string(4, str_at(def, "description"));
            d.extensions(5, def);
            item.message(2, &d);
        }
    }
    item
}

/// `Any` holding `v` as YAML text (its JSON form).
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string_always(2, &format!("{v}\n"));
    m
}

/// A `Named*` pair: name 1, value 2.
fn named(name: &str, value: &Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

/// A `NamedAny` for an `x-` key of a map whose other keys are entries.
fn vendor(key: &str, value: &Value) -> Option<Msg> {
    key.starts_with("x-").then(|| named(key, &any(value)))
}

/// The elements of the array at `key` (none when absent or not an array).
fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn bool_at(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// One message being written; proto3 scalars at their default are left out.
#[derive(Default)]
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn string(&mut self, field: u32, v: &str) {
        if !v.is_empty() {
            self.string_always(field, v);
        }
    }

    fn string_always(&mut self, field: u32, v: &str) {
        encode_key(field, WireType::LengthDelimited, &mut self.buf);
        encode_varint(v.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(v.as_bytes());
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.string_always(field, s);
        }
    }

    fn bool(&mut self, field: u32, v: bool) {
        if v {
            self.bool_always(field, v);
        }
    }

    fn bool_always(&mut self, field: u32, v: bool) {
        encode_key(field, WireType::Varint, &mut self.buf);
        encode_varint(u64::from(v), &mut self.buf);
    }

    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_i64).filter(|n| *n != 0) {
            encode_key(field, WireType::Varint, &mut self.buf);
            encode_varint(n as u64, &mut self.buf);
        }
    }

    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_f64).filter(|n| *n != 0.0) {
            encode_key(field, WireType::SixtyFourBit, &mut self.buf);
            self.buf.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// A present sub-message (written even when empty: presence is meaningful).
    fn message(&mut self, field: u32, m: &Msg) {
        encode_key(field, WireType::LengthDelimited, &mut self.buf);
        encode_varint(m.buf.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(&m.buf);
    }

    /// Every `x-` key of `v` as a `NamedAny` under `field`.
    fn extensions(&mut self, field: u32, v: &Value) {
        let empty = Map::new();
        for (key, value) in v.as_object().unwrap_or(&empty) {
            if let Some(ext) = vendor(key, value) {
                self.message(field, &ext);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::encoding::{decode_key, decode_varint};

    /// Splits one message into (field, wire type, payload) triples.
    fn fields(mut buf: &[u8]) -> Vec<(u32, WireType, Vec<u8>)> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (field, wire) = decode_key(&mut buf).expect("key");
            let payload = match wire {
                WireType::Varint => {
                    decode_varint(&mut buf).expect("varint").to_le_bytes()[..1].to_vec()
                }
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut buf).expect("len") as usize;
                    let (p, rest) = buf.split_at(len);
                    buf = rest;
                    p.to_vec()
                }
                WireType::SixtyFourBit => {
                    let (p, rest) = buf.split_at(8);
                    buf = rest;
                    p.to_vec()
                }
                other => panic!("unexpected wire type {other:?}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    fn field(buf: &[u8], n: u32) -> Vec<Vec<u8>> {
        fields(buf)
            .into_iter()
            .filter(|(f, _, _)| *f == n)
            .map(|(_, _, p)| p)
            .collect()
    }

    #[test]
    fn document_fields_carry_their_wire_numbers() {
        let doc = serde_json::json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/namespaces/{name}": {
                "parameters": [{"name": "name", "in": "path", "type": "string", "uniqueItems": true, "required": true}],
                "get": {"operationId": "readCoreV1Namespace", "x-kubernetes-action": "get",
                        "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Namespace"}}}}
            }},
            "definitions": {"io.k8s.api.core.v1.Namespace": {
                "type": "object",
                "required": ["metadata"],
                "properties": {"spec": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Namespace", "version": "v1"}]
            }},
            "security": [{"BearerToken": []}],
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}}
        });
        let buf = encode_document(&doc);
        assert_eq!(field(&buf, 1), vec![b"2.0".to_vec()]);
        let info = &field(&buf, 2)[0];
        assert_eq!(field(info, 1), vec![b"Kubernetes".to_vec()]);
        assert_eq!(field(info, 2), vec![b"v1.33.0".to_vec()]);

        // paths → NamedPathItem (2) → PathItem: parameters at 9, get at 2.
        let named_path = &field(&field(&buf, 8)[0], 2)[0];
        assert_eq!(
            field(named_path, 1),
            vec![b"/api/v1/namespaces/{name}".to_vec()]
        );
        let item = &field(named_path, 2)[0];
        let param = &field(&field(&field(item, 9)[0], 1)[0], 2)[0]; // item → parameter → non-body
        let path_param = &field(param, 4)[0];
        assert_eq!(field(path_param, 4), vec![b"name".to_vec()]);
        assert_eq!(field(path_param, 5), vec![b"string".to_vec()]);
        assert_eq!(field(path_param, 1), vec![vec![1]]);
        assert_eq!(field(path_param, 19), vec![vec![1]]);
        let get = &field(item, 2)[0];
        assert_eq!(field(get, 5), vec![b"readCoreV1Namespace".to_vec()]);
        let ext = &field(get, 13)[0];
        assert_eq!(field(ext, 1), vec![b"x-kubernetes-action".to_vec()]);
        assert_eq!(field(&field(ext, 2)[0], 2), vec![b"\"get\"\n".to_vec()]);
        let ok = &field(&field(get, 9)[0], 1)[0];
        assert_eq!(field(ok, 1), vec![b"200".to_vec()]);
        let resp = &field(&field(ok, 2)[0], 1)[0];
        let schema = &field(&field(resp, 2)[0], 1)[0];
        assert_eq!(
            field(schema, 1),
            vec![b"#/definitions/io.k8s.api.core.v1.Namespace".to_vec()]
        );

        // definitions → NamedSchema → Schema: type 22, required 19, properties 25.
        let def = &field(&field(&buf, 9)[0], 1)[0];
        let schema = &field(def, 2)[0];
        assert_eq!(field(&field(schema, 22)[0], 1), vec![b"object".to_vec()]);
        assert_eq!(field(schema, 19), vec![b"metadata".to_vec()]);
        let spec = &field(&field(&field(schema, 25)[0], 1)[0], 2)[0];
        let additional = &field(&field(spec, 21)[0], 1)[0];
        assert_eq!(
            field(&field(additional, 22)[0], 1),
            vec![b"string".to_vec()]
        );
        let gvk = &field(schema, 31)[0];
        assert_eq!(
            field(gvk, 1),
            vec![b"x-kubernetes-group-version-kind".to_vec()]
        );

        // security (12) and securityDefinitions (13) → apiKey (2).
        let req = &field(&field(&buf, 12)[0], 1)[0];
        assert_eq!(field(req, 1), vec![b"BearerToken".to_vec()]);
        let def = &field(&field(&buf, 13)[0], 1)[0];
        let api_key = &field(&field(def, 2)[0], 2)[0];
        assert_eq!(field(api_key, 1), vec![b"apiKey".to_vec()]);
        assert_eq!(field(api_key, 3), vec![b"header".to_vec()]);
    }
}
