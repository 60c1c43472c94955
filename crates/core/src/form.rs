//! Stripe's form encoding: `application/x-www-form-urlencoded` with bracket
//! notation (`a[b]=`, `a[0]=`, `a[]=`), percent-encoded or not.
//!
//! Decoding produces a [`Value`] tree; [`Params`] then extracts typed values and
//! reports every mistake as a [`ParamError`] naming the parameter the way
//! Stripe does (`metadata[key]`, `enabled_events`). Extraction consumes keys,
//! so whatever is left at [`Params::finish`] is an unknown parameter.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Map(Map),
    List(Vec<Value>),
}

pub type Map = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ParamError {
    pub param: String,
    pub kind: ParamErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamErrorKind {
    Missing,
    Unknown,
    /// The value is present but unusable; the string says why.
    Invalid(String),
}

impl ParamError {
    pub fn missing(param: impl Into<String>) -> Self {
        ParamError {
            param: param.into(),
            kind: ParamErrorKind::Missing,
        }
    }
    pub fn unknown(param: impl Into<String>) -> Self {
        ParamError {
            param: param.into(),
            kind: ParamErrorKind::Unknown,
        }
    }
    pub fn invalid(param: impl Into<String>, why: impl Into<String>) -> Self {
        ParamError {
            param: param.into(),
            kind: ParamErrorKind::Invalid(why.into()),
        }
    }

    /// Stripe's wording for each kind of mistake.
    pub fn message(&self) -> String {
        match &self.kind {
            ParamErrorKind::Missing => format!("Missing required param: {}.", self.param),
            ParamErrorKind::Unknown => format!("Received unknown parameter: {}", self.param),
            ParamErrorKind::Invalid(why) => why.clone(),
        }
    }

    /// Stripe's `code` for each kind of mistake.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ParamErrorKind::Missing => "parameter_missing",
            ParamErrorKind::Unknown => "parameter_unknown",
            ParamErrorKind::Invalid(_) => "parameter_invalid",
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(u64),
    Append,
}

/// Intermediate tree: lists keep their indices until the end so that
/// `a[1]=x&a[0]=y` comes out in index order.
#[derive(Debug)]
enum Node {
    Leaf(String),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<u64, Node>),
}

/// Deepest bracket nesting accepted (`a[b][c]` is 2). Stripe's deepest
/// parameters nest about six levels; the bound keeps every later walk over
/// the tree (which recurses) far from the stack's end, whatever the input.
pub const MAX_DEPTH: usize = 20;

/// Largest number read as an array index (`a[9999]`); larger ones are map
/// keys. Indices only order elements, so this bounds nothing but the
/// arithmetic of `a[]`, which appends after the largest.
pub const MAX_INDEX: u64 = 9_999;

/// Decodes a query string or form body into a tree.
pub fn decode(input: &str) -> Result<Map, ParamError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for pair in input.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = unescape(raw_key)?;
        let value = unescape(raw_value)?;
        let (name, rest) = split_key(&key)?;
        let slot = root.entry(name.to_owned());
        insert(slot, &rest, value, &key)?;
    }
    Ok(root.into_iter().map(|(k, v)| (k, finish_node(v))).collect())
}

/// API v2's query strings may repeat a bare key for an array
/// (`types=a&types=b`) where v1 and the SDKs write `types[0]=a&types[1]=b`:
/// a bare key that appears more than once becomes `key[]`, so both read
/// the same. (v1 keeps last-wins for a repeated bare key.)
pub fn repeated_as_arrays(query: &str) -> std::borrow::Cow<'_, str> {
    fn bare(pair: &str) -> Option<&str> {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        let bracketed = key.contains('[') || key.contains("%5B") || key.contains("%5b");
        (!key.is_empty() && !bracketed).then_some(key)
    }
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for pair in query.split('&') {
        if let Some(k) = bare(pair) {
            *seen.entry(k).or_default() += 1;
        }
    }
    if seen.values().all(|n| *n < 2) {
        return query.into();
    }
    query
        .split('&')
        .map(|pair| match bare(pair) {
            Some(k) if seen[k] > 1 => format!("{k}[]{}", &pair[k.len()..]),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
        .into()
}

fn unescape(raw: &str) -> Result<String, ParamError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ParamError::invalid(raw, format!("Invalid UTF-8 in request parameter: {raw}")))
}

fn split_key(key: &str) -> Result<(&str, Vec<Segment>), ParamError> {
    let malformed = || ParamError::invalid(key, format!("Invalid parameter name: {key}"));
    let (name, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if name.is_empty() {
        return Err(malformed());
    }
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if segments.len() == MAX_DEPTH {
            return Err(ParamError::invalid(
                name,
                format!(
                    "Invalid parameter {name}: parameters may be nested at most {MAX_DEPTH} levels deep"
                ),
            ));
        }
        let inner_end = rest.find(']').ok_or_else(malformed)?;
        if !rest.starts_with('[') {
            return Err(malformed());
        }
        let inner = &rest[1..inner_end];
        segments.push(if inner.is_empty() {
            Segment::Append
        } else if let Ok(i) = inner.parse::<u64>().map_err(|_| ()).and_then(|i| {
            // Keep leading-zero strings like "007" as map keys, and numbers
            // too large to be an index (`metadata[12345678901]`).
            if i <= MAX_INDEX && i.to_string() == inner {
                Ok(i)
            } else {
                Err(())
            }
        }) {
            Segment::Index(i)
        } else {
            Segment::Key(inner.to_owned())
        });
        rest = &rest[inner_end + 1..];
    }
    Ok((name, segments))
}

fn conflict(key: &str) -> ParamError {
    ParamError::invalid(
        key,
        format!(
            "Invalid parameter {key}: it is used both as a value and as a nested object or array"
        ),
    )
}

fn insert(
    slot: std::collections::btree_map::Entry<'_, String, Node>,
    rest: &[Segment],
    value: String,
    key: &str,
) -> Result<(), ParamError> {
    use std::collections::btree_map::Entry;
    let Some((first, tail)) = rest.split_first() else {
        match slot {
            Entry::Vacant(v) => {
                v.insert(Node::Leaf(value));
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                // Last value wins, as Rack and Stripe do.
                Node::Leaf(old) => *old = value,
                _ => return Err(conflict(key)),
            },
        }
        return Ok(());
    };
    let node = match slot {
        Entry::Vacant(v) => v.insert(match first {
            Segment::Key(_) => Node::Map(BTreeMap::new()),
            Segment::Index(_) | Segment::Append => Node::List(BTreeMap::new()),
        }),
        Entry::Occupied(o) => o.into_mut(),
    };
    insert_into(node, first, tail, value, key)
}

fn insert_into(
    node: &mut Node,
    segment: &Segment,
    tail: &[Segment],
    value: String,
    key: &str,
) -> Result<(), ParamError> {
    match (node, segment) {
        (Node::Map(map), Segment::Key(k)) => insert(map.entry(k.clone()), tail, value, key),
        // A numeric key inside an existing map (`metadata[1]=x`) is a key.
        (Node::Map(map), Segment::Index(i)) => insert(map.entry(i.to_string()), tail, value, key),
        (Node::List(list), Segment::Index(i)) => {
            let child = list.entry(*i);
            insert_index(child, tail, value, key)
        }
        (Node::List(list), Segment::Append) => {
            // Rack-style merging for `a[][x]=1&a[][y]=2`: continue the last element
            // while it is a map that does not have this key yet.
            if let (Some(Segment::Key(k)), Some((_, Node::Map(last)))) =
                (tail.first(), list.iter_mut().next_back())
                && !last.contains_key(k)
            {
                return insert(last.entry(k.clone()), &tail[1..], value, key);
            }
            let next = list.keys().next_back().map_or(0, |i| i + 1);
            insert_index(list.entry(next), tail, value, key)
        }
        // A key beside indices (`a[0]=x&a[k]=y`) makes a map of them all,
        // as the reverse order (`a[k]=y&a[0]=x`) does: order never matters.
        (node, Segment::Key(_)) if matches!(node, Node::List(_)) => {
            if let Node::List(list) = std::mem::replace(node, Node::Map(BTreeMap::new())) {
                *node = Node::Map(list.into_iter().map(|(i, v)| (i.to_string(), v)).collect());
            }
            insert_into(node, segment, tail, value, key)
        }
        _ => Err(conflict(key)),
    }
}

fn insert_index(
    slot: std::collections::btree_map::Entry<'_, u64, Node>,
    rest: &[Segment],
    value: String,
    key: &str,
) -> Result<(), ParamError> {
    use std::collections::btree_map::Entry;
    let Some((first, tail)) = rest.split_first() else {
        match slot {
            Entry::Vacant(v) => {
                v.insert(Node::Leaf(value));
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                Node::Leaf(old) => *old = value,
                _ => return Err(conflict(key)),
            },
        }
        return Ok(());
    };
    let node = match slot {
        Entry::Vacant(v) => v.insert(match first {
            Segment::Key(_) => Node::Map(BTreeMap::new()),
            _ => Node::List(BTreeMap::new()),
        }),
        Entry::Occupied(o) => o.into_mut(),
    };
    insert_into(node, first, tail, value, key)
}

fn finish_node(node: Node) -> Value {
    match node {
        Node::Leaf(s) => Value::Str(s),
        Node::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, finish_node(v))).collect()),
        Node::List(l) => Value::List(l.into_values().map(finish_node).collect()),
    }
}

// ---------------------------------------------------------------------------
// Encoding (what the SDKs send: indexed arrays, unescaped brackets)

/// Characters escaped in keys and values; brackets stay readable in keys.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// Encodes a JSON object the way stripe-python and stripe-node do:
/// `a[b]=…`, arrays as `a[0]=…`, `null` as an empty value, empty arrays omitted.
pub fn encode_json(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::new();
    for (k, v) in object {
        let key = utf8_percent_encode(k, ESCAPE).to_string();
        encode_json_value(&mut out, &key, v);
    }
    out
}

fn encode_json_value(out: &mut String, key: &str, value: &serde_json::Value) {
    use serde_json::Value as J;
    let mut leaf = |s: &str| {
        if !out.is_empty() {
            out.push('&');
        }
        let _ = write!(out, "{key}={}", utf8_percent_encode(s, ESCAPE));
    };
    match value {
        J::Null => leaf(""),
        J::Bool(b) => leaf(if *b { "true" } else { "false" }),
        J::Number(n) => leaf(&n.to_string()),
        J::String(s) => leaf(s),
        J::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                encode_json_value(out, &format!("{key}[{i}]"), item);
            }
        }
        J::Object(map) => {
            for (k, v) in map {
                let k = utf8_percent_encode(k, ESCAPE);
                encode_json_value(out, &format!("{key}[{k}]"), v);
            }
        }
    }
}

/// Encodes a decoded tree back into a form string (used by tests and tools).
pub fn encode(map: &Map) -> String {
    fn walk(out: &mut Vec<String>, key: String, value: &Value) {
        match value {
            Value::Str(s) => out.push(format!("{key}={}", utf8_percent_encode(s, ESCAPE))),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(out, format!("{key}[{i}]"), v);
                }
            }
            Value::Map(m) => {
                for (k, v) in m {
                    walk(out, format!("{key}[{}]", utf8_percent_encode(k, ESCAPE)), v);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (k, v) in map {
        walk(&mut out, utf8_percent_encode(k, ESCAPE).to_string(), v);
    }
    out.join("&")
}

// ---------------------------------------------------------------------------
// Typed extraction

/// Request parameters being consumed by a handler.
#[derive(Debug, Default, Clone)]
pub struct Params {
    map: Map,
    /// `address` when these are the nested params of `address[…]`.
    prefix: Option<String>,
}

/// `metadata` changes as Stripe applies them: `metadata=` clears every key,
/// `metadata[k]=` removes one key, `metadata[k]=v` sets one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    pub clear_all: bool,
    pub changes: Vec<(String, Option<String>)>,
}

impl MetadataUpdate {
    pub fn apply(&self, metadata: &mut serde_json::Map<String, serde_json::Value>) {
        if self.clear_all {
            metadata.clear();
        }
        for (k, v) in &self.changes {
            match v {
                Some(v) => {
                    metadata.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                None => {
                    metadata.remove(k);
                }
            }
        }
    }
}

const METADATA_MAX_KEYS: usize = 50;
const METADATA_MAX_KEY_LEN: usize = 40;
const METADATA_MAX_VALUE_LEN: usize = 500;

impl Params {
    pub fn parse(input: &str) -> Result<Params, ParamError> {
        Ok(Params {
            map: decode(input)?,
            prefix: None,
        })
    }

    /// An API v2 JSON body as parameters: strings as they are, numbers and
    /// booleans as their text, `null` as `""` (which clears, as v2's `null`
    /// does: `metadata: {k: null}` removes `k`), objects and arrays nested.
    /// The body must be a JSON object.
    pub fn from_json(value: serde_json::Value) -> Result<Params, ParamError> {
        fn convert(v: serde_json::Value) -> Value {
            match v {
                serde_json::Value::String(s) => Value::Str(s),
                serde_json::Value::Null => Value::Str(String::new()),
                serde_json::Value::Bool(b) => Value::Str(b.to_string()),
                serde_json::Value::Number(n) => Value::Str(n.to_string()),
                serde_json::Value::Array(items) => {
                    Value::List(items.into_iter().map(convert).collect())
                }
                serde_json::Value::Object(m) => {
                    Value::Map(m.into_iter().map(|(k, v)| (k, convert(v))).collect())
                }
            }
        }
        match convert(value) {
            Value::Map(map) => Ok(Params { map, prefix: None }),
            _ => Err(ParamError::invalid(
                "body",
                "The request body must be a JSON object.",
            )),
        }
    }

    pub fn from_map(map: Map) -> Params {
        Params { map, prefix: None }
    }

    /// The nested parameters of `name` (for errors named `name[key]`).
    pub fn nested_from(name: &str, map: Map) -> Params {
        Params {
            map,
            prefix: Some(name.to_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The full Stripe-style name of `key` at this nesting level.
    pub fn name(&self, key: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}[{key}]"),
            None => key.to_owned(),
        }
    }

    /// The keys not consumed yet (for maps whose keys are data, such as
    /// feature flags).
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Removes and returns the raw value of `key`.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, ParamError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(ParamError::invalid(
                self.name(key),
                format!(
                    "Invalid string: {} must be a string, not an object or array",
                    self.name(key)
                ),
            )),
        }
    }

    pub fn required_string(&mut self, key: &str) -> Result<String, ParamError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ParamError::missing(self.name(key))),
        }
    }

    /// A string that `""` clears: `None` absent, `Some(None)` clear, `Some(Some(s))` set.
    pub fn clearable_string(&mut self, key: &str) -> Result<Option<Option<String>>, ParamError> {
        Ok(self.string(key)?.map(|s| (!s.is_empty()).then_some(s)))
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, ParamError> {
        match self.string(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ParamError::invalid(
                self.name(key),
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    pub fn int(&mut self, key: &str) -> Result<Option<i64>, ParamError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ParamError::invalid(self.name(key), format!("Invalid integer: {s}"))),
        }
    }

    /// An array of strings. A bare `key=v` counts as a one-element array and
    /// `key=` as an empty one.
    pub fn string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, ParamError> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Str(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Value::Str(s)) => Ok(Some(vec![s])),
            Some(Value::List(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s),
                    _ => Err(ParamError::invalid(
                        &name,
                        format!("Invalid array: {name} must contain strings"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::Map(_)) => {
                Err(ParamError::invalid(&name, format!("Invalid array: {name}")))
            }
        }
    }

    /// Nested parameters (`address[line1]=…`). `key=` yields `Some(None)` (clear).
    pub fn nested(&mut self, key: &str) -> Result<Option<Option<Params>>, ParamError> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Str(s)) if s.is_empty() => Ok(Some(None)),
            Some(Value::Map(map)) => Ok(Some(Some(Params {
                map,
                prefix: Some(name),
            }))),
            Some(_) => Err(ParamError::invalid(
                &name,
                format!("Invalid object: {name} must be an object"),
            )),
        }
    }

    pub fn metadata(&mut self) -> Result<Option<MetadataUpdate>, ParamError> {
        let name = self.name("metadata");
        let invalid = |why: String| ParamError::invalid(&name, why);
        let entries: Vec<(String, Value)> = match self.take("metadata") {
            None => return Ok(None),
            Some(Value::Str(s)) if s.is_empty() => {
                return Ok(Some(MetadataUpdate {
                    clear_all: true,
                    changes: Vec::new(),
                }));
            }
            Some(Value::Map(map)) => map.into_iter().collect(),
            // `metadata[0]=x`: numeric keys decode as a list.
            Some(Value::List(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            Some(Value::Str(_)) => {
                return Err(invalid("Invalid object: metadata must be an object".into()));
            }
        };
        if entries.len() > METADATA_MAX_KEYS {
            return Err(invalid(format!(
                "Invalid metadata: at most {METADATA_MAX_KEYS} keys are allowed"
            )));
        }
        let mut changes = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Value::Str(v) = v else {
                return Err(ParamError::invalid(
                    format!("{name}[{k}]"),
                    format!("Invalid metadata value for {k}: must be a string"),
                ));
            };
            if k.chars().count() > METADATA_MAX_KEY_LEN {
                return Err(invalid(format!(
                    "Metadata keys can have up to {METADATA_MAX_KEY_LEN} characters: {k}"
                )));
            }
            if v.chars().count() > METADATA_MAX_VALUE_LEN {
                return Err(ParamError::invalid(
                    format!("{name}[{k}]"),
                    format!("Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters"),
                ));
            }
            changes.push((k, (!v.is_empty()).then_some(v)));
        }
        Ok(Some(MetadataUpdate {
            clear_all: false,
            changes,
        }))
    }

    /// Fails on the first parameter no extractor consumed.
    pub fn finish(self) -> Result<(), ParamError> {
        match self.map.into_iter().next() {
            None => Ok(()),
            Some((k, v)) => {
                let base = match &self.prefix {
                    Some(p) => format!("{p}[{k}]"),
                    None => k,
                };
                Err(ParamError::unknown(first_leaf_name(base, &v)))
            }
        }
    }
}

/// Stripe names the deepest unknown key (`foo[bar]`), not just `foo`.
fn first_leaf_name(base: String, value: &Value) -> String {
    match value {
        Value::Map(m) => match m.iter().next() {
            Some((k, v)) => first_leaf_name(format!("{base}[{k}]"), v),
            None => base,
        },
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_bare_keys_read_as_arrays() {
        assert_eq!(repeated_as_arrays("a=1&b=2"), "a=1&b=2");
        assert_eq!(repeated_as_arrays("a=1&&b=2&&"), "a=1&&b=2&&");
        assert_eq!(
            repeated_as_arrays("types=x&limit=2&types=y"),
            "types[]=x&limit=2&types[]=y"
        );
        let m = decode(&repeated_as_arrays("include=a&include=b&x[0]=1&x[1]=2")).unwrap();
        assert_eq!(
            m,
            decode("include[0]=a&include[1]=b&x[0]=1&x[1]=2").unwrap()
        );
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    #[test]
    fn decodes_what_stripe_python_and_node_send() {
        let body = "url=https%3A%2F%2Fexample.com%2Fhook&enabled_events[0]=charge.succeeded&enabled_events[1]=account.updated&connect=true&metadata[a]=b&metadata[c]=&description=";
        let map = decode(body).unwrap();
        assert_eq!(map["url"], s("https://example.com/hook"));
        assert_eq!(
            map["enabled_events"],
            Value::List(vec![s("charge.succeeded"), s("account.updated")])
        );
        assert_eq!(map["connect"], s("true"));
        assert_eq!(
            map["metadata"],
            Value::Map(Map::from([("a".into(), s("b")), ("c".into(), s(""))]))
        );
        assert_eq!(map["description"], s(""));
    }

    #[test]
    fn decodes_percent_encoded_brackets_from_python_queries() {
        let map = decode("expand%5B0%5D=data.x&created%5Bgte%5D=5&types%5B0%5D=a&types%5B1%5D=b")
            .unwrap();
        assert_eq!(map["expand"], Value::List(vec![s("data.x")]));
        assert_eq!(
            map["created"],
            Value::Map(Map::from([("gte".into(), s("5"))]))
        );
        assert_eq!(map["types"], Value::List(vec![s("a"), s("b")]));
    }

    #[test]
    fn decodes_stripe_cli_empty_brackets_and_rack_merging() {
        let map = decode("enabled_events[]=a&enabled_events[]=b&items[][price]=p&items[][qty]=1&items[][price]=q").unwrap();
        assert_eq!(map["enabled_events"], Value::List(vec![s("a"), s("b")]));
        let items = Value::List(vec![
            Value::Map(Map::from([
                ("price".into(), s("p")),
                ("qty".into(), s("1")),
            ])),
            Value::Map(Map::from([("price".into(), s("q"))])),
        ]);
        assert_eq!(map["items"], items);
    }

    #[test]
    fn indexed_arrays_come_out_in_index_order() {
        let map = decode("a[1]=second&a[0]=first&b[0][x]=1&b[0][y]=2").unwrap();
        assert_eq!(map["a"], Value::List(vec![s("first"), s("second")]));
        assert_eq!(
            map["b"],
            Value::List(vec![Value::Map(Map::from([
                ("x".into(), s("1")),
                ("y".into(), s("2"))
            ]))])
        );
    }

    #[test]
    fn plus_is_space_and_utf8_is_decoded() {
        let map = decode("name=Jane+Doe&city=M%C3%BCnchen").unwrap();
        assert_eq!(map["name"], s("Jane Doe"));
        assert_eq!(map["city"], s("München"));
    }

    #[test]
    fn malformed_keys_and_conflicts_name_the_parameter() {
        for (input, param) in [
            ("a[b=1", "a[b"),
            ("[x]=1", "[x]"),
            ("a=1&a[b]=2", "a[b]"),
            ("a[b]x=1", "a[b]x"),
        ] {
            let err = decode(input).unwrap_err();
            assert_eq!(err.param, param, "{input}");
        }
        assert!(decode("a=%ff").is_err());
    }

    #[test]
    fn keys_beside_indices_make_a_map_in_either_order() {
        // The `form_decode` fuzz target's find: one order was a map, the
        // other a conflict, so encoding a decoded request could not be read back.
        let expected = decode("items[price]=p&items[1][q]=3").unwrap();
        assert_eq!(decode("items[1][q]=3&items[price]=p"), Ok(expected.clone()));
        assert_eq!(decode(&encode(&expected)), Ok(expected));
    }

    #[test]
    fn nesting_is_bounded_and_names_the_parameter() {
        let ok = format!("a{}=1", "[b]".repeat(MAX_DEPTH));
        assert!(decode(&ok).is_ok());
        // The fault probe's request: ~3,400 levels in 10 KB used to overflow the stack.
        let deep = format!("x{}=1", "[a]".repeat(3_400));
        let err = decode(&deep).unwrap_err();
        assert_eq!(err.param, "x");
        assert!(err.message().contains("nested"), "{}", err.message());
        let deep_lists = format!("x{}=1", "[]".repeat(MAX_DEPTH + 1));
        assert_eq!(decode(&deep_lists).unwrap_err().param, "x");
    }

    #[test]
    fn huge_indices_are_keys_and_appending_never_overflows() {
        let map = decode("a[18446744073709551615]=x&a[]=y").unwrap_err();
        assert_eq!(map.param, "a[]");
        let list = decode("a[9999]=x&a[]=y").unwrap();
        assert_eq!(list["a"], Value::List(vec![s("x"), s("y")]));
        let keyed = decode("metadata[12345678901]=x").unwrap();
        let Value::Map(m) = &keyed["metadata"] else {
            panic!("{keyed:?}")
        };
        assert_eq!(m["12345678901"], s("x"));
    }

    #[test]
    fn typed_extraction_names_the_parameter() {
        let mut p =
            Params::parse("connect=maybe&limit=x&address[line1]=1&address[bogus]=2&extra[deep]=1")
                .unwrap();
        assert_eq!(p.bool("connect").unwrap_err().param, "connect");
        assert_eq!(p.int("limit").unwrap_err().message(), "Invalid integer: x");
        assert_eq!(
            p.required_string("url").unwrap_err(),
            ParamError::missing("url")
        );
        let mut address = p.nested("address").unwrap().unwrap().unwrap();
        assert_eq!(address.string("line1").unwrap().as_deref(), Some("1"));
        let err = address.finish().unwrap_err();
        assert_eq!(
            (err.param.as_str(), err.code()),
            ("address[bogus]", "parameter_unknown")
        );
        assert_eq!(p.finish().unwrap_err().param, "extra[deep]");
    }

    #[test]
    fn metadata_follows_stripe_unset_semantics() {
        let mut existing = serde_json::Map::new();
        existing.insert("keep".into(), "1".into());
        existing.insert("drop".into(), "2".into());
        let update = Params::parse("metadata[drop]=&metadata[new]=3")
            .unwrap()
            .metadata()
            .unwrap()
            .unwrap();
        update.apply(&mut existing);
        assert_eq!(
            serde_json::Value::Object(existing.clone()),
            serde_json::json!({"keep": "1", "new": "3"})
        );
        let clear = Params::parse("metadata=")
            .unwrap()
            .metadata()
            .unwrap()
            .unwrap();
        clear.apply(&mut existing);
        assert!(existing.is_empty());
        let err = Params::parse("metadata[a][b]=1")
            .unwrap()
            .metadata()
            .unwrap_err();
        assert_eq!(err.param, "metadata[a]");
    }

    #[test]
    fn encode_json_matches_sdk_layout() {
        let v = serde_json::json!({"url": "https://x.test/a b", "enabled_events": ["*"], "connect": true,
            "metadata": {"a": "b", "c": null}});
        let encoded = encode_json(v.as_object().unwrap());
        assert_eq!(
            encoded,
            "url=https%3A%2F%2Fx.test%2Fa%20b&enabled_events[0]=*&connect=true&metadata[a]=b&metadata[c]="
        );
        let back = decode(&encoded).unwrap();
        assert_eq!(back["url"], s("https://x.test/a b"));
    }

    fn key() -> impl Strategy<Value = String> {
        // Non-numeric keys: numeric ones legitimately decode as list indices.
        "[a-z_][a-z0-9_]{0,6}"
    }

    fn tree() -> impl Strategy<Value = Value> {
        let leaf = "[ -~\u{e9}\u{4e2d}]{0,8}".prop_map(Value::Str);
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Value::List),
                prop::collection::btree_map(key(), inner, 1..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(map in prop::collection::btree_map(key(), tree(), 0..5)) {
            let encoded = encode(&map);
            prop_assert_eq!(decode(&encoded).unwrap(), map);
        }

        #[test]
        fn decode_never_panics(input in "[a-z\\[\\]=&%0-9+]{0,40}") {
            let _ = decode(&input);
        }
    }
}
