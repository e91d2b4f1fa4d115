//! Anti-entropy (memberlist's push-pull, which foca lacks): every `sync_period` a member sends
//! a random live member a sample of its view, applied there by SWIM's rules and answered with
//! a sample of the receiver's (once per sender and period), with signed load
//! reports (the only way a load that moved by less than a step, or that a member missed,
//! travels).

use serde::{Deserialize, Serialize};
use switchboard_proto::member::LoadReport;
use switchboard_proto::NodeId;

use super::{
    load, verify, MemberInfo, Membership, Outgoing, PacketError, PacketKind, MAX_SYNC_MEMBERS,
};
use crate::time::Time;

/// What a sync carries: at most [`MAX_SYNC_MEMBERS`] member states and as many load reports.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SyncSample {
    /// Members with their state and incarnation, the sender first.
    pub(crate) members: Vec<foca::Member<MemberInfo>>,
    /// The sender's latest load report, then the latest of the members whose reports it took
    /// last, then those of the live members among `members`; each signed by its member.
    pub(crate) loads: Vec<LoadReport>,
}

impl Membership {
    /// A deterministic draw from the seed (SplitMix64), for the anti-entropy choices.
    pub(super) fn draw(&mut self, below: usize) -> usize {
        self.sync_rng = self.sync_rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.sync_rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        usize::try_from(z % u64::try_from(below.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    /// Sends a random live member a sample of this member's whole view (alive, suspect and
    /// down members with their incarnations, this member included): memberlist's push-pull.
    /// Down members travel too, so that a member that learned of a since-dead member late
    /// (from a sample taken before the death was known) is corrected by the next sample.
    pub(super) fn send_sync(&mut self, now: Time) {
        let period = self.config.sync_period;
        self.synced_with.retain(|_, at| now < *at + period);
        if self.live.is_empty() {
            return;
        }
        let target_index = self.draw(self.live.len());
        let Some(target) = self.live.values().nth(target_index).cloned() else {
            return;
        };
        self.sync_to(now, target);
    }

    /// Sends `target` a sample of this member's view (see [`Membership::send_sync`]).
    fn sync_to(&mut self, now: Time, target: MemberInfo) {
        self.synced_with.insert(target.node, now);
        // Members not alive (suspect or down) get up to half of the sample, the rest the others,
        // each part from a random start: a death is what a member that missed its gossip most
        // needs to learn, and after a mass crash the dead are a third of the view, too many for
        // a slice of the whole to reach every straggler soon (issue #15's scale run: one of 700
        // survivors still counted a dead member alive 40 s after the crash).
        let (troubled, alive): (Vec<foca::Member<MemberInfo>>, Vec<foca::Member<MemberInfo>>) =
            self.foca
                .iter_membership_state()
                .cloned()
                .partition(|m| m.state() != foca::State::Alive);
        let room = MAX_SYNC_MEMBERS - 1;
        let troubled_room = troubled.len().min(room / 2);
        let alive_room = alive.len().min(room - troubled_room);
        let mut sample: Vec<foca::Member<MemberInfo>> = vec![foca::Member::new(
            self.me.clone(),
            self.own_incarnation,
            foca::State::Alive,
        )];
        for (part, take) in [(troubled, troubled_room), (alive, alive_room)] {
            let start = self.draw(part.len());
            let len = part.len();
            sample.extend(part.into_iter().cycle().skip(start).take(take.min(len)));
        }
        // This member's load, then the latest changes it took, then the loads of the live
        // members sampled.
        let own = self.current_load_report();
        let loads = {
            let table = load::lock(&self.loads);
            let mut named = std::collections::HashSet::new();
            own.into_iter()
                .chain(
                    table
                        .recent()
                        .filter(|node| self.live.contains_key(*node))
                        .copied()
                        .chain(
                            sample
                                .iter()
                                .filter(|m| m.state() == foca::State::Alive)
                                .map(|m| m.id().node),
                        )
                        .filter(|node| *node != self.me.node && named.insert(*node))
                        .filter_map(|node| table.report(&node)),
                )
                .take(MAX_SYNC_MEMBERS)
                .collect()
        };
        let sample = SyncSample {
            members: sample,
            loads,
        };
        if let Ok(payload) = postcard::to_stdvec(&sample) {
            self.stats.packets_sent += 1;
            self.outbox.push_back(Outgoing {
                to: target,
                kind: PacketKind::Sync,
                payload,
            });
        }
    }

    /// A sync sample from another member, applied as gossip is: SWIM's rules decide (a higher
    /// incarnation wins, suspect beats alive and down beats both at the same incarnation, down
    /// is final for an identity), so a stale sample cannot resurrect a member known down here.
    ///
    /// `from` is the peer the sample came from, as its transport authenticated it: the one
    /// answered.
    pub fn handle_sync(
        &mut self,
        now: Time,
        from: NodeId,
        payload: &[u8],
    ) -> Result<(), PacketError> {
        let SyncSample {
            members: sample,
            loads,
        } = postcard::from_bytes(payload)
            .map_err(|e| PacketError(format!("malformed sync: {e}")))?;
        if sample.len() > MAX_SYNC_MEMBERS || loads.len() > MAX_SYNC_MEMBERS {
            return Err(PacketError(format!(
                "sync of {} members and {} loads",
                sample.len(),
                loads.len()
            )));
        }
        // Each entry on its own: a forged one is dropped (and counted), the rest applied.
        let updates: Vec<foca::Member<MemberInfo>> = {
            let mut verifier = verify::lock(&self.verifier);
            sample
                .into_iter()
                .filter(|m| m.id().node != self.me.node)
                .filter_map(|m| verifier.checked_member(&m).ok())
                .collect()
        };
        if !updates.is_empty() {
            let result = self
                .foca
                .apply_many(updates.into_iter(), true, &mut self.runtime);
            self.absorb(now, result.err());
        }
        // After the members, so that a member this sample taught has its load taken too. Kept,
        // not gossiped: a repetition is not news.
        for report in loads {
            if report.body_unverified().node == self.me.node {
                continue;
            }
            let Ok(bytes) = postcard::to_stdvec(&report) else {
                continue;
            };
            if load::take(&self.loads, &self.verifier, report, &bytes) {
                self.stats.loads_synced += 1;
            }
        }
        // Answered with a sample of this view, both ways as memberlist's push-pull is: a
        // member that missed a death's gossip learns it from the syncs it receives, and twice
        // as many come its way (issue #15's scale run, seed 5: one of 700 survivors still
        // counted a dead member alive 40 s after a crash of 300, the random windows of its
        // eight syncs having missed it). Once a period per member, so that an answer is not
        // answered and a member flooding syncs gets one answer a period. The answer goes to
        // the authenticated peer, not to whom the sample names: a sample cannot direct syncs
        // at anyone else.
        let period = self.config.sync_period;
        let answered = |at: &Time| now < *at + period;
        if let Some(sender) = self.live.get(&from).cloned() {
            if !self.synced_with.get(&sender.node).is_some_and(answered) {
                self.sync_to(now, sender);
            }
        }
        Ok(())
    }
}
