//! The supernode's `/metrics`: its counters and gauges, the overlay's, and those of the
//! promotion and shedding modules, as Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{lock, Shared};

impl Shared {
    /// Prometheus text.
    pub fn render_metrics(&self) -> String {
        use switchboard_net::metrics::metric;
        let m = &self.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (clients, capacity) = {
            let admission = lock(&self.admission);
            (admission.clients() as u64, admission.capacity() as u64)
        };
        let registrations = lock(&self.directory).registrations() as u64;
        let revocations_read = lock(&self.revoked).cursor();
        let mut out = String::new();
        metric(
            &mut out,
            "switchboard_supernode_revocations_read",
            "gauge",
            "Entries of the auth-server's revocation list read so far (its cursor): equal to the auth-server's count once the last revocation is known here.",
            revocations_read,
        );
        metric(
            &mut out,
            "switchboard_supernode_clients_connected",
            "gauge",
            "Clients in session.",
            clients,
        );
        metric(
            &mut out,
            "switchboard_supernode_capacity",
            "gauge",
            "Most clients in session.",
            capacity,
        );
        metric(
            &mut out,
            "switchboard_supernode_registrations",
            "gauge",
            "Live registrations (leases).",
            registrations,
        );
        metric(
            &mut out,
            "switchboard_supernode_registrations_total",
            "counter",
            "Registrations accepted.",
            get(&m.registrations_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_lookups_total",
            "counter",
            "Lookups answered.",
            get(&m.lookups_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_busy_total",
            "counter",
            "Busy answers.",
            get(&m.busy_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_handshakes_refused_total",
            "counter",
            "Handshakes refused: every permit taken, the source's share taken, or over the rate.",
            get(&m.handshakes_refused_total) + self.gate.refused(),
        );
        metric(
            &mut out,
            "switchboard_supernode_handshakes_retried_total",
            "counter",
            "Initials answered with a Retry to validate the source address (under load).",
            self.gate.retried(),
        );
        metric(
            &mut out,
            "switchboard_supernode_handshakes_failed_total",
            "counter",
            "Handshakes that failed, refused tickets included.",
            get(&m.handshakes_failed_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_unauthorized_total",
            "counter",
            "Clients refused or closed for a revoked ticket.",
            get(&m.unauthorized_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_version_rejected_total",
            "counter",
            "Clients refused for their software version.",
            get(&m.version_rejected_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_malformed_total",
            "counter",
            "Connections closed for a malformed frame.",
            get(&m.malformed_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_redirects_total",
            "counter",
            "Redirects sent.",
            get(&m.redirects_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_presence_dropped_total",
            "counter",
            "Presence events shed.",
            get(&m.presence_dropped_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_hello_timeouts_total",
            "counter",
            "Connections closed for not saying Hello in time.",
            get(&m.hello_timeouts_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_user_sessions_refused_total",
            "counter",
            "Sessions refused because their user held its share of sessions.",
            get(&m.user_sessions_refused_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_withdrawn_on_close_total",
            "counter",
            "Registrations withdrawn because the device's last session ended.",
            get(&m.withdrawn_on_close_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_mega_active",
            "gauge",
            "1 while this mega-supernode serves clients (a standby one that stepped in).",
            u64::from(self.admits_clients() && self.config.mode != crate::config::Mode::Normal),
        );
        metric(
            &mut out,
            "switchboard_supernode_mega_activations_total",
            "counter",
            "Times this standby mega stepped in.",
            get(&m.mega_activations_total),
        );
        metric(
            &mut out,
            "switchboard_supernode_mega_returns_total",
            "counter",
            "Times it stepped back to standby, handing its clients back.",
            get(&m.mega_returns_total),
        );
        self.render_overlay_metrics(&mut out);
        crate::promotion::render_metrics(self, &mut out);
        crate::shedding::render_metrics(self, &mut out);
        crate::relay::render_metrics(self, &mut out);
        out
    }

    fn render_overlay_metrics(&self, out: &mut String) {
        use crate::overlay_link::get;
        use switchboard_net::metrics::metric;
        let (live, health, stats, swim, index, homed, subscriptions) = self.overlay.read(|o| {
            (
                o.membership().live_count() as u64,
                u64::from(o.membership().local_health()),
                o.stats(),
                o.membership().stats(),
                o.index_records() as u64,
                o.homed_records() as u64,
                o.subscriptions() as u64,
            )
        });
        let l = &self.overlay.metrics;
        let rows: [(&str, &str, &str, u64); 22] = [
            (
                "switchboard_overlay_members_live",
                "gauge",
                "Live overlay members seen here, this one included.",
                live,
            ),
            (
                "switchboard_overlay_local_health",
                "gauge",
                "Lifeguard local health score (0 is healthy).",
                health,
            ),
            (
                "switchboard_overlay_index_records",
                "gauge",
                "Records held here as an owner.",
                index,
            ),
            (
                "switchboard_overlay_homed_records",
                "gauge",
                "Records of this supernode's clients it publishes.",
                homed,
            ),
            (
                "switchboard_overlay_subscriptions",
                "gauge",
                "Presence subscriptions held here as an owner.",
                subscriptions,
            ),
            (
                "switchboard_overlay_updates_backlog",
                "gauge",
                "Member updates waiting to be piggybacked on membership packets.",
                swim.updates_backlog,
            ),
            (
                "switchboard_overlay_load_backlog",
                "gauge",
                "Load reports waiting to be piggybacked (at most the load backlog limit, 256); near zero while loads hold still.",
                swim.loads_backlog,
            ),
            (
                "switchboard_overlay_loads_synced_total",
                "counter",
                "Load reports first learned from an anti-entropy sync rather than from gossip (changes below a step, and loads missed).",
                swim.loads_synced,
            ),
            (
                "switchboard_overlay_members_down_total",
                "counter",
                "Members declared down, as seen here.",
                swim.downs,
            ),
            (
                "switchboard_overlay_refutations_total",
                "counter",
                "Suspicions about this supernode it refuted.",
                swim.refutations,
            ),
            (
                "switchboard_overlay_member_statements_refused_total",
                "counter",
                "Member statements refused: forged, unsigned, or from a ticket that may not serve.",
                swim.statements_refused,
            ),
            (
                "switchboard_overlay_load_reports_refused_total",
                "counter",
                "Load reports refused: not signed by the member they are about.",
                swim.loads_refused,
            ),
            (
                "switchboard_overlay_republished_total",
                "counter",
                "Records re-published after a membership change.",
                stats.republished,
            ),
            (
                "switchboard_overlay_lookups_found_total",
                "counter",
                "Overlay lookups that found records.",
                stats.lookups_found,
            ),
            (
                "switchboard_overlay_lookups_empty_total",
                "counter",
                "Overlay lookups that found nothing.",
                stats.lookups_empty,
            ),
            (
                "switchboard_overlay_sent_total",
                "counter",
                "Overlay frames sent.",
                get(&l.sent_total),
            ),
            (
                "switchboard_overlay_received_total",
                "counter",
                "Overlay frames received.",
                get(&l.received_total),
            ),
            (
                "switchboard_overlay_send_dropped_total",
                "counter",
                "Overlay sends dropped.",
                get(&l.send_dropped_total),
            ),
            (
                "switchboard_overlay_malformed_total",
                "counter",
                "Overlay frames refused as malformed.",
                get(&l.malformed_total),
            ),
            (
                "switchboard_overlay_records_refused_total",
                "counter",
                "Records from peers that did not verify.",
                get(&l.records_refused_total),
            ),
            (
                "switchboard_overlay_publications_refused_total",
                "counter",
                "Verified records refused: older or replayed, index full, or another user's in a lookup answer.",
                stats.refused_records,
            ),
            (
                "switchboard_overlay_presence_refused_total",
                "counter",
                "Presence reports from a supernode that is no owner of the user.",
                stats.refused_presence,
            ),
        ];
        for (name, kind, help, value) in rows {
            metric(out, name, kind, help, value);
        }
    }
}
