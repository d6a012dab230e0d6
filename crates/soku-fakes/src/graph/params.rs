//! Parameters, fields, dates and paging: how the fake reads a request and pages an answer.

use super::*;

pub(super) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2019-01-02T18:31:28+0000`, the form Graph uses.
pub fn iso(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(super) fn shortcode() -> String {
    token("")[..11].to_owned()
}

pub(super) fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn parse_pairs(s: &str, into: &mut Vec<(String, String)>) {
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        into.push((decode(k), decode(v)));
    }
}

/// A request's parameters (query string and form body), in order; `name[n]` kept as sent.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The spec name of a parameter: `attached_media[0]` → `attached_media`.
    pub(super) fn base(key: &str) -> &str {
        match key.find('[') {
            Some(i) if key.ends_with(']') => &key[..i],
            _ => key,
        }
    }

    /// Values of a list parameter: indexed `name[n]` parameters in index order, a JSON array,
    /// or a comma separated list.
    pub(super) fn list(&self, key: &str) -> Result<Vec<String>, String> {
        let mut indexed: Vec<(usize, String)> = Vec::new();
        for (k, v) in &self.0 {
            if Self::base(k) == key && k != key {
                let n = k[key.len() + 1..k.len() - 1]
                    .parse::<usize>()
                    .map_err(|_| format!("(#100) Param {k} has a bad index"))?;
                indexed.push((n, v.clone()));
            }
        }
        if !indexed.is_empty() {
            indexed.sort_by_key(|(n, _)| *n);
            return Ok(indexed.into_iter().map(|(_, v)| v).collect());
        }
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        if v.trim_start().starts_with('[') {
            let arr: Vec<Value> = serde_json::from_str(v)
                .map_err(|_| format!("(#100) Param {key} must be a JSON array"))?;
            return Ok(arr
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect());
        }
        Ok(v.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect())
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(_) => Err(format!("(#100) Param {key} must be a boolean")),
        }
    }
}

#[allow(clippy::result_large_err)]
pub(super) fn read_params(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, Response> {
    let mut p = Vec::new();
    if let Some(q) = uri.query() {
        parse_pairs(q, &mut p);
    }
    if !body.is_empty() {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.starts_with("application/x-www-form-urlencoded") {
            let Ok(text) = std::str::from_utf8(body) else {
                return Err(bad_param("The request body is not UTF-8."));
            };
            parse_pairs(text, &mut p);
        } else if ct.starts_with("application/json") {
            // Graph also takes a JSON body; values that are not strings are passed on as JSON.
            let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
                return Err(bad_param("The request body is not a JSON object."));
            };
            for (k, v) in o {
                let v = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                p.push((k, v));
            }
        } else {
            return Err(bad_param(
                "(#100) The fake takes form-encoded or JSON parameters only (no file uploads).",
            ));
        }
    }
    Ok(Params(p))
}

/// The parameters of a call, checked against what the fake accepts (its [`CALLS`] entry).
#[allow(clippy::result_large_err)]
pub(super) fn check_params(
    p: &Params,
    spec_node: &str,
    method: &str,
    endpoint: &str,
) -> Result<(), Response> {
    let allowed = call_params(spec_node, method, endpoint)
        .map(|c| c.params)
        .unwrap_or(&[]);
    for (k, _) in &p.0 {
        let base = Params::base(k);
        if GENERIC_PARAMS.contains(&base) || allowed.iter().any(|(n, _)| *n == base) {
            continue;
        }
        return Err(bad_param(&format!(
            "(#100) The parameter {k} is not accepted by {method} {spec_node}/{endpoint} (the fake refuses parameters it does not implement)"
        )));
    }
    Ok(())
}

/// A requested field, with its subfields (`instagram_business_account{id,username}`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Field {
    pub(super) name: String,
    pub(super) sub: Option<Vec<Field>>,
}

pub(super) fn parse_fields(s: &str) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut push = |part: &str| -> Result<(), String> {
        let part = part.trim();
        if part.is_empty() {
            return Ok(());
        }
        match part.find('{') {
            None => out.push(Field {
                name: part.to_owned(),
                sub: None,
            }),
            Some(i) => {
                if !part.ends_with('}') {
                    return Err(format!("(#100) Syntax error in fields: {part}"));
                }
                out.push(Field {
                    name: part[..i].trim().to_owned(),
                    sub: Some(parse_fields(&part[i + 1..part.len() - 1])?),
                });
            }
        }
        Ok(())
    };
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "(#100) Syntax error in fields".to_owned())?
            }
            b',' if depth == 0 => {
                push(&s[start..i])?;
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("(#100) Syntax error in fields".into());
    }
    push(&s[start..])?;
    Ok(out)
}

/// The requested fields of a node type, checked (`default` when there is no `fields`).
#[allow(clippy::result_large_err)]
pub(super) fn fields(
    p: &Params,
    spec_type: &str,
    extra: &[&str],
    default: &[&str],
) -> Result<Vec<Field>, Response> {
    let requested = match p.get("fields") {
        None => default
            .iter()
            .map(|n| Field {
                name: n.to_string(),
                sub: None,
            })
            .collect(),
        Some(f) => parse_fields(f).map_err(|e| bad_param(&e))?,
    };
    check_fields(&requested, spec_type, extra)?;
    Ok(requested)
}

#[allow(clippy::result_large_err)]
pub(super) fn check_fields(
    requested: &[Field],
    spec_type: &str,
    extra: &[&str],
) -> Result<(), Response> {
    let known = object_fields(spec_type);
    for f in requested {
        if !known.contains(&f.name.as_str()) && !extra.contains(&f.name.as_str()) {
            return Err(bad_param(&format!(
                "(#100) Tried accessing nonexisting field ({}) on node type ({spec_type})",
                f.name
            )));
        }
        if let Some(sub) = &f.sub {
            let sub_type = match f.name.as_str() {
                "instagram_business_account" | "owner" => "IGUser",
                _ => {
                    return Err(bad_param(&format!(
                        "(#100) Field {} takes no subfields (in the fake)",
                        f.name
                    )));
                }
            };
            check_fields(sub, sub_type, &[])?;
        }
    }
    Ok(())
}

pub(super) fn wants(f: &[Field], name: &str) -> bool {
    f.iter().any(|x| x.name == name)
}

pub(super) fn http_url(v: &str) -> bool {
    (v.starts_with("https://") || v.starts_with("http://")) && v.len() > "https://".len()
}

/// Unix seconds (the fake's form of a spec `datetime`).
pub(super) fn unix_param(p: &Params, key: &str) -> Result<Option<i64>, String> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("(#100) Param {key} must be a Unix timestamp (the fake's form)")),
    }
}

/// A page of rows, newest first, with Graph's `paging.cursors` (opaque: base64 of the id).
#[allow(clippy::result_large_err)]
pub(super) fn paginate(
    p: &Params,
    ids: &[String],
    rows: Vec<Value>,
    next_base: &str,
) -> Result<Value, Response> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let limit = match p.get("limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => {
            return Err(bad_param(
                "(#100) Param limit must be a number from 1 to 100",
            ));
        }
    };
    let start = match p.get("after") {
        None => 0,
        Some(c) => {
            let id = b64
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad_param("(#100) Invalid cursor"))?;
            ids.iter()
                .position(|x| *x == id)
                .map(|i| i + 1)
                .ok_or_else(|| bad_param("(#100) Invalid cursor"))?
        }
    };
    let end = (start + limit).min(ids.len());
    let data: Vec<Value> = rows[start.min(rows.len())..end].to_vec();
    let mut paging = json!({});
    if start < end {
        let before = b64.encode(&ids[start]);
        let after = b64.encode(&ids[end - 1]);
        paging["cursors"] = json!({ "before": before, "after": after });
        if end < ids.len() {
            paging["next"] = json!(format!("{next_base}?limit={limit}&after={after}"));
        }
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// A plain-HTTP GET (no TLS): what the fake's media fetching knob uses. Returns the status.
pub(super) async fn fetch_status(url: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or("the fake fetches plain http:// URLs only")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let io = async {
        let mut s = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: facebookexternalhit/1.1\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {head:?}"))
    };
    tokio::time::timeout(Duration::from_secs(30), io)
        .await
        .map_err(|_| "timed out".to_owned())?
}
