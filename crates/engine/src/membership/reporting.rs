//! This member's own load: when a change is news to gossip, and the signed report its syncs
//! carry (what is learned of the others' loads is in [`super::load`]).

use switchboard_proto::member::{LoadBody, LoadReport};

use super::{load, Membership};
use crate::time::Time;

impl Membership {
    /// Tells the others that this member now holds `clients` clients. A change of at least
    /// `load_report_step_permille` of the capacity since the last figure gossiped is gossiped
    /// (at most once per `load_report_min_interval`: a later one waits for it); anything smaller
    /// only rides this member's next anti-entropy samples.
    pub fn report_load(&mut self, now: Time, clients: u32) {
        self.current_clients = clients;
        if !self.load_moved_a_step() {
            return;
        }
        let soonest = self.last_gossiped_load + self.config.load_report_min_interval;
        if now >= soonest {
            self.gossip_load_report(now);
        } else {
            self.deferred_load_report = Some(soonest);
        }
    }

    /// Whether the current load is a step away from the last one gossiped.
    pub(super) fn load_moved_a_step(&self) -> bool {
        let step =
            u64::from(self.me.capacity) * u64::from(self.config.load_report_step_permille) / 1000;
        u64::from(self.current_clients.abs_diff(self.gossiped_clients)) >= step.max(1)
    }

    /// Signs the current load and hands it to foca to gossip.
    pub(super) fn gossip_load_report(&mut self, now: Time) {
        self.last_gossiped_load = now;
        self.deferred_load_report = None;
        let Some(report) = self.sign_load_report() else {
            return;
        };
        self.gossiped_clients = self.current_clients;
        if let Ok(bytes) = postcard::to_stdvec(&report) {
            load::lock(&self.loads).now = now;
            // Going through foca's handler is how foca learns to disseminate it.
            let _ = self.foca.add_broadcast(&bytes);
        }
    }

    /// Signs the current load under the next sequence number as this member's latest report.
    fn sign_load_report(&mut self) -> Option<LoadReport> {
        let body = LoadBody {
            node: self.me.node,
            seq: self.load_seq + 1,
            clients: self.current_clients,
        };
        let report = LoadReport::sign(&self.signer.key, body).ok()?;
        self.load_seq += 1;
        self.own_report = Some(report);
        Some(report)
    }

    /// This member's latest load report, signed again first if the load changed since: what
    /// its anti-entropy samples carry.
    pub(super) fn current_load_report(&mut self) -> Option<LoadReport> {
        match self.own_report {
            Some(report) if report.body_unverified().clients == self.current_clients => {
                Some(report)
            }
            _ => self.sign_load_report(),
        }
    }
}
