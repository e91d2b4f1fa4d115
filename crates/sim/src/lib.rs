//! A deterministic simulator of a Switchboard network (DESIGN.md section 7).
//!
//! It owns the virtual clock, the seeded random source, the simulated network (delay, loss,
//! partitions, slow nodes), crashes, restarts and graceful drains, and the invariants checked
//! while it runs. Every supernode in it runs the same `engine` code as the `supernode` daemon
//! (overlay with SWIM membership, directory, admission); every client runs the real client's
//! failover rules (host cache, `engine`'s capped full-jitter backoff, `Busy` alternatives).
//! Records and tickets are really signed and really verified.
//!
//! It must never read a clock, use an unseeded random source, or iterate a randomly-ordered
//! map where order reaches the outputs: a seed has to replay exactly (`SIM_SEED=N`).

// The simulator indexes its own tables with indices it created; nothing it indexes comes from
// outside (the network, a file or a user).
#![allow(clippy::indexing_slicing)]

mod check;
mod client;
pub mod config;
mod faults;
mod promotion;
pub mod report;
mod roles;
mod supernode;
mod world;

pub use config::{Fault, PromotionSim, RoleChangeLimit, ScaleTiming, SimConfig, MEGA_CAPACITY};
pub use report::{Figures, Sample};
pub use world::World;

/// Runs one seed of `config`; on a violation the error names the seed to replay.
pub fn run(config: SimConfig) -> Result<World, String> {
    let seed = config.seed;
    let mut world =
        World::new(config).map_err(|e| format!("SIM_SEED={seed}: setup failed: {e}"))?;
    world
        .run()
        .map_err(|violation| format!("SIM_SEED={seed}: {violation}"))?;
    world
        .finish()
        .map_err(|violation| format!("SIM_SEED={seed}: {violation}"))?;
    Ok(world)
}
