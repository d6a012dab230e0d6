//! Request fields as a client sent them, for validators that must name what is wrong and where.
//!
//! A request type's fields are `Field<T>`: absent, `null`, a value of the expected JSON type, or
//! a value of another type. Parsing never fails on a field, so the validator, not the parser,
//! decides which problem a request with several problems is answered with, and words it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One member of a JSON object, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    /// Not in the object.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A value of the expected type.
    Value(T),
    /// A value of another JSON type.
    WrongType,
}

impl<T> Field<T> {
    /// The value when it was sent and of the expected type.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Absent or `null`.
    pub fn is_missing(&self) -> bool {
        matches!(self, Field::Absent | Field::Null)
    }

    /// The field `name` of `object`, when `object` is a JSON object.
    pub fn member(object: &Value, name: &str) -> Self
    where
        T: Lenient,
    {
        match object.get(name) {
            None => Field::Absent,
            Some(v) => Self::of(v.clone()),
        }
    }

    /// A sent value.
    pub fn of(value: Value) -> Self
    where
        T: Lenient,
    {
        match value {
            Value::Null => Field::Null,
            v => T::from_json(v).map_or(Field::WrongType, Field::Value),
        }
    }
}

impl<'de, T: Lenient> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::of(Value::deserialize(deserializer)?))
    }
}

/// A type a `Field` can hold: built from a JSON value of the right type, or `None` for a value of
/// another type. Objects accept only JSON objects (serde would also take an array for a struct).
pub trait Lenient: Sized {
    fn from_json(value: Value) -> Option<Self>;
}

impl Lenient for String {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Lenient for bool {
    fn from_json(value: Value) -> Option<Self> {
        value.as_bool()
    }
}

impl<T: Lenient> Lenient for Vec<Field<T>> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Array(items) => Some(items.into_iter().map(Field::of).collect()),
            _ => None,
        }
    }
}

/// A struct whose fields are all `Field`s (with `#[serde(default)]`): any JSON object is one.
pub fn object_from_json<T: DeserializeOwned>(value: Value) -> Option<T> {
    if value.is_object() {
        serde_json::from_value(value).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Thing {
        name: Field<String>,
        flag: Field<bool>,
        list: Field<Vec<Field<String>>>,
    }

    impl Lenient for Thing {
        fn from_json(value: Value) -> Option<Self> {
            object_from_json(value)
        }
    }

    #[test]
    fn every_field_is_read_as_sent() {
        let t: Thing =
            serde_json::from_value(json!({"name": 5, "flag": null, "list": ["a", 1]})).unwrap();
        assert_eq!(t.name, Field::WrongType);
        assert_eq!(t.flag, Field::Null);
        assert_eq!(
            t.list,
            Field::Value(vec![Field::Value("a".into()), Field::WrongType])
        );
        let t: Thing = serde_json::from_value(json!({})).unwrap();
        assert_eq!(t.name, Field::Absent);
        assert!(t.name.is_missing());
        assert!(Field::<Thing>::of(json!([1, 2])) == Field::WrongType);
        assert!(matches!(Field::<Thing>::of(json!({})), Field::Value(_)));
    }
}
