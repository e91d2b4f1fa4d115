//! Signed member identities for tests (this crate's, and the end-to-end tests' hostile peer):
//! a fixed test auth key, node keys from a seed byte, and their tickets.

use std::net::SocketAddr;

use switchboard_proto::{
    NodeId, Role, SecretKey, Ticket, TicketBody, TrustAnchor, UnixTime, Username,
};

use super::{MemberInfo, MemberRole, Signer};

/// The test auth-server's key.
pub fn auth_key() -> SecretKey {
    SecretKey::from_seed([0xA5; 32])
}

/// Its trust anchor.
pub fn anchor() -> TrustAnchor {
    auth_key().trust_anchor()
}

/// Node key number `seed` with a ticket of `role` from `auth`, valid for an hour from 0.
pub fn signer_from(auth: &SecretKey, seed: u8, role: Role) -> Signer {
    issue(auth, seed, role, &format!("sn{seed}"))
}

/// Node key number `seed` with a `supernode` ticket of the test auth key for user `name`.
pub fn signer_named(seed: u8, name: &str) -> Signer {
    issue(&auth_key(), seed, Role::Supernode, name)
}

fn issue(auth: &SecretKey, seed: u8, role: Role, name: &str) -> Signer {
    let key = SecretKey::from_seed([seed; 32]);
    let ticket = Ticket::issue(
        auth,
        TicketBody {
            user: Username::new(name).unwrap_or_else(|_| unreachable_name()),
            node: key.node_id(),
            role,
            issued_at: UnixTime(0),
            expires_at: UnixTime(3_600),
            serial: u64::from(seed),
        },
    )
    .unwrap_or_else(|e| panic!("test ticket: {e}"));
    Signer { key, ticket }
}

fn unreachable_name() -> Username {
    panic!("a test username must be valid")
}

/// Node key number `seed` with a `supernode` ticket of the test auth key.
pub fn signer(seed: u8) -> Signer {
    signer_from(&auth_key(), seed, Role::Supernode)
}

/// The signed identity of node `seed` at `addr`, generation 1.
pub fn member(seed: u8, addr: SocketAddr, role: MemberRole, capacity: u32) -> MemberInfo {
    MemberInfo::signed(&signer(seed), addr, role, capacity, 1)
        .unwrap_or_else(|e| panic!("test statement: {e}"))
}

/// Supernode `seed`'s signed statement about itself at 127.0.0.1:4000, capacity 10.
pub fn supernode_statement(seed: u8) -> MemberInfo {
    member(
        seed,
        SocketAddr::from(([127, 0, 0, 1], 4000)),
        MemberRole::Supernode,
        10,
    )
}

/// A load report about `victim` "signed" by `key` (not the victim's): what a hostile member
/// gossips to freeze or skew another's load. Encoded as foca carries it.
pub fn forged_load(key: &SecretKey, victim: NodeId, seq: u64, clients: u32) -> Vec<u8> {
    use switchboard_proto::member::{LoadBody, LoadReport};
    #[derive(serde::Serialize)]
    struct Forged {
        body: LoadBody,
        signature: switchboard_proto::Signature,
    }
    let own = LoadBody {
        node: key.node_id(),
        seq,
        clients,
    };
    let signed = LoadReport::sign(key, own).unwrap_or_else(|e| panic!("test load: {e}"));
    let encoded = postcard::to_stdvec(&signed).unwrap_or_default();
    let body_len = postcard::to_stdvec(&own)
        .map(|b| b.len())
        .unwrap_or_default();
    let signature = postcard::from_bytes(encoded.get(body_len..).unwrap_or_default())
        .unwrap_or_else(|e| panic!("test signature: {e}"));
    postcard::to_stdvec(&Forged {
        body: LoadBody {
            node: victim,
            ..own
        },
        signature,
    })
    .unwrap_or_default()
}

/// A membership sync sample naming `members` alive (incarnation 0), encoded as the overlay
/// carries it: what a hostile member sends to plant identities.
pub fn sync_sample(members: Vec<MemberInfo>) -> Vec<u8> {
    sync_payload(
        members.into_iter().map(foca::Member::alive).collect(),
        Vec::new(),
    )
}

/// A sync sample of `members` in any state, with `loads`, encoded as the overlay carries it.
pub(crate) fn sync_payload(
    members: Vec<foca::Member<MemberInfo>>,
    loads: Vec<switchboard_proto::member::LoadReport>,
) -> Vec<u8> {
    let members = members
        .into_iter()
        .map(|m| {
            let id = super::SwimId::from(m.id().clone());
            foca::Member::new(id, m.incarnation(), m.state())
        })
        .collect();
    postcard::to_stdvec(&super::sync::SyncSample { members, loads }).unwrap_or_default()
}

/// A SWIM packet from `from` to `to` (exactly as `to` knows itself) carrying `message`, no
/// updates, and `broadcasts` (foca's wire layout: header, update count, length-prefixed items).
pub fn swim_packet(
    from: MemberInfo,
    to: MemberInfo,
    message: foca::Message<MemberInfo>,
    broadcasts: &[Vec<u8>],
) -> Vec<u8> {
    let header = foca::Header {
        src: from,
        src_incarnation: 0,
        dst: to,
        message,
    };
    let mut packet = postcard::to_stdvec(&header).unwrap_or_default();
    if !broadcasts.is_empty() {
        packet.extend_from_slice(&0u16.to_be_bytes());
        for item in broadcasts {
            let len = u16::try_from(item.len()).unwrap_or(u16::MAX);
            packet.extend_from_slice(&len.to_be_bytes());
            packet.extend_from_slice(item);
        }
    }
    packet
}

/// Decodes the header of a SWIM packet (to learn a member's exact identity from its answer).
pub fn swim_sender(packet: &[u8]) -> Option<MemberInfo> {
    postcard::take_from_bytes::<foca::Header<MemberInfo>>(packet)
        .ok()
        .map(|(header, _)| header.src)
}
