//! Media containers: create, ADD parts, FINALIZE (which decrypts what arrived).

use super::*;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};

/// [ASSET] "POST https://businessapi.snapchat.com/v1/public_profiles/{profile_id}/media";
/// "To create the Media container, first base64 encode the encryption Key and IV used in the
/// previous step and then make the API call to the media upload endpoint." Fields: `type`
/// ("Type of media." `VIDEO`, `IMAGE`), `name` ("Human readable name for the media"), `key`
/// ("32 byte key with which the media is encrypted. Should be base64 encoded."), `iv` ("16 byte
/// Initial vector used to encrypt the media. Should be base64 encoded."); all required. The
/// fake decodes standard base64 with padding [3P: every client uses it] and wants exactly 32
/// and 16 bytes. Answer: `request_id` ("A UUID to identify this request.") [ASSET]; the rest
/// [3P: ≥6 connectors and fixtures, flat]: `media_id`, `add_path` and `finalize_path`, both
/// `/us/v1/public_profiles/{profile_id}/media/{media_id}/multipart-upload`.
pub(super) async fn create_media(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "media");
    if let Err(r) = api_auth(&mut st, &headers).and_then(|()| own_profile(&profile_id)) {
        return r;
    }
    let body = match parse_json(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let kind = match body["type"].as_str() {
        Some(k @ ("VIDEO" | "IMAGE")) => k.to_owned(),
        _ => return invalid("type must be VIDEO or IMAGE"),
    };
    let Some(name) = body["name"].as_str().filter(|n| !n.trim().is_empty()) else {
        return invalid("name is required");
    };
    let decode = |k: &str, len: usize| {
        use base64::Engine;
        body[k]
            .as_str()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .filter(|b| b.len() == len)
    };
    let Some(key) = decode("key", 32) else {
        return invalid("key must be the base64 encoding of 32 bytes");
    };
    let Some(iv) = decode("iv", 16) else {
        return invalid("iv must be the base64 encoding of 16 bytes");
    };
    let id = uuid();
    let path = format!("/us/v1/public_profiles/{profile_id}/media/{id}/multipart-upload");
    st.media.push(MediaRec {
        info: FakeMedia {
            id: id.clone(),
            profile_id,
            kind,
            name: name.to_owned(),
            key,
            iv,
            parts: Vec::new(),
            finalized: false,
            plaintext_len: None,
            sha256: None,
            expired: false,
            posted_as: None,
            created_at: SystemTime::now(),
        },
        bytes: BTreeMap::new(),
        expires: Instant::now() + MEDIA_TTL,
        processing_left: 0,
    });
    success(json!({"media_id": id, "add_path": path, "finalize_path": path}))
}

/// The fields of a multipart-upload request.
#[derive(Default)]
struct Form {
    action: Option<String>,
    part_number: Option<String>,
    file: Option<Bytes>,
}

async fn read_form(mp: Result<Multipart, MultipartRejection>) -> Result<Form, Response> {
    let mut mp =
        mp.map_err(|e| invalid(&format!("a multipart/form-data body is required: {e}")))?;
    let mut form = Form::default();
    let refuse = |e: axum::extract::multipart::MultipartError| {
        if e.status().as_u16() == 413 {
            api_error(413, "E1001", "Media size is too large")
        } else {
            invalid(&format!("malformed multipart body: {e}"))
        }
    };
    while let Some(field) = mp.next_field().await.map_err(refuse)? {
        match field.name().unwrap_or("").to_owned().as_str() {
            "action" => form.action = Some(field.text().await.map_err(refuse)?),
            "part_number" => form.part_number = Some(field.text().await.map_err(refuse)?),
            "file" => form.file = Some(field.bytes().await.map_err(refuse)?),
            _ => {
                field.bytes().await.map_err(refuse)?;
            }
        }
    }
    Ok(form)
}

/// [ASSET] "Use the media_id returned from the above API to upload a media file using the
/// multipart upload API." The multipart section itself was not readable; the fields are
/// [3P: ≥6 connectors]: `POST {add_path}`, multipart/form-data, `action=ADD`, `part_number`
/// ("1", "2", … 1-based decimal), `file` (the encrypted chunk), answer
/// `{request_id, request_status: "SUCCESS"}`; then `POST {finalize_path}` with only
/// `action=FINALIZE`. Limits: [ASSET] "If the file is larger than 32MB then split it into
/// smaller chunks"; a part of [`MAX_PART_BYTES`] or more is refused with "Media size is too
/// large" [3P: one experience report]; [`MAX_PARTS`] parts, [`MAX_MEDIA_BYTES`] in all [3P].
/// Undocumented: re-sending a part number (the fake replaces the part), ADD or FINALIZE after
/// FINALIZE (the fake refuses, 400 `E1001`).
pub(super) async fn multipart_upload(
    State(s): State<Shared>,
    Path((profile_id, media_id)): Path<(String, String)>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> Response {
    // The form is read first (a fake need not spare the bandwidth) so that each call counts
    // as the action it is; one that is not multipart at all counts as "upload".
    let form = read_form(mp).await;
    let (response, hold) = handle_upload(&s, &profile_id, &media_id, &headers, form);
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    response
}

/// The multipart upload's answer, and how long to hold it back (a scripted FINALIZE fault).
fn handle_upload(
    s: &Shared,
    profile_id: &str,
    media_id: &str,
    headers: &HeaderMap,
    form: Result<Form, Response>,
) -> (Response, Option<std::time::Duration>) {
    let mut st = s.lock().unwrap();
    let action = match &form {
        Ok(f) => f.action.clone().unwrap_or_default(),
        Err(_) => String::new(),
    };
    match action.as_str() {
        "ADD" => count(&mut st, "add"),
        "FINALIZE" => count(&mut st, "finalize"),
        _ => count(&mut st, "upload"),
    }
    let mut hold = None;
    if action == "FINALIZE" {
        match st.finalize_faults.pop_front() {
            Some(Fault::Reply {
                status,
                headers,
                body,
            }) => return (scripted(status, &headers, body), None),
            Some(Fault::DelayAfterEffect(d)) => hold = Some(d),
            None => {}
        }
    }
    let response = (|| {
        if let Err(r) = api_auth(&mut st, headers).and_then(|()| own_profile(profile_id)) {
            return r;
        }
        let form = match form {
            Ok(f) => f,
            Err(r) => return r,
        };
        if action != "ADD" && action != "FINALIZE" {
            return invalid("action must be ADD or FINALIZE");
        }
        let Some(i) = st
            .media
            .iter()
            .position(|m| m.info.id == media_id && m.info.profile_id == profile_id)
        else {
            return api_error(404, "E1004", "No such media.");
        };
        if st.media[i].expired() {
            return logical(
                &st,
                "MEDIA_EXPIRED",
                "The media is older than 24 hours; create a new one.",
            );
        }
        if st.media[i].info.finalized {
            return invalid("The media upload is already finalized.");
        }
        if action == "ADD" {
            add(&mut st, i, form)
        } else {
            finalize(&mut st, i)
        }
    })();
    (response, hold)
}

/// A scripted answer, as `Faults` would serve it.
fn scripted(status: u16, headers: &[(String, String)], body: String) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    r
}

fn add(st: &mut Inner, i: usize, form: Form) -> Response {
    let n = form
        .part_number
        .as_deref()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PARTS).contains(n));
    let Some(n) = n else {
        return invalid("part_number must be a decimal number from 1 to 35");
    };
    let Some(file) = form.file else {
        return invalid("file is required");
    };
    if file.is_empty() {
        return invalid("file is empty");
    }
    if file.len() >= MAX_PART_BYTES {
        return invalid("Media size is too large");
    }
    let m = &mut st.media[i];
    m.bytes.insert(n, file.to_vec());
    let part = FakePart {
        media_id: m.info.id.clone(),
        part_number: n,
        size: file.len(),
    };
    st.parts_log.push(part);
    success(json!({}))
}

/// FINALIZE decrypts the parts, concatenated in part order, with the media's key and iv:
/// [ASSET] "1. First encrypt the file as shown in the sample … `openssl enc -aes-256-cbc -nosalt
/// -e -in video.mp4 -out video.enc.mp4 -K $key -iv $iv` 1. If your file is larger than 32 MB,
/// split the file into chunks" (AES-256-CBC with openssl's default PKCS#7 padding, the whole
/// file encrypted once, then split). The fake then wants the plaintext to be a whole file of
/// the media's type ([ASSET] `type`; [3P] VIDEO is MP4, IMAGE JPEG or PNG): an ISO-BMFF file
/// whose top-level boxes end exactly at the end, a JPEG from FF D8 FF to FF D9, a PNG whose
/// chunks (with their CRCs) end with IEND. A part encrypted on its own with padding leaves a
/// padding block and a garbled block inside the file, which these walks catch; a chain
/// restarted without padding garbles one block only, which the recorded SHA-256 shows.
/// Undocumented: the errors; the fake chooses 400 `E2005` for both.
fn finalize(st: &mut Inner, i: usize) -> Response {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let m = &st.media[i];
    if m.bytes.is_empty() {
        return invalid("No part was uploaded.");
    }
    let contiguous = m.bytes.keys().zip(1u32..).all(|(n, want)| *n == want);
    if !contiguous {
        return invalid("The parts are not numbered 1..n without gaps.");
    }
    let total: u64 = m.bytes.values().map(|b| b.len() as u64).sum();
    if total > MAX_MEDIA_BYTES {
        return invalid("Media size is too large");
    }
    let cipher: Vec<u8> = m.bytes.values().flatten().copied().collect();
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(&m.info.key, &m.info.iv)
        .expect("key and iv lengths were checked")
        .decrypt_padded_vec_mut::<Pkcs7>(&cipher);
    let Ok(plain) = plain else {
        return api_error(400, "E2005", "could not decrypt the media");
    };
    if let Err(why) = check_type(&m.info.kind, &plain) {
        return api_error(
            400,
            "E2005",
            &format!("could not decrypt the media: the decrypted file {why}"),
        );
    }
    let sha: String = digest(&[&plain])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let processing = st.processing_posts;
    let m = &mut st.media[i];
    m.info.finalized = true;
    m.info.plaintext_len = Some(plain.len());
    m.info.sha256 = Some(sha);
    m.processing_left = processing;
    success(json!({}))
}

/// Whether `plain` is a whole file of `kind`; why not.
pub(super) fn check_type(kind: &str, plain: &[u8]) -> Result<(), &'static str> {
    if kind == "VIDEO" {
        if plain.get(4..8) != Some(b"ftyp") {
            return Err("is not an ISO-BMFF (MP4) video");
        }
        return iso_bmff_ends(plain)
            .then_some(())
            .ok_or("has ISO-BMFF boxes that do not end at its end");
    }
    if plain.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return plain
            .ends_with(&[0xFF, 0xD9])
            .then_some(())
            .ok_or("is a JPEG that does not end with its EOI marker");
    }
    if plain.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return png_ends(plain)
            .then_some(())
            .ok_or("is a PNG whose chunks are broken");
    }
    Err("is not a JPEG or PNG image")
}

fn iso_bmff_ends(b: &[u8]) -> bool {
    let mut at = 0usize;
    while at < b.len() {
        let Some(h) = b.get(at..at + 8) else {
            return false;
        };
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let size = match size {
            0 => (b.len() - at) as u64,
            1 => match b.get(at + 8..at + 16) {
                Some(l) => u64::from_be_bytes(l.try_into().unwrap()),
                None => return false,
            },
            s => s,
        };
        if size < 8 || size > (b.len() - at) as u64 {
            return false;
        }
        at += size as usize;
    }
    true
}

fn png_ends(b: &[u8]) -> bool {
    let mut at = 8usize;
    while let Some(h) = b.get(at..at + 8) {
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let Some(data) = b.get(at + 4..at + 8 + len) else {
            return false;
        };
        let Some(crc) = b.get(at + 8 + len..at + 12 + len) else {
            return false;
        };
        if crc32fast::hash(data).to_be_bytes() != crc {
            return false;
        }
        at += 12 + len;
        if &h[4..8] == b"IEND" {
            return at == b.len();
        }
    }
    false
}
