//! Switchboard's sans-IO state machines: the logic of every role, driven by the daemons in
//! production and by the simulator in tests.
//!
//! This crate owns decisions: when to retry, whom to admit, where a record lives, who is alive.
//! It must never do IO: no sockets, no files, no clock and no global random source. Every input
//! is a `handle_*(now, ...)` call (or a plain function of `now` and an RNG the caller passes),
//! every output a return value or a `poll_*()`. It depends on neither tokio nor quinn (CI
//! checks this with `cargo tree`), so the same code runs in `supernode`, `client` and `sim`.
//!
//! Built so far:
//! - [`admission`]: a supernode's gates (handshake rate, capacity, prioritized requests);
//! - [`backoff`]: capped full-jitter retry delays with a retry budget (DESIGN.md section 6),
//!   which every reconnecting client uses so that a failover spreads out instead of stampeding;
//! - [`directory`]: registrations as leases, lookups, watches and presence notices;
//! - [`membership`]: who is in the overlay (SWIM by foca, with Lifeguard's local health,
//!   anti-entropy and load gossip added around it);
//! - [`overlay`]: the one-hop index (publishing to owners, owner leases, parallel lookups,
//!   watches held by owners) over the membership;
//! - [`placement`]: which supernodes own a user's records (rendezvous hashing);
//! - [`rate`]: token buckets;
//! - [`records`]: records and tickets verified once each, remembered by their digest;
//! - [`relay`]: a supernode's relay sessions and their caps;
//! - [`session`]: a client's session logic (host-cache order, happy-eyeballs passes, `Busy`
//!   alternatives, failover), driven by both the `client` binary and the simulator;
//! - [`throttle`]: growing lockouts and attempt rates per key (the auth-server's logins);
//! - [`time`]: the engine's notion of time, a monotonic millisecond count the driver supplies.

pub mod admission;
pub mod backoff;
mod by_node;
mod digest;
pub mod directory;
pub mod membership;
pub mod overlay;
pub mod placement;
pub mod promotion;
mod queue;
pub mod rate;
pub mod records;
pub mod relay;
pub mod revocation;
pub mod session;
pub mod shedding;
pub mod standby;
pub mod throttle;
pub mod time;

pub use admission::{Admission, AdmissionConfig, Refused, RequestClass};
pub use backoff::{Backoff, BackoffConfig, BackoffError};
pub use directory::{Directory, DirectoryConfig, PresenceNotice, RegisterError};
pub use promotion::{Demotion, Nominator, OverlayLoad, PromotionConfig};
pub use rate::TokenBucket;
pub use records::VerifiedRecords;
pub use relay::{RelayConfig, RelayId, RelayRefused, Relays, FLOOD_RATIO, FLOOD_SECONDS};
pub use revocation::{Applied, RevocationList};
pub use session::{Failover, HostCache, HostEntry, Pass, PassEnd};
pub use shedding::{LoadShed, ShedConfig};
pub use throttle::{Throttle, ThrottleConfig, Throttled};
pub use time::Time;
