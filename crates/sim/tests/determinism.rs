//! The same seed gives the same run: the trace of every event, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use switchboard_sim::{SimConfig, World};

fn trace_of(seed: u64) -> (Vec<String>, [u8; 32], u64) {
    let mut config = SimConfig::sweep(seed);
    config.keep_trace = true;
    config.end = switchboard_engine::Time(40_000);
    let mut world = World::new(config).expect("setup");
    world
        .run()
        .unwrap_or_else(|e| panic!("SIM_SEED={seed}: {e}"));
    (
        world.trace_lines().to_vec(),
        world.trace_digest(),
        world.events(),
    )
}

#[test]
fn the_same_seed_gives_the_same_trace_twice() {
    let seed = 7;
    println!("SIM_SEED={seed}");
    let (first, first_digest, first_events) = trace_of(seed);
    let (second, second_digest, second_events) = trace_of(seed);
    assert!(
        first_events > 1_000,
        "the run did something ({first_events} events)"
    );
    assert_eq!(first_events, second_events);
    if let Some(at) = first.iter().zip(&second).position(|(a, b)| a != b) {
        panic!(
            "traces differ at event {at}: {:?} vs {:?}",
            first[at], second[at]
        );
    }
    assert_eq!(first_digest, second_digest);
}

#[test]
fn a_different_seed_gives_a_different_trace() {
    let (_, one, _) = trace_of(7);
    let (_, other, _) = trace_of(8);
    assert_ne!(one, other);
}
