//! The two datagrams a client sends from its QUIC socket outside any QUIC connection.
//!
//! - A **punch** opens the sender's NAT mapping towards a peer about to dial it. It carries
//!   nothing; it only has to leave through the NAT.
//! - A **relay bind** tells a relay which address a client's packets come from: the relay
//!   learns it from the first datagram that carries the token it gave that client over its
//!   authenticated session, so a spoofed source address without the token binds nothing.
//!
//! Both begin with a zero byte: a QUIC packet always has its fixed bit (0x40) set in its first
//! byte (RFC 9000 section 17), so neither can be mistaken for QUIC, and a QUIC endpoint that
//! receives one drops it without answering (no stateless reset).

/// A punch datagram.
pub const PUNCH_DATAGRAM: [u8; 8] = *b"\0sbpunch";

/// The prefix of a relay bind datagram; the 16-byte token follows.
pub const RELAY_BIND_MAGIC: [u8; 8] = *b"\0sbrelay";

/// The length of a relay bind datagram: the magic and the token.
pub const RELAY_BIND_LEN: usize = RELAY_BIND_MAGIC.len() + 16;

/// The relay bind datagram carrying `token`.
pub fn bind_datagram(token: &[u8; 16]) -> [u8; RELAY_BIND_LEN] {
    let mut datagram = [0u8; RELAY_BIND_LEN];
    let (magic, rest) = datagram.split_at_mut(RELAY_BIND_MAGIC.len());
    magic.copy_from_slice(&RELAY_BIND_MAGIC);
    rest.copy_from_slice(token);
    datagram
}

/// The token of a relay bind datagram, or `None` when `datagram` is anything else (a QUIC
/// packet, a punch, garbage).
pub fn parse_bind(datagram: &[u8]) -> Option<[u8; 16]> {
    if datagram.len() != RELAY_BIND_LEN {
        return None;
    }
    let (magic, token) = datagram.split_at(RELAY_BIND_MAGIC.len());
    if magic != RELAY_BIND_MAGIC {
        return None;
    }
    token.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_datagram_gives_back_its_token() {
        let token = [7u8; 16];
        assert_eq!(parse_bind(&bind_datagram(&token)), Some(token));
    }

    #[test]
    fn a_punch_a_quic_packet_or_a_truncated_bind_is_not_a_bind() {
        assert_eq!(parse_bind(&PUNCH_DATAGRAM), None);
        let mut quic = bind_datagram(&[1; 16]);
        if let Some(first) = quic.first_mut() {
            *first = 0xc0;
        }
        assert_eq!(parse_bind(&quic), None);
        let bind = bind_datagram(&[1; 16]);
        assert_eq!(parse_bind(bind.get(..23).unwrap()), None);
        assert_eq!(parse_bind(&[]), None);
    }

    #[test]
    fn neither_datagram_has_the_quic_fixed_bit() {
        assert_eq!(PUNCH_DATAGRAM.first().unwrap() & 0x40, 0);
        assert_eq!(RELAY_BIND_MAGIC.first().unwrap() & 0x40, 0);
    }
}
