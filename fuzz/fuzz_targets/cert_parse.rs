//! Peer certificates from arbitrary bytes, and a valid certificate with the input XORed into
//! it (coverage deep into X.509 and the ticket extension): parsing and the ticket policy must
//! end in a value or an error, never a panic, and a mutated certificate may pass the policy
//! only if its key and ticket are exactly the original ones.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchboard_net::{Identity, PeerCertificate, PeerPolicy};
use switchboard_proto::{Role, SecretKey, Ticket, TicketBody, UnixTime, Username};

const NOW: UnixTime = UnixTime(1_800_000_000);

struct Fixture {
    der: Vec<u8>,
    original: PeerCertificate,
    policy: PeerPolicy,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let auth = SecretKey::from_seed([42; 32]);
        let node = SecretKey::from_seed([7; 32]);
        let ticket = Ticket::issue(
            &auth,
            TicketBody {
                user: Username::new("fuzz").expect("valid name"),
                node: node.node_id(),
                role: Role::User,
                issued_at: UnixTime(NOW.0 - 60),
                expires_at: UnixTime(NOW.0 + 3_600),
                serial: 1,
            },
        )
        .expect("valid ticket");
        let (cert, _) = Identity::new(node, Some(ticket))
            .certificate()
            .expect("certificate");
        let der = cert.to_vec();
        let original = PeerCertificate::parse(&der).expect("own certificate parses");
        Fixture {
            der,
            original,
            policy: PeerPolicy::any_ticket(auth.trust_anchor()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    if let Ok(parsed) = PeerCertificate::parse(data) {
        let _ = fixture.policy.check(&parsed, NOW);
    }
    let mut mutated = fixture.der.clone();
    let len = mutated.len();
    for (i, byte) in data.iter().enumerate() {
        if let Some(slot) = mutated.get_mut(i % len) {
            *slot ^= byte;
        }
    }
    if let Ok(parsed) = PeerCertificate::parse(&mutated) {
        if fixture.policy.check(&parsed, NOW).is_ok() {
            assert_eq!(parsed, fixture.original, "a changed key or ticket passed");
        }
    }
});
