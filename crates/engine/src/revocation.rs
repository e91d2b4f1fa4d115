//! The revocation list as a supernode holds it: fetched page by page from the auth-server
//! (after a cursor, so each poll reads only what was added), and asked of every ticket a
//! client or an overlay peer presents.
//!
//! A ticket is revoked when its account was revoked at or after the ticket was issued, when
//! its node key is revoked, or when its serial is (a refreshed ticket keeps its predecessor's
//! serial, so it inherits that revocation).

use std::collections::{HashMap, HashSet};

use switchboard_proto::messages::{Revocation, RevocationPage};
use switchboard_proto::{NodeId, TicketBody, UnixTime, Username};

/// Most entries a supernode holds. Only an operator adds revocations (disabling accounts,
/// revoking devices); a million is far beyond any real list and about 100 MB at most. Past it,
/// new entries are not taken and [`Applied::Overflow`] tells the caller to say so loudly.
pub const MAX_REVOCATIONS_HELD: usize = 1_000_000;

/// The revocation list; see the module doc.
#[derive(Debug, Default, Clone)]
pub struct RevocationList {
    accounts: HashMap<Username, UnixTime>,
    nodes: HashSet<NodeId>,
    serials: HashSet<u64>,
    cursor: u64,
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Entries were taken; fetch the next page if the list goes on.
    Taken {
        /// Entries new to this list.
        new: usize,
    },
    /// The auth-server's list restarted below our cursor (a new database): the list was
    /// cleared, fetch it again from the start.
    Reset,
    /// The list is full ([`MAX_REVOCATIONS_HELD`]); entries past it were dropped.
    Overflow,
}

impl RevocationList {
    /// An empty list, to be filled from cursor 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the next fetch starts.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.accounts.len() + self.nodes.len() + self.serials.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a page fetched at [`Self::cursor`].
    pub fn apply(&mut self, page: &RevocationPage) -> Applied {
        if page.next_cursor < self.cursor {
            *self = Self::default();
            return Applied::Reset;
        }
        let mut new = 0;
        for entry in page.entries.iter() {
            if self.len() >= MAX_REVOCATIONS_HELD {
                return Applied::Overflow;
            }
            let added = match entry {
                Revocation::Account { user, before } => match self.accounts.get_mut(user) {
                    None => {
                        self.accounts.insert(user.clone(), *before);
                        true
                    }
                    Some(at) if *before > *at => {
                        *at = *before;
                        true
                    }
                    Some(_) => false,
                },
                Revocation::Node(node) => self.nodes.insert(*node),
                Revocation::Serial(serial) => self.serials.insert(*serial),
            };
            new += usize::from(added);
        }
        self.cursor = page.next_cursor;
        Applied::Taken { new }
    }

    /// Whether `ticket` is revoked.
    pub fn is_revoked(&self, ticket: &TicketBody) -> bool {
        self.nodes.contains(&ticket.node)
            || self.serials.contains(&ticket.serial)
            || self
                .accounts
                .get(&ticket.user)
                .is_some_and(|before| ticket.issued_at <= *before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{BoundedVec, Role};

    fn ticket(user: &str, node: u8, issued: u64, serial: u64) -> TicketBody {
        TicketBody {
            user: Username::new(user).unwrap(),
            node: NodeId::from_bytes([node; 32]),
            role: Role::User,
            issued_at: UnixTime(issued),
            expires_at: UnixTime(issued + 3_600),
            serial,
        }
    }

    fn page(entries: Vec<Revocation>, next_cursor: u64) -> RevocationPage {
        RevocationPage {
            entries: BoundedVec::truncating(entries),
            next_cursor,
            complete: true,
        }
    }

    #[test]
    fn an_account_revocation_covers_tickets_issued_until_then_and_not_later_ones() {
        let mut list = RevocationList::new();
        list.apply(&page(
            vec![Revocation::Account {
                user: Username::new("sn3").unwrap(),
                before: UnixTime(1_000),
            }],
            1,
        ));
        assert!(list.is_revoked(&ticket("sn3", 1, 999, 5)));
        assert!(
            list.is_revoked(&ticket("sn3", 2, 1_000, 6)),
            "another device too"
        );
        assert!(
            !list.is_revoked(&ticket("sn3", 1, 1_001, 7)),
            "issued after"
        );
        assert!(!list.is_revoked(&ticket("alice", 1, 999, 8)));
    }

    #[test]
    fn a_node_revocation_covers_every_ticket_of_that_key_and_a_serial_its_refreshes() {
        let mut list = RevocationList::new();
        list.apply(&page(
            vec![
                Revocation::Node(NodeId::from_bytes([9; 32])),
                Revocation::Serial(77),
            ],
            2,
        ));
        assert!(list.is_revoked(&ticket("alice", 9, 5_000, 1)));
        assert!(!list.is_revoked(&ticket("alice", 8, 5_000, 1)));
        // A refresh keeps the serial, whenever it was issued.
        assert!(list.is_revoked(&ticket("bob", 3, 9_999, 77)));
    }

    #[test]
    fn pages_advance_the_cursor_and_a_list_that_restarted_lower_is_fetched_again() {
        let mut list = RevocationList::new();
        assert_eq!(
            list.apply(&page(vec![Revocation::Serial(1)], 10)),
            Applied::Taken { new: 1 }
        );
        assert_eq!(list.cursor(), 10);
        assert_eq!(list.apply(&page(vec![], 10)), Applied::Taken { new: 0 });
        assert_eq!(list.apply(&page(vec![], 3)), Applied::Reset);
        assert_eq!(list.cursor(), 0);
        assert!(list.is_empty());
    }

    #[test]
    fn a_later_account_revocation_moves_the_time_forward_never_back() {
        let mut list = RevocationList::new();
        let entry = |before| Revocation::Account {
            user: Username::new("eve").unwrap(),
            before: UnixTime(before),
        };
        list.apply(&page(vec![entry(100), entry(300), entry(200)], 3));
        assert!(list.is_revoked(&ticket("eve", 1, 250, 1)));
        assert!(!list.is_revoked(&ticket("eve", 1, 301, 1)));
    }
}
