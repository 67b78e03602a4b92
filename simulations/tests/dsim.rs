//! The deterministic cluster simulation on a short fixed set of seeds (one per scenario and a
//! few random ones), and the replay check. The long soak runs on demand:
//! `cargo run --release -p listwire-simulations --bin listwire-sim -- --seeds 500`.

use listwire_simulations::dsim::{run_seed, Options, RunReport};

fn assert_held(report: &RunReport) {
    assert!(
        report.failures.is_empty(),
        "seed {} [{}] failed (replay: listwire-sim --seed {}):\n{}",
        report.seed,
        report.scenario.name(),
        report.seed,
        report.failures.join("\n")
    );
    assert!(
        report.checked.acked > 0,
        "seed {}: no op was acknowledged",
        report.seed
    );
    assert!(
        report.checked.subscribers > 0,
        "seed {}: no subscriber",
        report.seed
    );
}

/// Goal: under every scenario's faults, the invariants hold (acked ops stored exactly once,
/// no fork, subscribers converge contiguously, vote limits and tallies, no stuck client,
/// bounded gauges).
#[test]
fn fixed_seeds_keep_every_invariant() {
    let options = Options::default();
    for seed in 1..=10 {
        let report = run_seed(seed, &options);
        assert_held(&report);
        assert!(report.faults > 0, "seed {seed}: no fault was injected");
    }
}

/// Goal: a seed replays: the same seed draws the same fault plan (the simulation's own
/// decisions, hashed) and reaches the same verdict. What it does not prove: that every client
/// outcome repeats step for step, because chitchat picks gossip peers with an unseeded RNG
/// (see simulations/README.md, "Deterministic simulation").
#[test]
fn a_seed_replays_its_decisions_and_verdict() {
    let options = Options::default();
    let first = run_seed(7, &options);
    let again = run_seed(7, &options);
    assert_eq!(first.plan_hash, again.plan_hash, "the same plan");
    assert_eq!(first.scenario, again.scenario);
    assert_eq!(
        first.failures.is_empty(),
        again.failures.is_empty(),
        "the same verdict"
    );
    let other = run_seed(8, &options);
    assert_ne!(
        first.plan_hash, other.plan_hash,
        "another seed, another plan"
    );
}
