//! Tickets: the auth-server's signed statement "this node key belongs to this user, with this
//! role, until then" (DESIGN.md section 3).
//!
//! A ticket is verified offline with the auth-server's public key, so the network keeps working
//! while the auth-server is down. The TLS layer binds it to the connection: the peer's
//! certificate key must equal [`TicketBody::node`] ([`Ticket::verify_for_peer`]).

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, Role, Signature, UnixTime, Username};
use crate::keys::{self, SecretKey, SignatureError, TrustAnchor};
use crate::limits::{CLOCK_SKEW_SECS, MAX_TICKET_LIFETIME_SECS};

/// Signing domain of tickets; see [`crate::keys`].
const TICKET_DOMAIN: &[u8] = b"switchboard/ticket/v1\0";

/// What a ticket states.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketBody {
    /// The account.
    pub user: Username,
    /// The node key the account logged in with.
    pub node: NodeId,
    /// What the account may do.
    pub role: Role,
    /// When the auth-server issued it.
    pub issued_at: UnixTime,
    /// When it stops being valid.
    pub expires_at: UnixTime,
    /// Unique per issued ticket, so that one ticket can be revoked.
    pub serial: u64,
}

/// A [`TicketBody`] with the auth-server's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ticket {
    body: TicketBody,
    signature: Signature,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not signed by the trusted auth-server key (forged, or issued by another network).
    #[error("ticket is not signed by the trusted auth-server ({0})")]
    BadSignature(SignatureError),
    /// Past its expiry.
    #[error("ticket expired at {expires_at} (now {now}); run `client login` again")]
    Expired {
        /// The ticket's expiry.
        expires_at: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
    /// Issued in the future beyond the tolerated clock skew.
    #[error("ticket issued at {issued_at}, in the future (now {now}); check the clocks")]
    NotYetValid {
        /// When it claims to be issued.
        issued_at: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
    /// Lifetime negative or longer than [`MAX_TICKET_LIFETIME_SECS`].
    #[error("ticket lifetime is out of bounds")]
    BadLifetime,
    /// The connection's key is not the key the ticket names.
    #[error("ticket names node {ticket} but the peer holds key {peer}")]
    KeyMismatch {
        /// The key in the ticket.
        ticket: NodeId,
        /// The key the peer proved in the TLS handshake.
        peer: NodeId,
    },
}

impl Ticket {
    /// Signs `body` with the auth-server's key. Refuses a lifetime the verifiers would refuse.
    pub fn issue(auth: &SecretKey, body: TicketBody) -> Result<Self, TicketError> {
        check_lifetime(&body)?;
        let signature = auth
            .sign(TICKET_DOMAIN, &body)
            .map_err(TicketError::BadSignature)?;
        Ok(Self { body, signature })
    }

    /// The statement, unverified. Use [`Self::verify`] before trusting it.
    pub fn body_unverified(&self) -> &TicketBody {
        &self.body
    }

    /// Checks the signature against the trusted auth key and the validity window at `now`,
    /// allowing [`CLOCK_SKEW_SECS`] of clock difference.
    pub fn verify(&self, trusted: &TrustAnchor, now: UnixTime) -> Result<&TicketBody, TicketError> {
        self.check_time(now)?;
        self.verify_signature(trusted)
    }

    /// Checks the signature against the trusted auth key, not the validity window: for
    /// statements whose freshness is enforced elsewhere (a member statement's ticket is checked
    /// for expiry on the member's connections, see [`crate::member`]).
    pub fn verify_signature(&self, trusted: &TrustAnchor) -> Result<&TicketBody, TicketError> {
        check_lifetime(&self.body)?;
        keys::verify(
            trusted.verifying_key(),
            TICKET_DOMAIN,
            &self.body,
            &self.signature,
        )
        .map_err(TicketError::BadSignature)?;
        Ok(&self.body)
    }

    /// [`Self::verify`], then checks that the ticket names `peer`, the key the peer proved it
    /// holds (its TLS certificate key).
    pub fn verify_for_peer(
        &self,
        trusted: &TrustAnchor,
        now: UnixTime,
        peer: &NodeId,
    ) -> Result<&TicketBody, TicketError> {
        if self.body.node != *peer {
            return Err(TicketError::KeyMismatch {
                ticket: self.body.node,
                peer: *peer,
            });
        }
        self.verify(trusted, now)
    }

    /// Checks only the validity window: for a ticket whose signature was verified earlier on
    /// the same connection (a resumed TLS session skips certificate verification).
    pub fn check_time(&self, now: UnixTime) -> Result<(), TicketError> {
        check_lifetime(&self.body)?;
        if now.0 >= self.body.expires_at.0.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TicketError::Expired {
                expires_at: self.body.expires_at,
                now,
            });
        }
        if self.body.issued_at.0 > now.0.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TicketError::NotYetValid {
                issued_at: self.body.issued_at,
                now,
            });
        }
        Ok(())
    }

    /// Seconds until expiry at `now` (0 if expired), for scheduling a refresh.
    pub fn remaining_secs(&self, now: UnixTime) -> u64 {
        self.body.expires_at.since(now)
    }
}

fn check_lifetime(body: &TicketBody) -> Result<(), TicketError> {
    let lifetime = body
        .expires_at
        .0
        .checked_sub(body.issued_at.0)
        .ok_or(TicketError::BadLifetime)?;
    if lifetime == 0 || lifetime > MAX_TICKET_LIFETIME_SECS {
        return Err(TicketError::BadLifetime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(node: NodeId, issued: u64, lifetime: u64) -> TicketBody {
        TicketBody {
            user: Username::new("alice").unwrap(),
            node,
            role: Role::User,
            issued_at: UnixTime(issued),
            expires_at: UnixTime(issued + lifetime),
            serial: 1,
        }
    }

    #[test]
    fn given_a_ticket_when_verified_with_the_issuing_key_then_it_is_accepted() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        let ticket = Ticket::issue(&auth, body(node, 1_000, 3_600)).unwrap();
        let verified = ticket
            .verify_for_peer(&auth.trust_anchor(), UnixTime(2_000), &node)
            .unwrap();
        assert_eq!(verified.user.as_str(), "alice");
    }

    #[test]
    fn given_a_ticket_signed_by_another_key_then_it_is_refused_as_forged() {
        let auth = SecretKey::from_seed([1; 32]);
        let forger = SecretKey::from_seed([9; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        let ticket = Ticket::issue(&forger, body(node, 1_000, 3_600)).unwrap();
        assert!(matches!(
            ticket.verify(&auth.trust_anchor(), UnixTime(2_000)),
            Err(TicketError::BadSignature(SignatureError::Mismatch))
        ));
    }

    #[test]
    fn given_a_ticket_with_an_altered_role_then_its_signature_fails() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        let mut ticket = Ticket::issue(&auth, body(node, 1_000, 3_600)).unwrap();
        ticket.body.role = Role::Mega;
        assert!(ticket
            .verify(&auth.trust_anchor(), UnixTime(2_000))
            .is_err());
    }

    #[test]
    fn given_an_expired_ticket_then_it_is_refused_after_the_skew_allowance() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        let ticket = Ticket::issue(&auth, body(node, 1_000, 3_600)).unwrap();
        let expiry = 4_600;
        assert!(ticket
            .verify(&auth.trust_anchor(), UnixTime(expiry + CLOCK_SKEW_SECS - 1))
            .is_ok());
        assert!(matches!(
            ticket.verify(&auth.trust_anchor(), UnixTime(expiry + CLOCK_SKEW_SECS)),
            Err(TicketError::Expired { .. })
        ));
        assert!(matches!(
            ticket.verify(&auth.trust_anchor(), UnixTime(0)),
            Err(TicketError::NotYetValid { .. })
        ));
    }

    #[test]
    fn given_a_ticket_for_another_key_then_the_peer_binding_fails() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        let other = SecretKey::from_seed([3; 32]).node_id();
        let ticket = Ticket::issue(&auth, body(node, 1_000, 3_600)).unwrap();
        assert!(matches!(
            ticket.verify_for_peer(&auth.trust_anchor(), UnixTime(2_000), &other),
            Err(TicketError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn a_ticket_lifetime_beyond_the_maximum_cannot_be_issued() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]).node_id();
        assert_eq!(
            Ticket::issue(&auth, body(node, 0, MAX_TICKET_LIFETIME_SECS + 1)),
            Err(TicketError::BadLifetime)
        );
        assert_eq!(
            Ticket::issue(&auth, body(node, 10, 0)),
            Err(TicketError::BadLifetime)
        );
    }
}
