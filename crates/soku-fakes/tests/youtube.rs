//! Tests of the YouTube fake (`soku_fakes::youtube`) over real HTTP on loopback: Google's OAuth
//! (codes, PKCE, offline refresh tokens, revocation), the resumable upload protocol (308 and
//! `Range`, the 256 KiB rule, the status query, expiry), processing, quota and errors, and the
//! drift check against the extract of Google's discovery document.

use serde_json::{Value, json};
use soku_fakes::common::pkce_challenge;
use soku_fakes::youtube::{
    self, CHANNEL_ID, CHUNK_GRANULARITY, CLIENT_ID, CLIENT_SECRET, Outcome, REDIRECT_URI,
    SCOPE_READONLY, SCOPE_UPLOAD, UPLOADS_PLAYLIST, YouTubeFake, drift,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn reason(&self) -> &str {
        self.body["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("not a Google error: {self:?}"))
    }
}

/// A tiny HTTP/1.1 client (`Connection: close`), binary bodies allowed.
async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let raw = &buf[split + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = raw;
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 4 + n..];
        }
        out
    } else {
        raw.to_vec()
    };
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn enc(s: &str) -> String {
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

async fn token_call(f: &YouTubeFake, pairs: &[(&str, &str)]) -> Resp {
    request(
        "POST",
        &f.token_url(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(pairs),
    )
    .await
}

/// Follows the authorization page as the user who approves; the redirect's query.
async fn approve(f: &YouTubeFake, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let scope = YouTubeFake::full_scope();
    let mut q = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("state", "st-1"),
    ];
    q.extend_from_slice(extra);
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let r = request(
        "GET",
        &format!("{}?{}", f.auth_url(), query.join("&")),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 302, "{r:?}");
    let location = r.header("location").unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, REDIRECT_URI);
    youtube::parse_pairs(query)
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

#[tokio::test]
async fn oauth_offline_access_with_pkce_and_refresh() {
    let f = YouTubeFake::start().await;
    let challenge = pkce_challenge(VERIFIER);
    let q = approve(
        &f,
        &[
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(get(&q, "state"), Some("st-1"));
    let code = get(&q, "code").unwrap().to_owned();
    let exchange = |verifier: &'static str, code: String| {
        let f = &f;
        async move {
            token_call(
                f,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let wrong = exchange(
        "not-the-verifier-not-the-verifier-not-the-verifier",
        code.clone(),
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["error"], "invalid_grant");
    // The code was spent by the wrong attempt: single use.
    let again = exchange(VERIFIER, code).await;
    assert_eq!(again.body["error"], "invalid_grant");

    let code = get(
        &approve(
            &f,
            &[
                ("access_type", "offline"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await,
        "code",
    )
    .unwrap()
    .to_owned();
    let ok = exchange(VERIFIER, code).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 3599);
    assert_eq!(ok.body["scope"], json!(YouTubeFake::full_scope()));
    // The first consent of this user: a refresh token.
    let refresh = ok.body["refresh_token"].as_str().unwrap().to_owned();

    // A second offline authorization without prompt=consent: no new refresh token.
    let code = get(&approve(&f, &[("access_type", "offline")]).await, "code")
        .unwrap()
        .to_owned();
    let second = token_call(
        &f,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(second.status, 200);
    assert!(second.body.get("refresh_token").is_none(), "{second:?}");

    let refreshed = token_call(
        &f,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200);
    assert!(refreshed.body.get("refresh_token").is_none());
    let access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert!(f.access_token_valid(&access));

    // Revoking the access token revokes its refresh token too.
    let r = request(
        "POST",
        &format!("{}/revoke", f.url),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[("token", &access)]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!f.access_token_valid(&access));
    let dead = token_call(
        &f,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(dead.status, 400);
    assert_eq!(dead.body["error"], "invalid_grant");
    assert_eq!(
        dead.body["error_description"],
        "Token has been expired or revoked."
    );

    let bad_client = token_call(
        &f,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(bad_client.status, 401);
    assert_eq!(bad_client.body["error"], "invalid_client");
}

#[tokio::test]
async fn an_unknown_scope_is_refused_by_redirect() {
    let f = YouTubeFake::start().await;
    let r = request(
        "GET",
        &format!(
            "{}?client_id={}&redirect_uri={}&response_type=code&scope=nope&state=s",
            f.auth_url(),
            enc(CLIENT_ID),
            enc(REDIRECT_URI)
        ),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 302);
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("state=s&error=invalid_scope")
    );
    let r = request(
        "GET",
        &format!(
            "{}?client_id={}&redirect_uri=https%3A%2F%2Fevil.test%2F&response_type=code&scope=x",
            f.auth_url(),
            enc(CLIENT_ID)
        ),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
}

fn auth(t: &str) -> String {
    format!("Bearer {t}")
}

async fn start_session(f: &YouTubeFake, t: &str, total: usize, metadata: &Value) -> Resp {
    let a = auth(t);
    let len = total.to_string();
    request(
        "POST",
        &format!(
            "{}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
            f.url
        ),
        &[
            ("Authorization", &a),
            ("Content-Type", "application/json; charset=UTF-8"),
            ("X-Upload-Content-Length", &len),
            ("X-Upload-Content-Type", "video/mp4"),
        ],
        metadata.to_string().as_bytes(),
    )
    .await
}

async fn put(session: &str, t: &str, range: &str, body: &[u8]) -> Resp {
    let a = auth(t);
    request(
        "PUT",
        session,
        &[
            ("Authorization", &a),
            ("Content-Range", range),
            ("Content-Type", "video/mp4"),
        ],
        body,
    )
    .await
}

fn metadata(title: &str) -> Value {
    json!({
        "snippet": {"title": title, "description": "A film", "tags": ["film", "short film"],
                    "categoryId": "22"},
        "status": {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": false},
    })
}

#[tokio::test]
async fn a_resumable_upload_in_chunks_with_status_queries_and_processing() {
    let f = YouTubeFake::start().await;
    let t = f.mint_access_token(&YouTubeFake::full_scope());
    let c = CHUNK_GRANULARITY as usize;
    let total = 2 * c + 1000;
    let bytes: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let r = start_session(&f, &t, total, &metadata("My film")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let session = r.header("location").unwrap().to_owned();
    assert!(session.contains("upload_id="), "{session}");

    // Nothing yet: 308 without Range.
    let q = put(&session, &t, &format!("bytes */{total}"), b"").await;
    assert_eq!(q.status, 308);
    assert_eq!(q.header("range"), None);
    // A chunk that is not a multiple of 256 KiB (and not the last) is refused.
    let bad = put(
        &session,
        &t,
        &format!("bytes 0-999/{total}"),
        &bytes[..1000],
    )
    .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let r = put(
        &session,
        &t,
        &format!("bytes 0-{}/{total}", c - 1),
        &bytes[..c],
    )
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("range"),
        Some(format!("bytes=0-{}", c - 1).as_str())
    );
    // A chunk that does not start where the session stands is refused.
    let gap = put(
        &session,
        &t,
        &format!("bytes {}-{}/{total}", 2 * c, total - 1),
        &bytes[2 * c..],
    )
    .await;
    assert_eq!(gap.status, 400);
    let q = put(&session, &t, &format!("bytes */{total}"), b"").await;
    assert_eq!(
        q.header("range"),
        Some(format!("bytes=0-{}", c - 1).as_str())
    );
    let r = put(
        &session,
        &t,
        &format!("bytes {c}-{}/{total}", total - 1),
        &bytes[c..],
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 11);
    assert_eq!(r.body["status"]["uploadStatus"], "uploaded");
    assert_eq!(r.body["snippet"]["title"], "My film");
    // The status query of a completed session answers the same again.
    let again = put(&session, &t, &format!("bytes */{total}"), b"").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, r.body);
    assert_eq!(f.videos().len(), 1);
    assert!(f.video(&id).unwrap().bytes == bytes);

    f.set_processing_polls(1);
    let list = |parts: &'static str| {
        let (f, t, id) = (&f, &t, &id);
        async move {
            request(
                "GET",
                &format!("{}/youtube/v3/videos?part={parts}&id={id}", f.url),
                &[("Authorization", &auth(t))],
                b"",
            )
            .await
        }
    };
    let first = list("status,processingDetails").await;
    assert_eq!(first.status, 200, "{first:?}");
    let item = &first.body["items"][0];
    assert_eq!(item["status"]["uploadStatus"], "uploaded");
    assert_eq!(item["processingDetails"]["processingStatus"], "processing");
    assert_eq!(
        item["processingDetails"]["processingProgress"]["partsTotal"],
        "1000"
    );
    let done = list("snippet,status,processingDetails").await;
    let item = &done.body["items"][0];
    assert_eq!(item["status"]["uploadStatus"], "processed");
    assert_eq!(item["status"]["privacyStatus"], "unlisted");
    assert_eq!(item["snippet"]["tags"], json!(["film", "short film"]));
    assert_eq!(item["processingDetails"]["processingStatus"], "succeeded");

    // Expired: 404.
    f.expire_sessions();
    let gone = put(&session, &t, &format!("bytes */{total}"), b"").await;
    assert_eq!(gone.status, 404);

    // Quota: 1 unit per list call, the insert in its own bucket.
    assert_eq!(f.units_used(), 2);
    assert_eq!(f.inserts_used(), 1);
    assert!(f.drift_problems().is_empty(), "{:#?}", f.drift_problems());
}

#[tokio::test]
async fn processing_can_fail_or_be_rejected() {
    let f = YouTubeFake::start().await;
    let t = f.mint_access_token(&YouTubeFake::full_scope());
    for (outcome, field, value) in [
        (Outcome::Failed("codec".into()), "failureReason", "codec"),
        (
            Outcome::Rejected("duplicate".into()),
            "rejectionReason",
            "duplicate",
        ),
    ] {
        f.set_next_outcome(outcome);
        f.set_processing_polls(0);
        let r = start_session(&f, &t, 10, &metadata("x")).await;
        let session = r.header("location").unwrap().to_owned();
        let done = put(&session, &t, "bytes 0-9/10", b"0123456789").await;
        let id = done.body["id"].as_str().unwrap();
        let r = request(
            "GET",
            &format!("{}/youtube/v3/videos?part=status&id={id}", f.url),
            &[("Authorization", &auth(&t))],
            b"",
        )
        .await;
        assert_eq!(r.body["items"][0]["status"][field], value, "{r:?}");
    }
    f.set_next_outcome(Outcome::ProcessingFailed("transcodeFailed".into()));
    let r = start_session(&f, &t, 10, &metadata("x")).await;
    let session = r.header("location").unwrap().to_owned();
    let done = put(&session, &t, "bytes 0-9/10", b"0123456789").await;
    let id = done.body["id"].as_str().unwrap();
    let r = request(
        "GET",
        &format!("{}/youtube/v3/videos?part=processingDetails&id={id}", f.url),
        &[("Authorization", &auth(&t))],
        b"",
    )
    .await;
    assert_eq!(
        r.body["items"][0]["processingDetails"]["processingFailureReason"],
        "transcodeFailed"
    );
    assert!(f.drift_problems().is_empty(), "{:#?}", f.drift_problems());
}

#[tokio::test]
async fn metadata_quota_and_auth_errors_in_googles_envelope() {
    let f = YouTubeFake::start().await;
    let t = f.mint_access_token(&YouTubeFake::full_scope());
    let r = start_session(&f, &t, 10, &metadata(&"t".repeat(101))).await;
    assert_eq!((r.status, r.reason()), (400, "invalidTitle"));
    assert_eq!(
        r.body["error"]["message"],
        "The request metadata specifies an invalid or empty video title."
    );
    let r = start_session(&f, &t, 10, &metadata("a <b>")).await;
    assert_eq!(r.reason(), "invalidTitle");
    let mut m = metadata("ok");
    m["snippet"]["description"] = json!("x".repeat(5001));
    assert_eq!(
        start_session(&f, &t, 10, &m).await.reason(),
        "invalidDescription"
    );
    let mut m = metadata("ok");
    m["snippet"]["tags"] = json!(["a".repeat(300), "b".repeat(200)]);
    assert_eq!(start_session(&f, &t, 10, &m).await.reason(), "invalidTags");
    let mut m = metadata("ok");
    m["snippet"]["madeForKids"] = json!(true);
    let r = start_session(&f, &t, 10, &m).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name")
    );

    f.set_channel_upload_limit(Some(0));
    let r = start_session(&f, &t, 10, &metadata("ok")).await;
    assert_eq!((r.status, r.reason()), (400, "uploadLimitExceeded"));
    assert_eq!(r.body["error"]["errors"][0]["domain"], "youtube.video");
    f.set_channel_upload_limit(None);
    f.exhaust_upload_quota();
    let r = start_session(&f, &t, 10, &metadata("ok")).await;
    assert_eq!((r.status, r.reason()), (403, "quotaExceeded"));
    assert_eq!(r.body["error"]["errors"][0]["domain"], "youtube.quota");
    // The other endpoints have their own units.
    let list = format!("{}/youtube/v3/channels?part=id&mine=true", f.url);
    let r = request("GET", &list, &[("Authorization", &auth(&t))], b"").await;
    assert_eq!(r.status, 200);
    f.exhaust_quota();
    let r = request("GET", &list, &[("Authorization", &auth(&t))], b"").await;
    assert_eq!((r.status, r.reason()), (403, "quotaExceeded"));

    let g = YouTubeFake::start().await;
    let upload_only = g.mint_access_token(SCOPE_UPLOAD);
    let list = format!("{}/youtube/v3/channels?part=id&mine=true", g.url);
    let r = request("GET", &list, &[("Authorization", &auth(&upload_only))], b"").await;
    assert_eq!((r.status, r.reason()), (403, "insufficientPermissions"));
    let t = g.mint_access_token(SCOPE_READONLY);
    g.expire_access_token(&t);
    let r = request("GET", &list, &[("Authorization", &auth(&t))], b"").await;
    assert_eq!((r.status, r.reason()), (401, "authError"));
    let t = g.mint_access_token(SCOPE_READONLY);
    let r = request(
        "GET",
        &format!(
            "{}/youtube/v3/channels?part=id&mine=true&forUsername=x",
            g.url
        ),
        &[("Authorization", &auth(&t))],
        b"",
    )
    .await;
    assert_eq!((r.status, r.reason()), (400, "unexpectedParameter"));
}

#[tokio::test]
async fn the_channel_and_an_unverified_projects_private_uploads() {
    let f = YouTubeFake::start().await;
    let t = f.mint_access_token(&YouTubeFake::full_scope());
    let r = request(
        "GET",
        &format!(
            "{}/youtube/v3/channels?part=snippet,contentDetails&mine=true",
            f.url
        ),
        &[("Authorization", &auth(&t))],
        b"",
    )
    .await;
    assert_eq!(r.body["items"][0]["id"], CHANNEL_ID);
    assert_eq!(
        r.body["items"][0]["contentDetails"]["relatedPlaylists"]["uploads"],
        UPLOADS_PLAYLIST
    );
    f.set_verified(false);
    let s = start_session(&f, &t, 3, &metadata("public?")).await;
    let done = put(s.header("location").unwrap(), &t, "bytes 0-2/3", b"abc").await;
    assert_eq!(done.body["status"]["privacyStatus"], "private");
    f.set_has_channel(false);
    let r = request(
        "GET",
        &format!("{}/youtube/v3/channels?part=id&mine=true", f.url),
        &[("Authorization", &auth(&t))],
        b"",
    )
    .await;
    assert_eq!(r.body["items"], json!([]));
    assert!(f.drift_problems().is_empty(), "{:#?}", f.drift_problems());
}

// The drift check itself.

#[test]
fn the_extract_names_its_source_and_covers_the_fakes_tables() {
    let x = drift::extract();
    assert_eq!(
        x["source"]["commit"],
        "2d5727f3ba8a0d59b62a031e771db53b02e3a5a1"
    );
    assert_eq!(x["source"]["revision"], "20260601");
    let problems = drift::table_problems();
    assert!(problems.is_empty(), "{problems:#?}");
    let insert = &x["methods"]["youtube.videos.insert"];
    assert_eq!(insert["mediaUpload"]["maxSize"], "274877906944");
    assert_eq!(
        insert["mediaUpload"]["accept"],
        json!(["video/*", "application/octet-stream"])
    );
    assert!(
        insert["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == SCOPE_UPLOAD)
    );
    // youtube.upload alone cannot list channels: the connector asks for youtube.readonly too.
    let channels = &x["methods"]["youtube.channels.list"]["scopes"];
    assert!(
        !channels
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == SCOPE_UPLOAD)
    );
    assert!(
        channels
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == SCOPE_READONLY)
    );
}

#[test]
fn the_check_catches_drift() {
    use soku_fakes::youtube::Exchange;
    let x = drift::extract();
    let mut out = Vec::new();
    drift::check_object(
        &x,
        "Video",
        &json!({"id": "abc", "status": {"uploadStatus": "sideways", "madeForKids": "no"},
                "snippet": {"title": "t", "nonsense": 1},
                "processingDetails": {"processingProgress": {"partsTotal": 10}}}),
        "v",
        &mut out,
    );
    assert_eq!(out.len(), 4, "{out:#?}");
    let e = Exchange {
        method: "GET".into(),
        path: "/youtube/v3/videos".into(),
        query: vec![("id".into(), "x".into()), ("mine".into(), "true".into())],
        call: Some("youtube.videos.list"),
        request_body: None,
        status: 200,
        response_body: Some(json!({"items": [], "kind": "youtube#videoListResponse",
                                   "nextPage": "x"})),
    };
    let p = drift::problems(&[e]);
    assert!(p.iter().any(|p| p.contains("parameter mine")), "{p:#?}");
    assert!(
        p.iter().any(|p| p.contains("required parameter \"part\"")),
        "{p:#?}"
    );
    assert!(p.iter().any(|p| p.contains("nextPage")), "{p:#?}");
}
