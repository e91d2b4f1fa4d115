//! Records: what a lookup returns. A record is signed by the registering device's node key and
//! carries that device's ticket, so any node verifies it end to end: a supernode can drop a
//! record but never forge one (DESIGN.md section 3).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;
use crate::ids::{NodeId, PeerAddr, Signature, UnixTime, Username};
use crate::keys::{self, SecretKey, SignatureError, TrustAnchor};
use crate::limits::{CLOCK_SKEW_SECS, MAX_ENDPOINTS, MAX_RECORD_TTL_SECS};
use crate::ticket::{Ticket, TicketError};

/// Signing domain of records; see [`crate::keys`].
const RECORD_DOMAIN: &[u8] = b"switchboard/record/v1\0";

/// What a device publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordBody {
    /// The device's ticket: who it is, signed by the auth-server.
    pub ticket: Ticket,
    /// Where it accepts direct connections: the addresses of its own interfaces.
    pub endpoints: BoundedVec<SocketAddr, MAX_ENDPOINTS>,
    /// Its reflexive address: where its home supernode saw its session come from (as STUN
    /// reports it), when that is none of `endpoints` (the device sits behind a NAT). A peer
    /// reaches it there only through a hole punched by both sides (README, "Behind NAT"), so it
    /// is kept apart from the addresses a peer may dial straight away.
    pub reflexive: Option<SocketAddr>,
    /// The supernode the device is homed on when it signed the record: where a peer asks for a
    /// coordinated hole punch or a relay towards it.
    pub home: Option<PeerAddr>,
    /// Grows with every new record from this device, so that an older copy never replaces a
    /// newer one in the index.
    pub seq: u64,
    /// When the device signed it.
    pub issued_at: UnixTime,
    /// How long the record stays meaningful without a refresh, in seconds.
    pub ttl_secs: u32,
}

/// A [`RecordBody`] signed by the device's node key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// Shared by the record's clones: a record is copied to its home, its owners, lookup
    /// answers and presence fan-out, and a clone should cost a pointer, not a ticket and a
    /// list of endpoints. Encoded as the body itself (serde's `rc`): the wire format is the
    /// same.
    body: Arc<RecordBody>,
    signature: Signature,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Its ticket does not verify.
    #[error("record's ticket: {0}")]
    Ticket(#[from] TicketError),
    /// Not signed by the node key its ticket names.
    #[error("record is not signed by its ticket's node key ({0})")]
    BadSignature(SignatureError),
    /// The signer is not the node its ticket names.
    #[error("record signed by {signer} carries a ticket for {ticket}")]
    WrongSigner {
        /// Who tried to sign.
        signer: NodeId,
        /// Whom the ticket names.
        ticket: NodeId,
    },
    /// TTL zero or above [`MAX_RECORD_TTL_SECS`].
    #[error("record TTL {0} s is out of bounds (1..={MAX_RECORD_TTL_SECS})")]
    BadTtl(u32),
    /// Older than its TTL (plus clock skew): a stale copy.
    #[error("record issued at {issued_at} is stale (now {now})")]
    Stale {
        /// When it was signed.
        issued_at: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
}

impl Record {
    /// Signs `body` with the device's node key, which must be the key its ticket names.
    pub fn sign(node: &SecretKey, body: RecordBody) -> Result<Self, RecordError> {
        let ticket_node = body.ticket.body_unverified().node;
        if node.node_id() != ticket_node {
            return Err(RecordError::WrongSigner {
                signer: node.node_id(),
                ticket: ticket_node,
            });
        }
        check_ttl(body.ttl_secs)?;
        let signature = node
            .sign(RECORD_DOMAIN, &body)
            .map_err(RecordError::BadSignature)?;
        Ok(Self {
            body: Arc::new(body),
            signature,
        })
    }

    /// The content, unverified. Use [`Self::verify`] before trusting it.
    pub fn body_unverified(&self) -> &RecordBody {
        &self.body
    }

    /// Who published it, according to its (unverified) ticket.
    pub fn user_unverified(&self) -> &Username {
        &self.body.ticket.body_unverified().user
    }

    /// Verifies the ticket against the trusted auth key, the record's signature against the
    /// ticket's node key, and freshness at `now`.
    pub fn verify(&self, trusted: &TrustAnchor, now: UnixTime) -> Result<&RecordBody, RecordError> {
        self.check_time(now)?;
        self.body.ticket.verify_signature(trusted)?;
        self.verify_signature_trusting_ticket()?;
        Ok(&self.body)
    }

    /// The checks of [`Self::verify`] that need no signature: a TTL in bounds, freshness at
    /// `now`, and the ticket's validity window at `now`.
    pub fn check_time(&self, now: UnixTime) -> Result<(), RecordError> {
        check_ttl(self.body.ttl_secs)?;
        let fresh_until = self
            .body
            .issued_at
            .plus(u64::from(self.body.ttl_secs))
            .plus(CLOCK_SKEW_SECS);
        if now >= fresh_until || self.body.issued_at > now.plus(CLOCK_SKEW_SECS) {
            return Err(RecordError::Stale {
                issued_at: self.body.issued_at,
                now,
            });
        }
        self.body.ticket.check_time(now)?;
        Ok(())
    }

    /// Checks only the record's own signature against the node key its ticket names, taking
    /// the ticket as verified: for a caller that verified this very ticket's signature
    /// before ([`Ticket::verify_signature`]) and remembers it by its bytes, as a supernode
    /// does for a device that refreshes its record every few minutes with the same ticket.
    /// Anything else must use [`Self::verify`].
    pub fn verify_signature_trusting_ticket(&self) -> Result<(), RecordError> {
        let key = self
            .body
            .ticket
            .body_unverified()
            .node
            .verifying_key()
            .map_err(|e| RecordError::BadSignature(SignatureError::BadKey(e)))?;
        keys::verify(&key, RECORD_DOMAIN, &self.body, &self.signature)
            .map_err(RecordError::BadSignature)
    }
}

fn check_ttl(ttl: u32) -> Result<(), RecordError> {
    if ttl == 0 || ttl > MAX_RECORD_TTL_SECS {
        return Err(RecordError::BadTtl(ttl));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Role;
    use crate::ticket::TicketBody;

    fn ticket(auth: &SecretKey, node: &SecretKey) -> Ticket {
        Ticket::issue(
            auth,
            TicketBody {
                user: Username::new("bob").unwrap(),
                node: node.node_id(),
                role: Role::User,
                issued_at: UnixTime(1_000),
                expires_at: UnixTime(1_000 + 7_200),
                serial: 7,
            },
        )
        .unwrap()
    }

    fn body(ticket: Ticket) -> RecordBody {
        RecordBody {
            ticket,
            endpoints: BoundedVec::try_from(vec!["127.0.0.1:4000".parse().unwrap()]).unwrap(),
            reflexive: None,
            home: None,
            seq: 1,
            issued_at: UnixTime(1_100),
            ttl_secs: 60,
        }
    }

    #[test]
    fn given_a_signed_record_then_any_node_verifies_it_end_to_end() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let record = Record::sign(&node, body(ticket(&auth, &node))).unwrap();
        let verified = record
            .verify(&auth.trust_anchor(), UnixTime(1_120))
            .unwrap();
        assert_eq!(verified.endpoints.len(), 1);
        assert_eq!(record.user_unverified().as_str(), "bob");
    }

    #[test]
    fn a_record_s_clones_share_one_body_and_the_wire_format_is_the_body_and_signature() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let record = Record::sign(&node, body(ticket(&auth, &node))).unwrap();
        let copy = record.clone();
        assert!(Arc::ptr_eq(&record.body, &copy.body));
        let encoded = postcard::to_stdvec(&record).unwrap();
        let plain = postcard::to_stdvec(&(&*record.body, &record.signature)).unwrap();
        assert_eq!(encoded, plain);
        let decoded: Record = postcard::from_bytes(&encoded).unwrap();
        assert_eq!(decoded, record);
    }

    #[test]
    fn given_a_record_altered_by_a_supernode_then_it_is_refused() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let mut record = Record::sign(&node, body(ticket(&auth, &node))).unwrap();
        Arc::make_mut(&mut record.body).endpoints =
            BoundedVec::try_from(vec!["10.9.9.9:1".parse().unwrap()]).unwrap();
        assert!(matches!(
            record.verify(&auth.trust_anchor(), UnixTime(1_120)),
            Err(RecordError::BadSignature(_))
        ));
    }

    #[test]
    fn a_node_cannot_sign_a_record_with_someone_elses_ticket() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let thief = SecretKey::from_seed([3; 32]);
        assert!(matches!(
            Record::sign(&thief, body(ticket(&auth, &node))),
            Err(RecordError::WrongSigner { .. })
        ));
    }

    #[test]
    fn a_stale_record_is_refused() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let record = Record::sign(&node, body(ticket(&auth, &node))).unwrap();
        let stale_at = UnixTime(1_100 + 60 + CLOCK_SKEW_SECS);
        assert!(matches!(
            record.verify(&auth.trust_anchor(), stale_at),
            Err(RecordError::Stale { .. })
        ));
    }
}
