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
mod cores;
mod faults;
mod local;
mod promotion;
pub mod report;
mod roles;
mod supernode;
mod world;

pub use config::{Fault, PromotionSim, RoleChangeLimit, ScaleTiming, SimConfig, MEGA_CAPACITY};
pub use report::{Figures, Sample, Targets};
pub use world::World;

/// The seeds a test sweeps: `SIM_SEED=N` replays one; otherwise `SIM_SEEDS=N` seeds, 1..=N (3
/// when unset). A typo is an error rather than quietly the default, and so is `SIM_SEEDS=0`,
/// which would run nothing.
pub fn seeds_from_env() -> Result<Vec<u64>, String> {
    if let Ok(one) = std::env::var("SIM_SEED") {
        let seed = one
            .trim()
            .parse()
            .map_err(|e| format!("SIM_SEED={one:?} is not a seed: {e}"))?;
        return Ok(vec![seed]);
    }
    let count: u64 = match std::env::var("SIM_SEEDS") {
        Ok(n) => n
            .trim()
            .parse()
            .map_err(|e| format!("SIM_SEEDS={n:?} is not a number of seeds: {e}"))?,
        Err(_) => 3,
    };
    if count == 0 {
        return Err("SIM_SEEDS=0 would run no seed; give at least 1".to_owned());
    }
    Ok((1..=count).collect())
}

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
