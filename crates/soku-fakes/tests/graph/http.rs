//! A tiny HTTP/1.1 client for the tests (no TLS, `Connection: close`), so that the fake is
//! exercised over a real socket without another dependency.

use serde_json::Value;
use soku_fakes::graph::{GraphFake, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(code, error_subcode)` of an error answer.
    pub fn code(&self) -> (i64, Option<i64>) {
        let e = &self.body["error"];
        (
            e["code"]
                .as_i64()
                .unwrap_or_else(|| panic!("not an error: {self:?}")),
            e["error_subcode"].as_i64(),
        )
    }

    pub fn id(&self) -> String {
        assert_eq!(self.status, 200, "{self:?}");
        self.body["id"].as_str().expect("id").to_owned()
    }
}

pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> Resp {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut raw = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = at + raw[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&raw[at..end]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&raw[end + 2..end + 2 + n]);
            at = end + 2 + n + 2;
        }
        raw = out;
    }
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Form-encodes pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET {base}/{path}` with the token as the `access_token` parameter.
pub async fn get(g: &GraphFake, path: &str, token: &str) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{}/{path}{sep}access_token={}", g.base(), encode(token));
    request("GET", &url, &[], None).await
}

/// `POST {base}/{path}` with form parameters and the token as a form parameter.
pub async fn post(g: &GraphFake, path: &str, token: &str, pairs: &[(&str, &str)]) -> Resp {
    let mut all = pairs.to_vec();
    all.push(("access_token", token));
    let url = format!("{}/{path}", g.base());
    request("POST", &url, &[], Some(&form(&all))).await
}
