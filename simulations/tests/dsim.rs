//! The deterministic cluster simulation on a short fixed set of seeds (one per scenario and a
//! few random ones), and the replay check, both through the `listwire-sim` binary — the way a
//! failure is reported and replayed. The long soak runs on demand:
//! `cargo run --release -p listwire-simulations --bin listwire-sim -- --seeds 500`.

use std::process::Command;

/// Runs `listwire-sim` with `args`; returns whether it succeeded and what it printed.
fn sim(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_listwire-sim"))
        .args(args)
        .env_remove("LISTWIRE_SIM_LOG")
        .output()
        .expect("listwire-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), stdout)
}

/// A seed's result line, `seed N [scenario] ok: …, trace H`.
struct SeedLine {
    seed: u64,
    ok: bool,
    faults: u64,
    acked: u64,
    subscribers: u64,
    trace: String,
}

/// Reads the seed lines of a run's output.
fn seed_lines(stdout: &str) -> Vec<SeedLine> {
    stdout
        .lines()
        .filter(|line| line.starts_with("seed ") && line.contains("trace "))
        .map(|line| {
            let number_before = |word: &str| -> u64 {
                let head = line.split(word).next().expect("the field");
                let digits = head.trim_end().rsplit([' ', '(']).next().expect("a number");
                digits
                    .parse()
                    .unwrap_or_else(|_| panic!("{word} in {line}"))
            };
            SeedLine {
                seed: line
                    .split_whitespace()
                    .nth(1)
                    .expect("seed")
                    .parse()
                    .expect("seed"),
                ok: line.contains("] ok:"),
                faults: number_before(" faults"),
                acked: number_before(" acked"),
                subscribers: number_before(" subscribers"),
                trace: line.rsplit("trace ").next().expect("trace").to_owned(),
            }
        })
        .collect()
}

/// Goal: under every scenario's faults, the invariants hold (acked ops stored exactly once,
/// no fork, subscribers converge contiguously, vote limits and tallies, no stuck client,
/// bounded gauges), and every seed actually injected faults and exercised clients.
#[test]
fn fixed_seeds_keep_every_invariant() {
    let (ok, stdout) = sim(&["--first", "1", "--seeds", "10"]);
    assert!(
        ok,
        "a seed failed (each failure names its seed and invariant):\n{stdout}"
    );
    let lines = seed_lines(&stdout);
    assert_eq!(lines.len(), 10, "one line per seed:\n{stdout}");
    for line in &lines {
        assert!(line.ok, "seed {}:\n{stdout}", line.seed);
        assert!(line.faults > 0, "seed {}: no fault was injected", line.seed);
        assert!(line.acked > 0, "seed {}: no op was acknowledged", line.seed);
        assert!(line.subscribers > 0, "seed {}: no subscriber", line.seed);
    }
}

/// Goal: a seed replays identically: run alone twice it prints the same trace, line for line,
/// and the same trace hash a many-seed run printed for it; another seed's trace differs.
#[test]
fn a_seed_replays_its_whole_trace() {
    let (first_ok, first) = sim(&["--seed", "7", "--trace"]);
    let (again_ok, again) = sim(&["--seed", "7", "--trace"]);
    assert_eq!(first_ok, again_ok, "the same verdict");
    assert!(
        first.lines().count() > 100,
        "a trace of the whole run:\n{first}"
    );
    assert_eq!(first, again, "the same trace, line for line");
    let (_, batch) = sim(&["--first", "6", "--seeds", "3"]);
    let batch = seed_lines(&batch);
    let alone = seed_lines(&first);
    let in_batch = batch
        .iter()
        .find(|line| line.seed == 7)
        .expect("seed 7 ran");
    assert_eq!(
        in_batch.trace, alone[0].trace,
        "a batch's seed replays alone"
    );
    let other = batch
        .iter()
        .find(|line| line.seed == 8)
        .expect("seed 8 ran");
    assert_ne!(other.trace, alone[0].trace, "another seed, another run");
}
