//! A promoted client's exchanges with the auth-server: trading its home's nomination for a
//! `promoted` ticket, and stepping down.
//!
//! The promoted role keeps its own profile directory (`promoted/` inside the client's), with
//! the client's node key, settings and the promoted ticket, so that the supernode role's auth
//! link refreshes the promoted ticket while the client's own session goes on with its user
//! ticket.

use std::path::PathBuf;

use switchboard_net::Identity;
use switchboard_proto::messages::{AuthRequest, AuthResponse};
use switchboard_proto::{Nomination, Role, Ticket};

use crate::login::{trust_of, AuthConnection, LoginError};
use crate::profile::Profile;

/// The profile directory of the promoted role, inside the client's.
pub fn promoted_dir(client: &Profile) -> PathBuf {
    client.dir().join("promoted")
}

/// Presents `nomination` on a connection with the client's node key and user ticket; on
/// success writes the promoted profile (node key, settings, the promoted ticket) and returns
/// it with the ticket.
pub async fn redeem(
    client: &Profile,
    nomination: Nomination,
) -> Result<(Profile, Ticket), LoginError> {
    let (trust, anchor, auth) = trust_of(client)?;
    let key = client.node_key()?;
    let node = key.node_id();
    let user_ticket = client.ticket()?;
    let link =
        AuthConnection::open(&auth, trust, &Identity::new(key.clone(), Some(user_ticket))).await?;
    let answer = link.ask(&AuthRequest::Nominated { nomination }).await;
    link.close().await;
    let ticket = match answer? {
        AuthResponse::Promoted { ticket } => ticket,
        AuthResponse::Error(e) => return Err(e.into()),
        other => {
            return Err(LoginError::Protocol(format!(
                "{other:?} instead of a promoted ticket"
            )))
        }
    };
    let body = ticket
        .verify_for_peer(&anchor, switchboard_net::now_unix(), &node)
        .map_err(|e| LoginError::Protocol(format!("the promoted ticket does not verify: {e}")))?;
    if body.role != Role::Promoted {
        return Err(LoginError::Protocol(format!(
            "a ticket of role {} instead of promoted",
            body.role
        )));
    }
    let promoted = Profile::new(&promoted_dir(client));
    promoted.create()?;
    promoted.save_node_key(&key)?;
    promoted.save_settings(&client.settings()?)?;
    promoted.save_ticket(&ticket)?;
    Ok((promoted, ticket))
}

/// Tells the auth-server that the promoted role of `promoted` stepped down (its ticket is
/// revoked there), then forgets the promoted ticket.
pub async fn step_down(promoted: &Profile) -> Result<(), LoginError> {
    let (trust, _, auth) = trust_of(promoted)?;
    let key = promoted.node_key()?;
    let ticket = promoted.ticket()?;
    let link =
        AuthConnection::open(&auth, trust, &Identity::new(key, Some(ticket.clone()))).await?;
    let answer = link.ask(&AuthRequest::StepDown { ticket }).await;
    link.close().await;
    match answer? {
        AuthResponse::SteppedDown => {}
        AuthResponse::Error(e) => return Err(e.into()),
        other => {
            return Err(LoginError::Protocol(format!(
                "{other:?} instead of SteppedDown"
            )))
        }
    }
    Ok(promoted.forget_ticket()?)
}
