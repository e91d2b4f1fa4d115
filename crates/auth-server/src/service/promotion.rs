//! Promotion on nomination (DESIGN.md sections 3 and 6): a client's home supernode signs a
//! nomination, the client presents it here on a connection with its own node key and user
//! ticket, and gets a `promoted` ticket for that key. Checked here: the nomination's signature
//! and the nominator's ticket (valid, not revoked, allowed to nominate), that the caller is the
//! nominee with a valid user ticket of the nominated account, that the account is an enabled
//! user account, and two limits (nominations per nominator per hour, active promotions in
//! all). Every promotion is recorded; a promoted ticket is refreshed only while its promotion
//! is active, and a step-down revokes it.

use std::sync::Arc;

use switchboard_net::{now_unix, PeerAuthError};
use switchboard_proto::messages::AuthResponse;
use switchboard_proto::wire_error::{LimitKind, UnauthorizedReason, WireError};
use switchboard_proto::{
    Nomination, NominationBody, NominationError, Role, Ticket, TicketBody, UnixTime,
};

use super::{bump, lock, Caller, Service};
use crate::store::{Account, Promotion, StoreError};

/// The window of the per-nominator limit, in seconds.
const NOMINATION_WINDOW_SECS: u64 = 60 * 60;

fn unauthorized(reason: UnauthorizedReason) -> WireError {
    WireError::Unauthorized { reason }
}

fn internal(what: &str, e: impl std::fmt::Display) -> WireError {
    tracing::error!("{what}: {e}");
    WireError::Internal
}

impl From<StoreError> for WireError {
    fn from(e: StoreError) -> Self {
        internal("promotion store", e)
    }
}

fn refusal(e: &NominationError) -> WireError {
    unauthorized(match e {
        NominationError::Ticket(e) => PeerAuthError::from(e.clone()).unauthorized_reason(),
        NominationError::WrongTicket { .. } => UnauthorizedReason::KeyMismatch,
        NominationError::RoleMayNotNominate(_) => UnauthorizedReason::RoleNotAllowed,
        NominationError::BadSignature(_) => UnauthorizedReason::TicketForged,
        NominationError::Stale { .. } => UnauthorizedReason::TicketExpired,
    })
}

impl Service {
    /// Answers `Nominated`: a promoted ticket, or why not.
    pub(super) async fn nominated(
        self: &Arc<Self>,
        caller: &Caller,
        nomination: Nomination,
    ) -> AuthResponse {
        match self.check_nomination(caller, &nomination).await {
            Ok(ticket) => {
                bump(&self.metrics.promotions);
                let body = nomination.body_unverified();
                tracing::info!(
                    user = %body.user,
                    node = %caller.node.short(),
                    nominator = %body.nominator.short(),
                    capacity = body.capacity,
                    "client promoted"
                );
                AuthResponse::Promoted { ticket }
            }
            Err(e) => {
                bump(&self.metrics.nominations_refused);
                tracing::warn!(node = %caller.node.short(), "nomination refused: {e}");
                AuthResponse::Error(e)
            }
        }
    }

    async fn check_nomination(
        self: &Arc<Self>,
        caller: &Caller,
        nomination: &Nomination,
    ) -> Result<Ticket, WireError> {
        let now = now_unix();
        let body = nomination
            .verify(&self.anchor, now)
            .map_err(|e| refusal(&e))?
            .clone();
        if body.nominee != caller.node {
            return Err(unauthorized(UnauthorizedReason::KeyMismatch));
        }
        // The caller is the nominee's device of the nominated account, with a live user ticket.
        let own = self.require(caller, &[Role::User])?;
        if own.user != body.user {
            return Err(unauthorized(UnauthorizedReason::KeyMismatch));
        }
        if body.capacity == 0 {
            return Err(WireError::unsupported(
                "a nomination must declare a capacity",
            ));
        }
        let nominator = nomination
            .nominator_ticket_unverified()
            .body_unverified()
            .clone();
        let service = Arc::clone(self);
        tokio::task::spawn_blocking(move || service.promote(&body, &nominator, now))
            .await
            .map_err(|e| internal("promotion task", e))?
    }

    /// The store checks and writes of a promotion; runs on a blocking thread.
    fn promote(
        &self,
        body: &NominationBody,
        nominator: &TicketBody,
        now: UnixTime,
    ) -> Result<Ticket, WireError> {
        let store = lock(&self.store);
        if store.is_revoked(nominator)? || store.is_node_revoked(&body.nominee)? {
            bump(&self.metrics.revoked_callers);
            return Err(unauthorized(UnauthorizedReason::Revoked));
        }
        let account = match store.get(&body.user)? {
            Some(account) if account.disabled => return Err(WireError::AccountDisabled),
            Some(account) if account.role == Role::User => account,
            // An operator account serves with its own role; it is never promoted.
            Some(_) => {
                return Err(WireError::unsupported(
                    "only user accounts are promoted; operator accounts serve as they are",
                ))
            }
            None => return Err(unauthorized(UnauthorizedReason::Revoked)),
        };
        let since = UnixTime(now.0.saturating_sub(NOMINATION_WINDOW_SECS));
        let per_hour = self.config.nominations_per_hour;
        if store.nominations_since(&body.nominator, since)? >= u64::from(per_hour) {
            return Err(WireError::LimitExceeded {
                kind: LimitKind::Promotions,
                max: per_hour,
            });
        }
        let max = self.config.max_promoted;
        if store.active_promotions(now)? >= u64::from(max) {
            return Err(WireError::LimitExceeded {
                kind: LimitKind::Promotions,
                max,
            });
        }
        let ticket = self.sign_ticket(
            &account,
            Role::Promoted,
            body.nominee,
            None,
            self.config.promoted_ticket_lifetime,
        )?;
        let signed = ticket.body_unverified();
        store.promote(&Promotion {
            node: body.nominee,
            user: body.user.clone(),
            nominator: body.nominator,
            addr: body.addr,
            capacity: body.capacity,
            promoted_at: now,
            expires_at: signed.expires_at,
            serial: signed.serial,
        })?;
        Ok(ticket)
    }

    /// Refreshes a promoted ticket while its promotion is active (not stepped down, not
    /// lapsed); the refresh keeps the serial and moves the promotion's expiry.
    pub(super) async fn refresh_promoted(
        self: &Arc<Self>,
        caller: &Caller,
        account: &Account,
        body: &TicketBody,
    ) -> AuthResponse {
        let service = Arc::clone(self);
        let (account, node, serial) = (account.clone(), caller.node, body.serial);
        let refreshed = tokio::task::spawn_blocking(move || {
            let now = now_unix();
            let store = lock(&service.store);
            if !store.promotion_active(&node, serial, now)? {
                return Err(unauthorized(UnauthorizedReason::Revoked));
            }
            let ticket = service.sign_ticket(
                &account,
                Role::Promoted,
                node,
                Some(serial),
                service.config.promoted_ticket_lifetime,
            )?;
            store.extend_promotion(&node, ticket.body_unverified().expires_at)?;
            Ok(ticket)
        })
        .await
        .map_err(|e| internal("promoted refresh task", e))
        .and_then(|result| result);
        match refreshed {
            Ok(ticket) => AuthResponse::TicketRefreshed { ticket },
            Err(e) => AuthResponse::Error(e),
        }
    }

    /// Answers `StepDown`: the promotion ends and its ticket is revoked.
    pub(super) async fn step_down(
        self: &Arc<Self>,
        caller: &Caller,
        ticket: &Ticket,
    ) -> AuthResponse {
        let now = now_unix();
        let body = match ticket.verify_for_peer(&self.anchor, now, &caller.node) {
            Ok(body) if body.role == Role::Promoted => body.clone(),
            Ok(_) => return AuthResponse::Error(unauthorized(UnauthorizedReason::RoleNotAllowed)),
            Err(e) => {
                return AuthResponse::Error(unauthorized(
                    PeerAuthError::from(e).unauthorized_reason(),
                ))
            }
        };
        let service = Arc::clone(self);
        let done = tokio::task::spawn_blocking(move || {
            lock(&service.store).step_down(&body.node, body.serial, now)
        })
        .await;
        match done {
            Ok(Ok(())) => {
                bump(&self.metrics.step_downs);
                tracing::info!(node = %caller.node.short(), "promoted node stepped down");
                AuthResponse::SteppedDown
            }
            Ok(Err(e)) => AuthResponse::Error(internal("step-down", e)),
            Err(e) => AuthResponse::Error(internal("step-down task", e)),
        }
    }
}
