//! The custom rustls verifier: no CA, no hostnames; the peer's certificate key must be the key
//! its ticket names, and the ticket must be signed by the trusted auth-server (DESIGN.md
//! section 3, in the manner of libp2p-tls).
//!
//! The same [`PeerPolicy`] serves both directions: a supernode demands a ticket of any role
//! from its clients, a client demands a supernode's ticket from the node it dials, a login
//! client demands exactly the auth-server's key, and the auth-server accepts any key (the login
//! proves the password; the TLS handshake proves possession of the key the ticket will name).
//!
//! A refusal is a TLS alert (`bad_certificate`), and the reason travels as text in QUIC's
//! CONNECTION_CLOSE, so both ends can say *why*.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime as TlsTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, PeerIncompatible,
    SignatureScheme,
};
use switchboard_proto::keys;
use switchboard_proto::wire_error::UnauthorizedReason;
use switchboard_proto::{AuthKey, NodeId, Role, TicketBody, TicketError, TrustAnchor, UnixTime};

use crate::identity::{CertificateProblem, PeerCertificate};

/// What a node demands of the peer at the other end of a connection.
// One per endpoint, shared behind an `Arc`: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPolicy {
    /// A ticket signed by `auth`, naming the certificate's key, with one of `roles`, and, if
    /// `node` is set, for exactly that node.
    Ticketed {
        /// The trusted auth-server key.
        auth: TrustAnchor,
        /// Roles accepted.
        roles: Vec<Role>,
        /// The one node expected (a dial to a known peer), or any.
        node: Option<NodeId>,
    },
    /// Exactly this key, ticket or not: how a node recognizes the auth-server.
    ExactKey(AuthKey),
    /// Any Ed25519 key (possession proven by the handshake): the auth-server's view of a node
    /// logging in.
    AnyKey,
}

impl PeerPolicy {
    /// A ticket of any role from `auth`: what a supernode asks of its clients and peers.
    pub fn any_ticket(auth: TrustAnchor) -> Self {
        Self::Ticketed {
            auth,
            roles: Role::ALL.to_vec(),
            node: None,
        }
    }

    /// A ticket that may serve as a supernode: what a client asks of the node it dials. A
    /// user's ticket is refused: a client that names a user's node in its host cache (a rogue
    /// "supernode") fails at the TLS handshake.
    pub fn supernode(auth: TrustAnchor) -> Self {
        Self::Ticketed {
            auth,
            roles: vec![Role::Supernode, Role::Mega, Role::Promoted],
            node: None,
        }
    }

    /// A ticket that may be an overlay member: what a supernode asks of the peer it dials (a
    /// user's ticket never joins the overlay).
    pub fn overlay_peer(auth: TrustAnchor) -> Self {
        Self::Ticketed {
            auth,
            roles: vec![Role::Supernode, Role::Mega, Role::Promoted],
            node: None,
        }
    }

    /// Checks a parsed peer certificate fully (ticket signature included) at `now`.
    pub fn check(
        &self,
        cert: &PeerCertificate,
        now: UnixTime,
    ) -> Result<PeerIdentity, PeerAuthError> {
        self.evaluate(cert, now, true)
    }

    /// Checks everything but the ticket's signature: for a connection whose certificate was
    /// fully checked during its handshake. A resumed TLS session skips certificate
    /// verification, so the time window and the expected identity are checked again here.
    pub fn recheck(
        &self,
        cert: &PeerCertificate,
        now: UnixTime,
    ) -> Result<PeerIdentity, PeerAuthError> {
        self.evaluate(cert, now, false)
    }

    fn evaluate(
        &self,
        cert: &PeerCertificate,
        now: UnixTime,
        verify_signature: bool,
    ) -> Result<PeerIdentity, PeerAuthError> {
        match self {
            Self::AnyKey => Ok(PeerIdentity {
                node: cert.node,
                ticket: None,
            }),
            Self::ExactKey(expected) => {
                if cert.node.as_bytes() != expected.as_bytes() {
                    return Err(PeerAuthError::WrongPeer {
                        expected: NodeId::from_bytes(*expected.as_bytes()),
                        actual: cert.node,
                    });
                }
                Ok(PeerIdentity {
                    node: cert.node,
                    ticket: None,
                })
            }
            Self::Ticketed { auth, roles, node } => {
                if let Some(expected) = node {
                    if *expected != cert.node {
                        return Err(PeerAuthError::WrongPeer {
                            expected: *expected,
                            actual: cert.node,
                        });
                    }
                }
                let ticket = cert.ticket.as_ref().ok_or(PeerAuthError::NoTicket)?;
                let body = if verify_signature {
                    ticket.verify_for_peer(auth, now, &cert.node)?
                } else {
                    if ticket.body_unverified().node != cert.node {
                        return Err(TicketError::KeyMismatch {
                            ticket: ticket.body_unverified().node,
                            peer: cert.node,
                        }
                        .into());
                    }
                    ticket.check_time(now)?;
                    ticket.body_unverified()
                };
                if !roles.contains(&body.role) {
                    return Err(PeerAuthError::RoleNotAllowed { role: body.role });
                }
                Ok(PeerIdentity {
                    node: cert.node,
                    ticket: Some(body.clone()),
                })
            }
        }
    }
}

/// Who the peer is, once its certificate passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The key it proved it holds.
    pub node: NodeId,
    /// Its verified ticket, when the policy demanded one.
    pub ticket: Option<TicketBody>,
}

/// Why a peer failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    /// The peer sent no certificate.
    #[error("peer presented no certificate")]
    NoCertificate,
    /// The certificate is not a Switchboard identity.
    #[error(transparent)]
    Certificate(#[from] CertificateProblem),
    /// The policy demands a ticket and the certificate carries none.
    #[error("peer presented no ticket")]
    NoTicket,
    /// The ticket is forged, expired, not yet valid, or for another key.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The ticket's role is not allowed on this connection.
    #[error("peer's role {role} is not allowed here")]
    RoleNotAllowed {
        /// The ticket's role.
        role: Role,
    },
    /// The peer is not the node that was expected.
    #[error("expected node {expected}, reached {actual}")]
    WrongPeer {
        /// Whom we meant to reach.
        expected: NodeId,
        /// Whom we reached.
        actual: NodeId,
    },
}

impl PeerAuthError {
    /// The reason to tell the peer, as a wire code.
    pub fn unauthorized_reason(&self) -> UnauthorizedReason {
        match self {
            Self::NoCertificate | Self::NoTicket => UnauthorizedReason::NoTicket,
            Self::Certificate(_) | Self::Ticket(TicketError::BadSignature(_)) => {
                UnauthorizedReason::TicketForged
            }
            Self::Ticket(
                TicketError::Expired { .. }
                | TicketError::NotYetValid { .. }
                | TicketError::BadLifetime,
            ) => UnauthorizedReason::TicketExpired,
            Self::Ticket(TicketError::KeyMismatch { .. }) | Self::WrongPeer { .. } => {
                UnauthorizedReason::KeyMismatch
            }
            Self::RoleNotAllowed { .. } => UnauthorizedReason::RoleNotAllowed,
        }
    }
}

/// Carries a [`PeerAuthError`] through rustls. rustls renders a certificate error with
/// `Debug`, and that text is what quinn sends to the peer in CONNECTION_CLOSE and what both
/// sides report; this wrapper makes that text the human sentence rather than the enum's shape.
struct Refusal(PeerAuthError);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Refusal {}

impl From<PeerAuthError> for rustls::Error {
    fn from(error: PeerAuthError) -> Self {
        Self::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(
            error,
        )))))
    }
}

/// Wall-clock seconds from the time rustls hands to verifiers.
fn unix(now: TlsTime) -> UnixTime {
    UnixTime(now.as_secs())
}

/// The rustls verifier built from a [`PeerPolicy`]; see the module doc.
#[derive(Debug)]
pub(crate) struct PolicyVerifier {
    policy: PeerPolicy,
}

impl PolicyVerifier {
    pub(crate) fn new(policy: PeerPolicy) -> Self {
        Self { policy }
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: TlsTime,
    ) -> Result<PeerIdentity, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(PeerAuthError::Certificate(CertificateProblem::Unparseable(
                "a self-signed certificate has no chain".to_owned(),
            ))
            .into());
        }
        let cert = PeerCertificate::parse(end_entity).map_err(PeerAuthError::from)?;
        Ok(self.policy.check(&cert, unix(now))?)
    }

    /// Verifies the peer's TLS 1.3 CertificateVerify signature with the certificate's key.
    ///
    /// Done here rather than by `rustls::crypto::verify_tls13_signature` (ring) because
    /// ed25519-dalek's AVX2 backend verifies faster than ring on this project's machines
    /// (figures in `BENCHMARKS.md`), and the handshake is what a reconnect storm is bound by.
    /// Only Ed25519 is offered ([`SCHEMES`]), so any other scheme is refused.
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        let cert = PeerCertificate::parse(cert).map_err(PeerAuthError::from)?;
        keys::verify_raw(&cert.node, message, dss.signature())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

/// Our certificates are Ed25519 and we speak TLS 1.3 only (QUIC requires it).
const SCHEMES: [SignatureScheme; 1] = [SignatureScheme::ED25519];

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: TlsTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

impl ClientCertVerifier for PolicyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Every Switchboard node has a node key, so every connection is mutually authenticated.
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: TlsTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(PeerIncompatible::Tls13RequiredForQuic.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}
