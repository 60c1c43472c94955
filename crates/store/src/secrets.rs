//! Webhook signing secrets at rest: sealed with XChaCha20-Poly1305 under a
//! key the database does not hold — a key file beside an SQLite database
//! (`switchboard.key`, 0600, made on first start), or the operator's
//! `--secrets-key` (which every node of a PostgreSQL cluster must share).
//! A backup or copy of the database alone reveals no secret. Values written
//! before encryption (plain JSON) are still read, and sealed when next
//! written.

use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

use crate::{Result, StoreError};

/// What sealed values start with (the version of the format).
const SEALED: &str = "enc1:";
const NONCE: usize = 24;

/// Seals and opens stored secrets; `plain()` stores them as they are.
pub struct SecretBox {
    cipher: Option<XChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str(if self.cipher.is_some() {
            "SecretBox(sealed)"
        } else {
            "SecretBox(plain)"
        })
    }
}

impl SecretBox {
    /// Secrets stored unsealed (a PostgreSQL store started without a key).
    pub fn plain() -> SecretBox {
        SecretBox { cipher: None }
    }

    /// A key from the operator: 64 hex digits are the key itself, anything
    /// else is a passphrase hashed into one.
    pub fn from_operator_key(given: &str) -> SecretBox {
        use sha2::Digest as _;
        let key: [u8; 32] = match hex_key(given) {
            Some(k) => k,
            None => sha2::Sha256::digest(given.as_bytes()).into(),
        };
        SecretBox {
            cipher: Some(XChaCha20Poly1305::new(&key.into())),
        }
    }

    /// The key in `path`, made (32 random bytes, hex, mode 0600) if missing.
    pub fn from_key_file(path: &Path) -> Result<SecretBox> {
        let io = |e: std::io::Error| StoreError::backend(format!("{}: {e}", path.display()));
        if !path.exists() {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                open.mode(0o600);
            }
            use std::io::Write as _;
            let mut f = open.open(path).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let key = hex_key(text.trim()).ok_or_else(|| {
            StoreError::backend(format!(
                "{}: not a key (64 hex digits expected)",
                path.display()
            ))
        })?;
        Ok(SecretBox {
            cipher: Some(XChaCha20Poly1305::new(&key.into())),
        })
    }

    /// Whether values are sealed (not `plain()`).
    pub fn seals(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn seal(&self, plain: &str) -> String {
        let Some(cipher) = &self.cipher else {
            return plain.to_owned();
        };
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 seals any length we store");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        )
    }

    pub fn open(&self, stored: &str) -> Result<String> {
        let Some(body) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_owned());
        };
        let wrong = || {
            StoreError::backend(
                "webhook secrets cannot be opened: the secrets key (switchboard.key or --secrets-key) is not the one they were sealed with",
            )
        };
        let cipher = self.cipher.as_ref().ok_or_else(wrong)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| wrong())?;
        if bytes.len() < NONCE {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }
}

fn hex_key(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let a = SecretBox::from_operator_key("correct horse battery staple");
        let sealed = a.seal(r#"[{"secret":"whsec_abc"}]"#);
        assert!(
            sealed.starts_with(SEALED) && !sealed.contains("whsec"),
            "{sealed}"
        );
        assert_ne!(
            sealed,
            a.seal(r#"[{"secret":"whsec_abc"}]"#),
            "a fresh nonce each time"
        );
        assert_eq!(a.open(&sealed).unwrap(), r#"[{"secret":"whsec_abc"}]"#);
        assert!(
            SecretBox::from_operator_key("another")
                .open(&sealed)
                .is_err()
        );
        assert!(SecretBox::plain().open(&sealed).is_err());
        // Written before encryption: read as it is.
        assert_eq!(a.open("[]").unwrap(), "[]");
        let mut tampered = sealed.clone();
        tampered.pop();
        assert!(a.open(&tampered).is_err());
    }

    #[test]
    fn a_key_file_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.key");
        let sealed = SecretBox::from_key_file(&path).unwrap().seal("x");
        assert_eq!(
            SecretBox::from_key_file(&path)
                .unwrap()
                .open(&sealed)
                .unwrap(),
            "x"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
