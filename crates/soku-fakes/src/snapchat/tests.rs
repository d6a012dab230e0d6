//! Tests over loopback with a tiny HTTP/1.1 client (the crate has no HTTP client).

use super::*;
use crate::common::{parse_form, percent_encode};
use crate::media_files;
use base64::Engine;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 16] = [9; 16];

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

async fn call(
    fake: &SnapchatFake,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let host = fake.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(!headers.contains_key("transfer-encoding"));
    let body = serde_json::from_slice(&buf[split + 4..]).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

async fn api(fake: &SnapchatFake, token: &str, method: &str, path: &str, body: Value) -> Answer {
    let auth = format!("Bearer {token}");
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    call(fake, method, path, &headers, &body).await
}

/// A multipart/form-data body of text fields and an optional file.
fn form(fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some(f) = file {
        b.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"part.bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n",
        );
        b.extend_from_slice(f);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--XyZ--\r\n");
    b
}

async fn upload(fake: &SnapchatFake, token: &str, path: &str, body: Vec<u8>) -> Answer {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "multipart/form-data; boundary=XyZ"),
    ];
    call(fake, "POST", path, &headers, &body).await
}

fn encrypt(plain: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new(&KEY.into(), &IV.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain)
}

/// Creates a media and sends `parts` as ADDs; its `add_path`.
async fn media_with_parts(fake: &SnapchatFake, token: &str, kind: &str, parts: &[&[u8]]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let path = format!("/v1/public_profiles/{PROFILE_ID}/media");
    let body = json!({"type": kind, "name": "clip", "key": b64(&KEY), "iv": b64(&IV)});
    let a = api(fake, token, "POST", &path, body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let add = a.body["add_path"].as_str().unwrap().to_owned();
    assert_eq!(a.body["finalize_path"], add.as_str());
    for (i, part) in parts.iter().enumerate() {
        let n = (i + 1).to_string();
        let f = form(&[("action", "ADD"), ("part_number", &n)], Some(part));
        let a = upload(fake, token, &add, f).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    add
}

async fn finalize(fake: &SnapchatFake, token: &str, add: &str) -> Answer {
    upload(fake, token, add, form(&[("action", "FINALIZE")], None)).await
}

/// A finalized VIDEO media's id.
async fn ready_video(fake: &SnapchatFake, token: &str) -> String {
    let enc = encrypt(&media_files::mp4(540, 960, 6000, 100));
    let add = media_with_parts(fake, token, "VIDEO", &[&enc]).await;
    assert_eq!(finalize(fake, token, &add).await.status, 200);
    fake.media().last().unwrap().id.clone()
}

#[tokio::test]
async fn oauth_round_trip_and_refresh() {
    let fake = SnapchatFake::start().await;
    fake.set_refresh_mode(RefreshMode::Rotate);
    let q = format!(
        "/login/oauth2/authorize?client_id={CLIENT_ID}&redirect_uri={}&response_type=code&scope={SCOPE}&state=s1",
        percent_encode(REDIRECT_URI)
    );
    let a = call(&fake, "GET", &q, &[], b"").await;
    assert_eq!(a.status, 302);
    let location = &a.headers["location"];
    let query = location.strip_prefix(&format!("{REDIRECT_URI}?")).unwrap();
    let params = parse_form(query.as_bytes());
    assert_eq!(params["state"], "s1");
    let form_ct = [("content-type", "application/x-www-form-urlencoded")];
    let exchange = format!(
        "grant_type=authorization_code&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&code={}&redirect_uri={}",
        percent_encode(&params["code"]),
        percent_encode(REDIRECT_URI)
    );
    let path = "/login/oauth2/access_token";
    let a = call(&fake, "POST", path, &form_ct, exchange.as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["expires_in"], 1800);
    assert_eq!(a.body["scope"], SCOPE);
    let access = a.body["access_token"].as_str().unwrap().to_owned();
    let refresh = a.body["refresh_token"].as_str().unwrap().to_owned();
    // Codes are single-use.
    let again = call(&fake, "POST", path, &form_ct, exchange.as_bytes()).await;
    assert_eq!(
        (again.status, again.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let me = api(
        &fake,
        &access,
        "GET",
        "/v1/public_profiles/my_profile",
        Value::Null,
    )
    .await;
    assert_eq!(me.body["public_profile"]["id"], PROFILE_ID);
    assert!(me.body["request_id"].is_string());

    let r = format!(
        "grant_type=refresh_token&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&refresh_token={refresh}"
    );
    let a = call(&fake, "POST", path, &form_ct, r.as_bytes()).await;
    assert_eq!(a.status, 200);
    assert_ne!(a.body["refresh_token"], refresh.as_str());
    assert!(!fake.refresh_token_valid(&refresh));
    let bad = r.replace(CLIENT_SECRET, "nope");
    assert_eq!(
        call(&fake, "POST", path, &form_ct, bad.as_bytes())
            .await
            .status,
        401
    );
    assert_eq!(fake.calls("token"), 4);
    fake.deny_next_authorization();
    let a = call(&fake, "GET", &q, &[], b"").await;
    let denied = format!("{REDIRECT_URI}?error=access_denied&state=s1");
    assert_eq!(a.headers["location"], denied);
}

#[tokio::test]
async fn encrypted_upload_finalizes_and_posts_a_story() {
    let fake = SnapchatFake::start().await;
    let t = fake.mint_access_token();
    let plain = media_files::mp4(540, 960, 6000, 100);
    let enc = encrypt(&plain);
    let add = media_with_parts(&fake, &t, "VIDEO", &[&enc[..64], &enc[64..]]).await;
    assert_eq!(fake.parts_received(), 2);
    let a = finalize(&fake, &t, &add).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let m = &fake.media()[0];
    assert!(m.finalized);
    assert_eq!(m.plaintext_len, Some(plain.len()));
    let sha: String = digest(&[&plain])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(m.sha256.as_deref(), Some(sha.as_str()));
    // FINALIZE twice is refused.
    assert_eq!(finalize(&fake, &t, &add).await.status, 400);
    assert_eq!((fake.calls("add"), fake.calls("finalize")), (2, 2));

    let path = format!("/v1/public_profiles/{PROFILE_ID}/stories");
    let a = api(&fake, &t, "POST", &path, json!({"media_id": m.id})).await;
    assert_eq!(
        (a.status, a.body["request_status"].as_str()),
        (200, Some("SUCCESS"))
    );
    assert_eq!(fake.stories()[0].media_id, m.id);
    let list = api(&fake, &t, "GET", &format!("{path}?limit=10"), Value::Null).await;
    assert_eq!(list.body["stories"][0]["story"]["media_id"], m.id.as_str());
    // The same media again.
    let a = api(&fake, &t, "POST", &path, json!({"media_id": m.id})).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error_code"], "MEDIA_POSTING_ALREADY_IN_PROGRESS");
    fake.set_logical_errors_as_200(true);
    let a = api(&fake, &t, "POST", &path, json!({"media_id": m.id})).await;
    assert_eq!(
        (a.status, a.body["request_status"].as_str()),
        (200, Some("ERROR"))
    );
    assert_eq!(fake.stories().len(), 1);
    assert_eq!(
        fake.bearer_tokens_seen().len(),
        fake.authorization_headers().len()
    );
}

#[tokio::test]
async fn parts_encrypted_separately_fail_finalize() {
    let fake = SnapchatFake::start().await;
    let t = fake.mint_access_token();
    let plain = media_files::mp4(540, 960, 6000, 100);
    let (one, two) = (encrypt(&plain[..64]), encrypt(&plain[64..]));
    let add = media_with_parts(&fake, &t, "VIDEO", &[&one, &two]).await;
    let a = finalize(&fake, &t, &add).await;
    assert_eq!(
        (a.status, a.body["error_code"].as_str()),
        (400, Some("E2005"))
    );
    assert!(!fake.media()[0].finalized);
    // A ciphertext cut short does not decrypt at all.
    let enc = encrypt(&plain);
    let add = media_with_parts(&fake, &t, "VIDEO", &[&enc[..enc.len() - 16]]).await;
    assert_eq!(finalize(&fake, &t, &add).await.body["error_code"], "E2005");
    // A part of the cap's size is refused.
    let big = vec![0u8; MAX_PART_BYTES];
    let f = form(&[("action", "ADD"), ("part_number", "1")], Some(&big));
    let a = upload(&fake, &t, &add, f).await;
    assert_eq!(
        (a.status, a.body["debug_message"].as_str()),
        (400, Some("Media size is too large"))
    );
}

#[tokio::test]
async fn spotlight_rules() {
    let fake = SnapchatFake::start().await;
    let t = fake.mint_access_token();
    let image = encrypt(&media_files::png(8, 8));
    let add = media_with_parts(&fake, &t, "IMAGE", &[&image]).await;
    assert_eq!(finalize(&fake, &t, &add).await.status, 200);
    let image_id = fake.media()[0].id.clone();
    let video_id = ready_video(&fake, &t).await;
    let path = format!("/v1/public_profiles/{PROFILE_ID}/spotlights");
    let post = |media: &str, description: &str, locale: &str| {
        json!({"media_id": media, "description": description, "locale": locale,
               "skip_save_to_profile": false})
    };
    let a = api(&fake, &t, "POST", &path, post(&image_id, "hi", "en_US")).await;
    assert_eq!(a.status, 400);
    let long = "#".repeat(161);
    let a = api(&fake, &t, "POST", &path, post(&video_id, &long, "en_US")).await;
    assert_eq!(a.status, 400);
    let a = api(&fake, &t, "POST", &path, post(&video_id, "hi", "en-US")).await;
    assert_eq!(a.status, 400);
    fake.set_processing_posts(1);
    let processing_id = ready_video(&fake, &t).await;
    let a = api(
        &fake,
        &t,
        "POST",
        &path,
        post(&processing_id, "hi", "en_US"),
    )
    .await;
    assert_eq!(a.body["error_code"], "MEDIA_PROCESSING");
    let a = api(
        &fake,
        &t,
        "POST",
        &path,
        post(&video_id, &"é".repeat(160), "en_US"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.body["spotlight_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 40, "an opaque base64url id, not a UUID");
    fake.set_spotlight_status(&id, "LIVE");
    let a = api(&fake, &t, "GET", &format!("{path}/{id}"), Value::Null).await;
    assert_eq!(a.body["spotlights"][0]["spotlight"]["status"], "LIVE");
    assert_eq!(
        api(&fake, &t, "GET", &format!("{path}/nope"), Value::Null)
            .await
            .status,
        404
    );
    // A saved story, and an expired media.
    fake.expire_media(&processing_id);
    let saved = format!("/v1/public_profiles/{PROFILE_ID}/saved_stories");
    let body =
        |m: &str| json!({"saved_stories": [{"title": "t", "snap_sources": [{"media_id": m}]}]});
    let a = api(&fake, &t, "POST", &saved, body(&processing_id)).await;
    assert_eq!(a.body["error_code"], "MEDIA_EXPIRED");
    let a = api(&fake, &t, "POST", &saved, body(&image_id)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["saved_stories"][0]["saved_story"]["id"],
        fake.saved_stories()[0].id.as_str()
    );
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let fake = SnapchatFake::start().await;
    let t = fake.mint_access_token();
    fake.expire_access_token(&t);
    let a = api(
        &fake,
        &t,
        "GET",
        "/v1/public_profiles/my_profile",
        Value::Null,
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(a.body["error_code"], "E3003");
    let t = fake.mint_access_token();
    let bare = [("authorization", t.as_str())];
    let a = call(&fake, "GET", "/v1/public_profiles/my_profile", &bare, b"").await;
    assert_eq!(a.status, 401);
    let other = "/v1/public_profiles/00000000-0000-4000-8000-000000000000/media";
    assert_eq!(api(&fake, &t, "POST", other, json!({})).await.status, 403);
    fake.revoke_access();
    assert!(!fake.access_token_valid(&t));
}
