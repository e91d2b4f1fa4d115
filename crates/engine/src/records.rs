//! Records verified once: a supernode checks every record it is handed (a device's
//! registration, an owner's replica, a lookup's answer), and most are either one it checked
//! before (the same signed record reaching several owners) or a device's refresh that carries
//! the same ticket as its last record. [`VerifiedRecords`] remembers the records and the
//! tickets whose signatures it checked, by the SHA-256 of their encoding, so that each record
//! and each ticket costs one Ed25519 verification (issue #15's "verify each record and ticket
//! once, keyed by its bytes' digest"), and a refresh costs one instead of two.
//!
//! Only signatures are remembered: the clock checks (a TTL in bounds, freshness, the ticket's
//! validity window) are cheap and run on every call, so a remembered record still goes stale
//! and a remembered ticket still expires. A digest is over the exact encoding, prefixed by the
//! trust anchor's key, so a changed byte or another auth-server's ticket is checked afresh.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use switchboard_proto::{
    Record, RecordBody, RecordError, Ticket, TicketBody, TicketError, TrustAnchor, UnixTime,
};

use crate::digest;

/// Records, and as many tickets, a supernode remembers as verified by default: about the
/// records a default supernode holds (10,000 homed clients, and about 30,000 records it owns
/// as one of three replicas) with room for their refreshes; a few megabytes of 32-byte
/// digests. When full, a set is emptied and refilled as records arrive: a burst of
/// verification, never a refusal.
pub const DEFAULT_VERIFIED_RECORDS: usize = 65_536;

/// See the module doc. Shared by a daemon's tasks (`&self`; the lock is held for set lookups
/// only, never across a signature check).
#[derive(Debug)]
pub struct VerifiedRecords {
    anchor: TrustAnchor,
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    records: HashSet<[u8; 32]>,
    tickets: HashSet<[u8; 32]>,
    /// Ed25519 verifications done (a record's and a ticket's count one each).
    signatures_checked: u64,
}

impl VerifiedRecords {
    /// Remembers at most `capacity` records and as many tickets verified under `anchor`.
    pub fn new(anchor: TrustAnchor, capacity: usize) -> Self {
        Self {
            anchor,
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// [`Record::verify`] at `now`, with the signatures of a record or ticket verified before
    /// taken from memory.
    pub fn verify<'r>(
        &self,
        record: &'r Record,
        now: UnixTime,
    ) -> Result<&'r RecordBody, RecordError> {
        record.check_time(now)?;
        let body = record.body_unverified();
        let Some(record_digest) = digest::of_encoding(&self.anchor, b"record", record) else {
            // Not encodable: nothing to remember it by.
            self.count(2);
            return record.verify(&self.anchor, now);
        };
        if self.seen().records.contains(&record_digest) {
            // Its encoding holds its ticket's: that was verified with it.
            return Ok(body);
        }
        self.verify_ticket(&body.ticket, now)?;
        self.count(1);
        record.verify_signature_trusting_ticket()?;
        self.remember(|seen| &mut seen.records, record_digest);
        Ok(body)
    }

    /// [`Ticket::verify`] at `now`, with the signature of a ticket verified before taken from
    /// memory; a ticket verified here makes the records that carry it cost one check each.
    pub fn verify_ticket<'t>(
        &self,
        ticket: &'t Ticket,
        now: UnixTime,
    ) -> Result<&'t TicketBody, TicketError> {
        ticket.check_time(now)?;
        let Some(ticket_digest) = digest::of_encoding(&self.anchor, b"ticket", ticket) else {
            self.count(1);
            return ticket.verify(&self.anchor, now);
        };
        if !self.seen().tickets.contains(&ticket_digest) {
            self.count(1);
            ticket.verify_signature(&self.anchor)?;
            self.remember(|seen| &mut seen.tickets, ticket_digest);
        }
        Ok(ticket.body_unverified())
    }

    /// Ed25519 verifications done so far.
    pub fn signatures_checked(&self) -> u64 {
        self.seen().signatures_checked
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, signatures: u64) {
        self.seen().signatures_checked += signatures;
    }

    fn remember(&self, set: impl FnOnce(&mut Seen) -> &mut HashSet<[u8; 32]>, digest: [u8; 32]) {
        let mut seen = self.seen();
        let set = set(&mut seen);
        if set.len() >= self.capacity {
            set.clear();
        }
        set.insert(digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{BoundedVec, Role, SecretKey, Username};

    fn auth() -> SecretKey {
        SecretKey::from_seed([7; 32])
    }

    fn ticket(auth: &SecretKey) -> Ticket {
        Ticket::issue(
            auth,
            TicketBody {
                user: Username::new("alice").unwrap(),
                node: device().node_id(),
                role: Role::User,
                issued_at: UnixTime(0),
                expires_at: UnixTime(10_000),
                serial: 1,
            },
        )
        .unwrap()
    }

    fn device() -> SecretKey {
        SecretKey::from_seed([9; 32])
    }

    /// Alice's record number `seq`, issued at 100 s for 60 s, carrying `ticket`.
    fn record(ticket: Ticket, seq: u64) -> Record {
        Record::sign(
            &device(),
            RecordBody {
                ticket,
                endpoints: BoundedVec::try_from(vec!["127.0.0.1:9".parse().unwrap()]).unwrap(),
                reflexive: None,
                home: None,
                seq,
                issued_at: UnixTime(100),
                ttl_secs: 60,
            },
        )
        .unwrap()
    }

    fn verified() -> VerifiedRecords {
        VerifiedRecords::new(auth().trust_anchor(), 16)
    }

    #[test]
    fn a_record_checked_before_costs_nothing_and_a_refresh_with_the_same_ticket_costs_one_check() {
        let cache = verified();
        let first = record(ticket(&auth()), 1);
        let now = UnixTime(110);
        assert!(cache.verify(&first, now).is_ok());
        assert_eq!(
            cache.signatures_checked(),
            2,
            "the ticket's and the record's"
        );
        assert!(cache.verify(&first.clone(), now).is_ok());
        assert_eq!(cache.signatures_checked(), 2, "the same record again");
        assert!(cache.verify(&record(ticket(&auth()), 2), now).is_ok());
        assert_eq!(cache.signatures_checked(), 3, "a refresh: its record only");
    }

    #[test]
    fn a_ticket_checked_alone_first_makes_its_records_cost_one_check() {
        let cache = verified();
        assert!(cache.verify_ticket(&ticket(&auth()), UnixTime(5)).is_ok());
        assert!(cache.verify_ticket(&ticket(&auth()), UnixTime(6)).is_ok());
        assert_eq!(cache.signatures_checked(), 1);
        assert!(cache
            .verify(&record(ticket(&auth()), 1), UnixTime(110))
            .is_ok());
        assert_eq!(cache.signatures_checked(), 2);
        assert!(matches!(
            cache.verify_ticket(&ticket(&auth()), UnixTime(20_000)),
            Err(TicketError::Expired { .. })
        ));
        let forged = ticket(&SecretKey::from_seed([8; 32]));
        assert!(cache.verify_ticket(&forged, UnixTime(5)).is_err());
        assert!(cache.verify_ticket(&forged, UnixTime(5)).is_err());
    }

    #[test]
    fn a_remembered_record_still_goes_stale_and_its_ticket_still_expires() {
        let cache = verified();
        let first = record(ticket(&auth()), 1);
        assert!(cache.verify(&first, UnixTime(110)).is_ok());
        assert!(matches!(
            cache.verify(&first, UnixTime(1_000)),
            Err(RecordError::Stale { .. })
        ));
        let late = Record::sign(
            &device(),
            RecordBody {
                issued_at: UnixTime(20_000),
                ..record(ticket(&auth()), 2).body_unverified().clone()
            },
        )
        .unwrap();
        assert!(matches!(
            cache.verify(&late, UnixTime(20_010)),
            Err(RecordError::Ticket(_))
        ));
    }

    #[test]
    fn a_forged_ticket_with_a_verified_ones_body_is_checked_and_refused() {
        let cache = verified();
        assert!(cache
            .verify(&record(ticket(&auth()), 1), UnixTime(110))
            .is_ok());
        let forged = record(ticket(&SecretKey::from_seed([8; 32])), 2);
        for _ in 0..2 {
            assert!(matches!(
                cache.verify(&forged, UnixTime(110)),
                Err(RecordError::Ticket(_))
            ));
        }
    }

    #[test]
    fn a_record_whose_signature_was_changed_is_refused_every_time() {
        let cache = verified();
        let genuine = record(ticket(&auth()), 1);
        assert!(cache.verify(&genuine, UnixTime(110)).is_ok());
        let mut bytes = postcard::to_stdvec(&genuine).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let changed: Record = postcard::from_bytes(&bytes).unwrap();
        for _ in 0..2 {
            assert!(matches!(
                cache.verify(&changed, UnixTime(110)),
                Err(RecordError::BadSignature(_))
            ));
        }
    }

    #[test]
    fn a_full_cache_starts_again_and_still_verifies() {
        let cache = VerifiedRecords::new(auth().trust_anchor(), 2);
        for seq in 1..=5 {
            assert!(cache
                .verify(&record(ticket(&auth()), seq), UnixTime(110))
                .is_ok());
        }
        assert_eq!(cache.seen().records.len(), 1, "emptied at 2, refilled");
        assert_eq!(cache.signatures_checked(), 6);
    }
}
