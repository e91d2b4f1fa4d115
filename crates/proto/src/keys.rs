//! Secret keys and domain-separated signing.
//!
//! Every signature in Switchboard covers `DOMAIN || postcard(body)`, with a distinct domain per
//! kind of signed object, so that a signature made for one purpose (a record) can never be
//! replayed as another (a ticket). Verification re-encodes the decoded body, so the signature
//! covers the meaning of the message, not one particular byte string.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::Signer;
use serde::Serialize;

use crate::ids::{AuthKey, NodeId, ParseKeyError, Signature};

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signing key's bytes are not a valid public key.
    #[error("signer key: {0}")]
    BadKey(#[from] ParseKeyError),
    /// The signature does not match the body and key.
    #[error("signature does not verify")]
    Mismatch,
    /// The body could not be encoded (cannot happen for our own types; kept for honesty).
    #[error("body cannot be encoded: {0}")]
    Encode(String),
}

/// Why a stored secret key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a PKCS#8 Ed25519 private key: {0}")]
pub struct KeyFormatError(String);

/// An Ed25519 secret key: a node key, or the auth-server's signing key.
///
/// Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// Derives the key from 32 bytes of secret randomness, which the caller provides
    /// (`proto` has no random source of its own).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Loads a key stored as PKCS#8 DER (what [`Self::to_pkcs8_der`] writes).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyFormatError> {
        ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map(Self)
            .map_err(|e| KeyFormatError(e.to_string()))
    }

    /// The key as PKCS#8 v1 DER, the form both key files and TLS libraries understand.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyFormatError> {
        self.0
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|e| KeyFormatError(e.to_string()))
    }

    /// The public key, as a node identity.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_bytes(self.0.verifying_key().to_bytes())
    }

    /// The public key, as an auth-server trust anchor.
    pub fn auth_key(&self) -> AuthKey {
        AuthKey::from_bytes(self.0.verifying_key().to_bytes())
    }

    /// Signs `body` under `domain`.
    pub(crate) fn sign<T: Serialize>(
        &self,
        domain: &[u8],
        body: &T,
    ) -> Result<Signature, SignatureError> {
        let message = signing_input(domain, body)?;
        Ok(Signature(self.0.sign(&message).to_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.node_id().short())
    }
}

fn signing_input<T: Serialize>(domain: &[u8], body: &T) -> Result<Vec<u8>, SignatureError> {
    let mut message = domain.to_vec();
    postcard::to_io(body, &mut message).map_err(|e| SignatureError::Encode(e.to_string()))?;
    Ok(message)
}

/// Checks that `signature` is `key`'s signature of `body` under `domain`.
///
/// Uses strict verification (rejects small-order keys and non-canonical signatures), so one
/// body has exactly one valid signature per key.
pub(crate) fn verify<T: Serialize>(
    key: &ed25519_dalek::VerifyingKey,
    domain: &[u8],
    body: &T,
    signature: &Signature,
) -> Result<(), SignatureError> {
    let message = signing_input(domain, body)?;
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(&message, &signature)
        .map_err(|_| SignatureError::Mismatch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_its_pkcs8_form() {
        let key = SecretKey::from_seed([3; 32]);
        let der = key.to_pkcs8_der().unwrap();
        let back = SecretKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(back.node_id(), key.node_id());
        assert!(SecretKey::from_pkcs8_der(b"garbage").is_err());
    }

    #[test]
    fn a_signature_for_one_domain_does_not_verify_in_another() {
        let key = SecretKey::from_seed([4; 32]);
        let sig = key.sign(b"one", &42u32).unwrap();
        let public = key.node_id().verifying_key().unwrap();
        assert!(verify(&public, b"one", &42u32, &sig).is_ok());
        assert_eq!(
            verify(&public, b"two", &42u32, &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&public, b"one", &43u32, &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SecretKey::from_seed([5; 32]);
        let shown = format!("{key:?}");
        assert!(shown.starts_with("SecretKey(public "));
        assert!(!shown.contains("0505"));
    }
}
