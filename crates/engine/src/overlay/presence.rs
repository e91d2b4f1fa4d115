//! Presence: local clients watch users, subscriptions are held at the users' owners, and an
//! owner's word about a user's presence is believed only from an owner.

use switchboard_proto::messages::{OverlayMessage, PresenceEvent};
use switchboard_proto::{NodeId, Username};

use super::{bounded, Overlay, OverlayOutput};

impl Overlay {
    /// A local client watches `user`: subscribes at its owners the first time.
    pub fn watch(&mut self, user: &Username) {
        let owners = self.ring.owners(user, self.config.replicas);
        let entry = self.watched.entry(user.clone()).or_default();
        entry.watchers += 1;
        if entry.watchers == 1 {
            entry.owners.clone_from(&owners);
            for owner in owners {
                self.subscribe_at(owner, user.clone());
            }
        }
    }

    /// A local client stopped watching `user`.
    pub fn unwatch(&mut self, user: &Username) {
        let Some(entry) = self.watched.get_mut(user) else {
            return;
        };
        entry.watchers = entry.watchers.saturating_sub(1);
        if entry.watchers > 0 {
            return;
        }
        let owners = std::mem::take(&mut entry.owners);
        self.watched.remove(user);
        for owner in owners {
            if owner == self.me {
                self.index.unsubscribe(&self.me, user);
            } else {
                self.send(
                    owner,
                    OverlayMessage::Unsubscribe {
                        users: bounded(vec![user.clone()]),
                    },
                );
            }
        }
    }

    /// `from` subscribes to presence changes of `users`; it hears their current state at once.
    pub fn handle_subscribe(&mut self, from: NodeId, users: Vec<Username>) {
        for user in users {
            if self
                .index
                .subscribe(from, user.clone(), self.config.max_subscriptions)
            {
                let event = self.index.presence(&user);
                self.deliver_presence(from, event);
            }
        }
    }

    /// `from` unsubscribes.
    pub fn handle_unsubscribe(&mut self, from: NodeId, users: Vec<Username>) {
        for user in users {
            self.index.unsubscribe(&from, &user);
        }
    }

    /// `from` reports a presence change of a user watched here. Only an owner of that user
    /// may: one this supernode subscribed at, or one its own placement names now; anyone
    /// else's word is dropped and counted.
    pub fn handle_presence(&mut self, from: NodeId, event: PresenceEvent) {
        let Some(watched) = self.watched.get(&event.user) else {
            return;
        };
        let owner = from == self.me
            || watched.owners.contains(&from)
            || self.owners_of(&event.user).contains(&from);
        if !owner {
            self.stats.refused_presence += 1;
            return;
        }
        let Some(watched) = self.watched.get_mut(&event.user) else {
            return;
        };
        if watched.online == Some(event.online) {
            return;
        }
        // Owners may briefly disagree (one has not heard of a publication yet): "online"
        // from any owner wins over "offline" from another until the user's leases end.
        if !event.online && self.index.is_online(&event.user) {
            return;
        }
        if let Some(watched) = self.watched.get_mut(&event.user) {
            watched.online = Some(event.online);
        }
        self.push(OverlayOutput::Presence(event));
    }

    pub(super) fn presence_changed(&mut self, user: &Username) {
        let event = self.index.presence(user);
        for subscriber in self.index.subscribers_of(user) {
            self.deliver_presence(subscriber, event.clone());
        }
    }

    fn deliver_presence(&mut self, to: NodeId, event: PresenceEvent) {
        if to == self.me {
            self.handle_presence(self.me, event);
        } else {
            self.send(to, OverlayMessage::Presence(event));
        }
    }

    pub(super) fn subscribe_at(&mut self, owner: NodeId, user: Username) {
        if owner == self.me {
            self.handle_subscribe(self.me, vec![user]);
        } else {
            self.send(
                owner,
                OverlayMessage::Subscribe {
                    users: bounded(vec![user]),
                },
            );
        }
    }
}
