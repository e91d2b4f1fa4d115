//! The rate of new tickets per account: one account with a farm of node keys gets a burst of
//! tickets, then a few a minute, instead of one ticket per key it can generate.
//!
//! A token bucket per account (engine's [`TokenBucket`], per minute) in a bounded map: when
//! the map is full, accounts whose bucket has refilled are forgotten first, then any one (a new
//! account is never refused for lack of room: flushing a bucket takes as many accounts with
//! logins in flight as the map holds).

use std::collections::HashMap;
use std::time::Duration;

use switchboard_engine::{Time, TokenBucket};
use switchboard_proto::Username;

/// Accounts tracked at once: 100,000 buckets of ~80 bytes is 8 MB.
pub const MAX_ACCOUNTS_TRACKED: usize = 100_000;

/// Per-account ticket budgets; see the module doc.
#[derive(Debug)]
pub struct Issuance {
    per_minute: u32,
    burst: u32,
    buckets: HashMap<Username, TokenBucket>,
    max_accounts: usize,
}

impl Issuance {
    /// `per_minute` new tickets per account on average, `burst` at once.
    pub fn new(per_minute: u32, burst: u32, max_accounts: usize) -> Self {
        Self {
            per_minute,
            burst,
            buckets: HashMap::new(),
            max_accounts: max_accounts.max(1),
        }
    }

    /// Takes one new ticket for `user` at `now`, or says how long until one is available.
    pub fn take(&mut self, now: Time, user: &Username) -> Result<(), Duration> {
        if !self.buckets.contains_key(user) && self.buckets.len() >= self.max_accounts {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            if self.buckets.len() >= self.max_accounts {
                if let Some(any) = self.buckets.keys().next().cloned() {
                    self.buckets.remove(&any);
                }
            }
        }
        let (per_minute, burst) = (self.per_minute, self.burst);
        self.buckets
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::per_minute(now, per_minute, burst))
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Username {
        Username::new(name).unwrap()
    }

    #[test]
    fn an_account_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let mut issuance = Issuance::new(2, 16, 10);
        let farm = user("mallory");
        let granted = (0..100)
            .filter(|_| issuance.take(Time(0), &farm).is_ok())
            .count();
        assert_eq!(granted, 16);
        assert_eq!(
            issuance.take(Time(0), &farm),
            Err(Duration::from_secs(30)),
            "2 a minute: the next in 30 s"
        );
        assert!(issuance.take(Time(30_000), &farm).is_ok());
        assert!(issuance.take(Time(0), &user("alice")).is_ok());
    }

    #[test]
    fn a_full_map_makes_room_instead_of_refusing() {
        let mut issuance = Issuance::new(2, 1, 2);
        issuance.take(Time(0), &user("a")).unwrap();
        issuance.take(Time(0), &user("b")).unwrap();
        assert!(issuance.take(Time(0), &user("c")).is_ok());
        assert_eq!(issuance.buckets.len(), 2);
    }
}
