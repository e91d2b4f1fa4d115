//! Member statements checked before foca, placement or the load table sees them.
//!
//! Every identity in the membership is a [`MemberInfo`]: a statement (node, address, role,
//! capacity, generation) with its proof (the member's ticket and its node key's signature; see
//! [`switchboard_proto::member`]). The [`VerifyingCodec`] wraps foca's postcard codec and
//! refuses a SWIM packet carrying any identity that does not verify: foca decodes every
//! identity of a packet before it applies anything, so a refused packet changes nothing. Sync
//! samples are filtered entry by entry ([`super::Membership::handle_sync`]), and load reports
//! must be signed by their member and name a live one.
//!
//! Each statement is verified once (two Ed25519 verifications, ~80 µs) and remembered by the
//! SHA-256 of its encoding, so a statement relayed a thousand times costs one verification.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Member, Message, PostcardCodec};
use sha2::{Digest, Sha256};
use switchboard_proto::member::MemberError;
use switchboard_proto::{NodeId, TrustAnchor};

use super::MemberInfo;

/// Statements remembered as verified. Each live or recently down member has one per generation
/// (and per ticket refresh); 65,536 covers an overlay of tens of thousands. When full the cache
/// is emptied and refilled as statements arrive (a burst of re-verification, never a refusal).
pub const MAX_VERIFIED_STATEMENTS: usize = 65_536;

/// What the membership has verified, and what it refused.
#[derive(Debug)]
pub(crate) struct Verifier {
    anchor: TrustAnchor,
    verified: HashSet<[u8; 32]>,
    /// Live members (this one included): load reports are taken only for them.
    pub(crate) live: HashSet<NodeId>,
    /// Statements refused (in packets, syncs).
    pub(crate) statements_refused: u64,
    /// Load reports refused (bad signature).
    pub(crate) loads_refused: u64,
}

/// The verifier, shared by the codec, the load handler and the membership (foca owns the first
/// two and does not lend them back).
pub(crate) type SharedVerifier = Arc<Mutex<Verifier>>;

/// Locks the shared verifier, recovering from poisoning (its state is a cache and counters).
pub(crate) fn lock(verifier: &SharedVerifier) -> MutexGuard<'_, Verifier> {
    verifier.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Verifier {
    pub(crate) fn new(anchor: TrustAnchor) -> Self {
        Self {
            anchor,
            verified: HashSet::new(),
            live: HashSet::new(),
            statements_refused: 0,
            loads_refused: 0,
        }
    }

    /// Checks `info`'s proof (once per distinct statement); counts a refusal.
    pub(crate) fn check(&mut self, info: &MemberInfo) -> Result<(), MemberError> {
        let Ok(bytes) = postcard::to_stdvec(info) else {
            self.statements_refused += 1;
            return Err(MemberError::BadSignature(
                switchboard_proto::keys::SignatureError::Mismatch,
            ));
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if self.verified.contains(&digest) {
            return Ok(());
        }
        match info.proof.verify(&self.anchor, &info.body()) {
            Ok(()) => {
                if self.verified.len() >= MAX_VERIFIED_STATEMENTS {
                    self.verified.clear();
                }
                self.verified.insert(digest);
                Ok(())
            }
            Err(e) => {
                self.statements_refused += 1;
                Err(e)
            }
        }
    }
}

/// Why the codec refused a packet.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Not decodable.
    #[error("malformed: {0}")]
    Malformed(#[from] postcard::Error),
    /// An identity in it did not verify.
    #[error("member statement refused: {0}")]
    Statement(#[from] MemberError),
}

/// foca's postcard codec, refusing packets whose identities do not verify.
#[derive(Debug)]
pub(crate) struct VerifyingCodec {
    inner: PostcardCodec,
    verifier: SharedVerifier,
}

impl VerifyingCodec {
    pub(crate) fn new(verifier: SharedVerifier) -> Self {
        Self {
            inner: PostcardCodec,
            verifier,
        }
    }
}

impl Codec<MemberInfo> for VerifyingCodec {
    type Error = CodecError;

    fn encode_header(
        &mut self,
        header: &Header<MemberInfo>,
        buf: impl BufMut,
    ) -> Result<(), CodecError> {
        Ok(self.inner.encode_header(header, buf)?)
    }

    /// The sender and any member the message names must verify. The destination is not
    /// checked: it is this member (an announce to a seed names a placeholder), and nothing of
    /// it is kept.
    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<MemberInfo>, CodecError> {
        let header: Header<MemberInfo> = self.inner.decode_header(buf)?;
        let mut verifier = lock(&self.verifier);
        verifier.check(&header.src)?;
        match &header.message {
            Message::PingReq { target: named, .. }
            | Message::IndirectAck { target: named, .. }
            | Message::IndirectPing { origin: named, .. }
            | Message::ForwardedAck { origin: named, .. } => verifier.check(named)?,
            _ => {}
        }
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<MemberInfo>,
        buf: impl BufMut,
    ) -> Result<(), CodecError> {
        Ok(self.inner.encode_member(member, buf)?)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<MemberInfo>, CodecError> {
        let member: Member<MemberInfo> = self.inner.decode_member(buf)?;
        lock(&self.verifier).check(member.id())?;
        Ok(member)
    }
}
