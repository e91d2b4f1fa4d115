//! Load gossip: each member's client count travels as a foca custom broadcast that a newer
//! report of the same member invalidates, in a backlog kept short, when it moved by a step;
//! anything else (a smaller change, the repetition a member that joined since needs) rides the
//! anti-entropy samples ([`super::sync`]), as memberlist sends news by broadcast and the whole
//! state by push-pull. A gossiped repetition kept every member's backlog full and so made
//! every member gossip 15 packets a second forever (26 messages per supernode per second in the
//! simulator's steady state at 1,000 supernodes, of which 2 or 3 are probes).
//!
//! foca piggybacks each report `max_transmissions` times from every member, freshest first, and
//! goes through its whole backlog for every packet it sends. At 1,000 members the reports asked
//! for about three times what the packets carry: every member's backlog held nearly every
//! member's report (997 of 1,000 in the simulator), most of them starved behind fresher ones,
//! and filling packets was 40% of a simulated run. So, like hashicorp/memberlist's
//! `TransmitLimitedQueue.Prune` (queue.go: keep the `maxRetain` latest, drop the rest), a
//! report leaves the backlog once `window` newer reports have arrived (it has had its turn: the
//! freshest go first), and a member passes on at most one report of a given member per
//! `min_gap` (a hostile member flooding reports of its own would otherwise push everyone else's
//! out).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{BroadcastHandler, Invalidates};
use switchboard_proto::member::{LoadBody, LoadReport};
use switchboard_proto::NodeId;

use super::verify::{self, SharedVerifier, Verifier};
use super::SwimId;
use crate::time::Time;

/// The dissemination key of a load report: a newer report of the same node replaces it, and
/// any report replaces those that arrived `window` passed-on reports before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LoadKey {
    node: NodeId,
    seq: u64,
    /// How many reports this member had passed on before this one.
    arrival: u64,
    /// How many newer reports push this one out of the backlog.
    window: u64,
}

impl Invalidates for LoadKey {
    fn invalidates(&self, other: &Self) -> bool {
        (self.node == other.node && self.seq >= other.seq)
            || other.arrival.saturating_add(self.window) <= self.arrival
    }
}

/// A load report could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed load report: {0}")]
pub(super) struct LoadDecodeError(postcard::Error);

/// The load gossip's own state, shared between foca's broadcast handler (which writes it) and
/// the wrapper (which reads it; foca does not lend its handler back). The latest report of each
/// member is kept beside its statement in the verifier's live set ([`verify::Live`]): bounded
/// by the membership, dropped when the member goes down.
#[derive(Debug, Default)]
pub(super) struct LoadState {
    /// The members whose reports were taken last, newest at the back, at most
    /// [`RECENT_LOADS`]: what a sync carries first, since after a burst of changes (a mass
    /// arrival, a crash's orphans re-homing) gossip pruned from full backlogs is what most
    /// members missed.
    recent: VecDeque<NodeId>,
    /// Reports passed on so far (the arrival number of the next one).
    arrivals: u64,
    /// The wrapper's clock, set before it hands foca anything.
    pub(super) now: Time,
}

impl LoadState {
    /// The members whose reports were taken last, newest first.
    pub(super) fn recent(&self) -> impl Iterator<Item = &NodeId> {
        self.recent.iter().rev()
    }
}

/// The last client count reported by `node`, a live member.
pub(super) fn clients(verifier: &Verifier, node: &NodeId) -> Option<u32> {
    known(verifier, node).map(|known| known.clients)
}

/// The latest report `node`, a live member, signed, as known here.
pub(super) fn report(verifier: &Verifier, node: &NodeId) -> Option<LoadReport> {
    known(verifier, node).map(|known| *known.report)
}

fn known<'a>(verifier: &'a Verifier, node: &NodeId) -> Option<&'a Known> {
    verifier.live.get(node).and_then(|live| live.load.as_ref())
}

/// A member's latest report, with the two figures read most kept beside the shared copy: most
/// reports a member receives are repeats of one it holds (each is piggybacked many times), and
/// telling one from the other without following the pointer saves a cache miss per repeat
/// (`take` was 13% of a simulated mass arrival). Shared through the verified cache: the
/// simulator's thousand views of one report point at one copy (a copy each was 112 bytes per
/// pair of members). 32 bytes.
#[derive(Debug)]
pub(crate) struct Known {
    seq: u64,
    report: Arc<LoadReport>,
    /// When this member last passed on a report of this member, or [`NEVER`] (kept here rather
    /// than in a map of its own: one entry per member, 48 bytes a pair of members less; not an
    /// `Option`, 8 bytes less again).
    passed_on: Time,
    clients: u32,
}

/// [`Known::passed_on`] of a member none of whose reports was passed on here.
const NEVER: Time = Time(u64::MAX);

impl Known {
    /// Whether a report of this member was passed on less than `gap` before `now`.
    fn passed_on_within(&self, now: Time, gap: Duration) -> bool {
        self.passed_on != NEVER && now < self.passed_on + gap
    }
}

/// The shared [`LoadState`].
pub(super) type LoadTable = Arc<Mutex<LoadState>>;

/// Locks the load table; a poisoned lock still holds consistent plain data.
pub(super) fn lock(table: &LoadTable) -> std::sync::MutexGuard<'_, LoadState> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a report of `node` under sequence number `seq` would be newer than the one held
/// of that live member (unverified: a cheap test before the work of taking it). A report of
/// a member not live here is not.
pub(super) fn is_newer(verifier: &SharedVerifier, node: &NodeId, seq: u64) -> bool {
    newer_in(&verify::lock(verifier), node, seq)
}

fn newer_in(verifier: &Verifier, node: &NodeId, seq: u64) -> bool {
    verifier
        .live
        .get(node)
        .is_some_and(|live| live.load.as_ref().is_none_or(|known| seq > known.seq))
}

/// The member and sequence number an encoded report starts with (its body's first two
/// fields), read without decoding the rest.
fn peek(data: &[u8]) -> Result<(NodeId, u64), LoadDecodeError> {
    postcard::take_from_bytes::<(NodeId, u64)>(data)
        .map(|(prefix, _)| prefix)
        .map_err(LoadDecodeError)
}

/// Takes `report` (whose encoding is `bytes`) if its member signed it, is live here, and had
/// not reported anything newer; whether it was taken. A forged one is counted. Verified once
/// per distinct report (by this member, or by all the simulator's).
pub(super) fn take(
    table: &LoadTable,
    verifier: &SharedVerifier,
    report: LoadReport,
    bytes: &[u8],
) -> bool {
    let LoadBody { node, seq, .. } = *report.body_unverified();
    let taken = matches!(
        take_into(&mut verify::lock(verifier), node, seq, bytes, || Ok(report)),
        Ok(Some(_))
    );
    if taken {
        remember_recent(table, node);
    }
    taken
}

/// [`take`] within the locked view, of the report of `node` under `seq` (its body's first two
/// fields, read before the rest) that `decode` gives, called only if it is news here. The
/// member's entry is looked up once (a lookup for the test, one to take, one to pass on was
/// three cache misses per news), and the report verified, when the cache has not seen its
/// bytes, with the view locked, which only the member's own work waits on. The entry as taken,
/// for the caller to decide on passing it on.
fn take_into<'a>(
    verifier: &'a mut Verifier,
    node: NodeId,
    seq: u64,
    bytes: &[u8],
    decode: impl FnOnce() -> Result<LoadReport, LoadDecodeError>,
) -> Result<Option<&'a mut Known>, LoadDecodeError> {
    // Field by field: the entry is held while the anchor and the cache are read.
    let Verifier {
        anchor,
        verified,
        live,
        loads_refused,
        ..
    } = verifier;
    let Some(live) = live.get_mut(&node) else {
        // About no live member.
        return Ok(None);
    };
    let passed_on = match &live.load {
        // Old news.
        Some(known) if known.seq >= seq => return Ok(None),
        Some(known) => known.passed_on,
        None => NEVER,
    };
    let report = decode()?;
    let clients = report.body_unverified().clients;
    let digest = crate::digest::of_bytes(anchor, b"load", bytes);
    let shared = match verified.load(&digest) {
        Some(shared) => shared,
        None => {
            if report.verify().is_err() {
                *loads_refused += 1;
                return Ok(None);
            }
            let shared = Arc::new(report);
            verified.insert_load(digest, Arc::clone(&shared));
            shared
        }
    };
    Ok(Some(live.load.insert(Known {
        seq,
        clients,
        report: shared,
        passed_on,
    })))
}

/// Puts `node` last among the members whose reports were taken last.
fn remember_recent(table: &LoadTable, node: NodeId) {
    let mut table = lock(table);
    table.recent.retain(|held| *held != node);
    if table.recent.len() >= RECENT_LOADS {
        table.recent.pop_front();
    }
    table.recent.push_back(node);
}

/// How many of the latest changed loads a member remembers to put first in its syncs: half a
/// sample, the other half being the loads of the members sampled.
pub(super) const RECENT_LOADS: usize = super::MAX_SYNC_MEMBERS / 2;

/// foca's handler of load reports: only a report its member signed, about a live member, and
/// newer than the last one is kept; it is passed on unless one of the same member was passed on
/// less than `min_gap` ago.
#[derive(Debug)]
pub(super) struct Loads {
    pub(super) table: LoadTable,
    verifier: SharedVerifier,
    window: u64,
    min_gap: Duration,
}

impl Loads {
    pub(super) fn new(verifier: SharedVerifier, window: usize, min_gap: Duration) -> Self {
        Self {
            table: LoadTable::default(),
            verifier,
            window: u64::try_from(window).unwrap_or(u64::MAX).max(1),
            min_gap,
        }
    }
}

impl BroadcastHandler<SwimId> for Loads {
    type Key = LoadKey;
    type Error = LoadDecodeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&SwimId>,
    ) -> Result<Option<LoadKey>, LoadDecodeError> {
        // A repeat of a report held (most of what arrives: each is piggybacked many times)
        // is told by its first two fields; the rest is decoded only for news. A repeat with a
        // damaged tail is dropped as the repeat it claims to be, not refused.
        let (node, seq) = peek(data)?;
        let pass_on = {
            let mut verifier = verify::lock(&self.verifier);
            let decode = || postcard::from_bytes(data).map_err(LoadDecodeError);
            let Some(known) = take_into(&mut verifier, node, seq, data, decode)? else {
                // Neither kept nor passed on.
                return Ok(None);
            };
            let now = lock(&self.table).now;
            let pass_on = !known.passed_on_within(now, self.min_gap);
            if pass_on {
                known.passed_on = now;
            }
            pass_on
        };
        remember_recent(&self.table, node);
        if !pass_on {
            // Kept, not passed on: its member's next report carries the news further.
            return Ok(None);
        }
        let mut table = lock(&self.table);
        let arrival = table.arrivals;
        table.arrivals += 1;
        Ok(Some(LoadKey {
            node,
            seq,
            arrival,
            window: self.window,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::testkit;
    use crate::membership::verify::Verifier;
    use crate::membership::MemberInfo;

    fn report(seed: u8, seq: u64, clients: u32) -> (NodeId, Vec<u8>) {
        let key = testkit::signer(seed).key;
        let body = LoadBody {
            node: key.node_id(),
            seq,
            clients,
        };
        let signed = LoadReport::sign(&key, body).unwrap();
        (key.node_id(), postcard::to_stdvec(&signed).unwrap())
    }

    /// Makes the member of `seed` live in `verifier`'s view.
    fn mark_live(verifier: &SharedVerifier, seed: u8) {
        let addr = "127.0.0.1:4000".parse().unwrap();
        let info = testkit::member(seed, addr, super::super::MemberRole::Supernode, 10);
        verify::lock(verifier).set_live(info);
    }

    /// A handler whose members 1..=20 are live, passing on per `window` and `min_gap`.
    fn handler(window: usize, min_gap: Duration) -> Loads {
        let verifier: SharedVerifier = Arc::new(Mutex::new(Verifier::new(testkit::anchor(), None)));
        for seed in 1..=20u8 {
            mark_live(&verifier, seed);
        }
        Loads::new(verifier, window, min_gap)
    }

    #[test]
    fn a_members_load_outlives_a_renewed_statement_and_goes_with_the_member() {
        let mut loads = handler(64, Duration::ZERO);
        let (node, bytes) = report(1, 1, 10);
        assert!(loads.receive_item(&bytes, None).unwrap().is_some());
        let renewed = MemberInfo::signed(
            &testkit::signer(1),
            "127.0.0.1:4000".parse().unwrap(),
            super::super::MemberRole::Supernode,
            10,
            2,
        )
        .unwrap();
        verify::lock(&loads.verifier).set_live(renewed);
        assert_eq!(clients(&verify::lock(&loads.verifier), &node), Some(10));
        let (_, old) = report(1, 1, 10);
        assert!(
            loads.receive_item(&old, None).unwrap().is_none(),
            "still a repeat"
        );
        verify::lock(&loads.verifier).live.remove(&node);
        assert_eq!(clients(&verify::lock(&loads.verifier), &node), None);
        let (_, newer) = report(1, 2, 12);
        assert!(
            loads.receive_item(&newer, None).unwrap().is_none(),
            "about no live member"
        );
    }

    #[test]
    fn a_reports_member_and_sequence_number_are_read_without_decoding_the_rest() {
        for (seed, seq) in [(1u8, 1u64), (2, 127), (3, 128), (4, u64::MAX)] {
            let (node, bytes) = report(seed, seq, 10);
            assert_eq!(peek(&bytes).unwrap(), (node, seq));
            assert!(peek(&bytes[..33]).is_err() || seq < 128);
            assert!(peek(&bytes[..31]).is_err());
        }
    }

    #[test]
    fn members_sharing_a_verified_cache_share_one_copy_of_a_report() {
        let shared = verify::VerifiedCache::new(16);
        let member = || {
            let verifier = Verifier::new(testkit::anchor(), Some(shared.clone()));
            let verifier: SharedVerifier = Arc::new(Mutex::new(verifier));
            mark_live(&verifier, 1);
            Loads::new(verifier, 64, Duration::ZERO)
        };
        let (mut first, mut second) = (member(), member());
        let (node, bytes) = report(1, 1, 10);
        assert!(first.receive_item(&bytes, None).unwrap().is_some());
        assert!(second.receive_item(&bytes, None).unwrap().is_some());
        let copy = |loads: &Loads| {
            Arc::clone(&known(&verify::lock(&loads.verifier), &node).unwrap().report)
        };
        assert!(Arc::ptr_eq(&copy(&first), &copy(&second)));
        assert_eq!(clients(&verify::lock(&second.verifier), &node), Some(10));
    }

    #[test]
    fn a_report_is_pushed_out_by_the_window_th_report_passed_on_after_it() {
        let mut loads = handler(4, Duration::ZERO);
        let keys: Vec<LoadKey> = (1..=6u8)
            .map(|seed| {
                let (_, bytes) = report(seed, 1, 10);
                loads.receive_item(&bytes, None).unwrap().unwrap()
            })
            .collect();
        let [first, _, _, fourth, fifth, sixth] = keys.try_into().unwrap();
        assert!(!fourth.invalidates(&first), "three newer: still in");
        assert!(fifth.invalidates(&first), "four newer: out");
        assert!(sixth.invalidates(&first));
        assert!(!sixth.invalidates(&fifth));
    }

    #[test]
    fn a_newer_report_of_the_same_member_replaces_the_older_whatever_the_window() {
        let mut loads = handler(64, Duration::ZERO);
        let (_, old) = report(1, 1, 10);
        let (_, new) = report(1, 2, 12);
        let old = loads.receive_item(&old, None).unwrap().unwrap();
        let new = loads.receive_item(&new, None).unwrap().unwrap();
        assert!(new.invalidates(&old));
        assert!(!old.invalidates(&new));
    }

    #[test]
    fn a_member_flooding_its_own_reports_gets_one_passed_on_per_gap_and_pushes_out_nobody() {
        let mut loads = handler(4, Duration::from_secs(5));
        let (_, other) = report(2, 1, 10);
        let other = loads.receive_item(&other, None).unwrap().unwrap();
        let mut passed = Vec::new();
        for seq in 1..=200u64 {
            lock(&loads.table).now = Time(seq * 10);
            let (_, flood) = report(1, seq, u32::try_from(seq).unwrap());
            if let Some(key) = loads.receive_item(&flood, None).unwrap() {
                passed.push(key);
            }
        }
        assert_eq!(passed.len(), 1, "200 reports within 2 s: one passed on");
        assert!(passed.iter().all(|key| !key.invalidates(&other)));
        let (flooder, _) = report(1, 1, 0);
        assert_eq!(
            clients(&verify::lock(&loads.verifier), &flooder),
            Some(200),
            "the latest is still known here"
        );
    }

    #[test]
    fn the_members_whose_reports_were_taken_last_are_remembered_newest_first_once_each() {
        let loads = handler(64, Duration::ZERO);
        for seed in 21..=100u8 {
            mark_live(&loads.verifier, seed);
        }
        for seed in 1..=100u8 {
            let (node, bytes) = report(seed, 1, 10);
            let report = postcard::from_bytes(&bytes).unwrap();
            assert!(
                take(&loads.table, &loads.verifier, report, &bytes),
                "{node}"
            );
        }
        let (again, bytes) = report(90, 2, 11);
        assert!(take(
            &loads.table,
            &loads.verifier,
            postcard::from_bytes(&bytes).unwrap(),
            &bytes
        ));
        let table = lock(&loads.table);
        let recent: Vec<NodeId> = table.recent().copied().collect();
        assert_eq!(recent.len(), RECENT_LOADS, "bounded");
        assert_eq!(recent.first(), Some(&again), "retaken: newest");
        assert_eq!(recent.iter().filter(|n| **n == again).count(), 1);
        assert_eq!(recent.get(1), Some(&report(100, 1, 10).0));
        // 75 kept: the retaken 90, then 100 down to 26 without 90.
        assert_eq!(recent.last(), Some(&report(26, 1, 10).0));
    }
}
