//! API key format (spec 3.1): `sk_live_` or `sk_test_`, then 40 base62 characters: 34 random
//! characters and a 6-character base62 CRC32 of the random part. Only the SHA-256 of a key is
//! stored. A key is checked for shape and checksum before any database work.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const PREFIX_LEN: usize = 8;
pub const RANDOM_LEN: usize = 34;
pub const CHECKSUM_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    Live,
    Test,
}

impl KeyMode {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyMode::Live => "sk_live_",
            KeyMode::Test => "sk_test_",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(KeyMode::Live),
            "test" => Some(KeyMode::Test),
            _ => None,
        }
    }
}

/// The SHA-256 of a full key: what the database keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// A freshly generated key. The secret is shown to its owner once and never stored.
pub struct GeneratedKey {
    pub secret: String,
    pub hash: KeyHash,
    pub preview: String,
    pub mode: KeyMode,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("preview", &self.preview)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub fn generate(mode: KeyMode) -> GeneratedKey {
    let mut rng = rand::rngs::OsRng;
    let random: String = (0..RANDOM_LEN)
        .map(|_| BASE62[rng.gen_range(0..62)] as char)
        .collect();
    let secret = format!("{}{}{}", mode.prefix(), random, checksum(&random));
    GeneratedKey {
        hash: hash(&secret),
        preview: preview(&secret),
        secret,
        mode,
    }
}

/// A key that has the right shape and checksum; not yet known to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WellFormedKey {
    pub mode: KeyMode,
    pub hash: KeyHash,
}

/// Why a string is not a well-formed key (`check`). Says nothing about the string itself, so
/// that it can be shown without echoing a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not `KEY_LEN` ASCII characters.
    Length,
    /// Neither `sk_live_` nor `sk_test_`.
    Prefix,
    /// A character after the prefix outside `0-9A-Za-z`.
    Alphabet,
    /// The last 6 characters are not the CRC32 of the 34 before them.
    Checksum,
}

impl Malformed {
    pub fn describe(self) -> &'static str {
        match self {
            Malformed::Length => "it is not 48 ASCII characters long",
            Malformed::Prefix => "it does not start with sk_live_ or sk_test_",
            Malformed::Alphabet => "a character after the prefix is not in 0-9A-Za-z",
            Malformed::Checksum => "its last 6 characters are not the checksum of the 34 before",
        }
    }
}

/// Checks prefix, length, alphabet and checksum. No database access; cheap.
pub fn parse(candidate: &str) -> Option<WellFormedKey> {
    check(candidate).ok()
}

/// `parse`, saying which check failed (`soku admin key check`).
pub fn check(candidate: &str) -> Result<WellFormedKey, Malformed> {
    if candidate.len() != KEY_LEN || !candidate.is_ascii() {
        return Err(Malformed::Length);
    }
    let mode = match &candidate[..PREFIX_LEN] {
        "sk_live_" => KeyMode::Live,
        "sk_test_" => KeyMode::Test,
        _ => return Err(Malformed::Prefix),
    };
    let body = &candidate[PREFIX_LEN..];
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Malformed::Alphabet);
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    if checksum(random) != sum {
        return Err(Malformed::Checksum);
    }
    Ok(WellFormedKey {
        mode,
        hash: hash(candidate),
    })
}

pub fn hash(secret: &str) -> KeyHash {
    KeyHash(Sha256::digest(secret.as_bytes()).into())
}

/// `sk_live_abc...xyz`: the prefix, the first and last three characters.
pub fn preview(secret: &str) -> String {
    let body = &secret[PREFIX_LEN..];
    format!(
        "{}{}...{}",
        &secret[..PREFIX_LEN],
        &body[..3],
        &body[body.len() - 3..]
    )
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ascii")
}

/// Random lower-case alphanumeric text, for identifiers such as `req_…` and `key_…`.
pub fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    for _ in 0..len {
        out.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    out
}

/// Whether `id` has the form `random_id(prefix, len)` gives.
pub fn is_random_id(id: &str, prefix: &str, len: usize) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == len
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

/// A random (version 4) UUID in its canonical lower-case form.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `id` has the form `uuid_v4` gives: hyphenated, lower-case hexadecimal.
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids() {
        let u = super::uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, super::uuid_v4());
        assert!(super::is_uuid(&u));
        assert!(!super::is_uuid(&u.to_uppercase()));
        assert!(!super::is_uuid(&u.replace('-', "")));
    }

    #[test]
    fn random_ids_have_the_form_they_are_checked_for() {
        let id = super::random_id("med_", 24);
        assert!(super::is_random_id(&id, "med_", 24));
        assert!(!super::is_random_id(&id, "evt_", 24));
        assert!(!super::is_random_id(&id[..27], "med_", 24));
        assert!(!super::is_random_id(&id.to_uppercase(), "MED_", 24));
    }

    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for mode in [KeyMode::Live, KeyMode::Test] {
            let k = generate(mode);
            assert_eq!(k.secret.len(), KEY_LEN);
            assert!(k.secret.starts_with(mode.prefix()));
            let parsed = parse(&k.secret).expect("a generated key parses");
            assert_eq!(parsed.mode, mode);
            assert_eq!(parsed.hash, k.hash);
            assert_eq!(k.preview.len(), PREFIX_LEN + 3 + 3 + 3);
            assert!(k.preview.contains("..."));
        }
    }

    #[test]
    fn every_single_character_change_breaks_the_checksum_or_shape() {
        let k = generate(KeyMode::Live).secret;
        for i in PREFIX_LEN..KEY_LEN {
            let mut bytes = k.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                parse(&changed).is_none(),
                "position {i} changed yet accepted"
            );
        }
    }

    #[test]
    fn malformed_candidates_are_rejected() {
        let k = generate(KeyMode::Live).secret;
        assert!(parse("").is_none());
        assert!(parse(&k[..KEY_LEN - 1]).is_none());
        assert!(parse(&format!("{k}x")).is_none());
        assert!(parse(&k.replacen("sk_live_", "sk_prod_", 1)).is_none());
        assert!(parse(&k.replacen("sk_live_", "pk_live_", 1)).is_none());
        let mut unicode = k.clone();
        unicode.replace_range(10..11, "é");
        assert!(parse(&unicode).is_none());
    }

    #[test]
    fn checksum_is_six_base62_chars_of_crc32() {
        let random = "a".repeat(RANDOM_LEN);
        let sum = checksum(&random);
        assert_eq!(sum.len(), 6);
        let mut value = 0u64;
        for c in sum.bytes() {
            value = value * 62 + BASE62.iter().position(|&b| b == c).unwrap() as u64;
        }
        assert_eq!(value, crc32fast::hash(random.as_bytes()) as u64);
    }

    /// Computed independently, by the Python snippet of docs/SECURITY.md.
    #[test]
    fn checksum_matches_the_published_algorithm() {
        assert_eq!(checksum(&"a".repeat(RANDOM_LEN)), "4B35tI");
        assert_eq!(checksum("0123456789abcdefghijABCDEFGHIJklmn"), "0ODjlX");
        let key = "sk_live_0123456789abcdefghijABCDEFGHIJklmn0ODjlX";
        assert_eq!(parse(key).unwrap().mode, KeyMode::Live);
        let test = key.replacen("live", "test", 1);
        assert_eq!(parse(&test).unwrap().mode, KeyMode::Test);
    }

    #[test]
    fn check_names_the_failed_check() {
        let key = "sk_live_0123456789abcdefghijABCDEFGHIJklmn0ODjlX";
        assert!(check(key).is_ok());
        assert_eq!(check(&key[1..]), Err(Malformed::Length));
        assert_eq!(
            check(&key.replacen("sk_", "pk_", 1)),
            Err(Malformed::Prefix)
        );
        assert_eq!(
            check(&key.replacen("0123", "01-3", 1)),
            Err(Malformed::Alphabet)
        );
        assert_eq!(
            check(&key.replacen("0ODjlX", "0ODjlY", 1)),
            Err(Malformed::Checksum)
        );
        assert_eq!(
            check(&key.replacen("0123", "01é", 1)),
            Err(Malformed::Length)
        );
    }

    #[test]
    fn random_ids() {
        let id = random_id("req_", 12);
        assert_eq!(id.len(), 16);
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
