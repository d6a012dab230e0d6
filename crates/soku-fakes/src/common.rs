//! What every fake shares: a loopback listener, scripted faults, and small request helpers.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running fake.
pub struct Fake {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Serves `router` on a free loopback port, with `faults` applied before it.
    pub async fn serve(router: Router, faults: Faults) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let faults = faults.clone();
                async move { faults.apply(req, next).await }
            },
        ));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { url, task }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A scripted failure.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status, headers and body instead of handling the request.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Handle the request (its effect stands), then hold the answer back this long: a client
    /// with a shorter timeout sees a timeout after sending.
    DelayAfterEffect(Duration),
}

#[derive(Debug, Clone)]
struct Scripted {
    method: String,
    path_prefix: String,
    fault: Fault,
}

/// Failures served to the next requests that match, each once, in order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Scripted>>>,
}

impl Faults {
    /// The next `method` request whose path starts with `path_prefix` gets `fault`.
    pub fn push(&self, method: &str, path_prefix: &str, fault: Fault) {
        self.queue.lock().unwrap().push_back(Scripted {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_owned(),
            fault,
        });
    }

    /// Shorthand for `Fault::Reply` with a JSON body.
    pub fn reply(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        headers: &[(&str, &str)],
        body: serde_json::Value,
    ) {
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        self.push(
            method,
            path_prefix,
            Fault::Reply {
                status,
                headers,
                body: body.to_string(),
            },
        );
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().unwrap().len()
    }

    fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut q = self.queue.lock().unwrap();
        let i = q
            .iter()
            .position(|s| s.method == method && path.starts_with(&s.path_prefix))?;
        q.remove(i).map(|s| s.fault)
    }

    async fn apply(&self, req: Request, next: Next) -> Response {
        match self.take(req.method().as_str(), req.uri().path()) {
            None => next.run(req).await,
            Some(Fault::Reply {
                status,
                headers,
                body,
            }) => {
                let mut r = Response::new(Body::from(body));
                *r.status_mut() = StatusCode::from_u16(status).unwrap();
                for (k, v) in headers {
                    r.headers_mut().insert(
                        HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        HeaderValue::from_str(&v).unwrap(),
                    );
                }
                r
            }
            Some(Fault::DelayAfterEffect(d)) => {
                let r = next.run(req).await;
                tokio::time::sleep(d).await;
                r
            }
        }
    }
}

/// The bearer token of a request, if it has one in the `Authorization: Bearer` form.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// HTTP Basic credentials (`client_id`, `client_secret`), if the request has them.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The PKCE S256 challenge of a verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// A JSON answer with a status.
pub fn json(status: u16, body: serde_json::Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// A random token (fakes issue these as access and refresh tokens).
pub fn token(prefix: &str) -> String {
    use sha2::Digest;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{prefix}{n}{:?}", std::time::SystemTime::now());
    let hex: String = sha2::Sha256::digest(seed)
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{hex}")
}

/// `application/x-www-form-urlencoded` decoding of one name or value (`+` is a space; a `%`
/// not followed by two hex digits stays as it is).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A form body's fields, decoded (a repeated name keeps its last value).
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
