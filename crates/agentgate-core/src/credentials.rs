//! Where service credentials live. Everything that touches a secret goes through
//! [`CredentialStore`]; this is the only module that talks to the OS keychain.
//!
//! Backends:
//! - [`KeychainStore`]: the OS keychain (Secret Service on Linux, Keychain on macOS,
//!   Credential Manager on Windows). The default.
//! - [`EncryptedFileStore`]: for servers without a keychain, chosen explicitly. One
//!   file of ChaCha20-Poly1305-sealed JSON; its 32-byte key is read from a file that
//!   must not sit in the data folder, so a copy of the data folder alone is useless.
//! - [`MemoryStore`]: for tests.
//!
//! Names are namespaced by installation (`<instance>/<service>/<account>`), so two
//! data folders on one machine never share a keychain item.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use crate::config::{Config, CredentialBackend};
use crate::error::Error;
use crate::secret::Secret;

pub trait CredentialStore: Send + Sync + 'static {
    fn get(&self, name: &str) -> Result<Option<Secret>, Error>;
    fn set(&self, name: &str, value: &Secret) -> Result<(), Error>;
    /// Removes the item; removing a missing item is not an error.
    fn delete(&self, name: &str) -> Result<(), Error>;
    /// A short description for settings pages and logs.
    fn describe(&self) -> String;
}

/// Opens the backend the configuration chose, checking that it works now rather
/// than at the first request.
pub fn open(config: &Config) -> Result<Box<dyn CredentialStore>, Error> {
    match config.credential_backend {
        CredentialBackend::Keychain => Ok(Box::new(KeychainStore::open()?)),
        CredentialBackend::EncryptedFile => {
            let key_file = config.secrets_key_file.as_deref().ok_or_else(|| {
                Error::Credentials(
                    "the encrypted-file credential backend needs a key file: set AGENTGATE_SECRETS_KEY_FILE \
                     (or secrets_key_file in the config) to a file outside the data folder; \
                     `agentgate secrets generate-key PATH` makes one"
                        .into(),
                )
            })?;
            Ok(Box::new(EncryptedFileStore::open(
                &config.data_dir.join("secrets.enc"),
                key_file,
                &config.data_dir,
            )?))
        }
    }
}

/// Lets several gateways (tests, or the desktop shell and its helpers) share one store.
impl<T: CredentialStore> CredentialStore for std::sync::Arc<T> {
    fn get(&self, name: &str) -> Result<Option<Secret>, Error> {
        (**self).get(name)
    }
    fn set(&self, name: &str, value: &Secret) -> Result<(), Error> {
        (**self).set(name, value)
    }
    fn delete(&self, name: &str) -> Result<(), Error> {
        (**self).delete(name)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

// ----- OS keychain -----

const KEYCHAIN_SERVICE: &str = "agentgate";

pub struct KeychainStore;

impl KeychainStore {
    pub fn open() -> Result<KeychainStore, Error> {
        // A read of an item that does not exist tells whether the keychain answers at all.
        let probe =
            keyring::Entry::new(KEYCHAIN_SERVICE, "agentgate-probe").map_err(keychain_error)?;
        match probe.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(KeychainStore),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

fn keychain_error(e: keyring::Error) -> Error {
    Error::Credentials(format!(
        "the OS keychain is not available ({e}). On a desktop, unlock your login keyring; \
         on a server with no keychain, keep them in an encrypted file from now on: \
         `agentgate secrets use-file` (it makes a key outside the data folder and \
         writes the choice to the data folder's config.toml)"
    ))
}

impl CredentialStore for KeychainStore {
    fn get(&self, name: &str) -> Result<Option<Secret>, Error> {
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, name).map_err(keychain_error)?;
        match entry.get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), Error> {
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, name).map_err(keychain_error)?;
        entry.set_password(value.expose()).map_err(keychain_error)
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, name).map_err(keychain_error)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn describe(&self) -> String {
        "OS keychain".into()
    }
}

// ----- encrypted file -----

pub struct EncryptedFileStore {
    path: PathBuf,
    cipher: ChaCha20Poly1305,
    /// Serialises this process's read-modify-write cycles; a file lock does the
    /// same across processes (the CLI and the server).
    lock: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct SealedFile {
    version: u32,
    nonce: String,
    ciphertext: String,
}

impl EncryptedFileStore {
    pub fn open(
        path: &Path,
        key_file: &Path,
        data_dir: &Path,
    ) -> Result<EncryptedFileStore, Error> {
        if let (Ok(k), Ok(d)) = (
            std::path::absolute(key_file),
            std::fs::create_dir_all(data_dir).and_then(|_| std::path::absolute(data_dir)),
        ) && k.starts_with(&d)
        {
            return Err(Error::Credentials(format!(
                "the secrets key file {} is inside the data folder {}; keep it elsewhere so that a copy of the data folder does not carry its own key",
                key_file.display(),
                data_dir.display()
            )));
        }
        let key = read_key_file(key_file)?;
        let store = EncryptedFileStore {
            path: path.to_path_buf(),
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            lock: Mutex::new(()),
        };
        // Decrypt once now, so that a wrong key is reported at start.
        store.read_all()?;
        Ok(store)
    }

    fn read_all(&self) -> Result<BTreeMap<String, String>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(file_error(&self.path, e)),
        };
        let sealed: SealedFile = serde_json::from_str(&text).map_err(|_| {
            Error::Credentials(format!(
                "{} is not an agentgate secrets file",
                self.path.display()
            ))
        })?;
        let nonce = B64.decode(&sealed.nonce).ok().filter(|n| n.len() == 12);
        let ct = B64.decode(&sealed.ciphertext).ok();
        let (Some(nonce), Some(ct)) = (nonce, ct) else {
            return Err(Error::Credentials(format!(
                "{} is damaged",
                self.path.display()
            )));
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&nonce), ct.as_ref())
            .map_err(|_| {
                Error::Credentials(format!(
                    "cannot decrypt {}: the key file is not the one it was written with",
                    self.path.display()
                ))
            })?;
        let map: BTreeMap<String, String> = serde_json::from_slice(&plain)
            .map_err(|_| Error::Credentials(format!("{} is damaged", self.path.display())))?;
        let mut plain = plain;
        zeroize::Zeroize::zeroize(&mut plain);
        Ok(map)
    }

    fn write_all(&self, map: &BTreeMap<String, String>) -> Result<(), Error> {
        let mut plain = serde_json::to_vec(map).map_err(|e| Error::Internal(e.into()))?;
        let nonce = crate::keys::random_bytes::<12>();
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_ref())
            .map_err(|_| Error::Internal(anyhow::anyhow!("encryption failed")))?;
        zeroize::Zeroize::zeroize(&mut plain);
        let sealed = SealedFile {
            version: 1,
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
        };
        // Write a sibling file and rename it over the old one, so a crash leaves
        // either the old file or the new one, never half of one.
        let tmp = self.path.with_extension("enc.tmp");
        let mut f = private_file(&tmp).map_err(|e| file_error(&tmp, e))?;
        f.write_all(
            serde_json::to_string(&sealed)
                .unwrap_or_default()
                .as_bytes(),
        )
        .and_then(|_| f.sync_all())
        .map_err(|e| file_error(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| file_error(&self.path, e))
    }

    fn modify(&self, f: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<(), Error> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let lock_path = self.path.with_extension("lock");
        let lock_file = private_file_keep(&lock_path).map_err(|e| file_error(&lock_path, e))?;
        lock_file.lock().map_err(|e| file_error(&lock_path, e))?;
        let mut map = self.read_all()?;
        f(&mut map);
        let res = self.write_all(&map);
        for v in map.values_mut() {
            zeroize::Zeroize::zeroize(v);
        }
        res
    }
}

impl CredentialStore for EncryptedFileStore {
    fn get(&self, name: &str) -> Result<Option<Secret>, Error> {
        let mut map = self.read_all()?;
        let found = map.remove(name).map(Secret::new);
        for v in map.values_mut() {
            zeroize::Zeroize::zeroize(v);
        }
        Ok(found)
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), Error> {
        self.modify(|m| {
            m.insert(name.to_string(), value.expose().to_string());
        })
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        self.modify(|m| {
            m.remove(name);
        })
    }

    fn describe(&self) -> String {
        format!("encrypted file {}", self.path.display())
    }
}

fn file_error(path: &Path, e: std::io::Error) -> Error {
    Error::Credentials(format!("cannot use {}: {e}", path.display()))
}

fn read_key_file(path: &Path) -> Result<[u8; 32], Error> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let bytes = B64.decode(text.trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| {
        Error::Credentials(format!(
            "{} must hold 32 random bytes in base64; `agentgate secrets generate-key PATH` makes one",
            path.display()
        ))
    })?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Writes a new random key file readable only by its owner. Refuses to overwrite.
pub fn generate_key_file(path: &Path) -> Result<(), Error> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| file_error(path, e))?;
    let key = crate::keys::random_bytes::<32>();
    writeln!(f, "{}", B64.encode(key)).map_err(|e| file_error(path, e))
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

fn private_file_keep(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

// ----- in memory -----

/// Keeps secrets in memory only; for tests.
#[derive(Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, String>>);

impl MemoryStore {
    /// The names of the items held, for tests to inspect.
    pub fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

impl CredentialStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<Secret>, Error> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(Secret::new))
    }
    fn set(&self, name: &str, value: &Secret) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value.expose().to_string());
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }
    fn describe(&self) -> String {
        "memory (testing only)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_file_round_trips_and_hides_the_value() {
        let data = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let key = keys.path().join("k");
        generate_key_file(&key).unwrap();
        let path = data.path().join("secrets.enc");
        let s = EncryptedFileStore::open(&path, &key, data.path()).unwrap();
        s.set("i/github/me", &Secret::new("ghp_plaintext_marker"))
            .unwrap();
        assert_eq!(
            s.get("i/github/me").unwrap().unwrap().expose(),
            "ghp_plaintext_marker"
        );
        let raw = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("plaintext_marker"));
        s.delete("i/github/me").unwrap();
        assert!(s.get("i/github/me").unwrap().is_none());
    }

    #[test]
    fn a_wrong_key_or_a_key_in_the_data_folder_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let (k1, k2) = (keys.path().join("k1"), keys.path().join("k2"));
        generate_key_file(&k1).unwrap();
        generate_key_file(&k2).unwrap();
        assert!(generate_key_file(&k1).is_err(), "never overwrites a key");
        let path = data.path().join("secrets.enc");
        EncryptedFileStore::open(&path, &k1, data.path())
            .unwrap()
            .set("a", &Secret::new("b"))
            .unwrap();
        let e = EncryptedFileStore::open(&path, &k2, data.path())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not the one"), "{e}");
        let inside = data.path().join("key");
        generate_key_file(&inside).unwrap();
        let e = EncryptedFileStore::open(&path, &inside, data.path())
            .err()
            .unwrap();
        assert!(e.to_string().contains("inside the data folder"), "{e}");
    }
}
