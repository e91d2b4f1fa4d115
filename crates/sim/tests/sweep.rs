//! The seed sweep: the fault scenario (loss, a slow node, a partition that heals, crashes, a
//! restart, a graceful drain) under many seeds, every invariant checked after every event.
//!
//! `SIM_SEEDS=N` sets how many seeds (CI runs a few; run hundreds locally); `SIM_SEED=N`
//! replays one. A failure prints `SIM_SEED=N`; `cargo run -p switchboard-sim -- run --seed N
//! --trace` shows what happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use switchboard_sim::{run, SimConfig};

#[test]
fn every_seed_of_the_fault_scenario_keeps_the_invariants() {
    let seeds = switchboard_sim::seeds_from_env().unwrap_or_else(|e| panic!("{e}"));
    for seed in seeds {
        match run(SimConfig::sweep(seed)) {
            Ok(world) => {
                let figures = world.figures();
                println!(
                    "SIM_SEED={seed}: ok, {} events, {} of {} lookups found",
                    world.events(),
                    figures.lookups_found,
                    figures.lookups
                );
            }
            Err(failure) => panic!("{failure}"),
        }
    }
}
