//! `SafeFetcher` against a small image server on 127.0.0.1 that counts the requests it receives
//! and the bytes its streamed bodies produce.
//!
//! Loopback is the only network a test has, so the refused-address cases use two tricks: (1) the
//! default policy refuses the loopback server itself, and the server's request count proves no
//! connection was made; (2) redirects from the loopback server (allowed with `allow_loopback`) to
//! metadata/private addresses must be refused before any connection is tried (a test that tried
//! would hang on an unroutable address or time out, and the timeout would be Retryable, not
//! Permanent). For "a name that resolves to loopback" no public name can be relied on offline
//! (`127.0.0.1.nip.io` and the like need DNS), and `localhost`/`*.localhost` are refused by name
//! before DNS; so the resolver test uses names from this machine's hosts file that resolve only to
//! loopback (the host name, `ip6-localhost`...), and is skipped with a message when there are none.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use soku_core::connector::FailureClass;
use soku_platforms::fetch::SafeFetcher;
use soku_platforms::media::{IMAGE_TYPES, MediaLimits, MediaSource, VIDEO_TYPES};
use soku_platforms::net::NetPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";
const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9";
const HEIC: &[u8] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x08meta";
const HTML: &[u8] =
    b"<!doctype html><html><body>Not an image, whatever the header says.</body></html>";

const ONLY_JPEG_PNG: &[&str] = &["image/jpeg", "image/png"];
const CHUNK: usize = 64 * 1024;

fn limits(max_bytes: u64) -> MediaLimits {
    MediaLimits {
        max_bytes,
        types: IMAGE_TYPES,
    }
}

fn loopback() -> NetPolicy {
    NetPolicy {
        allow_loopback: true,
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    streamed: AtomicU64,
    /// Requests that came with a `Referer`.
    referred: AtomicU64,
}

struct Server {
    port: u16,
    counters: Arc<Counters>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::SeqCst)
    }
    fn streamed(&self) -> u64 {
        self.counters.streamed.load(Ordering::SeqCst)
    }
    fn referred(&self) -> u64 {
        self.counters.referred.load(Ordering::SeqCst)
    }
}

fn typed(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A body of `total` bytes starting with a PNG signature, produced in 64 KB chunks as the client
/// reads, each counted in `streamed`; `Content-Length` only when `declare`.
fn png_stream(counters: Arc<Counters>, total: u64, declare: bool) -> Response {
    let chunks = futures_util::stream::unfold(0u64, move |sent| {
        let counters = counters.clone();
        async move {
            if sent >= total {
                return None;
            }
            let n = (total - sent).min(CHUNK as u64) as usize;
            let mut chunk = vec![0u8; n];
            if sent == 0 {
                let head = PNG.len().min(n);
                chunk[..head].copy_from_slice(&PNG[..head]);
            }
            counters.streamed.fetch_add(n as u64, Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(chunk), sent + n as u64))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    if declare {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    }
    response
}

async fn serve() -> Server {
    let counters = Arc::new(Counters::default());
    let app = Router::new()
        .route("/png", get(|| async { typed("image/png", PNG) }))
        .route("/gif", get(|| async { typed("image/gif", GIF) }))
        .route("/jpeg-as-text", get(|| async { typed("text/plain", JPEG) }))
        .route("/html-as-png", get(|| async { typed("image/png", HTML) }))
        .route("/heic-as-jpeg", get(|| async { typed("image/jpeg", HEIC) }))
        .route(
            "/sized/{n}",
            get(|Path(n): Path<usize>| async move {
                let mut body = vec![0u8; n];
                body[..PNG.len()].copy_from_slice(PNG);
                ([(header::CONTENT_TYPE, "image/png")], body)
            }),
        )
        .route(
            "/stream/{total}",
            get(
                |State(c): State<Arc<Counters>>, Path(total): Path<u64>| async move {
                    png_stream(c, total, false)
                },
            ),
        )
        .route(
            "/declared/{total}",
            get(
                |State(c): State<Arc<Counters>>, Path(total): Path<u64>| async move {
                    png_stream(c, total, true)
                },
            ),
        )
        .route(
            "/redirect/{n}",
            get(|Path(n): Path<u32>| async move {
                // `/redirect/n` is n redirects away from the image.
                let to = if n <= 1 {
                    "/png".to_owned()
                } else {
                    format!("/redirect/{}", n - 1)
                };
                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
            }),
        )
        .route(
            "/to",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                (StatusCode::FOUND, [(header::LOCATION, q["loc"].clone())]).into_response()
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                let mut headers = HeaderMap::new();
                if code == 429 {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
                }
                (
                    StatusCode::from_u16(code).unwrap(),
                    headers,
                    "no image here",
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                typed("image/png", PNG)
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                // The headers and the signature arrive at once; the rest never does.
                let chunks = futures_util::stream::unfold(0u8, |step| async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(PNG[..16].to_vec()), 1)),
                        _ => {
                            tokio::time::sleep(Duration::from_secs(10)).await;
                            None
                        }
                    }
                });
                let mut r = Response::new(Body::from_stream(chunks));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
                r
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            counters.clone(),
            |State(c): State<Arc<Counters>>,
             req: axum::extract::Request,
             next: axum::middleware::Next| async move {
                c.requests.fetch_add(1, Ordering::SeqCst);
                if req.headers().contains_key(header::REFERER) {
                    c.referred.fetch_add(1, Ordering::SeqCst);
                }
                next.run(req).await
            },
        ))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { port, counters }
}

fn fetcher(policy: NetPolicy) -> SafeFetcher {
    SafeFetcher::new(policy, Duration::from_secs(5))
}

/// Asserts a failure's class and code, and that its message names `host` but nothing of the
/// URL's query (tests put a pretend signed token in it).
#[track_caller]
fn assert_failure(
    result: Result<soku_platforms::media::Media, soku_core::connector::PublishError>,
    permanent: bool,
    code: &str,
    host: &str,
) -> String {
    let e = result.expect_err("the fetch must fail");
    assert_eq!(e.code, code, "{e}");
    if permanent {
        assert_eq!(e.class, FailureClass::Permanent, "{e}");
    } else {
        assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    }
    assert!(e.message.contains(host), "{e} should name {host}");
    assert!(
        !e.message.contains("SECRET") && !e.message.contains("sig="),
        "{e} echoes the query"
    );
    e.message
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_without_connecting() {
    let server = serve().await;
    let f = fetcher(NetPolicy::default());
    let p = server.port;
    for (url, host) in [
        (format!("http://127.0.0.1:{p}/png?sig=SECRET"), "127.0.0.1"),
        // Other spellings of the same address, normalised by the URL parser.
        (format!("http://127.1:{p}/png"), "127.0.0.1"),
        (format!("http://0x7f000001:{p}/png"), "127.0.0.1"),
        (format!("http://2130706433:{p}/png"), "127.0.0.1"),
        (format!("http://0.0.0.0:{p}/png"), "0.0.0.0"),
        (format!("http://[::1]:{p}/png"), "[::1]"),
        (
            format!("http://[::ffff:127.0.0.1]:{p}/png"),
            "[::ffff:7f00:1]",
        ),
        (format!("http://[::ffff:7f00:1]:{p}/png"), "[::ffff:7f00:1]"),
        // `localhost` by name, in any case, with the root dot, and its subdomains.
        (format!("http://localhost:{p}/png?sig=SECRET"), "localhost"),
        (format!("http://LOCALHOST.:{p}/png"), "localhost."),
        (
            format!("http://images.localhost:{p}/png"),
            "images.localhost",
        ),
    ] {
        let m = assert_failure(
            f.fetch(&url, &limits(1 << 20)).await,
            true,
            "media_unavailable",
            host,
        );
        assert!(m.contains("not allowed"), "{m}");
    }
    assert_eq!(server.requests(), 0, "no request may reach the server");
}

#[tokio::test]
async fn metadata_private_and_other_schemes_are_refused_before_connecting() {
    let f = fetcher(loopback());
    let started = Instant::now();
    for (url, host) in [
        (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "169.254.169.254",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/",
            "[fd00:ec2::254]",
        ),
        ("http://10.0.0.1/a.png", "10.0.0.1"),
        ("http://192.168.1.1/a.png", "192.168.1.1"),
        ("http://100.64.0.1/a.png", "100.64.0.1"),
        ("http://[fe80::1]/a.png", "[fe80::1]"),
    ] {
        assert_failure(
            f.fetch(url, &limits(1 << 20)).await,
            true,
            "media_unavailable",
            host,
        );
    }
    for url in ["file:///etc/passwd", "ftp://example.com/a.png", "not a url"] {
        let e = f.fetch(url, &limits(1 << 20)).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, "media_unavailable")
        );
    }
    // Nothing was attempted: an unroutable address would have taken until the timeout.
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn with_the_loopback_flag_an_image_is_fetched_and_typed_from_its_bytes() {
    let server = serve().await;
    let f: Arc<dyn MediaSource> = Arc::new(fetcher(loopback()));
    let m = f
        .fetch(&server.url("/png"), &limits(1 << 20))
        .await
        .unwrap();
    assert_eq!((m.mime, m.bytes.as_slice()), ("image/png", PNG));
    // Served as text/plain: the bytes decide.
    let m = f
        .fetch(&server.url("/jpeg-as-text"), &limits(1 << 20))
        .await
        .unwrap();
    assert_eq!((m.mime, m.bytes.as_slice()), ("image/jpeg", JPEG));
    // `localhost` by name is loopback too.
    let m = f
        .fetch(
            &format!("http://localhost:{}/gif", server.port),
            &limits(1 << 20),
        )
        .await
        .unwrap();
    assert_eq!(m.mime, "image/gif");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    let server = serve().await;
    let f = fetcher(loopback());
    let p = server.port;
    for (target, named) in [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254",
        ),
        ("http://10.0.0.1/".to_owned(), "10.0.0.1"),
        ("http://[fd00:ec2::254]/".to_owned(), "fd00:ec2::254"),
        // Not a URL reqwest would follow at all: the 302 itself comes back, and is refused.
        ("file:///etc/passwd".to_owned(), "302"),
    ] {
        let before = server.requests();
        let started = Instant::now();
        let url = format!(
            "{}?sig=SECRET&loc={}",
            server.url("/to"),
            target.replace(':', "%3A").replace('/', "%2F")
        );
        let m = assert_failure(
            f.fetch(&url, &limits(1 << 20)).await,
            true,
            "media_unavailable",
            "127.0.0.1",
        );
        assert!(
            m.contains(named) && (named == "302" || m.contains("not allowed")),
            "{m}"
        );
        assert_eq!(
            server.requests(),
            before + 1,
            "only the redirecting request"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "{target}");
    }

    // IPv4-mapped loopback: loopback in substance, so the flag could let it through; what matters
    // is that the fetcher does what the policy says of that address.
    let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let target = format!("http://[::ffff:127.0.0.1]:{p}/png");
    let url = format!(
        "{}?loc={}",
        server.url("/to"),
        target.replace(':', "%3A").replace('/', "%2F")
    );
    let before = server.requests();
    let result = f.fetch(&url, &limits(1 << 20)).await;
    if loopback().allows(mapped) {
        assert_eq!(result.unwrap().mime, "image/png");
        assert_eq!(server.requests(), before + 2);
    } else {
        assert_failure(result, true, "media_unavailable", "127.0.0.1");
        assert_eq!(server.requests(), before + 1);
    }
    // The default policy refuses it in any case (here as the first URL).
    let e = fetcher(NetPolicy::default())
        .fetch(&target, &limits(1 << 20))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    // A relative redirect on the same allowed host is followed.
    let m = f
        .fetch(&server.url("/to?loc=%2Fgif"), &limits(1 << 20))
        .await
        .unwrap();
    assert_eq!(m.mime, "image/gif");
}

#[tokio::test]
async fn at_most_five_redirects_are_followed() {
    let server = serve().await;
    let f = fetcher(loopback());
    let m = f
        .fetch(&server.url("/redirect/5"), &limits(1 << 20))
        .await
        .unwrap();
    assert_eq!(m.mime, "image/png");
    assert_eq!(server.requests(), 6);

    let m = assert_failure(
        f.fetch(&server.url("/redirect/6"), &limits(1 << 20)).await,
        true,
        "media_unavailable",
        "127.0.0.1",
    );
    assert!(m.contains("more than 5 redirects"), "{m}");
    // The first request and five redirects followed; the sixth is not.
    assert_eq!(server.requests(), 6 + 6);
}

#[tokio::test]
async fn a_followed_redirect_sends_no_referer() {
    let server = serve().await;
    let m = fetcher(loopback())
        .fetch(&server.url("/redirect/2?sig=SECRET"), &limits(1 << 20))
        .await
        .unwrap();
    assert_eq!(m.mime, "image/png");
    assert_eq!(server.requests(), 3);
    assert_eq!(
        server.referred(),
        0,
        "the URL (and its token) went to the next hop"
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_after_resolution() {
    let server = serve().await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut tested = Vec::new();
    for name in [hostname.as_str(), "ip6-localhost", "ip6-loopback"] {
        if name.is_empty() || (name.ends_with("localhost") && !name.starts_with("ip6-")) {
            continue;
        }
        // Only names that resolve, and only to 127.0.0.1 (the server listens there alone).
        let Ok(addrs) = tokio::net::lookup_host((name, server.port)).await else {
            continue;
        };
        let addrs: Vec<_> = addrs.collect();
        if addrs.is_empty()
            || !addrs
                .iter()
                .all(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST)
        {
            continue;
        }
        let url = format!("http://{name}:{}/png?sig=SECRET", server.port);
        // The name passes the URL check (it is not `localhost`) and is stopped by the resolver.
        let before = server.requests();
        let m = assert_failure(
            fetcher(NetPolicy::default())
                .fetch(&url, &limits(1 << 20))
                .await,
            true,
            "media_unavailable",
            name,
        );
        assert!(m.contains("not allowed"), "{m}");
        assert_eq!(server.requests(), before);
        // And it is not a DNS failure: with the loopback flag the same URL reaches the server.
        let media = fetcher(loopback())
            .fetch(&url, &limits(1 << 20))
            .await
            .unwrap();
        assert_eq!(media.mime, "image/png");
        assert_eq!(server.requests(), before + 1);
        tested.push(name.to_owned());
    }
    if tested.is_empty() {
        eprintln!(
            "SKIPPED: no name on this machine resolves only to 127.0.0.1 (host name {hostname:?})"
        );
    } else {
        eprintln!("resolver refusal tested with {tested:?}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_by_its_content_length() {
    let server = serve().await;
    let f = fetcher(loopback());
    let m = assert_failure(
        f.fetch(&server.url("/sized/2000?sig=SECRET"), &limits(1000))
            .await,
        true,
        "media_too_large",
        "127.0.0.1",
    );
    assert!(m.contains("1000 bytes"), "{m}");
    // Exactly the limit is fine.
    let media = f
        .fetch(&server.url("/sized/1000"), &limits(1000))
        .await
        .unwrap();
    assert_eq!(media.bytes.len(), 1000);

    // A declared 100 MB body is refused on its headers, not read.
    let started = Instant::now();
    let m = assert_failure(
        f.fetch(&server.url("/declared/104857600"), &limits(1 << 20))
            .await,
        true,
        "media_too_large",
        "127.0.0.1",
    );
    assert!(m.contains("1 MB"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.streamed() < 16 << 20,
        "{} bytes were produced",
        server.streamed()
    );
}

#[tokio::test]
async fn a_streamed_body_is_cut_off_once_it_passes_the_limit() {
    let server = serve().await;
    let f = fetcher(loopback());
    // Just over the limit, without Content-Length.
    assert_failure(
        f.fetch(&server.url("/stream/1000001"), &limits(1_000_000))
            .await,
        true,
        "media_too_large",
        "127.0.0.1",
    );
    let ok = f
        .fetch(&server.url("/stream/1000000"), &limits(1_000_000))
        .await
        .unwrap();
    assert_eq!((ok.mime, ok.bytes.len()), ("image/png", 1_000_000));

    // 100 MB, chunked: the fetch stops after about 1 MB and the server stops producing.
    let before = server.streamed();
    let started = Instant::now();
    assert_failure(
        f.fetch(&server.url("/stream/104857600"), &limits(1 << 20))
            .await,
        true,
        "media_too_large",
        "127.0.0.1",
    );
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let produced = server.streamed() - before;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Socket buffers let the server run a little ahead of the reader, never to the end.
    assert!(
        produced < 16 << 20,
        "{produced} bytes of 100 MB were produced"
    );
}

#[tokio::test]
async fn the_type_is_judged_on_the_bytes() {
    let server = serve().await;
    let f = fetcher(loopback());
    let m = assert_failure(
        f.fetch(&server.url("/html-as-png?sig=SECRET"), &limits(1 << 20))
            .await,
        true,
        "media_type_not_allowed",
        "127.0.0.1",
    );
    assert!(m.contains("unrecognised"), "{m}");

    let only = MediaLimits {
        max_bytes: 1 << 20,
        types: ONLY_JPEG_PNG,
    };
    let m = assert_failure(
        f.fetch(&server.url("/gif"), &only).await,
        true,
        "media_type_not_allowed",
        "127.0.0.1",
    );
    assert!(
        m.contains("image/gif") && m.contains("image/jpeg, image/png"),
        "{m}"
    );

    // HEIC shares MP4's box structure; it is an image no platform here takes, neither as an
    // image nor as the video the base sniffer would call it.
    let m = assert_failure(
        f.fetch(&server.url("/heic-as-jpeg"), &limits(1 << 20))
            .await,
        true,
        "media_type_not_allowed",
        "127.0.0.1",
    );
    assert!(m.contains("image/heic"), "{m}");
    let video = MediaLimits {
        max_bytes: 1 << 20,
        types: VIDEO_TYPES,
    };
    assert_failure(
        f.fetch(&server.url("/heic-as-jpeg"), &video).await,
        true,
        "media_type_not_allowed",
        "127.0.0.1",
    );

    // A long non-image is refused on its first bytes, before the size limit is reached.
    let text_only = MediaLimits {
        max_bytes: 1 << 20,
        types: &["image/gif"],
    };
    let m = assert_failure(
        f.fetch(&server.url("/stream/104857600"), &text_only).await,
        true,
        "media_type_not_allowed",
        "127.0.0.1",
    );
    assert!(m.contains("image/png"), "{m}");
}

#[tokio::test]
async fn statuses_are_classified() {
    let server = serve().await;
    let f = fetcher(loopback());
    let m = assert_failure(
        f.fetch(&server.url("/status/404?sig=SECRET"), &limits(1 << 20))
            .await,
        true,
        "media_unavailable",
        "127.0.0.1",
    );
    assert!(m.contains("404"), "{m}");
    assert_failure(
        f.fetch(&server.url("/status/403"), &limits(1 << 20)).await,
        true,
        "media_unavailable",
        "127.0.0.1",
    );
    let m = assert_failure(
        f.fetch(&server.url("/status/503"), &limits(1 << 20)).await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
    assert!(m.contains("503"), "{m}");
    let e = f
        .fetch(&server.url("/status/429"), &limits(1 << 20))
        .await
        .unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_failure(
        f.fetch(&server.url("/status/408"), &limits(1 << 20)).await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
}

#[tokio::test]
async fn slow_and_absent_servers_are_retryable() {
    let server = serve().await;
    let f = SafeFetcher::new(loopback(), Duration::from_millis(500));

    let started = Instant::now();
    let m = assert_failure(
        f.fetch(&server.url("/slow?sig=SECRET"), &limits(1 << 20))
            .await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
    assert!(m.contains("in time"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The headers arrive, the body stalls: the timeout covers the body too.
    let started = Instant::now();
    let m = assert_failure(
        f.fetch(&server.url("/slow-body"), &limits(1 << 20)).await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
    assert!(m.contains("in time"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = assert_failure(
        f.fetch(&format!("http://127.0.0.1:{closed}/png"), &limits(1 << 20))
            .await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
    assert!(m.contains("could not be reached"), "{m}");
}

/// Media held in memory stays within the fetcher's budget: a fetch that would pass it waits for
/// room, fails retryably when none comes within its timeout, and succeeds once the media held
/// before is dropped. A file uses only its own size of the budget, whatever it reserved.
#[tokio::test]
async fn held_media_stays_within_the_memory_budget() {
    let server = serve().await;
    let f = SafeFetcher::new(loopback(), Duration::from_millis(500)).with_memory_budget(100 * 1024);
    let big = limits(1024 * 1024);

    // 60 KB declared: reserves and keeps 60 KB of 100.
    let first = f.fetch(&server.url("/sized/60000"), &big).await.unwrap();
    assert_eq!(first.bytes.len(), 60_000);
    // A second 60 KB does not fit while the first is held.
    let started = std::time::Instant::now();
    assert_failure(
        f.fetch(&server.url("/sized/60000?sig=SECRET"), &big).await,
        false,
        "media_fetch_failed",
        "127.0.0.1",
    );
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "it waited for room"
    );
    // Small files still fit beside it; clones share one reservation.
    let small = f.fetch(&server.url("/png"), &big).await.unwrap();
    let copy = small.clone();
    drop(small);
    drop(copy);
    // Dropping the first gives its room back.
    drop(first);
    let second = f.fetch(&server.url("/sized/60000"), &big).await.unwrap();
    drop(second);
    // Without Content-Length the whole limit is reserved while reading (here capped at the
    // budget), then all but the file's size is given back: 60 KB more fit beside it.
    let streamed = f.fetch(&server.url("/stream/20000"), &big).await.unwrap();
    assert_eq!(streamed.bytes.len(), 20_000);
    let beside = f.fetch(&server.url("/sized/60000"), &big).await.unwrap();
    drop((beside, streamed));
}
