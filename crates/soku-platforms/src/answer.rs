//! Reading a platform's answer without repeating its secrets.
//!
//! A platform's answer reaches places users and operators read: `platform_error` on a target or
//! in a connect error, error messages, log lines. Token endpoints (and Graph page listings,
//! Bluesky sessions) answer with the account's tokens, so nothing quoted from an answer may carry
//! them:
//! - [`from_json`] parses an answer and, when it does not fit, says which field and what type
//!   was expected, never the value found (serde's own messages quote it: `invalid type: string
//!   "…", expected i64`);
//! - [`redact`] masks the values of secret-named fields (`access_token`, `refresh_token`,
//!   `id_token`, `accessJwt`, `client_secret`, `password`, …) and bearer tokens in any text kept
//!   from an answer; `http::platform_text` applies it to everything it keeps.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;

/// What a masked value reads as.
pub const REDACTED: &str = "[redacted]";

/// `body` parsed as `T`, or what is wrong with it, in words that quote no value from it (see
/// [`describe`]).
pub fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe_plain(&e, String::new()))?;
    Ok(parsed)
}

/// A parse failure as "`field`: expected …, found a string": the field's path and the type
/// expected, never the value found.
pub fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let at = if path.is_empty() || path == "." {
        "the answer".to_owned()
    } else {
        format!("`{path}`")
    };
    describe_plain(e.inner(), at)
}

fn describe_plain(e: &serde_json::Error, at: String) -> String {
    use serde_json::error::Category;
    if !matches!(e.classify(), Category::Data) {
        // Syntax and end-of-input errors are fixed texts ("expected value", "EOF while parsing
        // a string") with a position: no value of the answer's in them.
        return format!("the answer is not JSON ({e})");
    }
    let full = e.to_string();
    let text = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => full.as_str(),
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some(i) = rest.rfind(", expected ")
        {
            // `string "…"`, `integer `…``, `map`: the kind only.
            let found = rest[..i].split(['"', '`']).next().unwrap_or("").trim();
            let expected = &rest[i + ", expected ".len()..];
            let article = if found.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return if found.is_empty() || prefix == "invalid value: " {
                format!("{at}: expected {expected}")
            } else {
                format!("{at}: expected {expected}, found {article} {found}")
            };
        }
    }
    if let Some(rest) = text.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        return format!("{at}: the field `{field}` is missing");
    }
    if let Some(rest) = text.strip_prefix("invalid length ") {
        return format!("{at}: invalid length {rest}");
    }
    if let Some(i) = text.rfind(", expected ")
        && text.starts_with("unknown variant")
    {
        return format!("{at}: unknown value, expected {}", &text[i + 11..]);
    }
    format!("{at} has an unexpected form")
}

/// Whether a field of this name holds a secret.
fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "jwt", "secret", "password"]
        .iter()
        .any(|w| name.contains(w))
}

/// `text` with every secret-named field's value masked ([`REDACTED`]) and any `Bearer` token:
/// JSON field by field (nested ones too, the rest of the answer untouched); other text (a
/// truncated JSON, a form, an HTML page) where `name": "value"`, `name":value` or `name=value`
/// shows a secret name.
pub fn redact(text: &str) -> Cow<'_, str> {
    let redacted = match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            if mask_json(&mut v) {
                Cow::Owned(v.to_string())
            } else {
                Cow::Borrowed(text)
            }
        }
        Err(_) => mask_text(text),
    };
    match mask_bearer(&redacted) {
        Cow::Borrowed(_) => redacted,
        Cow::Owned(o) => Cow::Owned(o),
    }
}

/// Masks the values of secret-named members, at any depth; whether any was.
fn mask_json(v: &mut Value) -> bool {
    match v {
        Value::Object(members) => {
            let mut any = false;
            for (name, value) in members.iter_mut() {
                if secret_name(name) && !value.is_null() {
                    *value = Value::String(REDACTED.into());
                    any = true;
                } else {
                    any |= mask_json(value);
                }
            }
            any
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, i| mask_json(i) | any),
        _ => false,
    }
}

/// The text scan of [`redact`].
fn mask_text(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let sep = b[i];
        if sep != b':' && sep != b'=' {
            i += 1;
            continue;
        }
        // The name before the separator: `"name" :`, `name:`, `name=`.
        let mut end = i;
        if sep == b':' {
            while end > 0 && b[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
        }
        if end > 0 && b[end - 1] == b'"' {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || b"_-.".contains(&b[start - 1]))
        {
            start -= 1;
        }
        if start == end || !secret_name(&text[start..end]) {
            i += 1;
            continue;
        }
        // The value after it: a quoted string (after optional spaces), or a bare word right
        // after the separator.
        let mut v = i + 1;
        while v < b.len() && b[v].is_ascii_whitespace() {
            v += 1;
        }
        let (from, to) = if v < b.len() && b[v] == b'"' {
            let mut to = v + 1;
            while to < b.len() && b[to] != b'"' {
                to += if b[to] == b'\\' { 2 } else { 1 };
            }
            (v + 1, to.min(b.len()))
        } else if v == i + 1 {
            let mut to = v;
            while to < b.len() && !b"&\"',;}]<> \t\r\n".contains(&b[to]) {
                to += 1;
            }
            (v, to)
        } else {
            (v, v)
        };
        if to > from {
            out.push_str(&text[copied..from]);
            out.push_str(REDACTED);
            copied = to;
        }
        i = to.max(i + 1);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `Bearer <token>` (any case) with the token masked.
fn mask_bearer(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find("bearer ") {
        let start = from + at + "bearer ".len();
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c)))
                .unwrap_or(text.len() - start);
        if end > start && &text[start..end] != REDACTED {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end.max(start);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<i64>,
        #[serde(default)]
        data: Vec<Item>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        id: String,
    }

    fn why(body: &str) -> String {
        from_json::<Answer>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_misfit_names_the_field_and_the_type_never_the_value() {
        for (body, said) in [
            (
                r#"{"access_token": "SECRET-1", "expires_in": "SECRET-2"}"#,
                "`expires_in`: expected i64, found a string",
            ),
            (
                r#"{"access_token": 1234567}"#,
                "`access_token`: expected a string, found an integer",
            ),
            (
                r#"{"access_token": ["SECRET-1"]}"#,
                "`access_token`: expected a string, found a sequence",
            ),
            (
                r#"{"expires_in": 5}"#,
                "the answer: the field `access_token` is missing",
            ),
            (
                r#"{"access_token": "SECRET-1", "data": [{"id": false}]}"#,
                "`data[0].id`: expected a string, found a boolean",
            ),
            (
                r#""SECRET-1""#,
                "the answer: expected struct Answer, found a string",
            ),
        ] {
            assert_eq!(why(body), said, "{body}");
        }
        // Not JSON at all (a cut answer): the position, not the text.
        let cut = why(r#"{"access_token": "SECRET-1"#);
        assert!(cut.starts_with("the answer is not JSON (EOF"), "{cut}");
        assert!(!cut.contains("SECRET"), "{cut}");
        let trailing = why(r#"{"access_token": "a"} SECRET-1"#);
        assert!(!trailing.contains("SECRET"), "{trailing}");
    }

    #[test]
    fn secret_fields_are_masked_in_json_and_other_text() {
        let json = r#"{"access_token":"SECRET-1","expires_in":60,"nested":{"refreshJwt":"SECRET-2"},"error":"invalid_token","list":[{"client_secret":"SECRET-3"}]}"#;
        let masked = redact(json);
        assert!(!masked.contains("SECRET"), "{masked}");
        let v: Value = serde_json::from_str(&masked).unwrap();
        assert_eq!(v["access_token"], REDACTED);
        assert_eq!(v["expires_in"], 60);
        assert_eq!(
            v["error"], "invalid_token",
            "a value that names a token stays"
        );
        // Nothing to mask: the answer as it was, byte for byte.
        let plain = r#"{"error": "invalid_grant", "error_description": "Refresh token revoked"}"#;
        assert!(matches!(redact(plain), Cow::Borrowed(t) if t == plain));

        for text in [
            r#"{"access_token": "SECRET-1", "refresh_tok"#,
            r#"<pre>{"refresh_token" : "SECRET-1\"x", "a": 1</pre>"#,
            "grant_type=refresh_token&refresh_token=SECRET-1&client_id=app",
            "Authorization: Bearer SECRET-1\r\nHost: x",
            r#"{"message": "sent with bearer SECRET-1"}"#,
        ] {
            let masked = redact(text);
            assert!(!masked.contains("SECRET"), "{text} -> {masked}");
            assert!(masked.contains(REDACTED), "{masked}");
        }
        // Prose about tokens keeps its words.
        let prose = "Error validating access token: Session has expired";
        assert_eq!(redact(prose), prose);
        assert_eq!(
            redact("client_id=app&refresh_token=SECRET-1"),
            format!("client_id=app&refresh_token={REDACTED}")
        );
    }
}
