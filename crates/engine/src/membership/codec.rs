//! foca's codec for our identities: its postcard encoding, byte for byte, with each
//! identity written as its statement's encoding made once ([`MemberInfo::encoded`]) and read
//! back through the verifier ([`Verifier::take_identity`]), so that a packet carrying any
//! identity that does not verify is refused before foca sees it (foca decodes every identity
//! of a packet before it applies anything, so a refused packet changes nothing).

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Member, Message, PostcardCodec};
use switchboard_proto::member::MemberError;

#[cfg(doc)]
use super::verify::Verifier;
use super::verify::{lock, SharedVerifier};
#[cfg(doc)]
use super::MemberInfo;
use super::SwimId;

/// Why the codec refused a packet.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Not decodable.
    #[error("malformed: {0}")]
    Malformed(#[from] postcard::Error),
    /// An identity in it did not verify.
    #[error("member statement refused: {0}")]
    Statement(#[from] MemberError),
}

/// foca's postcard codec, refusing packets whose identities do not verify.
#[derive(Debug)]
pub(crate) struct VerifyingCodec {
    inner: PostcardCodec,
    verifier: SharedVerifier,
}

impl VerifyingCodec {
    pub(crate) fn new(verifier: SharedVerifier) -> Self {
        Self {
            inner: PostcardCodec,
            verifier,
        }
    }
}

impl Codec<SwimId> for VerifyingCodec {
    type Error = CodecError;

    /// What foca's postcard codec writes, byte for byte (a test compares the two for every
    /// message), with each identity written as its statement's encoding, made once per
    /// statement (see [`MemberInfo::encoded`]) instead of serialized anew for every packet.
    fn encode_header(
        &mut self,
        header: &Header<SwimId>,
        mut buf: impl BufMut,
    ) -> Result<(), CodecError> {
        let out = &mut buf;
        put_identity(out, &header.src)?;
        put_encoded(out, &header.src_incarnation)?;
        put_identity(out, &header.dst)?;
        // The variant's index (postcard's enum tag: its declaration order in foca), then
        // its fields in declaration order.
        let (tag, named, probe) = match &header.message {
            Message::Ping(probe) => (0u32, None, Some(probe)),
            Message::Ack(probe) => (1, None, Some(probe)),
            Message::PingReq {
                target,
                probe_number,
            } => (2, Some(target), Some(probe_number)),
            Message::IndirectPing {
                origin,
                probe_number,
            } => (3, Some(origin), Some(probe_number)),
            Message::IndirectAck {
                target,
                probe_number,
            } => (4, Some(target), Some(probe_number)),
            Message::ForwardedAck {
                origin,
                probe_number,
            } => (5, Some(origin), Some(probe_number)),
            Message::Announce => (6, None, None),
            Message::Feed => (7, None, None),
            Message::Gossip => (8, None, None),
            Message::Broadcast => (9, None, None),
            Message::TurnUndead => (10, None, None),
        };
        put_encoded(out, &tag)?;
        if let Some(named) = named {
            put_identity(out, named)?;
        }
        if let Some(probe) = probe {
            put_encoded(out, probe)?;
        }
        Ok(())
    }

    /// The sender and any member the message names must verify. The destination is not
    /// checked: it is this member (an announce to a seed names a placeholder), and nothing of
    /// it is kept. Decodes what foca's postcard codec does (a test compares the two), each
    /// identity as [`Verifier::take_identity`] takes it.
    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<SwimId>, CodecError> {
        let data = buf.chunk();
        let mut verifier = lock(&self.verifier);
        let (src, rest) = verifier.take_identity(data, true)?;
        let (src_incarnation, rest) = postcard::take_from_bytes::<foca::Incarnation>(rest)?;
        let (dst, rest) = verifier.take_identity(rest, false)?;
        let (tag, rest) = postcard::take_from_bytes::<u32>(rest)?;
        let (message, rest) = match tag {
            0 | 1 => {
                let (probe, rest) = postcard::take_from_bytes::<foca::ProbeNumber>(rest)?;
                let message = if tag == 0 {
                    Message::Ping(probe)
                } else {
                    Message::Ack(probe)
                };
                (message, rest)
            }
            2..=5 => {
                let (named, rest) = verifier.take_identity(rest, true)?;
                let (probe_number, rest) = postcard::take_from_bytes::<foca::ProbeNumber>(rest)?;
                let message = match tag {
                    2 => Message::PingReq {
                        target: named,
                        probe_number,
                    },
                    3 => Message::IndirectPing {
                        origin: named,
                        probe_number,
                    },
                    4 => Message::IndirectAck {
                        target: named,
                        probe_number,
                    },
                    _ => Message::ForwardedAck {
                        origin: named,
                        probe_number,
                    },
                };
                (message, rest)
            }
            6 => (Message::Announce, rest),
            7 => (Message::Feed, rest),
            8 => (Message::Gossip, rest),
            9 => (Message::Broadcast, rest),
            10 => (Message::TurnUndead, rest),
            _ => return Err(CodecError::Malformed(postcard::Error::DeserializeBadEnum)),
        };
        let used = data.len() - rest.len();
        drop(verifier);
        buf.advance(used);
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(
        &mut self,
        member: &Member<SwimId>,
        buf: impl BufMut,
    ) -> Result<(), CodecError> {
        Ok(self.inner.encode_member(member, buf)?)
    }

    /// Decodes what foca's postcard codec does, the member's identity as
    /// [`Verifier::take_identity`] takes it (checked).
    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<SwimId>, CodecError> {
        let data = buf.chunk();
        let (id, rest) = lock(&self.verifier).take_identity(data, true)?;
        let (incarnation, rest) = postcard::take_from_bytes::<foca::Incarnation>(rest)?;
        let (state, rest) = postcard::take_from_bytes::<foca::State>(rest)?;
        let used = data.len() - rest.len();
        buf.advance(used);
        Ok(Member::new(id, incarnation, state))
    }
}

/// Writes `bytes`, or refuses as postcard does when `buf` has no room for them (a `BufMut`
/// panics on a write past its end).
fn put_bytes(buf: &mut impl BufMut, bytes: &[u8]) -> Result<(), CodecError> {
    if buf.remaining_mut() < bytes.len() {
        return Err(CodecError::Malformed(postcard::Error::SerializeBufferFull));
    }
    buf.put_slice(bytes);
    Ok(())
}

/// Writes a small scalar's postcard encoding (at most a `u32`'s five bytes).
fn put_encoded(buf: &mut impl BufMut, value: &impl serde::Serialize) -> Result<(), CodecError> {
    let mut scratch = [0u8; 5];
    let written = postcard::to_slice(value, &mut scratch)?;
    put_bytes(buf, written)
}

/// Writes an identity: its statement's encoding, made once.
fn put_identity(buf: &mut impl BufMut, id: &SwimId) -> Result<(), CodecError> {
    match id.info().encoded() {
        Some(encoded) => put_bytes(buf, encoded),
        None => put_bytes(buf, &postcard::to_stdvec(id.info())?),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::membership::testkit;
    use crate::membership::verify::Verifier;
    use crate::membership::MemberInfo;

    /// A supernode's signed statement about itself.
    fn statement() -> MemberInfo {
        testkit::supernode_statement(3)
    }

    /// A codec whose view holds `held` live (verified), as a member's does its peers.
    fn codec_holding(held: &[&SwimId]) -> (VerifyingCodec, SharedVerifier) {
        let verifier: SharedVerifier = Arc::new(Mutex::new(Verifier::new(testkit::anchor(), None)));
        for id in held {
            let mut info = id.info().clone();
            let mut checking = lock(&verifier);
            checking.check(&mut info).unwrap();
            checking.set_live(info);
        }
        (VerifyingCodec::new(Arc::clone(&verifier)), verifier)
    }

    /// What foca's postcard codec decodes from `data`, with the identities checked as the
    /// codec always did (the sender and any member named, not the destination), and how many
    /// bytes it took.
    fn reference_decode(
        verifier: &SharedVerifier,
        data: &[u8],
    ) -> Result<(Header<SwimId>, usize), ()> {
        let mut buf = data;
        let mut header: Header<SwimId> = PostcardCodec.decode_header(&mut buf).map_err(drop)?;
        let mut verifier = lock(verifier);
        verifier.check_id(&mut header.src).map_err(drop)?;
        match &mut header.message {
            Message::PingReq { target: named, .. }
            | Message::IndirectAck { target: named, .. }
            | Message::IndirectPing { origin: named, .. }
            | Message::ForwardedAck { origin: named, .. } => {
                verifier.check_id(named).map_err(drop)?;
            }
            _ => {}
        }
        Ok((header, data.len() - buf.len()))
    }

    fn decode(codec: &mut VerifyingCodec, data: &[u8]) -> Result<(Header<SwimId>, usize), ()> {
        let mut buf = data;
        let header = codec.decode_header(&mut buf).map_err(drop)?;
        Ok((header, data.len() - buf.len()))
    }

    /// Every message foca sends, naming `named` where it names a member.
    fn every_message(named: &SwimId) -> Vec<Message<SwimId>> {
        vec![
            Message::Ping(0),
            Message::Ack(255),
            Message::PingReq {
                target: named.clone(),
                probe_number: 7,
            },
            Message::IndirectPing {
                origin: named.clone(),
                probe_number: 128,
            },
            Message::IndirectAck {
                target: named.clone(),
                probe_number: 1,
            },
            Message::ForwardedAck {
                origin: named.clone(),
                probe_number: 200,
            },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ]
    }

    fn other_statement() -> SwimId {
        SwimId::from(testkit::member(
            4,
            "[::1]:4001".parse().unwrap(),
            super::super::MemberRole::Supernode,
            70_000,
        ))
    }

    #[test]
    fn a_header_decodes_as_foca_s_codec_decodes_it_held_identities_shared_others_checked() {
        let (a, b) = (SwimId::from(statement()), other_statement());
        for held in [vec![], vec![&a], vec![&a, &b]] {
            for message in every_message(&b) {
                let header = Header {
                    src: a.clone(),
                    src_incarnation: 300,
                    dst: b.clone(),
                    message,
                };
                let mut data = Vec::new();
                PostcardCodec.encode_header(&header, &mut data).unwrap();
                data.extend_from_slice(b"updates follow");
                let (mut codec, verifier) = codec_holding(&held);
                let (decoded, used) = decode(&mut codec, &data).unwrap();
                assert_eq!(
                    Ok((decoded.clone(), used)),
                    reference_decode(&verifier, &data)
                );
                assert_eq!(decoded, header);
                assert_eq!(used, data.len() - b"updates follow".len());
                if held.contains(&&a) {
                    let live = lock(&verifier).live.get(&a.node).unwrap().info.clone();
                    assert!(decoded.src.info().shares_with(&live), "the held copy");
                }
            }
        }
        // A statement of a held member's node with another proof is checked, not taken, as
        // the sender or as a member named.
        let mut forged = a.info().to_statement();
        forged.proof = b.info().proof.clone();
        let forged = SwimId::from(MemberInfo::from(forged));
        let headers = [
            (forged.clone(), Message::Gossip),
            (b.clone(), every_message(&forged).swap_remove(2)),
            (b.clone(), every_message(&forged).swap_remove(5)),
        ];
        for (src, message) in headers {
            let header = Header {
                src,
                src_incarnation: 0,
                dst: b.clone(),
                message,
            };
            let mut data = Vec::new();
            PostcardCodec.encode_header(&header, &mut data).unwrap();
            let (mut codec, verifier) = codec_holding(&[&a, &b]);
            assert!(decode(&mut codec, &data).is_err());
            assert_eq!(lock(&verifier).statements_refused, 1);
        }
        let mut data = Vec::new();
        PostcardCodec
            .encode_member(&Member::alive(forged), &mut data)
            .unwrap();
        let (mut codec, verifier) = codec_holding(&[&a, &b]);
        assert!(codec.decode_member(&mut &data[..]).is_err());
        assert_eq!(lock(&verifier).statements_refused, 1);
    }

    proptest::proptest! {
        #[test]
        fn a_damaged_header_decodes_as_foca_s_codec_decodes_it_and_never_panics(
            variant in 0usize..11,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            value in proptest::prelude::any::<u8>(),
            cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
            hold_b in proptest::prelude::any::<bool>(),
        ) {
            let (a, b) = (SwimId::from(statement()), other_statement());
            let message = every_message(&b).swap_remove(variant);
            let header = Header { src: a.clone(), src_incarnation: 9, dst: b.clone(), message };
            let mut data = Vec::new();
            PostcardCodec.encode_header(&header, &mut data).unwrap();
            let at = at.index(data.len());
            data[at] = value;
            if let Some(cut) = cut {
                data.truncate(cut.index(data.len() + 1));
            }
            let held = if hold_b { vec![&a, &b] } else { vec![&a] };
            let (mut codec, verifier) = codec_holding(&held);
            let (_, reference) = codec_holding(&held);
            proptest::prop_assert_eq!(
                decode(&mut codec, &data),
                reference_decode(&reference, &data)
            );
            drop(verifier);
        }
    }

    #[test]
    fn a_member_update_decodes_as_foca_s_codec_decodes_it() {
        let (a, b) = (SwimId::from(statement()), other_statement());
        for held in [vec![], vec![&a]] {
            for state in [foca::State::Alive, foca::State::Suspect, foca::State::Down] {
                let member = Member::new(a.clone(), 513, state);
                let mut data = Vec::new();
                PostcardCodec.encode_member(&member, &mut data).unwrap();
                data.push(0xff);
                let (mut codec, _) = codec_holding(&held);
                let mut buf = &data[..];
                assert_eq!(codec.decode_member(&mut buf).unwrap(), member);
                assert_eq!(buf, &[0xff]);
                for cut in 0..data.len() - 1 {
                    let mut short = &data[..cut];
                    assert!(codec.decode_member(&mut short).is_err(), "{cut}");
                }
            }
        }
        let (mut codec, _) = codec_holding(&[&a]);
        let mut data = Vec::new();
        PostcardCodec
            .encode_member(&Member::alive(b.clone()), &mut data)
            .unwrap();
        assert_eq!(
            codec.decode_member(&mut &data[..]).unwrap(),
            Member::alive(b)
        );
    }

    #[test]
    fn a_header_is_encoded_byte_for_byte_as_foca_s_postcard_codec_does_and_never_overruns() {
        let (a, b) = (SwimId::from(statement()), other_statement());
        let verifier: SharedVerifier = Arc::new(Mutex::new(Verifier::new(testkit::anchor(), None)));
        let mut ours = VerifyingCodec::new(verifier);
        let mut foca_s = PostcardCodec;
        let mut checked = 0;
        for (src, dst) in [(&a, &b), (&b, &a)] {
            for message in every_message(src) {
                for src_incarnation in [0, 1, 127, 128, 16_384, u16::MAX] {
                    let header = Header {
                        src: src.clone(),
                        src_incarnation,
                        dst: dst.clone(),
                        message: message.clone(),
                    };
                    let mut expected = Vec::new();
                    foca_s.encode_header(&header, &mut expected).unwrap();
                    let mut written = Vec::new();
                    ours.encode_header(&header, &mut written).unwrap();
                    assert_eq!(written, expected, "{message:?} {src_incarnation}");
                    // Too little room: refused, not a panic, whatever the room.
                    for room in [0, 1, expected.len() / 2, expected.len() - 1] {
                        let mut small = [0u8; 2048];
                        let limited = (&mut small[..]).limit(room);
                        assert!(ours.encode_header(&header, limited).is_err(), "{room}");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2 * 11 * 6);
    }
}
