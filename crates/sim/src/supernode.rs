//! The simulated supernodes' side of the client protocol: admission of registrations, `Busy`
//! alternatives, sessions closing, lease refreshes.

use std::time::Duration;

use switchboard_proto::messages::RecordKey;

use crate::world::{Event, Reply, World};

impl World {
    /// Admits a client's registration at `sn` (the supernode's side of `Register`).
    pub(crate) fn arrive(&mut self, client: usize, sn: usize, epoch: u64) {
        // A client that gave up on this attempt has closed the connection.
        if !self.sns[sn].up || self.clients[client].epoch != epoch {
            return;
        }
        let now = self.now;
        let reply = if self.sns[sn].draining {
            Reply::Busy {
                retry_after: Duration::from_secs(1),
                alternatives: self.alternatives(sn),
            }
        } else if !self.sns[sn].serving {
            // A mega on standby answers as the daemon's session gate does.
            self.figures.busy += 1;
            Reply::Busy {
                retry_after: Duration::from_secs(5),
                alternatives: self.alternatives(sn),
            }
        } else {
            match self.sns[sn].admission.open_session(&mut self.rng) {
                Err(refused) => {
                    self.figures.busy += 1;
                    let retry_after = match refused {
                        switchboard_engine::Refused::Full(d)
                        | switchboard_engine::Refused::Overloaded(d) => d,
                        switchboard_engine::Refused::Handshake => Duration::from_secs(1),
                    };
                    Reply::Busy {
                        retry_after,
                        alternatives: self.alternatives(sn),
                    }
                }
                Ok(()) => {
                    let Some(record) = self.clients[client].signed_record(self.config.lease) else {
                        self.violations
                            .push(format!("t={} a client dialled without a record", now.0));
                        return;
                    };
                    let unix = self.unix_now();
                    if self.verified.verify(&record, unix).is_err() {
                        self.violations.push(format!(
                            "t={} a client's own record failed to verify",
                            now.0
                        ));
                        return;
                    }
                    let node = self.clients[client].node;
                    let lease = self.config.lease;
                    let s = &mut self.sns[sn];
                    if s.directory.register(now, node, record.clone()).is_err() {
                        s.admission.close_session();
                        return;
                    }
                    s.sessions.insert(client);
                    s.overlay.publish(now, record, lease);
                    let clients = u32::try_from(s.sessions.len()).unwrap_or(u32::MAX);
                    s.overlay.report_load(now, clients);
                    self.clients[client].sessions.insert(sn);
                    self.drain_outputs(sn);
                    Reply::Registered
                }
            }
        };
        let at = now + self.delay();
        self.schedule(
            at,
            Event::Reply {
                client,
                sn,
                epoch,
                reply,
            },
        );
    }

    /// Up to five live, less loaded members this supernode knows (what `Busy` carries).
    pub(crate) fn alternatives(&self, sn: usize) -> Vec<usize> {
        self.sns[sn]
            .overlay
            .membership()
            .least_loaded()
            .into_iter()
            .filter(|(permille, _)| *permille < 900)
            .filter_map(|(_, m)| self.by_node.get(&m.node).copied())
            .take(5)
            .collect()
    }

    /// Ends a client's session at `sn` (the client closed the connection, or moved on).
    pub(crate) fn close_session(&mut self, client: usize, sn: usize, unregister: bool) {
        self.clients[client].sessions.remove(&sn);
        if !self.sns[sn].up || !self.sns[sn].sessions.remove(&client) {
            return;
        }
        let now = self.now;
        let node = self.clients[client].node;
        let user = self.clients[client].user.clone();
        let s = &mut self.sns[sn];
        s.admission.close_session();
        s.directory.disconnected(&node);
        if let Some(nominator) = s.roles.nominator.as_mut() {
            nominator.withdraw(&node);
        }
        if unregister {
            s.directory.unregister(&node);
            s.overlay.unpublish(now, &RecordKey { user, node });
        }
        let clients = u32::try_from(s.sessions.len()).unwrap_or(u32::MAX);
        s.overlay.report_load(now, clients);
        self.drain_outputs(sn);
    }

    pub(crate) fn refresh_arrive(&mut self, client: usize, sn: usize, epoch: u64) {
        if !self.sns[sn].up
            || self.clients[client].epoch != epoch
            || !self.sns[sn].sessions.contains(&client)
        {
            return;
        }
        let now = self.now;
        let Some(record) = self.clients[client].signed_record(self.config.lease) else {
            return;
        };
        let unix = self.unix_now();
        if self.verified.verify(&record, unix).is_err() {
            return;
        }
        let node = self.clients[client].node;
        let lease = self.config.lease;
        let s = &mut self.sns[sn];
        if s.directory.register(now, node, record.clone()).is_ok() {
            s.overlay.publish(now, record, lease);
        }
        self.drain_outputs(sn);
    }
}
