//! What every node keeps of its account, shared by the roles: the profile on disk (node key,
//! ticket, pinned auth key, host cache) and the link to the auth-server (login, ticket
//! refresh, nomination of a promoted client).
//!
//! It sits below the role crates (`client`, `supernode`) so that a client can host the
//! supernode role in its own process (a promoted client) without one role crate depending on
//! another: the crate graph reads proto <- engine <- net <- account <- roles <- binaries. It
//! must never hold a role's logic (sessions, the directory, the overlay) and never panic on
//! what it reads from disk or from the auth-server.

pub mod login;
pub mod profile;
pub mod promotion;
