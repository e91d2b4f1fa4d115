//! Secret keys and domain-separated signing.
//!
//! Every signature in Switchboard covers `DOMAIN || postcard(body)`, with a distinct domain per
//! kind of signed object, so that a signature made for one purpose (a record) can never be
//! replayed as another (a ticket). Verification re-encodes the decoded body, so the signature
//! covers the meaning of the message, not one particular byte string.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, Verifier};
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

/// The auth-server's public key, checked and decompressed once: what every verifier holds.
///
/// Decompressing an Ed25519 key costs about 10 µs; a supernode verifies a ticket per
/// handshake, so it pays that once at start-up instead.
#[derive(Clone)]
pub struct TrustAnchor {
    key: AuthKey,
    verifying: ed25519_dalek::VerifyingKey,
}

impl TrustAnchor {
    /// Checks that `key` is a usable Ed25519 public key (a curve point, not a weak one).
    pub fn new(key: AuthKey) -> Result<Self, ParseKeyError> {
        let verifying = key.verifying_key()?;
        if verifying.is_weak() {
            return Err(ParseKeyError::NotOnCurve);
        }
        Ok(Self { key, verifying })
    }

    /// The key.
    pub fn key(&self) -> AuthKey {
        self.key
    }

    pub(crate) fn verifying_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.verifying
    }
}

impl PartialEq for TrustAnchor {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for TrustAnchor {}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustAnchor({})", self.key.short())
    }
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

    /// The public key, as an auth-server key.
    pub fn auth_key(&self) -> AuthKey {
        AuthKey::from_bytes(self.0.verifying_key().to_bytes())
    }

    /// The public key, as a ready-to-use trust anchor.
    pub fn trust_anchor(&self) -> TrustAnchor {
        TrustAnchor {
            key: self.auth_key(),
            verifying: self.0.verifying_key(),
        }
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
pub(crate) fn verify<T: Serialize>(
    key: &ed25519_dalek::VerifyingKey,
    domain: &[u8],
    body: &T,
    signature: &Signature,
) -> Result<(), SignatureError> {
    let message = signing_input(domain, body)?;
    verify_message(key, &message, &signature.0)
}

/// Ed25519 verification as RFC 8032 defines it, refusing weak (small-order) public keys.
///
/// Not `verify_strict`: its extra check, a small-order `R`, costs a point decompression
/// (measurably slower per verification, see `BENCHMARKS.md`), and it protects only signature
/// *uniqueness*, which nothing here relies on: a signature is checked, never compared or used
/// as an id. Non-canonical `S` values are still refused, so signatures are not malleable.
fn verify_message(
    key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    if key.is_weak() {
        return Err(SignatureError::Mismatch);
    }
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify(message, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks a raw Ed25519 signature by `signer` over `message`: for signatures that are not ours
/// to frame, such as the TLS 1.3 CertificateVerify of a handshake.
pub fn verify_raw(signer: &NodeId, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let signature: &[u8; 64] = signature.try_into().map_err(|_| SignatureError::Mismatch)?;
    verify_message(&signer.verifying_key()?, message, signature)
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
    fn a_raw_signature_verifies_only_for_its_message_and_signer() {
        let key = SecretKey::from_seed([6; 32]);
        let signature = key.0.sign(b"handshake transcript").to_bytes();
        assert!(verify_raw(&key.node_id(), b"handshake transcript", &signature).is_ok());
        assert!(verify_raw(&key.node_id(), b"another transcript", &signature).is_err());
        let other = SecretKey::from_seed([7; 32]).node_id();
        assert!(verify_raw(&other, b"handshake transcript", &signature).is_err());
        assert!(verify_raw(&key.node_id(), b"handshake transcript", &signature[..63]).is_err());
    }

    #[test]
    fn a_weak_public_key_never_verifies() {
        // The identity point (a small-order key): any "signature" by it must be refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = NodeId::from_bytes(identity);
        assert!(verify_raw(&weak, b"m", &[0u8; 64]).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SecretKey::from_seed([5; 32]);
        let shown = format!("{key:?}");
        assert!(shown.starts_with("SecretKey(public "));
        assert!(!shown.contains("0505"));
    }
}
