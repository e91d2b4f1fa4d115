//! A node's TLS identity: a self-signed certificate made from its Ed25519 node key, carrying its
//! ticket in a certificate extension.
//!
//! Putting the ticket in the certificate (as libp2p-tls puts its signed key) means the TLS
//! handshake itself authenticates both sides: when the handshake completes, each side has
//! proved it holds the key its certificate names (TLS CertificateVerify) and shown a ticket,
//! signed by the auth-server, that binds that key to a user and a role.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use switchboard_proto::{codec, NodeId, SecretKey, Ticket};
use x509_parser::prelude::{FromDer, X509Certificate};

/// OID of the certificate extension that carries the ticket (non-critical, so generic X.509
/// tooling can still read the certificate).
///
/// Under IANA's private enterprise arc; 32473 is the number RFC 5612 reserves for documentation.
/// A deployment that needs a globally unique OID registers its own enterprise number and changes
/// this one constant (both sides must agree).
pub const TICKET_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 5, 1];

/// OID of the Ed25519 key algorithm (RFC 8410), to check the certificate's key type.
const ED25519_OID_STR: &str = "1.3.101.112";

/// Largest certificate we parse. Ours are about 400 bytes plus the ticket (~200 bytes); 16 KiB
/// refuses absurd certificates before parsing them.
pub const MAX_CERT_LEN: usize = 16 * 1024;

/// The certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The node key could not be exported for the TLS library.
    #[error("node key: {0}")]
    Key(String),
    /// The ticket could not be encoded.
    #[error("ticket: {0}")]
    Ticket(String),
    /// rcgen refused the parameters.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// Why a peer's certificate is not acceptable as a Switchboard identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    /// Not parseable X.509, or too large.
    #[error("certificate is not valid X.509: {0}")]
    Unparseable(String),
    /// The key is not Ed25519.
    #[error("certificate key is not Ed25519")]
    NotEd25519,
    /// The ticket extension is present but undecodable.
    #[error("ticket in certificate is malformed: {0}")]
    BadTicket(String),
    /// The ticket extension appears twice.
    #[error("certificate carries more than one ticket")]
    DuplicateTicket,
}

/// A node's key and, once it has logged in, its ticket.
#[derive(Debug, Clone)]
pub struct Identity {
    key: SecretKey,
    ticket: Option<Ticket>,
}

impl Identity {
    /// An identity that presents `ticket`, or none (a client logging in has no ticket yet; the
    /// auth-server presents its key without one).
    pub fn new(key: SecretKey, ticket: Option<Ticket>) -> Self {
        Self { key, ticket }
    }

    /// The node key.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// The ticket presented, if any.
    pub fn ticket(&self) -> Option<&Ticket> {
        self.ticket.as_ref()
    }

    /// A self-signed certificate for the node key, with the ticket extension, and the key in
    /// the form rustls takes. Made once per identity (and again when the ticket is refreshed).
    pub fn certificate(
        &self,
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), IdentityError> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| IdentityError::Key(e.to_string()))?;
        let pkcs8 = PrivatePkcs8KeyDer::from(der);
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)?;
        // The name is irrelevant (our verifiers check keys and tickets, never names), but
        // generic tools expect one.
        let mut params = rcgen::CertificateParams::new(vec!["switchboard".to_owned()])?;
        if let Some(ticket) = &self.ticket {
            // The ticket is postcard inside the extension's OCTET STRING: our own format, read
            // only by our own verifier.
            let bytes = postcard_bytes(ticket)?;
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    TICKET_EXTENSION_OID,
                    bytes,
                ));
        }
        let cert = params.self_signed(&key_pair)?;
        Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
    }
}

fn postcard_bytes(ticket: &Ticket) -> Result<Vec<u8>, IdentityError> {
    // Reuse the codec's frame encoder and drop the header, so that postcard stays behind
    // `switchboard_proto::codec`.
    let frame = codec::encode_frame(ticket).map_err(|e| IdentityError::Ticket(e.to_string()))?;
    Ok(frame
        .get(switchboard_proto::limits::FRAME_HEADER_LEN..)
        .unwrap_or_default()
        .to_vec())
}

/// What a peer's certificate says: its key and, if present, its (not yet verified) ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The certificate's Ed25519 key.
    pub node: NodeId,
    /// The ticket extension, decoded but not verified.
    pub ticket: Option<Ticket>,
}

impl PeerCertificate {
    /// Parses a peer's certificate. Never panics, whatever the bytes.
    pub fn parse(der: &[u8]) -> Result<Self, CertificateProblem> {
        if der.len() > MAX_CERT_LEN {
            return Err(CertificateProblem::Unparseable(format!(
                "{} bytes exceeds the {MAX_CERT_LEN}-byte limit",
                der.len()
            )));
        }
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| CertificateProblem::Unparseable(e.to_string()))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm.to_id_string() != ED25519_OID_STR {
            return Err(CertificateProblem::NotEd25519);
        }
        let key: [u8; 32] = spki
            .subject_public_key
            .data
            .as_ref()
            .try_into()
            .map_err(|_| CertificateProblem::NotEd25519)?;
        let mut ticket = None;
        for extension in cert.extensions() {
            let is_ticket = extension
                .oid
                .iter()
                .is_some_and(|arcs| arcs.eq(TICKET_EXTENSION_OID.iter().copied()));
            if !is_ticket {
                continue;
            }
            if ticket.is_some() {
                return Err(CertificateProblem::DuplicateTicket);
            }
            let decoded = codec::decode_payload::<Ticket>(extension.value)
                .map_err(|e| CertificateProblem::BadTicket(e.to_string()))?;
            ticket = Some(decoded);
        }
        Ok(Self {
            node: NodeId::from_bytes(key),
            ticket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{Role, TicketBody, UnixTime, Username};

    #[test]
    fn a_certificate_carries_the_node_key_and_the_ticket() {
        let auth = SecretKey::from_seed([1; 32]);
        let node = SecretKey::from_seed([2; 32]);
        let ticket = Ticket::issue(
            &auth,
            TicketBody {
                user: Username::new("carol").unwrap(),
                node: node.node_id(),
                role: Role::Supernode,
                issued_at: UnixTime(10),
                expires_at: UnixTime(20),
                serial: 3,
            },
        )
        .unwrap();
        let identity = Identity::new(node.clone(), Some(ticket.clone()));
        let (cert, _) = identity.certificate().unwrap();
        let parsed = PeerCertificate::parse(&cert).unwrap();
        assert_eq!(parsed.node, node.node_id());
        assert_eq!(parsed.ticket, Some(ticket));
    }

    #[test]
    fn a_certificate_without_a_ticket_parses_to_the_bare_key() {
        let node = SecretKey::from_seed([2; 32]);
        let (cert, _) = Identity::new(node.clone(), None).certificate().unwrap();
        let parsed = PeerCertificate::parse(&cert).unwrap();
        assert_eq!(parsed.node, node.node_id());
        assert_eq!(parsed.ticket, None);
    }

    #[test]
    fn garbage_and_foreign_certificates_are_refused_without_panicking() {
        assert!(PeerCertificate::parse(b"not a certificate").is_err());
        assert!(PeerCertificate::parse(&[]).is_err());
        let p256 = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        assert_eq!(
            PeerCertificate::parse(p256.cert.der()),
            Err(CertificateProblem::NotEd25519)
        );
    }
}
