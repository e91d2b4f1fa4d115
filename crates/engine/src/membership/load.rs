//! Load gossip: each member's client count travels as a foca custom broadcast that a newer
//! report of the same member invalidates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foca::{BroadcastHandler, Invalidates};
use switchboard_proto::member::LoadReport;
use switchboard_proto::NodeId;

use super::verify::{self, SharedVerifier};
use super::MemberInfo;

/// The dissemination key of a load report: a newer report of the same node replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LoadKey {
    node: NodeId,
    seq: u64,
}

impl Invalidates for LoadKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.seq >= other.seq
    }
}

/// A load report could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed load report: {0}")]
pub(super) struct LoadDecodeError(postcard::Error);

/// The latest load per member, shared between foca's broadcast handler (which writes it) and
/// the wrapper (which reads it; foca does not lend its handler back). Bounded by the
/// membership: a departed member's entry is dropped when it goes down.
pub(super) type LoadTable = Arc<Mutex<HashMap<NodeId, (u64, u32)>>>;

/// foca's handler of load reports: only a report its member signed, about a live member, and
/// newer than the last one is kept and passed on.
#[derive(Debug)]
pub(super) struct Loads {
    pub(super) latest: LoadTable,
    verifier: SharedVerifier,
}

impl Loads {
    pub(super) fn new(verifier: SharedVerifier) -> Self {
        Self {
            latest: LoadTable::default(),
            verifier,
        }
    }
}

impl BroadcastHandler<MemberInfo> for Loads {
    type Key = LoadKey;
    type Error = LoadDecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&MemberInfo>,
    ) -> Result<Option<LoadKey>, LoadDecodeError> {
        let report: LoadReport = postcard::from_bytes(data).map_err(LoadDecodeError)?;
        let body = *report.body_unverified();
        let newer = self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&body.node)
            .is_none_or(|(seq, _)| body.seq > *seq);
        if !newer || !verify::lock(&self.verifier).live.contains(&body.node) {
            // Old news, or about no live member: neither kept nor passed on.
            return Ok(None);
        }
        // Verified once per distinct report (by this member, or by all the simulator's).
        let (cache, digest) = {
            let verifier = verify::lock(&self.verifier);
            let digest = verify::digest(&verifier.anchor, b"load", data);
            (verifier.verified.clone(), digest)
        };
        if !cache.contains(&digest) {
            if report.verify().is_err() {
                verify::lock(&self.verifier).loads_refused += 1;
                return Ok(None);
            }
            cache.insert(digest);
        }
        self.latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(body.node, (body.seq, body.clients));
        Ok(Some(LoadKey {
            node: body.node,
            seq: body.seq,
        }))
    }
}
