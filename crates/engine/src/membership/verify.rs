//! Member statements checked before foca, placement or the load table sees them.
//!
//! Every identity in the membership is a [`MemberInfo`]: a statement (node, address, role,
//! capacity, generation) with its proof (the member's ticket and its node key's signature; see
//! [`switchboard_proto::member`]). The codec ([`super::codec`]) reads foca's packets through
//! [`Verifier::take_identity`] and refuses one carrying any identity that does not verify:
//! foca decodes every identity of a packet before it applies anything, so a refused packet
//! changes nothing. Sync
//! samples are filtered entry by entry ([`super::Membership::handle_sync`]), and load reports
//! must be signed by their member and name a live one.
//!
//! Each statement is verified once (two Ed25519 verifications, ~80 µs) and remembered by the
//! SHA-256 of its encoding, so a statement relayed a thousand times costs one verification, and
//! every copy taken is replaced by the one verified first (one allocation per statement, however
//! many views hold it); the statement this view holds of a live member is known again by
//! comparison alone, without the digest (most identities a packet names are such).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foca::Member;
use switchboard_proto::member::{LoadReport, MemberError};
use switchboard_proto::{AuthKey, NodeId, TrustAnchor};

pub use super::codec::CodecError;
use super::{MemberInfo, SwimId};

/// Statements remembered as verified. Each live or recently down member has one per generation
/// (and per ticket refresh); 65,536 covers an overlay of tens of thousands. When full the cache
/// is emptied and refilled as statements arrive (a burst of re-verification, never a refusal).
pub const MAX_VERIFIED_STATEMENTS: usize = 65_536;

/// What has been verified, remembered by the SHA-256 of the trust anchor and the verified bytes
/// (so that a statement verified under one auth-server's key is never taken under another's).
/// A verified member statement and a verified load report are kept themselves, so that every
/// later copy of the same statement or report shares that one allocation instead of its own
/// decoded ticket and signatures.
///
/// A daemon's member has its own. The simulator's members share one
/// ([`super::MembershipConfig::shared_verification`]): each of its thousands of supernodes would
/// otherwise verify every other's statements and load reports again, the same pure function of
/// the same bytes (issue #15's "verify each once"), and keep a copy of each in every view.
#[derive(Debug, Clone)]
pub struct VerifiedCache {
    inner: Arc<Mutex<Remembered>>,
    capacity: usize,
}

/// The [`VerifiedCache`]'s tables, emptied together when full.
#[derive(Debug, Default)]
struct Remembered {
    digests: HashMap<[u8; 32], Verified>,
    /// The statement of each node verified last, with the key of the auth-server it was
    /// verified under: a copy equal to it is verified without the digest of its encoding. A
    /// view that starts with a thousand members it is handed (the simulator's warm start) is
    /// thus not a thousand SHA-256s of 400 bytes each (at 4,000 supernodes, 16 million of them
    /// were a tenth of the run).
    latest: HashMap<NodeId, (AuthKey, MemberInfo)>,
}

/// What a digest in the [`VerifiedCache`] stands for.
#[derive(Debug)]
enum Verified {
    /// A load report, to share.
    Load(Arc<LoadReport>),
    /// A member statement, to share.
    Statement(MemberInfo),
}

impl VerifiedCache {
    /// An empty cache of at most `capacity` digests (emptied when full: a burst of
    /// re-verification, never a refusal).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Remembered::default())),
            capacity: capacity.max(1),
        }
    }

    fn remembered(&self) -> MutexGuard<'_, Remembered> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shared copy of the load report `digest`, if it was verified.
    pub(crate) fn load(&self, digest: &[u8; 32]) -> Option<Arc<LoadReport>> {
        match self.remembered().digests.get(digest) {
            Some(Verified::Load(report)) => Some(Arc::clone(report)),
            Some(Verified::Statement(_)) | None => None,
        }
    }

    /// Remembers the load report `digest` as verified, to share.
    pub(crate) fn insert_load(&self, digest: [u8; 32], report: Arc<LoadReport>) {
        drop(self.remember(digest, Verified::Load(report)));
    }

    /// The shared copy of the statement `digest`, if it was verified.
    fn statement(&self, digest: &[u8; 32]) -> Option<MemberInfo> {
        match self.remembered().digests.get(digest) {
            Some(Verified::Statement(statement)) => Some(statement.clone()),
            Some(Verified::Load(_)) | None => None,
        }
    }

    /// The shared copy of `info`, if the statement its node was verified last under
    /// `anchor` is the same one, byte for byte.
    fn same_as_latest(&self, anchor: &AuthKey, info: &MemberInfo) -> Option<MemberInfo> {
        let remembered = self.remembered();
        let (verified_under, latest) = remembered.latest.get(&info.node)?;
        (verified_under == anchor && latest == info).then(|| latest.clone())
    }

    /// Remembers the statement `digest` as verified under `anchor`, to share.
    fn insert_statement(&self, anchor: AuthKey, digest: [u8; 32], statement: MemberInfo) {
        let node = statement.node;
        let mut remembered = self.remember(digest, Verified::Statement(statement.clone()));
        remembered.latest.insert(node, (anchor, statement));
    }

    fn remember(&self, digest: [u8; 32], verified: Verified) -> MutexGuard<'_, Remembered> {
        let mut remembered = self.remembered();
        if remembered.digests.len() >= self.capacity || remembered.latest.len() >= self.capacity {
            remembered.digests.clear();
            remembered.latest.clear();
        }
        remembered.digests.insert(digest, verified);
        remembered
    }
}

impl PartialEq for VerifiedCache {
    /// The same cache (configurations compare equal when they share it).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for VerifiedCache {}

/// What the membership has verified, and what it refused.
#[derive(Debug)]
pub(crate) struct Verifier {
    pub(crate) anchor: TrustAnchor,
    pub(crate) verified: VerifiedCache,
    /// Live members (this one included) with the statement this view holds of each, as
    /// verified, and the latest load report taken of each: load reports are taken only for
    /// them, and a statement that arrives again byte for byte (every packet names its sender,
    /// every piggybacked update its member) is known by comparison instead of by the digest of
    /// its encoding.
    pub(crate) live: crate::by_node::ByNode<Live>,
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

/// A live member as the verifier holds it: its statement and the latest load report taken of
/// it. One table for both: a member's first report fills its entry in place, where a table of
/// loads of its own took an insertion in a sorted array per member and view (at 4,000
/// supernodes, moving the arrays' tails was 7% of the first simulated seconds, and grows as
/// the cube of the overlay), and a report is looked up once, not in two tables. 40 bytes.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) info: MemberInfo,
    pub(crate) load: Option<super::load::Known>,
}

impl crate::placement::NamesNode for Live {
    fn node_id(&self) -> &NodeId {
        &self.info.node
    }
}

impl Verifier {
    /// Holds `info` as live, keeping the load taken of its node (a renewed statement is the
    /// same member).
    pub(crate) fn set_live(&mut self, info: MemberInfo) {
        match self.live.get_mut(&info.node) {
            Some(held) => held.info = info,
            None => {
                self.live.insert(Live { info, load: None });
            }
        }
    }

    pub(crate) fn new(anchor: TrustAnchor, shared: Option<VerifiedCache>) -> Self {
        Self {
            anchor,
            verified: shared.unwrap_or_else(|| VerifiedCache::new(MAX_VERIFIED_STATEMENTS)),
            live: crate::by_node::ByNode::default(),
            statements_refused: 0,
            loads_refused: 0,
        }
    }

    /// Checks `info`'s proof (once per distinct statement); counts a refusal. A statement
    /// verified before is replaced by the copy kept then, so that its copies share one.
    pub(crate) fn check(&mut self, info: &mut MemberInfo) -> Result<(), MemberError> {
        if let Some(held) = self.live.get(&info.node) {
            if held.info == *info {
                // The statement held, verified when it was taken: no digest, no lookup.
                *info = held.info.clone();
                return Ok(());
            }
        }
        if let Some(shared) = self.verified.same_as_latest(&self.anchor.key(), info) {
            *info = shared;
            return Ok(());
        }
        let Some(digest) = crate::digest::of_encoding(&self.anchor, b"statement", &*info) else {
            self.statements_refused += 1;
            return Err(MemberError::BadSignature(
                switchboard_proto::keys::SignatureError::Mismatch,
            ));
        };
        if let Some(shared) = self.verified.statement(&digest) {
            *info = shared;
            return Ok(());
        }
        match info.proof.verify(&self.anchor, &info.body()) {
            Ok(()) => {
                self.verified
                    .insert_statement(self.anchor.key(), digest, info.clone());
                Ok(())
            }
            Err(e) => {
                self.statements_refused += 1;
                Err(e)
            }
        }
    }

    /// The identity `data` starts with (checked if `check`), and the bytes after it. One that
    /// is, byte for byte, the encoding of the statement held of its node is that statement,
    /// taken without decoding or comparing it field by field: most identities a packet names
    /// are such (its sender, its destination, the members its updates are about). Any other is
    /// decoded, and checked as [`Verifier::check`] does.
    pub(super) fn take_identity<'a>(
        &mut self,
        data: &'a [u8],
        check: bool,
    ) -> Result<(SwimId, &'a [u8]), CodecError> {
        let node = data
            .get(..32)
            .and_then(|head| <[u8; 32]>::try_from(head).ok())
            .map(NodeId::from_bytes);
        if let Some(held) = node.and_then(|node| self.live.get(&node)) {
            if let Some(rest) = held.info.encoded().and_then(|e| data.strip_prefix(e)) {
                return Ok((SwimId::from(held.info.clone()), rest));
            }
        }
        let (mut info, rest) = postcard::take_from_bytes::<MemberInfo>(data)?;
        if check {
            self.check(&mut info)?;
        }
        Ok((SwimId::from(info), rest))
    }

    /// [`Verifier::check`] of what foca knows a member by.
    pub(crate) fn check_id(&mut self, id: &mut SwimId) -> Result<(), MemberError> {
        let mut info = id.info().clone();
        self.check(&mut info)?;
        *id = SwimId::from(info);
        Ok(())
    }

    /// `member` with its statement checked (and its proof shared), or the refusal.
    pub(crate) fn checked_member(
        &mut self,
        member: &Member<SwimId>,
    ) -> Result<Member<SwimId>, MemberError> {
        let mut id = member.id().clone();
        self.check_id(&mut id)?;
        Ok(Member::new(id, member.incarnation(), member.state()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testkit;
    use switchboard_proto::SecretKey;

    /// A supernode's signed statement about itself.
    fn statement() -> MemberInfo {
        testkit::supernode_statement(3)
    }

    #[test]
    fn a_statement_decoded_again_shares_the_proof_verified_first() {
        let shared = VerifiedCache::new(16);
        let mut first = statement();
        let bytes = postcard::to_stdvec(&first).unwrap();
        let mut ours = Verifier::new(testkit::anchor(), Some(shared.clone()));
        assert!(ours.check(&mut first).is_ok());
        // Another view decodes the same statement from the wire: a proof of its own...
        let mut again: MemberInfo = postcard::from_bytes(&bytes).unwrap();
        assert!(!again.shares_with(&first));
        // ...which the check swaps for the one verified first.
        let mut theirs = Verifier::new(testkit::anchor(), Some(shared));
        assert!(theirs.check(&mut again).is_ok());
        assert!(again.shares_with(&first));
        assert_eq!(again, first);
    }

    #[test]
    fn a_shared_cache_never_passes_a_statement_verified_under_another_auth_key() {
        let shared = VerifiedCache::new(16);
        let mut info = statement();
        let mut ours = Verifier::new(testkit::anchor(), Some(shared.clone()));
        assert!(ours.check(&mut info).is_ok());
        // The same bytes again: taken from the cache (a second member sharing it agrees).
        let mut second = Verifier::new(testkit::anchor(), Some(shared.clone()));
        assert!(second.check(&mut info).is_ok());
        // A member trusting another auth-server shares the cache but not its verdicts.
        let other = SecretKey::from_seed([99; 32]).trust_anchor();
        let mut theirs = Verifier::new(other, Some(shared));
        assert!(theirs.check(&mut info).is_err());
        assert_eq!(theirs.statements_refused, 1);
    }

    #[test]
    fn a_statement_is_known_by_its_nodes_last_verified_one_only_if_equal_to_it() {
        let shared = VerifiedCache::new(16);
        let mut held = statement();
        let mut first = Verifier::new(testkit::anchor(), Some(shared.clone()));
        assert!(first.check(&mut held).is_ok());
        // Another view, holding nothing live, is handed the same statement: the copy verified
        // first, known by its node without a digest.
        let mut again: MemberInfo =
            postcard::from_bytes(&postcard::to_stdvec(&held).unwrap()).unwrap();
        let mut second = Verifier::new(testkit::anchor(), Some(shared));
        assert!(second.check(&mut again).is_ok());
        assert!(again.shares_with(&held));
        // The same node's statement with another address and the proof verified: refused.
        let mut moved = MemberInfo::from(super::super::Statement {
            addr: "127.0.0.1:4001".parse().unwrap(),
            ..held.to_statement()
        });
        assert!(second.check(&mut moved).is_err());
        assert_eq!(second.statements_refused, 1);
    }

    #[test]
    fn a_held_statement_is_known_again_only_with_its_own_proof() {
        let mut held = statement();
        let mut verifier = Verifier::new(testkit::anchor(), None);
        assert!(verifier.check(&mut held).is_ok());
        verifier.set_live(held.clone());
        // The same statement decoded again: taken, sharing the proof held.
        let mut again: MemberInfo =
            postcard::from_bytes(&postcard::to_stdvec(&held).unwrap()).unwrap();
        assert!(verifier.check(&mut again).is_ok());
        assert!(again.shares_with(&held));
        // The held body with the proof of another statement of the same member: refused.
        let next = MemberInfo::signed(
            &testkit::signer(3),
            held.addr,
            held.role,
            held.capacity,
            held.generation + 1,
        )
        .unwrap();
        let mut forged = MemberInfo::from(super::super::Statement {
            proof: next.proof.clone(),
            ..held.to_statement()
        });
        assert!(verifier.check(&mut forged).is_err());
        assert_eq!(verifier.statements_refused, 1);
    }
}
