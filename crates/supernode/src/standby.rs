//! A mega-supernode on warm standby steps in by itself and back (DESIGN.md section 6): every
//! tick it gives `engine`'s [`StandbyPolicy`] the serving capacity and load the membership
//! gossips; on `Activate` it starts admitting clients and takes the `Mega` role in the overlay;
//! on `Return` it stops admitting, takes the `Standby` role again and hands its clients back
//! with `Redirect { StandingDown }` in jittered batches, as a drain does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchboard_engine::membership::MemberRole;
use switchboard_engine::standby::StandbyDecision;
use switchboard_engine::Time;
use switchboard_proto::messages::{RedirectReason, SupernodeMessage};

use crate::server::{bump, lock, redirect_plan, SessionHandle, Shared};

/// One decision round; called by the timer of a supernode started with `--mega --standby`.
pub fn tick(shared: &Arc<Shared>, now: Time) {
    let (capacity, clients) = shared.overlay.read(|o| o.membership().serving());
    let decision = lock(&shared.standby).observe(now, capacity, clients);
    match decision {
        Some(StandbyDecision::Activate(why)) => {
            tracing::info!(
                ?why,
                capacity,
                clients,
                "standby mega activating: admitting clients"
            );
            shared.mega_active.store(true, Ordering::Release);
            bump(&shared.metrics.mega_activations_total);
            lock(&shared.status).event(format!(
                "stepped in from standby ({why:?}; the overlay serves {clients} of {capacity})"
            ));
            if let Err(e) = shared
                .overlay
                .with(|o| o.change_role(now, MemberRole::Mega))
            {
                tracing::error!("member statement for the mega role not signed: {e}");
            }
        }
        Some(StandbyDecision::Return) => {
            tracing::info!(
                capacity,
                clients,
                "overlay healthy again: standby mega handing its clients back"
            );
            shared.mega_active.store(false, Ordering::Release);
            bump(&shared.metrics.mega_returns_total);
            lock(&shared.status).event(format!(
                "back to standby: the overlay is healthy ({clients} clients, capacity {capacity})"
            ));
            if let Err(e) = shared
                .overlay
                .with(|o| o.change_role(now, MemberRole::Standby))
            {
                tracing::error!("member statement for the standby role not signed: {e}");
            }
            tokio::spawn(hand_back(Arc::clone(shared)));
        }
        None => {}
    }
}

/// Redirects every client to the other supernodes, in jittered batches.
async fn hand_back(shared: Arc<Shared>) {
    let sessions: Vec<SessionHandle> = lock(&shared.sessions).values().flatten().cloned().collect();
    let targets = shared.alternatives();
    let plan = redirect_plan(sessions.len(), &mut rand::thread_rng());
    for (batch, pause) in plan {
        for session in sessions.get(batch).unwrap_or_default() {
            crate::shedding::mark_moving(&shared, session.ticket.node);
            let redirect = SupernodeMessage::Redirect {
                reason: RedirectReason::StandingDown,
                targets: targets.clone(),
            };
            if session.push.try_send(redirect).is_ok() {
                bump(&shared.metrics.redirects_total);
            }
        }
        tokio::time::sleep(pause).await;
    }
}
