//! Deliberately weakened behaviours ("mutants"), to show that the simulation's and the chaos
//! tests' checkers can fail: each mutant breaks one promise, and a checker must catch it (see
//! `simulations/README.md`, "Mutation checks").
//!
//! They exist only in builds with the `mutants` cargo feature (the listwire crates pass it
//! down; release builds and the test suite never enable it). Without the feature
//! [`active`] is a constant `false` that the compiler removes. With it, the mutant is chosen
//! once per process: by [`select`] (in-process simulations) or else by the environment
//! variable `LISTWIRE_MUTANT` (real processes), named as in [`Mutant::name`].

/// One weakened behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutant {
    /// The memory and PostgreSQL stores write a batch whatever the list's head (no fencing).
    SkipConditionalAppend,
    /// The list actor acknowledges an op as soon as it is applied in memory.
    AckBeforeDurable,
    /// The list actor applies a retried op again instead of answering its first outcome.
    NoOpIdCheck,
    /// A node keeps serving lists the placement moved away (no `moved`, no handoff).
    StaleOwnerServes,
    /// A gateway node resubscribes at a new owner from its head, not from what it forwarded.
    ResubscribeWithoutSince,
    /// The domain lets a user vote past the poll's limit (and skips its debug self-check, as a
    /// release build does).
    IgnoreVoteLimit,
}

impl Mutant {
    /// Every mutant.
    pub const ALL: [Mutant; 6] = [
        Mutant::SkipConditionalAppend,
        Mutant::AckBeforeDurable,
        Mutant::NoOpIdCheck,
        Mutant::StaleOwnerServes,
        Mutant::ResubscribeWithoutSince,
        Mutant::IgnoreVoteLimit,
    ];

    /// Its name (for `LISTWIRE_MUTANT` and command lines).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::SkipConditionalAppend => "skip-conditional-append",
            Mutant::AckBeforeDurable => "ack-before-durable",
            Mutant::NoOpIdCheck => "no-op-id-check",
            Mutant::StaleOwnerServes => "stale-owner-serves",
            Mutant::ResubscribeWithoutSince => "resubscribe-without-since",
            Mutant::IgnoreVoteLimit => "ignore-vote-limit",
        }
    }

    /// The mutant named `name`.
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|mutant| mutant.name() == name)
    }
}

#[cfg(feature = "mutants")]
static SELECTED: std::sync::OnceLock<Option<Mutant>> = std::sync::OnceLock::new();

/// Whether `mutant` is active in this process. Always `false` without the `mutants` feature.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn active(_mutant: Mutant) -> bool {
    false
}

/// Whether `mutant` is active in this process.
#[cfg(feature = "mutants")]
pub fn active(mutant: Mutant) -> bool {
    let selected = SELECTED.get_or_init(|| {
        let name = std::env::var("LISTWIRE_MUTANT").ok()?;
        let mutant = Mutant::from_name(&name);
        if mutant.is_none() {
            tracing::error!(%name, "LISTWIRE_MUTANT names no mutant; running unmutated");
        }
        mutant
    });
    *selected == Some(mutant)
}

/// Selects the mutant of this process (before anything asked [`active`]); `false` if one was
/// already chosen or this build has no mutants.
pub fn select(mutant: Option<Mutant>) -> bool {
    #[cfg(feature = "mutants")]
    {
        SELECTED.set(mutant).is_ok()
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = mutant;
        false
    }
}

/// Whether this build can run mutants at all.
pub const fn compiled_in() -> bool {
    cfg!(feature = "mutants")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: every mutant's name maps back to it, so a command line reaches the right one.
    #[test]
    fn names_round_trip() {
        for mutant in Mutant::ALL {
            assert_eq!(Mutant::from_name(mutant.name()), Some(mutant));
        }
        assert_eq!(Mutant::from_name("no-such-mutant"), None);
    }
}
