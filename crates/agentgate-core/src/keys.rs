//! Agent keys and admin tokens.
//!
//! A key is `rms_` plus 40 base62 characters from the OS random source (about 238
//! bits). Only a keyed digest is stored: HMAC-SHA-256 under a per-installation
//! secret that lives in the credential store, not in the database, so a leaked
//! database yields neither keys nor a way to test guesses offline. Verifying a key
//! is one digest and one indexed lookup, whatever the number of keys.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AGENT_KEY_PREFIX: &str = "rms_";
pub const ADMIN_TOKEN_PREFIX: &str = "agt_";
const KEY_RANDOM_CHARS: usize = 40;
const MIN_KEY_RANDOM_CHARS: usize = 32;
const MAX_KEY_CHARS: usize = 200;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random base62 text from the OS random source, without modulo bias.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the OS random source failed");
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b
}

pub fn new_agent_key() -> String {
    format!("{AGENT_KEY_PREFIX}{}", random_base62(KEY_RANDOM_CHARS))
}

pub fn new_admin_token() -> String {
    format!("{ADMIN_TOKEN_PREFIX}{}", random_base62(KEY_RANDOM_CHARS))
}

/// Whether `key` has the shape of an agent key; anything else is refused before
/// any lookup.
pub fn is_well_formed_agent_key(key: &str) -> bool {
    key.len() <= MAX_KEY_CHARS
        && key.strip_prefix(AGENT_KEY_PREFIX).is_some_and(|rest| {
            rest.len() >= MIN_KEY_RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// What may be shown of a key after creation: enough to tell keys apart.
pub fn key_hint(key: &str) -> String {
    format!("{}…", &key[..key.len().min(AGENT_KEY_PREFIX.len() + 4)])
}

/// The stored form of an agent key.
pub fn agent_key_digest(pepper: &[u8], key: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The stored form of an admin session token. Tokens are random and long, so a
/// plain hash suffices: there is nothing to guess offline.
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let a = new_agent_key();
        let b = new_agent_key();
        assert_ne!(a, b);
        assert!(a.starts_with("rms_") && a.len() == 44);
        assert!(is_well_formed_agent_key(&a));
        assert!(!is_well_formed_agent_key("rms_short"));
        assert!(!is_well_formed_agent_key(&a.replace("rms_", "xyz_")));
        assert!(!is_well_formed_agent_key(&format!("{a}!")));
        assert!(!key_hint(&a).contains(&a[10..]));
    }

    #[test]
    fn digests_depend_on_the_pepper() {
        let k = new_agent_key();
        assert_eq!(agent_key_digest(b"p1", &k), agent_key_digest(b"p1", &k));
        assert_ne!(agent_key_digest(b"p1", &k), agent_key_digest(b"p2", &k));
        assert!(digests_equal(&[1, 2], &[1, 2]) && !digests_equal(&[1, 2], &[1, 3]));
    }

    #[test]
    fn base62_is_roughly_uniform() {
        let s = random_base62(62_000);
        let zeros = s.bytes().filter(|&b| b == b'0').count();
        assert!((700..1300).contains(&zeros), "{zeros}");
    }
}
