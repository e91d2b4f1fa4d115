//! Property tests of certificate parsing, the one decoder `net` owns: arbitrary bytes and
//! mutated valid certificates never panic the parser or the ticket policy, and a mutation passes
//! the policy only if the key and ticket it carries are exactly the original ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use switchboard_net::{Identity, PeerCertificate, PeerPolicy};
use switchboard_proto::{Role, SecretKey, Ticket, TicketBody, UnixTime, Username};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn valid() -> (Vec<u8>, PeerCertificate, PeerPolicy) {
    let auth = SecretKey::from_seed([42; 32]);
    let node = SecretKey::from_seed([7; 32]);
    let ticket = Ticket::issue(
        &auth,
        TicketBody {
            user: Username::new("prop").unwrap(),
            node: node.node_id(),
            role: Role::User,
            issued_at: UnixTime(NOW.0 - 60),
            expires_at: UnixTime(NOW.0 + 3_600),
            serial: 1,
        },
    )
    .unwrap();
    let (cert, _) = Identity::new(node, Some(ticket)).certificate().unwrap();
    let der = cert.to_vec();
    let parsed = PeerCertificate::parse(&der).unwrap();
    (der, parsed, PeerPolicy::any_ticket(auth.trust_anchor()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic_the_certificate_parser(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let (_, _, policy) = valid();
        if let Ok(parsed) = PeerCertificate::parse(&bytes) {
            prop_assert!(policy.check(&parsed, NOW).is_err());
        }
    }

    #[test]
    fn a_mutated_certificate_passes_only_with_its_original_key_and_ticket(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let (mut der, original, policy) = valid();
        for (at, mask) in flips {
            let i = at.index(der.len());
            der[i] ^= mask;
        }
        if let Ok(parsed) = PeerCertificate::parse(&der) {
            if policy.check(&parsed, NOW).is_ok() {
                prop_assert_eq!(parsed, original);
            }
        }
    }
}
