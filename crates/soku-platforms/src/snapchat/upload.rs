//! The encrypted media upload: a media container, the file encrypted once with AES-256-CBC and
//! its ciphertext sent in parts (`ADD`), then `FINALIZE`.
//!
//! Snap's steps (<https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement>):
//! "1. Encrypt the media file to be used for media upload 2. If the file is larger than 32MB
//! then split it into smaller chunks 3. Create a container media object using the Create Media
//! API. 4. Use the media_id returned from the above API to upload a media file using the
//! multipart upload API." Its sample encrypts the whole file (`openssl enc -aes-256-cbc -nosalt
//! -e -in video.mp4 -out video.enc.mp4 -K $key -iv $iv`: PKCS#7 padding, openssl's default)
//! and then splits it: the parts are consecutive slices of one ciphertext. Here the file is
//! streamed from the media store and encrypted on the way, one part in memory at a time.

use super::{PLATFORM, Snapchat, api};
use crate::http::{self, Effect};
use crate::media::{MediaLimits, MediaStream};
use aes::Aes256;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use base64::Engine;
use futures_util::StreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use soku_core::connector::{FailureClass, PublishError, PublishRequest};

const BLOCK: usize = 16;
/// Parts are at most this large. Snap's page splits at "32MB" (`split -b 32m`); a publisher
/// calling the API reports that a part of exactly 32 MiB was refused ("Media size is too
/// large"), so parts stay a mebibyte under.
pub const MAX_PART_BYTES: u64 = 31 * 1024 * 1024;
/// Parts are at least this large (fewer round trips; one part in memory at a time).
pub const MIN_PART_BYTES: u64 = 8 * 1024 * 1024;
/// Publishers calling the API send at most 35 parts (`part_number` 1 to 35); Snap's pages
/// available here do not say.
pub const MAX_PARTS: u64 = 35;
/// "A media object stays active for 24 hours after creation": a container older than this is
/// not posted from; the file is uploaded again instead.
pub const MEDIA_MAX_AGE_MS: i64 = 23 * 3600 * 1000;

/// The ciphertext's length for `size` bytes: PKCS#7 always adds 1 to 16 bytes.
pub fn encrypted_len(size: u64) -> u64 {
    (size / BLOCK as u64 + 1) * BLOCK as u64
}

/// The part size for a ciphertext of `len` bytes: [`MIN_PART_BYTES`], or larger (a multiple of
/// 16) when the file needs more than [`MAX_PARTS`] parts of that; `None` when even parts of
/// [`MAX_PART_BYTES`] cannot hold it.
pub fn part_size(len: u64) -> Option<u64> {
    let needed = len.div_ceil(MAX_PARTS).div_ceil(BLOCK as u64) * BLOCK as u64;
    let size = needed.max(MIN_PART_BYTES);
    (size <= MAX_PART_BYTES).then_some(size)
}

/// AES-256-CBC over a stream, with PKCS#7 padding at its end: the same bytes as encrypting the
/// whole file at once (`openssl enc -aes-256-cbc -nosalt`).
pub struct Encrypting {
    cipher: cbc::Encryptor<Aes256>,
    carry: Vec<u8>,
}

impl Encrypting {
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self {
            cipher: cbc::Encryptor::<Aes256>::new(key.into(), iv.into()),
            carry: Vec::with_capacity(BLOCK),
        }
    }

    /// Encrypts the whole blocks `input` completes, appending them to `out`; the rest waits for
    /// more input (or [`Encrypting::finish`]).
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            let take = (BLOCK - self.carry.len()).min(input.len());
            self.carry.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.carry.len() < BLOCK {
                return;
            }
            let mut block = std::mem::take(&mut self.carry);
            self.encrypt(&mut block, out);
            self.carry = block;
            self.carry.clear();
        }
        let whole = input.len() / BLOCK * BLOCK;
        let start = out.len();
        out.extend_from_slice(&input[..whole]);
        for block in out[start..].chunks_exact_mut(BLOCK) {
            self.cipher.encrypt_block_mut(block.into());
        }
        self.carry.extend_from_slice(&input[whole..]);
    }

    fn encrypt(&mut self, block: &mut [u8], out: &mut Vec<u8>) {
        self.cipher.encrypt_block_mut(block.into());
        out.extend_from_slice(block);
    }

    /// The last block: what is left, padded with PKCS#7 (`n` bytes of value `n`; a whole block
    /// of 16 when nothing is left).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let pad = BLOCK - self.carry.len();
        let mut block = std::mem::take(&mut self.carry);
        block.resize(BLOCK, pad as u8);
        self.encrypt(&mut block, out);
    }
}

/// What an attempt saves about the upload and the post, so that a retry (or another process
/// after a crash) goes on from there: never a second post, and no second upload while the
/// container lives.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(super) struct SnapProgress {
    /// Always `snapchat`.
    pub kind: String,
    /// The hosted file this progress is about.
    pub media_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    #[serde(default)]
    pub add_path: String,
    #[serde(default)]
    pub finalize_path: String,
    /// The AES key and IV (base64), to encrypt the same ciphertext again when the upload goes
    /// on from a part (the engine seals progress at rest).
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub iv: String,
    #[serde(default)]
    pub part_size: u64,
    #[serde(default)]
    pub parts: u64,
    #[serde(default)]
    pub parts_done: u64,
    #[serde(default)]
    pub finalized: bool,
    /// A `FINALIZE` went out to this container and its answer was never read (a timeout, a
    /// broken connection, a 5xx, a crash): saved before each `FINALIZE`, cleared by an answer.
    /// While it is set, a refusal of the next `FINALIZE` may only say the earlier one worked,
    /// so the container is posted from ([`SnapProgress::finalize_unconfirmed`]); without it a
    /// refusal is Snap's word on the file, and final.
    #[serde(default)]
    pub finalize_sent: bool,
    /// The file was already uploaded again once because a container whose `FINALIZE` could not
    /// be confirmed was refused for posting: never a second time. Kept across containers.
    #[serde(default)]
    pub reuploaded: bool,
    /// When the container was created (Unix milliseconds).
    #[serde(default)]
    pub created_ms: i64,
    /// The post request went out (or may have); cleared when Snap refuses it.
    #[serde(default)]
    pub post_sent: bool,
    /// The post Snap made: a Spotlight's `spotlight_id`, a Saved Story's id, or, for a Story
    /// (whose answer names nothing), the media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
}

/// Without the key and IV.
impl std::fmt::Debug for SnapProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapProgress")
            .field("media_id", &self.media_id)
            .field("parts", &self.parts)
            .field("parts_done", &self.parts_done)
            .field("finalized", &self.finalized)
            .field("finalize_sent", &self.finalize_sent)
            .field("reuploaded", &self.reuploaded)
            .field("post_sent", &self.post_sent)
            .field("post_id", &self.post_id)
            .finish_non_exhaustive()
    }
}

impl SnapProgress {
    /// Drops the container: the next attempt uploads the file into a new one.
    pub fn forget_container(&mut self) {
        self.media_id = None;
        self.finalized = false;
        self.finalize_sent = false;
        self.parts_done = 0;
    }

    /// Taken as finalized because a `FINALIZE` was refused after an earlier one whose answer
    /// was lost: Snap never said so.
    pub fn finalize_unconfirmed(&self) -> bool {
        self.finalized && self.finalize_sent
    }

    /// Saved progress about `url`, if that is what was saved.
    pub fn for_media(saved: &Value, url: &str) -> Option<SnapProgress> {
        let p: SnapProgress = serde_json::from_value(saved.clone()).ok()?;
        (p.kind == "snapchat" && p.media_url == url).then_some(p)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }

    /// A container that is uploaded and finalized, young enough to be posted from.
    pub fn ready(&self, now_ms: i64) -> bool {
        self.media_id.is_some() && self.finalized && self.young(now_ms)
    }

    /// A container young enough to go on uploading into.
    pub fn young(&self, now_ms: i64) -> bool {
        self.media_id.is_some() && now_ms - self.created_ms < MEDIA_MAX_AGE_MS
    }

    fn key_iv(&self) -> Option<([u8; 32], [u8; 16])> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.decode(&self.key).ok()?.try_into().ok()?;
        let iv = b64.decode(&self.iv).ok()?.try_into().ok()?;
        Some((key, iv))
    }
}

/// `POST /v1/public_profiles/{profile_id}/media`'s answer: `media_id`, and the paths the parts
/// go to.
#[derive(Deserialize)]
struct CreatedMedia {
    #[serde(default)]
    media_id: String,
    #[serde(default)]
    add_path: String,
    #[serde(default)]
    finalize_path: String,
}

/// `ADD` and `FINALIZE` answers carry only the envelope.
#[derive(Deserialize)]
struct Ack {}

impl Snapchat {
    /// Uploads the file at `url` into a container (a new one unless `saved` names one still
    /// young), saving progress after each step; the finalized progress.
    pub(super) async fn upload(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        limits: &MediaLimits,
        saved: Option<SnapProgress>,
    ) -> Result<SnapProgress, PublishError> {
        let now = chrono::Utc::now().timestamp_millis();
        let stream = self.media.stream(url, limits).await?;
        let reuploaded = saved.as_ref().is_some_and(|p| p.reuploaded);
        let mut progress = match saved.filter(|p| p.young(now) && p.key_iv().is_some()) {
            Some(p) if p.finalized => return Ok(p),
            Some(p) if p.part_size > 0 && p.parts == parts_of(stream.size, p.part_size) => p,
            _ => {
                self.create(request, token, url, stream.mime, stream.size, reuploaded)
                    .await?
            }
        };
        let sent = self.send_parts(request, token, stream, &mut progress).await;
        if let Err(e) = sent {
            return Err(self.container_lost(request, e, &mut progress).await);
        }
        self.finalize(request, token, &mut progress).await?;
        Ok(progress)
    }

    /// `FINALIZE`, `finalize_sent` saved before it (no `FINALIZE` when that save fails).
    ///
    /// - Accepted: finalized.
    /// - No answer, or one that says nothing of the container (a timeout, a broken connection, a
    ///   5xx, a body that does not parse): `finalize_sent` stays, and the next attempt sends
    ///   `FINALIZE` again; no part is sent again.
    /// - `MEDIA_EXPIRED`: the container is forgotten and the next attempt uploads the file into
    ///   a new one (a day has passed: nothing the file did).
    /// - 401, 403, 429: Snap did not act on this one; the target fails or waits as any call's
    ///   would, and `finalize_sent` is what it was before.
    /// - Any other refusal (a 4xx, Snap's word on the file: it does not decrypt, it is not a
    ///   video Snap takes, it is too large) when no earlier `FINALIZE` went unanswered: the target
    ///   fails for good, with Snap's message. Uploading the same bytes again would be refused
    ///   again, and each time would cost the whole file (up to 500 MB).
    /// - The same refusal after an earlier `FINALIZE` went unanswered may only say that one
    ///   worked (Snap documents neither answer; the fake refuses a second `FINALIZE` with 400): the
    ///   container is taken as finalized and posted from. If the post is then refused, `post`
    ///   uploads the file again, once ([`SnapProgress::reuploaded`]).
    async fn finalize(
        &self,
        request: &PublishRequest,
        token: &str,
        progress: &mut SnapProgress,
    ) -> Result<(), PublishError> {
        let url = self.path_url(&progress.finalize_path)?;
        let unanswered_before = progress.finalize_sent;
        progress.finalize_sent = true;
        request.progress.save(progress.to_json()).await?;
        let form = reqwest::multipart::Form::new().text("action", "FINALIZE");
        let finalized: Result<Ack, PublishError> = api::call(
            self.client.post(url).multipart(form),
            token,
            Effect::Repeatable,
        )
        .await;
        let e = match finalized {
            Ok(_) => {
                progress.finalized = true;
                progress.finalize_sent = false;
                request.progress.save(progress.to_json()).await?;
                return Ok(());
            }
            Err(e) => e,
        };
        if unanswered(&e) {
            return Err(e);
        }
        if e.code == "media_expired" {
            return Err(self.container_lost(request, e, progress).await);
        }
        let refusal = e.class == FailureClass::Permanent
            && e.code != http::TOKEN_INVALID
            && e.code != "forbidden";
        if refusal && unanswered_before {
            tracing::warn!(
                media_id = progress.media_id.as_deref().unwrap_or(""),
                error = %e,
                "Snapchat refused FINALIZE after an earlier FINALIZE went unanswered; \
                 posting from the container as if that one had worked"
            );
            progress.finalized = true;
            request.progress.save(progress.to_json()).await?;
            return Ok(());
        }
        if refusal {
            // Nothing to go on from: a later try (a retry the user asks for) starts afresh.
            progress.forget_container();
            save_quietly(request, progress).await;
            return Err(finalize_refused(e));
        }
        progress.finalize_sent = unanswered_before;
        save_quietly(request, progress).await;
        Err(e)
    }

    /// A container for the file, with a fresh key and IV; saved before any part is sent.
    async fn create(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        mime: &str,
        size: u64,
        reuploaded: bool,
    ) -> Result<SnapProgress, PublishError> {
        let kind = if mime.starts_with("video/") {
            "VIDEO"
        } else {
            "IMAGE"
        };
        let part_size = part_size(encrypted_len(size)).ok_or_else(|| {
            PublishError::new(
                FailureClass::Permanent,
                "media_too_large",
                format!(
                    "{PLATFORM} takes files of up to {} parts of {} MiB; this one has {} bytes.",
                    MAX_PARTS,
                    MAX_PART_BYTES >> 20,
                    size
                ),
            )
        })?;
        let mut key = [0u8; 32];
        let mut iv = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        rand::thread_rng().fill_bytes(&mut iv);
        let b64 = base64::engine::general_purpose::STANDARD;
        let (key, iv) = (b64.encode(key), b64.encode(iv));
        let body = serde_json::json!({
            "type": kind,
            "name": format!("soku-{}", request.target_id),
            "key": key,
            "iv": iv,
        });
        let profile = profile_id(request);
        // A lost answer leaves a container nobody uses, which Snap drops after 24 hours.
        let created: CreatedMedia = api::call(
            self.client
                .post(format!(
                    "{}/v1/public_profiles/{profile}/media",
                    self.settings.api_url
                ))
                .json(&body),
            token,
            Effect::Repeatable,
        )
        .await?;
        if created.media_id.is_empty() {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                format!("{PLATFORM} created the media container without naming it."),
            ));
        }
        let progress = SnapProgress {
            kind: "snapchat".into(),
            media_url: url.to_owned(),
            add_path: created.add_path,
            finalize_path: created.finalize_path,
            media_id: Some(created.media_id),
            key,
            iv,
            part_size,
            parts: parts_of(size, part_size),
            parts_done: 0,
            finalized: false,
            finalize_sent: false,
            reuploaded,
            created_ms: chrono::Utc::now().timestamp_millis(),
            post_sent: false,
            post_id: None,
        };
        // Checked before it is saved: a path that is not Snap's is never written down.
        self.path_url(&progress.add_path)?;
        self.path_url(&progress.finalize_path)?;
        request.progress.save(progress.to_json()).await?;
        Ok(progress)
    }

    /// Encrypts the stream and sends the parts from `parts_done` on (the ones before are
    /// encrypted again, to carry the cipher's chain, and not sent), saving after each.
    async fn send_parts(
        &self,
        request: &PublishRequest,
        token: &str,
        stream: MediaStream,
        progress: &mut SnapProgress,
    ) -> Result<(), PublishError> {
        let (key, iv) = progress.key_iv().expect("checked by the caller");
        let mut cipher = Encrypting::new(&key, &iv);
        let part_size = progress.part_size as usize;
        let MediaStream {
            size, mut chunks, ..
        } = stream;
        let mut read = 0u64;
        let mut part = Vec::with_capacity(part_size + BLOCK);
        let mut number = 0u64;
        let mut ended = false;
        while !ended {
            match chunks.next().await {
                Some(piece) => {
                    let piece = piece?;
                    read += piece.len() as u64;
                    cipher.update(&piece, &mut part);
                }
                None => {
                    if read != size {
                        return Err(media_changed());
                    }
                    ended = true;
                    cipher.finish(&mut part);
                }
            }
            while part.len() >= part_size || (ended && !part.is_empty()) {
                let rest = part.split_off(part.len().min(part_size));
                let chunk = std::mem::replace(&mut part, rest);
                number += 1;
                if number <= progress.parts_done {
                    continue;
                }
                self.add_part(token, progress, number, chunk).await?;
                progress.parts_done = number;
                request.progress.save(progress.to_json()).await?;
            }
        }
        if number != progress.parts {
            return Err(media_changed());
        }
        Ok(())
    }

    /// `ADD`: multipart/form-data `action=ADD`, `part_number` (from 1), `file`.
    async fn add_part(
        &self,
        token: &str,
        progress: &SnapProgress,
        number: u64,
        bytes: Vec<u8>,
    ) -> Result<(), PublishError> {
        let timeout = http::upload_timeout(self.settings.timeout, bytes.len() as u64);
        let file = reqwest::multipart::Part::bytes(bytes)
            .file_name(format!("part-{number}.bin"))
            .mime_str("application/octet-stream")
            .expect("a valid MIME type");
        let form = reqwest::multipart::Form::new()
            .text("action", "ADD")
            .text("part_number", number.to_string())
            .part("file", file);
        let _: Ack = api::call(
            self.client
                .post(self.path_url(&progress.add_path)?)
                .timeout(timeout)
                .multipart(form),
            token,
            Effect::Repeatable,
        )
        .await?;
        Ok(())
    }

    /// After a failed upload step: a container Snap dropped (`media_expired`) is forgotten,
    /// saved so, so that the next attempt uploads into a new one; `e` is returned either way.
    async fn container_lost(
        &self,
        request: &PublishRequest,
        e: PublishError,
        progress: &mut SnapProgress,
    ) -> PublishError {
        if e.code == "media_expired" {
            progress.forget_container();
            if let Err(unsaved) = request.progress.save(progress.to_json()).await {
                return unsaved;
            }
        }
        e
    }

    /// Snap hands back paths ("/us/v1/public_profiles/.../multipart-upload"), joined to the
    /// API's host. Anything else (a full URL, a path with `..`, a query) is refused: parts and
    /// the token go nowhere but Snap's API.
    pub(super) fn path_url(&self, path: &str) -> Result<String, PublishError> {
        let fine = path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains("..")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
        if !fine {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!("{PLATFORM} gave an upload path this server does not follow."),
            )
            .with_platform_error(http::platform_text(path.as_bytes())));
        }
        Ok(format!("{}{path}", self.settings.api_url))
    }
}

/// Whether a failed call left its effect unknown: no answer (a timeout, a broken connection), a
/// 5xx, or a 2xx body that does not parse. Snap may have acted on it.
fn unanswered(e: &PublishError) -> bool {
    e.class != FailureClass::Permanent
        && matches!(
            e.code.as_str(),
            "timeout" | "connection_lost" | "platform_error" | "unexpected_response"
        )
}

/// Saves the progress; a failure is only logged: the progress then still says `finalize_sent`
/// (saved before `FINALIZE`), which costs a later attempt at most a post tried from the
/// container before the file is uploaded again.
async fn save_quietly(request: &PublishRequest, progress: &SnapProgress) {
    if let Err(e) = request.progress.save(progress.to_json()).await {
        tracing::warn!(error = %e, "the Snapchat upload's progress could not be saved");
    }
}

/// Snap's refusal of `FINALIZE`, as the target's failure: permanent, with Snap's words.
fn finalize_refused(e: PublishError) -> PublishError {
    PublishError {
        class: FailureClass::Permanent,
        code: "upload_failed".into(),
        message: format!(
            "{PLATFORM} refused the uploaded media when it was finalized, so nothing was posted \
             ({}). Check that the file is an MP4, JPEG or PNG Snapchat takes.",
            e.message
        ),
        platform_error: e.platform_error,
    }
}

/// How many parts a file of `size` bytes takes at `part_size`.
fn parts_of(size: u64, part_size: u64) -> u64 {
    if part_size == 0 {
        return 0;
    }
    encrypted_len(size).div_ceil(part_size)
}

/// The account's Public Profile id (the account id; `meta.profile_id` says the same).
pub(super) fn profile_id(request: &PublishRequest) -> String {
    crate::http::percent_encode(&request.account.account_id)
}

fn media_changed() -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "media_changed",
        "The media did not have the size it announced; the post will be tried again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::block_padding::Pkcs7;

    fn whole(key: &[u8; 32], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
        cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(data)
    }

    #[test]
    fn streamed_encryption_is_the_whole_files() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 4096] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for piece in [1usize, 3, 16, 17, 100, 5000] {
                let mut enc = Encrypting::new(&key, &iv);
                let mut out = Vec::new();
                for chunk in data.chunks(piece) {
                    enc.update(chunk, &mut out);
                }
                enc.finish(&mut out);
                assert_eq!(out, whole(&key, &iv, &data), "len {len}, pieces of {piece}");
                assert_eq!(out.len() as u64, encrypted_len(len as u64));
            }
        }
    }

    #[test]
    fn part_sizes() {
        assert_eq!(part_size(1), Some(MIN_PART_BYTES));
        assert_eq!(part_size(MIN_PART_BYTES * MAX_PARTS), Some(MIN_PART_BYTES));
        let big = 500 * 1024 * 1024;
        let size = part_size(big).unwrap();
        assert!(size.is_multiple_of(16) && size * MAX_PARTS >= big && size <= MAX_PART_BYTES);
        assert_eq!(part_size(MAX_PART_BYTES * MAX_PARTS + 1), None);
        assert_eq!(parts_of(0, MIN_PART_BYTES), 1);
        assert_eq!(
            parts_of(MIN_PART_BYTES, MIN_PART_BYTES),
            2,
            "padding adds a block"
        );
    }

    #[test]
    fn progress_ages() {
        let p = SnapProgress {
            kind: "snapchat".into(),
            media_url: "u".into(),
            media_id: Some("m".into()),
            add_path: String::new(),
            finalize_path: String::new(),
            key: String::new(),
            iv: String::new(),
            part_size: 16,
            parts: 1,
            parts_done: 1,
            finalized: true,
            finalize_sent: false,
            reuploaded: false,
            created_ms: 0,
            post_sent: false,
            post_id: None,
        };
        assert!(p.ready(MEDIA_MAX_AGE_MS - 1));
        assert!(!p.ready(MEDIA_MAX_AGE_MS));
        assert_eq!(SnapProgress::for_media(&p.to_json(), "u"), Some(p.clone()));
        assert_eq!(SnapProgress::for_media(&p.to_json(), "v"), None);
    }
}
