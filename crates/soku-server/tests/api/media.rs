//! Hosted media (spec 8.1): uploads, imports by URL, the hosted files (ranges, caching), the
//! listing, deletion, idempotency, and every kind of bad input, each leaving nothing stored.

use crate::posts::submit;
use crate::util::{TestApp, expect_error};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use soku_fakes::media_files;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) async fn upload(
    app: &TestApp,
    key: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    app.http
        .post(app.url("/v1/media/uploads"))
        .header("soku-api-key", key)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under the media directory (spool included), relative paths, sorted.
fn stored_files(app: &TestApp) -> Vec<String> {
    let root = app.media_dir();
    let mut out = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn an_uploaded_image_is_hosted_with_its_facts_and_served_with_ranges_and_caching() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let png = media_files::png(640, 480);
    let body = created(upload(&app, &key, "image/png", png.clone()).await).await;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("med_") && id.len() == 28, "{id}");
    assert_eq!(body["kind"], "image");
    assert_eq!(body["mimeType"], "image/png");
    assert_eq!(body["size"], png.len());
    assert_eq!(body["sha256"], sha256_hex(&png));
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert!(body.get("durationSeconds").is_none(), "{body}");
    let url = body["url"].as_str().unwrap();
    assert_eq!(url, app.url(&format!("/media/{id}/image.png")));

    // The hosted file: no key needed.
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], png.len().to_string().as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["etag"], format!("\"{}\"", sha256_hex(&png)).as_str());
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());

    // One range.
    let r = app
        .http
        .get(url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", png.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &png[10..20]);
    // The last bytes.
    let r = app
        .http
        .get(url)
        .header("range", "bytes=-8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &png[png.len() - 8..]);
    // Outside the file.
    let r = app
        .http
        .get(url)
        .header("range", format!("bytes={}-", png.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", png.len()).as_str()
    );
    expect_error(r, 416, "validation_error", None).await;
    // A stale If-Range gets the whole file.
    let r = app
        .http
        .get(url)
        .header("range", "bytes=0-1")
        .header("if-range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Revalidation.
    let r = app
        .http
        .get(url)
        .header("if-none-match", h["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // HEAD: the headers, no body.
    let r = app.http.head(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        png.len().to_string().as_str()
    );
    assert!(r.bytes().await.unwrap().is_empty());
    // Another file name, or an unknown id: 404 in the envelope.
    let r = app
        .http
        .get(url.replace("image.png", "image.jpg"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found", None).await;
    let r = app
        .http
        .get(app.url("/media/med_000000000000000000000000/image.png"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found", None).await;
}

#[tokio::test]
async fn hosted_files_compare_etags_weakly_and_read_ranges_as_http_says() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let png = media_files::png(64, 48);
    let body = created(upload(&app, &key, "image/png", png.clone()).await).await;
    let url = body["url"].as_str().unwrap();
    let etag = format!("\"{}\"", sha256_hex(&png));

    // If-None-Match compares weakly: W/"<etag>" matches, in a list or alone; a 304 of GET or
    // HEAD declares no length.
    for given in [
        format!("W/{etag}"),
        format!("\"other\", W/{etag}"),
        etag.clone(),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = app
                .http
                .request(method.clone(), url)
                .header("if-none-match", &given)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 304, "{method} {given}");
            assert_eq!(r.headers()["etag"], etag.as_str());
            assert!(
                r.headers().get("content-length").is_none(),
                "{method} {given}: {:?}",
                r.headers()
            );
        }
    }
    let r = app
        .http
        .get(url)
        .header("if-none-match", "W/\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // If-Range compares strongly: a weak tag gets the whole file.
    let r = app
        .http
        .get(url)
        .header("range", "bytes=0-1")
        .header("if-range", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The range unit in any case.
    let r = app
        .http
        .get(url)
        .header("range", "BYTES=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-9/{}", png.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &png[..10]);
    // Two Range fields: the whole file, not the first range.
    let r = app
        .http
        .get(url)
        .header("range", "bytes=0-9")
        .header("range", "bytes=20-29")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-range").is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
}

#[tokio::test]
async fn videos_of_every_container_are_read_for_duration_and_dimensions() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    for (declared, bytes, mime, file) in [
        (
            "video/mp4",
            media_files::mp4(1080, 1920, 12_500, 4096),
            "video/mp4",
            "video.mp4",
        ),
        (
            "application/octet-stream",
            media_files::mp4_moov_last(1280, 720, 3_000, 100_000),
            "video/mp4",
            "video.mp4",
        ),
        (
            "video/quicktime",
            media_files::mov(1920, 1080, 7_250),
            "video/quicktime",
            "video.mov",
        ),
        (
            "video/webm",
            media_files::webm(640, 360, 30_000),
            "video/webm",
            "video.webm",
        ),
        (
            "video/x-matroska",
            media_files::mkv(320, 240, 1_500),
            "video/x-matroska",
            "video.mkv",
        ),
    ] {
        let body = created(upload(&app, &key, declared, bytes.clone()).await).await;
        assert_eq!(body["kind"], "video", "{body}");
        assert_eq!(body["mimeType"], mime, "{body}");
        assert!(body["url"].as_str().unwrap().ends_with(file), "{body}");
        let r = app
            .http
            .get(body["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], mime);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    let listed: Value = app
        .get_with_key("/v1/media", &key)
        .await
        .json()
        .await
        .unwrap();
    let facts: Vec<(u64, u64, f64)> = listed["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["width"].as_u64().unwrap(),
                m["height"].as_u64().unwrap(),
                m["durationSeconds"].as_f64().unwrap(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        facts,
        [
            (320, 240, 1.5),
            (640, 360, 30.0),
            (1920, 1080, 7.25),
            (1280, 720, 3.0),
            (1080, 1920, 12.5)
        ]
    );
}

/// A movie header of version 1 (64-bit times), which the container reader would misread, leaves
/// duration and dimensions unknown instead of wrong.
#[tokio::test]
async fn a_version_1_movie_header_leaves_the_facts_unknown_rather_than_wrong() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let mut mp4 = media_files::mp4(640, 480, 5_000, 1000);
    let at = mp4.windows(4).position(|w| w == b"mvhd").unwrap();
    mp4[at + 4] = 1;
    let body = created(upload(&app, &key, "video/mp4", mp4).await).await;
    assert_eq!(body["kind"], "video");
    assert!(body.get("durationSeconds").is_none(), "{body}");
    assert_eq!(
        (body["width"].clone(), body["height"].clone()),
        (Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn the_same_file_twice_is_one_media_and_a_reused_key_with_another_file_is_a_conflict() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let png = media_files::png(10, 10);
    let first = created(upload(&app, &key, "image/png", png.clone()).await).await;
    let r = upload(&app, &key, "image/png", png.clone()).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let again = created(r).await;
    assert_eq!(first, again);

    let send = |bytes: Vec<u8>| {
        app.http
            .post(app.url("/v1/media/uploads"))
            .header("soku-api-key", &key)
            .header("content-type", "application/octet-stream")
            .header("idempotency-key", "file-1")
            .body(bytes)
            .send()
    };
    let a = created(send(media_files::gif(4, 4)).await.unwrap()).await;
    let r = send(media_files::gif(4, 4)).await.unwrap();
    assert_eq!(created(r).await["id"], a["id"]);
    let r = send(media_files::gif(5, 5)).await.unwrap();
    expect_error(r, 409, "idempotency_conflict", None).await;
    // One file each, and nothing else stored (the conflicting upload's copy is gone).
    assert_eq!(stored_files(&app).len(), 2, "{:?}", stored_files(&app));
}

/// `image/jpg` and `image/pjpeg`, which many clients send for a JPEG, are taken as JPEG's type;
/// the file's real type is still read from its bytes (a video sent so is refused).
#[tokio::test]
async fn common_misspellings_of_the_jpeg_type_are_taken() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    for alias in ["image/jpg", "image/pjpeg"] {
        let r = upload(
            &app,
            &key,
            alias,
            media_files::jpeg(8 + alias.len() as u32, 8),
        )
        .await;
        assert_eq!(r.status(), 201, "{alias}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["mimeType"], "image/jpeg", "{alias}: {body}");
        let r = upload(&app, &key, alias, media_files::mp4(16, 16, 1000, 64)).await;
        let body = expect_error(r, 400, "upload_failed", None).await;
        assert_eq!(
            body["error"]["details"]["reason"], "unsupported_type",
            "{alias}"
        );
    }
}

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_leave_nothing_stored() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;

    // Lying Content-Type: HTML sent as a PNG.
    let html = b"<html><body>not an image, long enough to be sniffed at all......</body></html>";
    let r = upload(&app, &key, "image/png", html.to_vec()).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "unsupported_type");
    // A PNG sent as a video.
    let r = upload(&app, &key, "video/mp4", media_files::png(8, 8)).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "unsupported_type");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/png"),
        "{body}"
    );
    // A type that is not media.
    let r = upload(&app, &key, "text/plain", b"hello".to_vec()).await;
    expect_error(r, 415, "unsupported_media_type", None).await;
    // Empty.
    let r = upload(&app, &key, "image/png", Vec::new()).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "empty");
    // An unsupported container (AVI), and a HEIC image (ISO-BMFF, but not video).
    let mut avi = b"RIFF\x00\x10\x00\x00AVI LIST".to_vec();
    avi.resize(200, 0);
    let r = upload(&app, &key, "application/octet-stream", avi).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "unsupported_type");
    let mut heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec();
    heic.resize(300, 0);
    let r = upload(&app, &key, "application/octet-stream", heic).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/heic"),
        "{body}"
    );
    // An image bomb: a tiny file declaring 100,000 x 100,000 pixels.
    let bomb = media_files::png_bomb(100_000, 100_000);
    assert!(bomb.len() < 200);
    let r = upload(&app, &key, "image/png", bomb).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "too_large");
    // A video cut short: its index is missing.
    let mp4 = media_files::mp4_moov_last(640, 480, 5_000, 20_000);
    let r = upload(&app, &key, "video/mp4", mp4[..mp4.len() - 300].to_vec()).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "invalid_file");
    // An image over 50 MB: refused by its declared length after the first bytes.
    let mut big = media_files::png(4, 4);
    big.resize(51 * 1024 * 1024, 0);
    let r = upload(&app, &key, "image/png", big).await;
    let body = expect_error(r, 413, "payload_too_large", None).await;
    assert_eq!(body["error"]["details"]["reason"], "too_large");

    // Nothing of these is stored, and the server still serves.
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
    created(upload(&app, &key, "image/png", media_files::png(2, 2)).await).await;
}

/// What raw HTTP/1.1 can send and reqwest cannot: a lying Content-Length, none at all, a body that
/// stops.
async fn raw_upload(
    app: &TestApp,
    key: &str,
    head_extra: &str,
    body: &[u8],
    close: bool,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/media/uploads HTTP/1.1\r\nHost: {addr}\r\nsoku-api-key: {key}\r\n\
         Content-Type: application/octet-stream\r\n{head_extra}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_body_that_lies_about_its_length_or_stops_is_refused_and_nothing_remains() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    // Above every limit by its Content-Length: refused before the body is read.
    let answer = raw_upload(&app, &key, "Content-Length: 600000000\r\n", b"", false).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // No Content-Length (chunked).
    let answer = raw_upload(
        &app,
        &key,
        "Transfer-Encoding: chunked\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Content-Length"), "{answer}");
    // A body shorter than its Content-Length, then the connection closes.
    let png = media_files::png(32, 32);
    let answer = raw_upload(
        &app,
        &key,
        &format!("Content-Length: {}\r\n", png.len() + 1000),
        &png,
        true,
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // A client that stops sending: the idle timeout ends the upload (408 semantics, 400 code),
    // with spec 8.1's `upload_failed` and reason `timeout`, as an import that stalls.
    let started = std::time::Instant::now();
    let answer = raw_upload(
        &app,
        &key,
        &format!("Content-Length: {}\r\n", png.len() + 1000),
        &png,
        false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("stopped arriving"), "{answer}");
    assert!(
        answer.contains(r#""code":"upload_failed""#) && answer.contains(r#""reason":"timeout""#),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        crate::util::eventually(Duration::from_secs(5), || async {
            stored_files(&app).is_empty()
        })
        .await,
        "{:?}",
        stored_files(&app)
    );
}

/// A file server on loopback for imports: `/file.png`, `/big` (declares 600 MB), `/endless.png`
/// (an image that never ends, without a length), `/html`,
/// `/missing` (404), `/stall` (sends a header, then nothing), `/to-metadata` (redirects to the
/// cloud metadata address), `/to/<path>` (redirects here).
/// Returns the base URL and how many times `/file.png` was served.
async fn file_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let png = media_files::png(120, 80);
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/file.png",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let png = png.clone();
                async move { ([(header::CONTENT_TYPE, "text/plain")], png) }
            }),
        )
        .route(
            "/big",
            get(|| async {
                // Declares 600 MB, sends a PNG's first bytes, then waits.
                let stream = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(media_files::png(4, 4)))
                })
                .chain(futures_util::stream::pending());
                let mut r = Response::new(axum::body::Body::from_stream(stream));
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, "600000000".parse().unwrap());
                r
            }),
        )
        .route(
            "/html",
            get(|| async {
                "<!doctype html><html><body>a page, not an image at all...</body></html>"
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/endless.png",
            get(|| async {
                // A PNG's header, then zeros forever, with no Content-Length.
                let head = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(media_files::png(4, 4)))
                });
                let zeros = futures_util::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 1 << 20]))
                });
                Response::new(axum::body::Body::from_stream(head.chain(zeros)))
            }),
        )
        .route(
            "/stall",
            get(|| async {
                let stream = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(
                        media_files::png(4, 4)[..40].to_vec(),
                    ))
                })
                .chain(futures_util::stream::pending());
                Response::new(axum::body::Body::from_stream(stream))
            }),
        )
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/to/{*path}",
            get(
                |axum::extract::Path(path): axum::extract::Path<String>| async move {
                    Redirect::temporary(&format!("/{path}")).into_response()
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

use futures_util::StreamExt;

#[tokio::test]
async fn imports_fetch_once_and_fail_with_the_reasons_of_the_spec() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let (files, _) = file_server().await;
    let import = |url: String| {
        let (app, key) = (&app, &key);
        async move {
            app.post_json("/v1/media", key, &json!({ "url": url }))
                .await
        }
    };
    // Through a redirect; the type comes from the bytes, not the server's text/plain.
    let body = created(import(format!("{files}/to/file.png")).await).await;
    assert_eq!(body["mimeType"], "image/png");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(120), Some(80))
    );
    assert_eq!(body["sourceUrl"], format!("{files}/to/file.png"));
    // The same URL again: the same media.
    let r = import(format!("{files}/to/file.png")).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(created(r).await["id"], body["id"]);

    for (path, status, code, reason) in [
        ("/big", 400, "upload_failed", "too_large"),
        ("/endless.png", 400, "upload_failed", "too_large"),
        ("/html", 400, "upload_failed", "unsupported_type"),
        ("/missing", 400, "upload_failed", "unreachable"),
        ("/stall", 400, "upload_failed", "timeout"),
        ("/to-metadata", 400, "upload_failed", "forbidden_address"),
    ] {
        let r = import(format!("{files}{path}")).await;
        let body = expect_error(r, status, code, None).await;
        assert_eq!(body["error"]["details"]["reason"], reason, "{path}: {body}");
    }
    // Addresses refused before any connection; schemes that are not http(s).
    let r = import("http://10.1.2.3/file.png".into()).await;
    let body = expect_error(r, 400, "upload_failed", None).await;
    assert_eq!(body["error"]["details"]["reason"], "forbidden_address");
    let r = import("ftp://example.com/file.png".into()).await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["field"], "url");
    let r = app.post_json("/v1/media", &key, &json!({ "url": 5 })).await;
    expect_error(r, 400, "validation_error", None).await;
    // Only the one import is stored.
    assert_eq!(stored_files(&app).len(), 1, "{:?}", stored_files(&app));
}

#[tokio::test]
async fn an_import_urls_user_and_password_are_not_kept_nor_passed_on_by_a_redirect() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    // `/start` redirects to `/file.png`, which notes the `Referer` it was sent.
    let referers = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let seen = referers.clone();
    let png = media_files::png(8, 8);
    let files = Router::new()
        .route("/start", get(|| async { Redirect::temporary("/file.png") }))
        .route(
            "/file.png",
            get(move |headers: axum::http::HeaderMap| {
                seen.lock().unwrap().push(
                    headers
                        .get(header::REFERER)
                        .map(|v| v.to_str().unwrap().to_owned()),
                );
                let png = png.clone();
                async move { png }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, files).await.unwrap() });

    let url = format!("http://user:hunter2@{host}/start?sig=SECRET");
    let body = created(
        app.post_json("/v1/media", &key, &json!({ "url": url }))
            .await,
    )
    .await;
    let stripped = format!("http://{host}/start?sig=SECRET");
    assert_eq!(body["sourceUrl"], stripped);
    assert_eq!(*referers.lock().unwrap(), vec![None]);
    let id = body["id"].as_str().unwrap();
    let one: Value = app
        .get_with_key(&format!("/v1/media/{id}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["sourceUrl"], stripped);
    let page: Value = app
        .get_with_key("/v1/media", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["media"][0]["sourceUrl"], stripped);
    assert!(!page.to_string().contains("hunter2"), "{page}");
    // The same URL again is the same import.
    let r = app
        .post_json("/v1/media", &key, &json!({ "url": url }))
        .await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(created(r).await["sourceUrl"], stripped);
}

#[tokio::test]
async fn media_are_listed_per_user_and_mode_and_deleted_unless_a_scheduled_post_uses_them() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let (_, other) = app.subscriber().await;
    let (_, test_key) = app.test_subscriber().await;
    let mut ids = Vec::new();
    for n in 1..=5u32 {
        let body = created(upload(&app, &key, "image/png", media_files::png(n, n)).await).await;
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // Pages of two, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/media?limit=2&cursor={c}"),
            None => "/v1/media?limit=2".into(),
        };
        let page: Value = app.get_with_key(&path, &key).await.json().await.unwrap();
        for m in page["media"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let r = app.get_with_key("/v1/media?limit=0", &key).await;
    expect_error(r, 400, "validation_error", None).await;
    // Another user, or the same user's test key, sees none of them.
    for k in [&other, &test_key] {
        let page: Value = app.get_with_key("/v1/media", k).await.json().await.unwrap();
        assert_eq!(page["media"], json!([]));
        let r = app.get_with_key(&format!("/v1/media/{}", ids[0]), k).await;
        expect_error(r, 404, "not_found", None).await;
        let r = app
            .http
            .delete(app.url(&format!("/v1/media/{}", ids[0])))
            .header("soku-api-key", k.as_str())
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "not_found", None).await;
    }
    let one: Value = app
        .get_with_key(&format!("/v1/media/{}", ids[0]), &key)
        .await
        .json()
        .await
        .unwrap();
    let url = one["url"].as_str().unwrap().to_owned();

    let delete = |id: String, k: String| {
        let app = &app;
        async move {
            app.http
                .delete(app.url(&format!("/v1/media/{id}")))
                .header("soku-api-key", k)
                .send()
                .await
                .unwrap()
        }
    };
    // Deleting works once, and the hosted URL is gone.
    let r = delete(ids[0].clone(), key.clone()).await;
    assert_eq!(r.status(), 200);
    let r = app.http.get(&url).send().await.unwrap();
    expect_error(r, 404, "not_found", None).await;
    let r = delete(ids[0].clone(), key.clone()).await;
    expect_error(r, 404, "not_found", None).await;

    // A scheduled post names a file: it stays until the post is canceled (test mode, whose
    // simulated accounts need no connecting).
    let file = created(upload(&app, &test_key, "image/png", media_files::png(3, 7)).await).await;
    let (file_id, file_url) = (file["id"].as_str().unwrap(), file["url"].as_str().unwrap());
    let post = app
        .post_json(
            "/v1/posts",
            &test_key,
            &json!({"post": {"content": {"text": "with a hosted image", "mediaType": "image",
                        "imageUrls": [file_url], "platform": ["x"]}},
                    "scheduledTime": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    let post: Value = post.json().await.unwrap();
    let post_id = post["postSubmissionId"]
        .as_str()
        .expect("accepted")
        .to_owned();
    let r = delete(file_id.to_owned(), test_key.clone()).await;
    let body = expect_error(r, 409, "conflict", None).await;
    assert_eq!(body["error"]["details"]["id"], file_id);
    let r = app
        .http
        .delete(app.url(&format!("/v1/posts/{post_id}")))
        .header("soku-api-key", &test_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = delete(file_id.to_owned(), test_key.clone()).await;
    assert_eq!(r.status(), 200);

    // Only the file's own hosted URL names it: the same path on another host is an outside URL
    // (imported when the post publishes) and keeps nothing from being deleted.
    let file = created(upload(&app, &test_key, "image/png", media_files::png(3, 8)).await).await;
    let file_id = file["id"].as_str().unwrap();
    let elsewhere = file["url"]
        .as_str()
        .unwrap()
        .replace(&app.url(""), "https://cdn.example.com");
    assert_ne!(elsewhere, file["url"].as_str().unwrap());
    let post = app
        .post_json(
            "/v1/posts",
            &test_key,
            &json!({"post": {"content": {"text": "from elsewhere", "mediaType": "image",
                        "imageUrls": [elsewhere], "platform": ["x"]}},
                    "scheduledTime": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(post.status(), 200);
    let r = delete(file_id.to_owned(), test_key.clone()).await;
    assert_eq!(r.status(), 200);
}

/// A file's deletion and a post naming it, sent at the same moment, never both succeed: either
/// the post is accepted and the file stays (409), or the file is gone and the post is refused.
#[tokio::test]
async fn deleting_a_file_while_a_post_names_it_never_loses_the_post() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (mut posted, mut deleted) = (0, 0);
    for n in 0..12u32 {
        let file = created(upload(&app, &key, "image/png", media_files::png(5 + n, 5)).await).await;
        let (id, url) = (file["id"].as_str().unwrap(), file["url"].as_str().unwrap());
        let body = json!({"post": {"content": {"text": "racing a deletion", "mediaType": "image",
            "imageUrls": [url], "platform": ["x"]}}, "scheduledTime": at});
        let (post, gone) = tokio::join!(
            app.post_json("/v1/posts", &key, &body),
            app.http
                .delete(app.url(&format!("/v1/media/{id}")))
                .header("soku-api-key", key.as_str())
                .send()
        );
        let gone = gone.unwrap();
        match (post.status().as_u16(), gone.status().as_u16()) {
            (200, 409) => {
                posted += 1;
                let r = app.get_with_key(&format!("/v1/media/{id}"), &key).await;
                assert_eq!(r.status(), 200, "an accepted post's file stays");
            }
            (400, 200) => {
                deleted += 1;
                let body = expect_error(post, 400, "validation_error", None).await;
                assert_eq!(
                    body["error"]["details"]["field"],
                    "post.content.imageUrls[0]"
                );
            }
            (p, d) => panic!("round {n}: the post answered {p} and the deletion {d}"),
        }
    }
    eprintln!("posted first {posted} times, deleted first {deleted} times");
}

/// Hosted files in a post are checked against each target platform's rules before the post is
/// accepted (test mode here: its simulated platforms need no connected account).
#[tokio::test]
async fn hosted_files_in_posts_are_checked_against_each_platforms_rules() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let (_, other) = app.test_subscriber().await;
    // A 3-minute video: fine for Threads (5 minutes), too long for X (140 s).
    let long = created(
        upload(
            &app,
            &key,
            "video/mp4",
            media_files::mp4(1080, 1920, 180_000, 2000),
        )
        .await,
    )
    .await;
    let url = long["url"].as_str().unwrap();
    let post = |platforms: Value, url: &str, k: &str| {
        let body = json!({"post": {"content": {"text": "a clip", "mediaType": "video", "videoUrl": url,
            "platform": platforms}}});
        let (app, k) = (&app, k.to_owned());
        async move { app.post_json("/v1/posts", &k, &body).await }
    };
    let r = post(json!(["threads"]), url, &key).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post(json!(["threads", "x"]), url, &key).await;
    let body = expect_error(r, 400, "validation_error", None).await;
    let details = &body["error"]["details"];
    assert_eq!(details["platform"], "x", "{body}");
    assert_eq!(details["field"], "post.content.videoUrl", "{body}");
    assert_eq!(details["rule"], "max_duration", "{body}");
    assert_eq!(details["reason"], "media_rule", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('X') && message.contains("140"),
        "{message}"
    );

    // An image in mediaUrls: the field names where it was.
    let png = created(upload(&app, &key, "image/png", media_files::png(100, 100)).await).await;
    let body = json!({"post": {"content": {"text": "pic", "mediaType": "image",
        "mediaUrls": ["https://example.com/outside.jpg", png["url"]], "platform": ["instagram"]}}});
    let r = app.post_json("/v1/posts", &key, &body).await;
    // Instagram takes JPEG only.
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(
        body["error"]["details"]["field"], "post.content.mediaUrls[1]",
        "{body}"
    );
    assert_eq!(body["error"]["details"]["rule"], "type", "{body}");

    // An image as a video post's video would be published as a photo where a network takes
    // both (X): refused, from `videoUrl` or from `mediaUrls`.
    for (content, field) in [
        (
            json!({"text": "clip", "mediaType": "video", "videoUrl": png["url"], "platform": ["x"]}),
            "post.content.videoUrl",
        ),
        (
            json!({"text": "clip", "mediaType": "video", "mediaUrls": [png["url"]], "platform": ["x"]}),
            "post.content.mediaUrls[0]",
        ),
    ] {
        let r = app
            .post_json("/v1/posts", &key, &json!({"post": {"content": content}}))
            .await;
        let body = expect_error(r, 400, "validation_error", None).await;
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("is an image"), "{message}");
    }

    // Someone else's hosted file, or a deleted one, is not the caller's to post.
    let r = post(json!(["threads"]), url, &other).await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "not_found", "{body}");
    let gone = url.replace(long["id"].as_str().unwrap(), "med_000000000000000000000000");
    let r = post(json!(["threads"]), &gone, &key).await;
    expect_error(r, 400, "validation_error", None).await;
}

/// Polls the submission until no target is queued or publishing.
/// The target of `platform` in a post.
fn target_of(post: &Value, platform: &str) -> Value {
    post["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} target: {post}"))
        .clone()
}

async fn settled(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let post: Value = app
            .get_with_key(&format!("/v1/posts/{id}"), key)
            .await
            .json()
            .await
            .unwrap();
        let busy = post["targets"].as_array().is_none_or(|ts| {
            ts.iter()
                .any(|t| matches!(t["status"].as_str(), Some("queued" | "publishing")))
        });
        if !busy {
            return post;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the post did not settle: {post}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An outside URL in a post is imported once for the whole submission; every simulated
/// platform receives the one hosted copy and says what it got; a media failure is injectable.
#[tokio::test]
async fn outside_media_are_imported_once_per_post_and_test_mode_shows_what_each_platform_got() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let (files, png_hits) = file_server().await;
    let body = json!({"post": {"content": {"text": "one picture, three networks", "mediaType": "image",
        "imageUrls": [format!("{files}/file.png")], "platform": ["x", "threads", "bluesky"]}}});
    let r = app.post_json("/v1/posts", &key, &body).await;
    let accepted: Value = r.json().await.unwrap();
    let id = accepted["postSubmissionId"].as_str().unwrap();
    let post = settled(&app, &key, id).await;
    for t in post["targets"].as_array().unwrap() {
        assert_eq!(t["status"], "published", "{post}");
    }
    assert_eq!(
        png_hits.load(Ordering::SeqCst),
        1,
        "imported once for the three targets"
    );
    let mut ids = Vec::new();
    for platform in ["x", "threads", "bluesky"] {
        let got: Value = app
            .get_with_key(&format!("/v1/sandbox/{platform}/posts"), &key)
            .await
            .json()
            .await
            .unwrap();
        let media = &got["posts"][0]["media"][0];
        assert_eq!(media["kind"], "image", "{got}");
        assert_eq!(media["mimeType"], "image/png", "{got}");
        assert_eq!(
            (media["width"].as_u64(), media["height"].as_u64()),
            (Some(120), Some(80))
        );
        assert_eq!(
            media["sha256"],
            sha256_hex(&media_files::png(120, 80)),
            "{got}"
        );
        assert!(
            media["url"]
                .as_str()
                .unwrap()
                .starts_with(&app.url("/media/med_")),
            "{got}"
        );
        ids.push(media["mediaId"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one copy serves every target: {ids:?}");
    // The copy is the user's media, naming where it came from.
    let listed: Value = app
        .get_with_key("/v1/media", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["media"][0]["id"], ids[0].as_str());
    assert_eq!(listed["media"][0]["sourceUrl"], format!("{files}/file.png"));

    // A hosted video whose processing the platform fails; an outside URL that cannot be had.
    let video = created(
        upload(
            &app,
            &key,
            "video/mp4",
            media_files::mp4(720, 1280, 20_000, 5000),
        )
        .await,
    )
    .await;
    let body = json!({"post": {"content": {"text": "[fail:media_processing@threads]", "mediaType": "video",
        "videoUrl": video["url"], "platform": ["x", "threads"]}}});
    let id = submit(&app, &key, &body).await;
    let post = settled(&app, &key, &id).await;
    let by = |p: &str| target_of(&post, p);
    assert_eq!(by("x")["status"], "published", "{post}");
    assert_eq!(by("threads")["status"], "failed", "{post}");
    assert_eq!(
        by("threads")["error"]["code"],
        "media_processing_failed",
        "{post}"
    );
    let got: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    let media = &got["posts"][0]["media"][0];
    assert_eq!(media["mediaId"], video["id"], "{got}");
    assert_eq!(media["durationSeconds"], 20.0, "{got}");
    assert_eq!(media["size"], video["size"], "{got}");

    let body = json!({"post": {"content": {"text": "gone", "mediaType": "image",
        "imageUrls": [format!("{files}/missing")], "platform": ["x", "threads"]}}});
    let id = submit(&app, &key, &body).await;
    let post = settled(&app, &key, &id).await;
    for t in post["targets"].as_array().unwrap() {
        assert_eq!(t["status"], "failed", "{post}");
        assert_eq!(t["error"]["code"], "upload_failed", "{post}");
        assert!(
            t["error"]["message"].as_str().unwrap().contains("404"),
            "{post}"
        );
    }
}

/// An outside file is checked against each target platform's media rules once imported, as a
/// hosted file is at submission: a target whose platform refuses it fails with `media_rule`
/// and nothing is sent to that platform; the others publish.
#[tokio::test]
async fn outside_media_that_break_a_platforms_rules_fail_that_target_before_it_is_sent() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let (files, _) = file_server().await;
    let body = json!({"post": {"content": {"text": "a PNG for Instagram", "mediaType": "image",
        "imageUrls": [format!("{files}/file.png?signature=s3cret")], "platform": ["instagram", "x"]}}});
    let id = submit(&app, &key, &body).await;
    let post = settled(&app, &key, &id).await;
    let by = |p: &str| target_of(&post, p);
    assert_eq!(by("x")["status"], "published", "{post}");
    let instagram = by("instagram");
    assert_eq!(instagram["status"], "failed", "{post}");
    assert_eq!(instagram["error"]["code"], "media_rule", "{post}");
    let message = instagram["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Instagram") && message.contains(&format!("{files}/file.png")),
        "{message}"
    );
    assert!(
        !message.contains("s3cret"),
        "the query stays out: {message}"
    );
    let got: Value = app
        .get_with_key("/v1/sandbox/instagram/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["posts"].as_array().unwrap().len(), 0, "{got}");

    // An outside image as a video post's video fails every target the same way.
    let body = json!({"post": {"content": {"text": "a PNG as a video", "mediaType": "video",
        "videoUrl": format!("{files}/file.png"), "platform": ["x"]}}});
    let id = submit(&app, &key, &body).await;
    let post = settled(&app, &key, &id).await;
    let x = target_of(&post, "x");
    assert_eq!(x["status"], "failed", "{post}");
    assert_eq!(x["error"]["code"], "media_rule", "{post}");
    let message = x["error"]["message"].as_str().unwrap();
    assert!(message.contains("is an image"), "{message}");
}

/// A post with media may take longer than the engine's lease (an upload, a processing wait):
/// the lease is renewed meanwhile, so the one attempt finishes and nobody takes the target over.
#[tokio::test]
async fn a_long_publish_with_media_keeps_its_lease() {
    let app = crate::util::Builder::default()
        .engine(soku_engine::EngineConfig {
            lease: Duration::from_secs(1),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            ..soku_engine::EngineConfig::default()
        })
        .simulated_latency(Duration::from_millis(2500))
        .start()
        .await;
    let (_, key) = app.test_subscriber().await;
    let png = created(upload(&app, &key, "image/png", media_files::png(40, 40)).await).await;
    let body = json!({"post": {"content": {"text": "slow network", "mediaType": "image",
        "imageUrls": [png["url"]], "platform": ["x"]}}});
    let id = submit(&app, &key, &body).await;
    let post = settled(&app, &key, &id).await;
    let target = &post["targets"][0];
    assert_eq!(target["status"], "published", "{post}");
    assert_eq!(
        target["attempts"], 1,
        "one attempt, never taken over: {post}"
    );
    let got: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["posts"][0]["createCount"], 1, "{got}");
}
