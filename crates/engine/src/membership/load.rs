//! Load gossip: each member's client count travels as a foca custom broadcast that a newer
//! report of the same member invalidates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foca::{BroadcastHandler, Invalidates};
use serde::{Deserialize, Serialize};
use switchboard_proto::NodeId;

use super::MemberInfo;

/// The gossiped load of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LoadReport {
    pub(super) node: NodeId,
    pub(super) seq: u64,
    pub(super) clients: u32,
}

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

#[derive(Debug, Default)]
pub(super) struct Loads {
    pub(super) latest: LoadTable,
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
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let newer = latest
            .get(&report.node)
            .is_none_or(|(seq, _)| report.seq > *seq);
        if !newer {
            return Ok(None);
        }
        latest.insert(report.node, (report.seq, report.clients));
        Ok(Some(LoadKey {
            node: report.node,
            seq: report.seq,
        }))
    }
}
