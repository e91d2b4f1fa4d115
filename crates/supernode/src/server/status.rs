//! The operator's status page, `GET /status` on the metrics port: this supernode's role and
//! mode, its clients against its capacity, the members it sees with their role, load and
//! state (those declared down included, until they come back), the records it holds and
//! homes, and the recent membership events, promotions and mega activations. Server-rendered
//! HTML (`switchboard_net::status`), refreshed by the browser every 5 s.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use switchboard_engine::membership::{MemberInfo, MemberRole};
use switchboard_net::status::{bar, clock, escape, page, table};
use switchboard_proto::{NodeId, UnixTime};

use super::{lock, Shared};
use crate::config::Mode;

/// Recent events the page lists: a few minutes of a busy overlay; older ones are in the log.
pub const MAX_STATUS_EVENTS: usize = 64;

/// Members declared down that the page keeps showing: a third of a large overlay dying at once
/// still fits; past it the oldest are forgotten (they are in the log).
pub const MAX_DOWN_SHOWN: usize = 1_024;

/// What the status page remembers of the recent past.
#[derive(Debug, Default)]
pub struct StatusLog {
    events: VecDeque<(UnixTime, String)>,
    down: BTreeMap<NodeId, (SocketAddr, MemberRole, UnixTime)>,
}

impl StatusLog {
    /// Notes `text` at the present time.
    pub fn event(&mut self, text: String) {
        if self.events.len() >= MAX_STATUS_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((switchboard_net::now_unix(), text));
    }

    /// A member is live (again).
    pub fn member_up(&mut self, member: &MemberInfo) {
        self.down.remove(&member.node);
        self.event(format!(
            "{} ({}, {}) joined",
            member.node.short(),
            role_name(member.role),
            member.addr
        ));
    }

    /// A member was declared down or left.
    pub fn member_down(&mut self, member: &MemberInfo) {
        let now = switchboard_net::now_unix();
        if self.down.len() >= MAX_DOWN_SHOWN && !self.down.contains_key(&member.node) {
            let oldest = self.down.iter().min_by_key(|(_, v)| v.2).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.down.remove(&oldest);
            }
        }
        self.down
            .insert(member.node, (member.addr, member.role, now));
        self.event(format!(
            "{} ({}, {}) declared down",
            member.node.short(),
            role_name(member.role),
            member.addr
        ));
    }
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Supernode => "supernode",
        MemberRole::Mega => "mega",
        MemberRole::Standby => "standby mega",
    }
}

impl Shared {
    /// The status page's HTML.
    pub fn render_status(&self) -> String {
        let (clients, capacity) = {
            let admission = lock(&self.admission);
            (admission.clients(), admission.capacity())
        };
        let registrations = lock(&self.directory).registrations();
        let mode = match self.config.mode {
            Mode::Normal if self.own_role == switchboard_proto::Role::Promoted => {
                "promoted supernode (a client serving)"
            }
            Mode::Normal => "supernode",
            Mode::Mega => "mega-supernode",
            Mode::MegaStandby if self.mega_active.load(Ordering::Acquire) => {
                "mega-supernode, stepped in from standby"
            }
            Mode::MegaStandby => "mega-supernode on standby (admits no clients)",
        };
        let mut body = String::new();
        let _ = write!(
            body,
            "<p><b>{}</b> &middot; node <code>{}</code> &middot; clients reach it at <code>{}</code>{}</p>",
            escape(mode),
            self.node,
            self.public_addr,
            if self.is_draining() {
                " &middot; <span class=\"down\">draining</span>"
            } else {
                ""
            }
        );
        let load = clients as f64 / capacity.max(1) as f64;
        let _ = write!(
            body,
            "<h2>Clients</h2><p>{clients} in session of a capacity of {capacity} ({:.0}%) {}</p>",
            load * 100.0,
            bar(load)
        );
        let (members, index, homed) = self.overlay.read(|o| {
            let membership = o.membership();
            let mut rows = Vec::new();
            for member in std::iter::once(membership.me()).chain(membership.live()) {
                let state = membership.swim_state(&member.node).map_or("alive", |s| {
                    if s.starts_with("Suspect") {
                        "suspect"
                    } else {
                        "alive"
                    }
                });
                let me = member.node == self.node;
                let clients = if me {
                    u32::try_from(clients).unwrap_or(u32::MAX)
                } else {
                    membership.load_of(&member.node).unwrap_or(0)
                };
                rows.push(vec![
                    format!(
                        "<code>{}</code>{}",
                        member.node.short(),
                        if me { " (this one)" } else { "" }
                    ),
                    escape(&member.addr.to_string()),
                    role_name(member.role).to_owned(),
                    format!(
                        "{clients} / {} {}",
                        member.capacity,
                        bar(f64::from(clients) / f64::from(member.capacity.max(1)))
                    ),
                    format!("<span class=\"{state}\">{state}</span>"),
                ]);
            }
            (rows, o.index_records(), o.homed_records())
        });
        let mut members = members;
        for (node, (addr, role, since)) in &lock(&self.status).down {
            members.push(vec![
                format!("<code>{}</code>", node.short()),
                escape(&addr.to_string()),
                role_name(*role).to_owned(),
                "-".to_owned(),
                format!("<span class=\"down\">down</span> since {}", clock(*since)),
            ]);
        }
        let _ = write!(
            body,
            "<h2>Overlay members ({} live)</h2>{}",
            members
                .iter()
                .filter(|r| !r.iter().any(|c| c.contains("class=\"down\"")))
                .count(),
            table(&["node", "address", "role", "clients", "state"], &members)
        );
        let _ = write!(
            body,
            "<h2>Records</h2><p>{registrations} registrations homed here (leases), {homed} \
             published by this home, {index} held as an owner of the index.</p>"
        );
        let m = &self.metrics;
        let p = &self.promotion_metrics;
        let megas = if self.config.mode == Mode::MegaStandby {
            format!(
                " It stepped in from standby {} times and back {} times.",
                m.mega_activations_total.load(Ordering::Relaxed),
                m.mega_returns_total.load(Ordering::Relaxed),
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<h2>Promotions and megas</h2><p>{} clients nominated for promotion by this one.{megas}</p>",
            p.nominations_total.load(Ordering::Relaxed),
        );
        let events: Vec<Vec<String>> = lock(&self.status)
            .events
            .iter()
            .rev()
            .map(|(at, text)| vec![clock(*at), escape(text)])
            .collect();
        let _ = write!(
            body,
            "<h2>Recent events</h2>{}<p class=\"muted\">Generated {}; this page reloads every 5 s. \
             The numbers behind it: <a href=\"/metrics\">/metrics</a>.</p>",
            if events.is_empty() {
                "<p class=\"muted\">none yet</p>".to_owned()
            } else {
                table(&["time", "event"], &events)
            },
            clock(switchboard_net::now_unix())
        );
        page(
            &format!("Switchboard supernode {}", self.node.short()),
            &body,
        )
    }
}
