//! Anti-entropy (memberlist's push-pull, which foca lacks): every `sync_period` a member sends
//! a random live member a sample of its view, applied there by SWIM's rules and answered with
//! a sample of the receiver's (once per sender and period), with signed load
//! reports (the only way a load that moved by less than a step, or that a member missed,
//! travels).

use serde::{Deserialize, Serialize};
use switchboard_proto::member::LoadReport;
use switchboard_proto::NodeId;

use super::{
    load, verify, MemberInfo, Membership, Outgoing, PacketError, PacketKind, SwimId,
    MAX_SYNC_MEMBERS,
};
use crate::time::Time;

/// What a sync carries: at most [`MAX_SYNC_MEMBERS`] member states and as many load reports.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SyncSample {
    /// Members with their state and incarnation, the sender first.
    pub(crate) members: Vec<foca::Member<SwimId>>,
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
        let Some(target) = self.live.nth(target_index).cloned() else {
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
        // Counted first and drawn, then only the chosen cloned: a view's members share their
        // statements with every other view of the simulator, and cloning the whole view for
        // each sync (an atomic increment per member, on a count the other cores touch too) was
        // a sixth of a steady-state run.
        let troubled_len = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() != foca::State::Alive)
            .count();
        let alive_len = self.foca.iter_membership_state().count() - troubled_len;
        let room = MAX_SYNC_MEMBERS - 1;
        let troubled_room = troubled_len.min(room / 2);
        let alive_room = alive_len.min(room - troubled_room);
        let starts = [self.draw(troubled_len), self.draw(alive_len)];
        let (troubled, alive): (Vec<&foca::Member<SwimId>>, Vec<&foca::Member<SwimId>>) = self
            .foca
            .iter_membership_state()
            .partition(|m| m.state() != foca::State::Alive);
        let mut sample: Vec<foca::Member<SwimId>> = vec![foca::Member::new(
            SwimId::from(self.me.clone()),
            self.own_incarnation,
            foca::State::Alive,
        )];
        for ((part, take), start) in [(troubled, troubled_room), (alive, alive_room)]
            .into_iter()
            .zip(starts)
        {
            let len = part.len();
            sample.extend(
                part.into_iter()
                    .cycle()
                    .skip(start)
                    .take(take.min(len))
                    .cloned(),
            );
        }
        // This member's load, then the latest changes it took, then the loads of the live
        // members sampled.
        let own = self.current_load_report();
        let loads = {
            let recent: Vec<NodeId> = load::lock(&self.loads).recent().copied().collect();
            let verifier = verify::lock(&self.verifier);
            let mut named = std::collections::HashSet::new();
            own.into_iter()
                .chain(
                    recent
                        .into_iter()
                        .filter(|node| self.live.contains(node))
                        .chain(
                            sample
                                .iter()
                                .filter(|m| m.state() == foca::State::Alive)
                                .map(|m| m.id().node),
                        )
                        .filter(|node| *node != self.me.node && named.insert(*node))
                        .filter_map(|node| load::report(&verifier, &node)),
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
        if self.left {
            // Its answer would tell `from` this member is still here.
            return Ok(());
        }
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
        // Each entry on its own: one that would change nothing here is dropped unread, a forged
        // one is dropped (and counted), the rest applied.
        let sample: Vec<foca::Member<SwimId>> = sample
            .into_iter()
            .filter(|m| m.id().node != self.me.node)
            .collect();
        let known = self.known_already(&sample);
        let updates: Vec<foca::Member<SwimId>> = {
            let mut verifier = verify::lock(&self.verifier);
            sample
                .into_iter()
                .zip(known)
                .filter(|(_, known)| !known)
                .filter_map(|(m, _)| verifier.checked_member(&m).ok())
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
            let body = report.body_unverified();
            if body.node == self.me.node || !load::is_newer(&self.verifier, &body.node, body.seq) {
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

    /// For each entry of a sample, whether this view already holds that very statement in a
    /// state the entry cannot change by SWIM's rules (foca's `Member::can_change`, section 4.2
    /// of the SWIM paper): such an entry is neither verified again nor handed to foca, whose
    /// lookup is a scan of the whole view per entry. Most entries of a sync are such repeats;
    /// checking them was half of a steady-state run of the simulator. The statement must equal
    /// the one held, proof and all, so nothing unverified is skipped that could matter.
    fn known_already(&self, sample: &[foca::Member<SwimId>]) -> Vec<bool> {
        let mut known = vec![false; sample.len()];
        // By foca's address of each member, read beside its pointer: no statement of the view
        // is read but those the sample names.
        let index: std::collections::HashMap<[u64; 2], usize> = sample
            .iter()
            .enumerate()
            .map(|(at, m)| (foca::Identity::addr(m.id()), at))
            .collect();
        for held in self.foca.iter_membership_state() {
            let Some(&at) = index.get(&foca::Identity::addr(held.id())) else {
                continue;
            };
            let (Some(entry), Some(flag)) = (sample.get(at), known.get_mut(at)) else {
                continue;
            };
            *flag = held.id() == entry.id()
                && !can_change(
                    (held.state(), held.incarnation()),
                    (entry.state(), entry.incarnation()),
                );
        }
        known
    }
}

/// Whether a member known in `held` (state, incarnation) takes an update to `update`: the
/// order of preference of SWIM's suspicion subprotocol, as foca applies it (its
/// `Member::can_change`, which it does not export; the unit test below holds the two together).
pub(super) fn can_change(
    held: (foca::State, foca::Incarnation),
    update: (foca::State, foca::Incarnation),
) -> bool {
    use foca::State::{Alive, Down, Suspect};
    let ((state, incarnation), (other, other_incarnation)) = (held, update);
    match (state, other) {
        (Alive, Alive) | (Suspect, Alive | Suspect) => other_incarnation > incarnation,
        (Alive, Suspect) => other_incarnation >= incarnation,
        (Alive | Suspect, Down) => true,
        (Down, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use foca::{AccumulatingRuntime, Foca, Member, NoCustomBroadcast, PostcardCodec, State};
    use rand10::rngs::SmallRng;
    use rand10::SeedableRng;

    use super::can_change;

    /// What foca holds of `other` after it learned `held` and then `update` about it.
    fn foca_after(
        held: (State, foca::Incarnation),
        update: (State, foca::Incarnation),
    ) -> (State, foca::Incarnation) {
        let me: SocketAddrV4 = "10.0.0.1:1".parse().unwrap();
        let other: SocketAddrV4 = "10.0.0.2:1".parse().unwrap();
        let mut foca = Foca::with_custom_broadcast(
            me,
            foca::Config::simple(),
            SmallRng::seed_from_u64(1),
            PostcardCodec,
            NoCustomBroadcast,
        );
        let mut runtime = AccumulatingRuntime::new();
        for (state, incarnation) in [held, update] {
            foca.apply_many(
                std::iter::once(Member::new(other, incarnation, state)),
                false,
                &mut runtime,
            )
            .unwrap();
        }
        let member = foca.iter_membership_state().next().unwrap();
        (member.state(), member.incarnation())
    }

    #[test]
    fn an_entry_is_skipped_exactly_when_foca_would_not_change_what_it_holds() {
        let states = [State::Alive, State::Suspect, State::Down];
        for held in states.iter().flat_map(|s| (0..3).map(move |i| (*s, i))) {
            for update in states.iter().flat_map(|s| (0..3).map(move |i| (*s, i))) {
                let changed = foca_after(held, update) != held;
                assert_eq!(
                    can_change(held, update),
                    changed,
                    "held {held:?}, update {update:?}"
                );
            }
        }
    }
}
