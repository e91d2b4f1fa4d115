//! The host cache: the supernodes a client knows, what it last heard of their load, and when
//! each last served it or failed it; and the order in which one attempt tries them.

use rand_core::RngCore;
use switchboard_proto::UnixTime;

/// The most supernodes a host cache holds. A bound on the file a profile keeps and on one
/// pass's length; 200 is a bootstrap list and a long history of alternatives, far more than
/// one attempt ever needs ([`super::MAX_TRIES_PER_PASS`]).
pub const MAX_HOSTS: usize = 200;

/// How long a failure pushes a supernode behind the others. Long enough that every command
/// of a user's session after a supernode died skips it (a one-shot `client lookup` each few
/// seconds); short enough that a restarted supernode gets its clients back within minutes.
pub const FAILURE_MEMORY_SECS: u64 = 300;

/// A point in wall-clock time stored in 4 bytes (Unix seconds, 0 for never): the simulator
/// keeps a cache for each of a million clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp(u32);

impl Stamp {
    fn at(now: UnixTime) -> Self {
        Self(u32::try_from(now.0).unwrap_or(u32::MAX).max(1))
    }

    fn get(self) -> Option<UnixTime> {
        (self.0 != 0).then_some(UnixTime(u64::from(self.0)))
    }
}

/// One supernode the cache knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry<H> {
    /// Who it is (an address and node id in the client, an index in the simulator).
    pub host: H,
    /// A mega-supernode: the fallback, tried after the ordinary ones (DESIGN.md section 6).
    pub mega: bool,
    /// Its load when last heard of, per mille.
    pub load_permille: u16,
    last_success: Stamp,
    last_failure: Stamp,
}

impl<H> HostEntry<H> {
    /// A supernode never tried.
    pub fn new(host: H, mega: bool, load_permille: u16) -> Self {
        Self {
            host,
            mega,
            load_permille,
            last_success: Stamp::default(),
            last_failure: Stamp::default(),
        }
    }

    /// The same, with its history (as a profile stored it).
    pub fn with_history(
        mut self,
        last_success: Option<UnixTime>,
        last_failure: Option<UnixTime>,
    ) -> Self {
        self.last_success = last_success.map(Stamp::at).unwrap_or_default();
        self.last_failure = last_failure.map(Stamp::at).unwrap_or_default();
        self
    }

    /// When it last served this client.
    pub fn last_success(&self) -> Option<UnixTime> {
        self.last_success.get()
    }

    /// When a dial to it or a session with it last failed.
    pub fn last_failure(&self) -> Option<UnixTime> {
        self.last_failure.get()
    }

    /// Failed more recently than it served, within [`FAILURE_MEMORY_SECS`] of `now`.
    fn suspect(&self, now: UnixTime) -> bool {
        self.last_failure > self.last_success
            && self
                .last_failure
                .get()
                .is_some_and(|at| now.since(at) < FAILURE_MEMORY_SECS)
    }
}

/// The supernodes a client knows, at most `limit` ([`MAX_HOSTS`] in the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCache<H> {
    entries: Vec<HostEntry<H>>,
    limit: usize,
}

impl<H: Clone + PartialEq> HostCache<H> {
    /// A cache of `entries` (the first `limit` of them).
    pub fn new(mut entries: Vec<HostEntry<H>>, limit: usize) -> Self {
        entries.truncate(limit);
        Self { entries, limit }
    }

    /// The entries, in the order they were added.
    pub fn entries(&self) -> &[HostEntry<H>] {
        &self.entries
    }

    /// The cache as its entries, to store.
    pub fn into_entries(self) -> Vec<HostEntry<H>> {
        self.entries
    }

    /// True when no supernode is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&mut self, host: &H) -> Option<&mut HostEntry<H>> {
        self.entries.iter_mut().find(|e| e.host == *host)
    }

    /// `host` served this client at `now`.
    pub fn succeeded(&mut self, host: &H, now: UnixTime) {
        if let Some(entry) = self.find(host) {
            entry.last_success = Stamp::at(now);
        }
    }

    /// A dial to `host` or a session with it failed at `now`: it goes behind the others for
    /// [`FAILURE_MEMORY_SECS`], or until it serves again.
    pub fn failed(&mut self, host: &H, now: UnixTime) {
        if let Some(entry) = self.find(host) {
            entry.last_failure = Stamp::at(now);
        }
    }

    /// Adds supernodes a `Busy` or a `Redirect` named (ordinary ones, load unknown). When the
    /// cache is full, each new one replaces the least useful entry (a suspect first, then the
    /// most loaded that never served); megas and supernodes that served are kept. Returns how
    /// many were added.
    pub fn add_named(&mut self, named: impl IntoIterator<Item = H>, now: UnixTime) -> usize {
        let mut added = 0;
        for host in named {
            if self.entries.iter().any(|e| e.host == host) {
                continue;
            }
            let entry = HostEntry::new(host, false, UNKNOWN_LOAD);
            if self.entries.len() < self.limit {
                self.entries.push(entry);
                added += 1;
            } else if let Some(slot) = self.least_useful(now) {
                if let Some(old) = self.entries.get_mut(slot) {
                    *old = entry;
                    added += 1;
                }
            }
        }
        added
    }

    /// The entry to give up for a new one: a suspect (the oldest failure first), else an
    /// ordinary supernode that never served this client (the most loaded first).
    fn least_useful(&self, now: UnixTime) -> Option<usize> {
        let suspect = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.mega && e.suspect(now))
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(i, _)| i);
        suspect.or_else(|| {
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.mega && e.last_success.get().is_none())
                .max_by_key(|(_, e)| e.load_permille)
                .map(|(i, _)| i)
        })
    }

    /// The mega-supernodes known, least loaded first (a pass moves them up after a few
    /// refusals, [`super::Pass::with_megas`]).
    pub fn megas(&self) -> Vec<H> {
        let mut megas: Vec<&HostEntry<H>> = self.entries.iter().filter(|e| e.mega).collect();
        megas.sort_by_key(|e| e.load_permille);
        megas.into_iter().map(|e| e.host.clone()).collect()
    }

    /// The order one attempt tries the cache in:
    ///
    /// 1. `prefer`: the supernode this client's running session is homed on (a one-shot
    ///    command from the same profile goes where the client already is);
    /// 2. the supernode that served this client last, unless it failed since;
    /// 3. the other ordinary supernodes, each next one the less loaded of two drawn at random
    ///    from those left ("the power of two choices", Mitzenmacher 2001): clients that share
    ///    a host cache spread over it instead of all taking its first entry (a deterministic
    ///    order sent every orphan of a dead supernode to the same one), yet lean towards spare
    ///    capacity;
    /// 4. the mega-supernodes, least loaded first (the fallback, DESIGN.md section 6);
    /// 5. the suspects (failed within [`FAILURE_MEMORY_SECS`] and not served since), the
    ///    oldest failure first: a dead supernode is tried only when nothing else answered;
    /// 6. `avoid` (the one just lost) last.
    pub fn order(
        &self,
        avoid: Option<&H>,
        prefer: Option<&H>,
        now: UnixTime,
        rng: &mut impl RngCore,
    ) -> Vec<H> {
        let mut ordered = Vec::with_capacity(self.entries.len());
        let mut rest: Vec<&HostEntry<H>> = Vec::with_capacity(self.entries.len());
        let mut avoided = None;
        let mut preferred = None;
        for entry in &self.entries {
            if avoid == Some(&entry.host) {
                avoided = Some(entry);
            } else if prefer == Some(&entry.host) {
                preferred = Some(entry);
            } else {
                rest.push(entry);
            }
        }
        if let Some(entry) = preferred {
            ordered.push(entry.host.clone());
        }
        let (mut suspects, healthy): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|e| e.suspect(now));
        let (mut megas, mut normals): (Vec<_>, Vec<_>) = healthy.into_iter().partition(|e| e.mega);
        let last_home = normals
            .iter()
            .enumerate()
            .filter(|(_, e)| e.last_success.get().is_some())
            .max_by_key(|(_, e)| e.last_success)
            .map(|(i, _)| i);
        if let Some(home) = last_home {
            ordered.push(normals.swap_remove(home).host.clone());
        }
        while !normals.is_empty() {
            let first = pick(rng, normals.len());
            let second = pick(rng, normals.len());
            let choice = match (normals.get(first), normals.get(second)) {
                (Some(a), Some(b)) if b.load_permille < a.load_permille => second,
                _ => first,
            };
            ordered.push(normals.swap_remove(choice).host.clone());
        }
        megas.sort_by_key(|e| e.load_permille);
        ordered.extend(megas.into_iter().map(|e| e.host.clone()));
        suspects.sort_by_key(|e| e.last_failure);
        ordered.extend(suspects.into_iter().map(|e| e.host.clone()));
        ordered.extend(avoided.map(|e| e.host.clone()));
        ordered
    }
}

/// The load hint of a supernode named by another (its load is not known): the middle.
pub const UNKNOWN_LOAD: u16 = 500;

/// A uniform index below `len` (`len` > 0); the modulo bias is below 2^-50 for any cache.
fn pick(rng: &mut impl RngCore, len: usize) -> usize {
    let len64 = u64::try_from(len).unwrap_or(u64::MAX).max(1);
    usize::try_from(rng.next_u64() % len64).unwrap_or(0)
}
