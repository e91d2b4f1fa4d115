//! Supernode <-> supernode messages: membership, the one-hop index and presence.

use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedBytes, BoundedVec};
use crate::ids::{NodeId, Username};
use crate::limits::{
    MAX_MEMBERSHIP_PAYLOAD, MAX_MEMBERSHIP_SYNC, MAX_PUBLISH_BATCH, MAX_RECORDS_PER_USER,
    MAX_WATCH_BATCH, MAX_WITHDRAW_BATCH,
};
use crate::messages::client::PresenceEvent;
use crate::record::Record;
use crate::version::{Hello, Welcome};
use crate::wire_error::WireError;

/// One packet of the membership protocol (SWIM), opaque here: the membership layer owns its
/// encoding.
pub type MembershipPayload = BoundedBytes<MAX_MEMBERSHIP_PAYLOAD>;

/// A membership sync payload, opaque here.
pub type MembershipSyncPayload = BoundedBytes<MAX_MEMBERSHIP_SYNC>;

/// Names one device's record in the index: the user and the device's node key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// Whose record.
    pub user: Username,
    /// Which device.
    pub node: NodeId,
}

/// What supernodes say to each other. Both sides of an overlay connection use this one enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverlayMessage {
    /// Opens an overlay session.
    Hello(Hello),
    /// Accepts it.
    Welcome(Welcome),
    /// A membership (SWIM) packet.
    Membership(MembershipPayload),
    /// Stores these records here (the sender is their device's home supernode).
    Publish {
        /// Signed records; the receiver verifies each before storing it.
        records: BoundedVec<Record, MAX_PUBLISH_BATCH>,
    },
    /// Removes these records (their devices unregistered or their leases ended at home).
    Withdraw {
        /// Which records.
        keys: BoundedVec<RecordKey, MAX_WITHDRAW_BATCH>,
    },
    /// Asks an owner for a user's records.
    Lookup {
        /// Whom to find.
        user: Username,
    },
    /// An owner's answer.
    LookupResult {
        /// Whom they describe.
        user: Username,
        /// Signed records; the receiver verifies each.
        records: BoundedVec<Record, MAX_RECORDS_PER_USER>,
    },
    /// The sender's clients watch these users: notify the sender of their changes.
    Subscribe {
        /// Whom to watch.
        users: BoundedVec<Username, MAX_WATCH_BATCH>,
    },
    /// Stops notifying the sender about these users.
    Unsubscribe {
        /// Whom to stop watching.
        users: BoundedVec<Username, MAX_WATCH_BATCH>,
    },
    /// A watched user's presence changed.
    Presence(PresenceEvent),
    /// The request was done.
    Ack,
    /// A request failed.
    Error(WireError),
    /// The sender is leaving the overlay.
    Goodbye,
    /// Anti-entropy: a sample of the sender's live members, opaque here (the membership layer
    /// owns its encoding), so that a member that missed a join learns of it.
    MembershipSync(MembershipSyncPayload),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;

    #[test]
    fn the_largest_membership_sync_fits_one_frame() {
        let payload = MembershipSyncPayload::try_from(vec![0xFF; MAX_MEMBERSHIP_SYNC]).unwrap();
        encode_frame(&OverlayMessage::MembershipSync(payload)).unwrap();
    }
}
