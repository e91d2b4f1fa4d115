//! The SHA-256 keys of the verification caches ([`crate::records`], the membership's
//! [`crate::membership::VerifiedCache`]): a digest of the trust anchor's key, a kind, and the
//! exact bytes verified, so that a changed byte or another auth-server's key never matches.

use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_proto::TrustAnchor;

/// The key of `bytes` of kind `kind`, verified under `anchor`.
pub(crate) fn of_bytes(anchor: &TrustAnchor, kind: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(anchor.key().as_bytes());
    hash.update(kind);
    hash.update(bytes);
    hash.finalize().into()
}

/// [`of_bytes`] of `value`'s postcard encoding, written into a buffer allocated once at the
/// size of a statement or a record (the membership encoded every statement of every packet
/// into a `Vec` that grew as it was written, reallocating seven times for a statement, to look
/// it up: reallocation was a third of the lookup).
/// `None` if it does not encode.
pub(crate) fn of_encoding(
    anchor: &TrustAnchor,
    kind: &[u8],
    value: &impl Serialize,
) -> Option<[u8; 32]> {
    let bytes = postcard::to_extend(value, Vec::with_capacity(ENCODING_HINT)).ok()?;
    Some(of_bytes(anchor, kind, &bytes))
}

/// Bytes reserved for an encoding: a member statement (with its ticket) is about 310, a
/// record with a few endpoints about 400; a larger one grows the buffer as usual.
const ENCODING_HINT: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use switchboard_proto::SecretKey;

    proptest! {
        #[test]
        fn the_digest_of_an_encoding_is_the_digest_of_the_encoded_bytes(
            value in proptest::collection::vec((any::<u8>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..600)), 0..8)
        ) {
            let anchor = SecretKey::from_seed([1; 32]).trust_anchor();
            let bytes = postcard::to_stdvec(&value).unwrap();
            prop_assert_eq!(
                of_encoding(&anchor, b"kind", &value),
                Some(of_bytes(&anchor, b"kind", &bytes))
            );
        }
    }
}
