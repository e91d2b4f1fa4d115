//! The auth-server's status page, `GET /status` on its metrics port: its accounts, its logins
//! and tickets, and the supernodes that announced themselves (the bootstrap list's source).
//! Server-rendered HTML (`switchboard_net::status`), refreshed by the browser every 5 s.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use switchboard_net::status::{bar, clock, escape, page, table};
use switchboard_proto::messages::ServiceMode;

use crate::service::{lock, Service};

impl Service {
    /// The status page's HTML.
    pub fn render_status(&self) -> String {
        let now = switchboard_net::now_unix();
        let accounts = lock(&self.store)
            .count()
            .map_or_else(|e| format!("unknown ({e})"), |n| n.to_string());
        let m = &self.metrics;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut body = String::new();
        let _ = write!(
            body,
            "<h2>Accounts and logins</h2><p>{} accounts. Logins: {} with a ticket, {} refused, \
             {} throttled, {} told Busy. Tickets issued (logins and refreshes): {}; \
             promotions granted: {}.</p>",
            escape(&accounts),
            get(&m.logins_ok),
            get(&m.logins_failed),
            get(&m.logins_throttled),
            get(&m.logins_busy),
            get(&m.tickets_issued),
            get(&m.promotions),
        );
        let entries = lock(&self.registry).entries(now);
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|(node, user, addr, mode, load, expires)| {
                let mode = match mode {
                    ServiceMode::Normal => "supernode",
                    ServiceMode::Mega => "mega",
                    ServiceMode::MegaStandby => "mega on standby",
                };
                vec![
                    format!("<code>{}</code>", node.short()),
                    escape(user),
                    escape(&addr.to_string()),
                    mode.to_owned(),
                    format!(
                        "{:.0}% {}",
                        f64::from(*load) / 10.0,
                        bar(f64::from(*load) / 1000.0)
                    ),
                    clock(*expires),
                ]
            })
            .collect();
        let _ = write!(
            body,
            "<h2>Announced supernodes ({})</h2>{}",
            rows.len(),
            if rows.is_empty() {
                "<p class=\"muted\">none: clients logging in now get an empty bootstrap list</p>"
                    .to_owned()
            } else {
                table(
                    &[
                        "node",
                        "account",
                        "address",
                        "mode",
                        "load",
                        "expires unless renewed",
                    ],
                    &rows,
                )
            }
        );
        let _ = write!(
            body,
            "<p class=\"muted\">Generated {}; this page reloads every 5 s. The numbers behind \
             it: <a href=\"/metrics\">/metrics</a>.</p>",
            clock(now)
        );
        page("Switchboard auth-server", &body)
    }
}
