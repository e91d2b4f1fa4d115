//! Every hard limit of the wire contract, as a named constant with the reason for its value.
//!
//! These are protocol limits: a peer that exceeds one is sending `Malformed` input, whatever its
//! intent. Operator-tunable limits (capacity, rates) live in the daemons' configs and are always
//! at or below these.

/// Largest frame payload (after the length header) any node accepts.
///
/// The biggest legitimate message is a lookup answer carrying [`MAX_RECORDS_PER_USER`] records,
/// each with a ticket and [`MAX_ENDPOINTS`] addresses: about 8 x 400 bytes. 64 KiB leaves an
/// order of magnitude of headroom while keeping a hostile peer's claim of "a 4 GiB frame follows"
/// to a 64 KiB allocation, checked before any allocation happens.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Size of the big-endian `u32` length header in front of every frame.
pub const FRAME_HEADER_LEN: usize = 4;

/// Most endpoints (address and port pairs) one device may publish in its record.
///
/// A device has at most a few interfaces (IPv4, IPv6, a LAN and a public address); more than 8
/// is either a bug or an attempt to make lookups expensive.
pub const MAX_ENDPOINTS: usize = 8;

/// Most records (online devices) a lookup returns for one user.
///
/// Skype allowed a handful of simultaneous devices per account; 8 covers phone, laptops and a
/// desktop while bounding a lookup answer to a few KiB.
pub const MAX_RECORDS_PER_USER: usize = 8;

/// Most usernames one `Watch`/`Unwatch` message may carry.
///
/// Watch lists are sent in batches so that one message stays small; a client with a longer
/// contact list sends several batches, each admitted separately.
pub const MAX_WATCH_BATCH: usize = 64;

/// Most usernames one client may watch in total.
///
/// Every watch costs state on the owners and a fan-out on every presence change; 256 contacts
/// is a generous contact list and caps presence fan-out per client.
pub const MAX_WATCHES_PER_CLIENT: usize = 256;

/// Most alternative supernodes a `Busy` or `Redirect` answer names.
///
/// Enough to spread a stampede over several targets, few enough to keep the answer small: the
/// client also has its host cache to choose from.
pub const MAX_ALTERNATIVES: usize = 8;

/// Most entries of the bootstrap list returned at login.
///
/// Matches the size of a client's first host-cache fill; the host cache itself holds up to 200
/// entries (DESIGN.md section 6) learned over time.
pub const MAX_BOOTSTRAP: usize = 32;

/// Most records one overlay `Publish` message carries.
///
/// A supernode re-publishes after a membership change in batches; 32 records (about 13 KiB)
/// keep a batch well under [`MAX_FRAME_LEN`].
pub const MAX_PUBLISH_BATCH: usize = 32;

/// Most (user, node) pairs one overlay `Withdraw` message carries, for the same reason as
/// [`MAX_PUBLISH_BATCH`]; a withdrawal entry is far smaller than a record.
pub const MAX_WITHDRAW_BATCH: usize = 256;

/// Largest opaque membership (SWIM) payload carried in one overlay message.
///
/// SWIM packets are sized to fit one UDP datagram; 1,400 bytes is below the path MTU of
/// every ordinary network, and 4 KiB leaves room for piggybacked updates.
pub const MAX_MEMBERSHIP_PAYLOAD: usize = 4 * 1024;

/// Largest membership sync (anti-entropy) payload: a sample of the sender's members (a signed
/// statement with its ticket, ~310 bytes) with their latest load reports (~100 bytes): the
/// membership's 150 at their largest take 55,246 bytes; 56 KiB keeps the frame under
/// [`MAX_FRAME_LEN`].
pub const MAX_MEMBERSHIP_SYNC: usize = 56 * 1024;

/// Most entries in one page of the revocation list.
///
/// Revocations are fetched incrementally (after a cursor); a page of 1,024 entries of at most
/// ~45 bytes (a 32-byte username and a time) keeps the frame under [`MAX_FRAME_LEN`].
pub const MAX_REVOCATIONS_PAGE: usize = 1024;

/// Longest username in bytes. Skype's limit was 32 characters; usernames are ASCII here.
pub const MAX_USERNAME_LEN: usize = 32;

/// Longest password in bytes accepted on the wire.
///
/// Long enough for any passphrase; short enough that a login request cannot make the
/// auth-server hash megabytes (argon2 cost grows with input length only slightly, but the frame
/// and the memory do).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Longest free-text detail in an error answer. Errors are for humans and logs; 200 bytes is a
/// sentence.
pub const MAX_ERROR_DETAIL_LEN: usize = 200;

/// Longest direct message text (`client send NAME TEXT`). The directory is not a chat server;
/// a short text proves the direct path works.
pub const MAX_TEXT_LEN: usize = 4 * 1024;

/// Longest lifetime of a ticket in seconds (24 hours).
///
/// Tickets are verified offline, so a stolen one is good until it expires; a day bounds that
/// window while letting a client ride out a long auth-server outage (Skype's 2010 outage lasted
/// about a day).
pub const MAX_TICKET_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Longest lease (record TTL) in seconds a client may ask for (10 minutes).
///
/// A dead device's record lingers at most this long; refreshes are cheap, so there is no reason
/// for longer leases.
pub const MAX_RECORD_TTL_SECS: u32 = 10 * 60;

/// Clock difference between two honest nodes that verification tolerates, in seconds.
///
/// Tickets and records carry wall-clock times from different machines; NTP keeps ordinary hosts
/// within a second, but laptops waking from sleep can be minutes off before they resync.
pub const CLOCK_SKEW_SECS: u64 = 5 * 60;
