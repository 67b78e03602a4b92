//! The process's entropy, made a function of the seed: this binary defines the C symbol
//! `getrandom` and exports it (simulations/build.rs), so every source of randomness that asks
//! the C library for it resolves to this one instead — std's `HashMap` keys, the `getrandom`
//! crate behind `rand::rng()` (chitchat's gossip peer choice), tokio's runtime seeds (derived
//! from std's hash keys), argon2 salts. Together with turmoil's seeded network and clock, the
//! node code then runs the same way on every replay of a seed.
//!
//! Only the `listwire-sim` binary links this; nothing that serves real traffic does. Each seed
//! runs in a fresh process (see `main.rs`), so what earlier seeds drew cannot shift a later one.

use std::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x6c69_7374_7769_7265);

/// Makes every later draw a function of `seed`.
pub fn seed(seed: u64) {
    STATE.store(seed ^ 0x6c69_7374_7769_7265, Ordering::SeqCst);
}

/// Whether the C library's callers reach this module: a fresh thread's first `HashMap` asks
/// for its keys, and the draw must land here (a build whose linker did not export the symbol
/// would fall back to the kernel silently and lose replay).
pub fn in_use() -> bool {
    let before = CALLS.load(Ordering::SeqCst);
    let _ = std::thread::spawn(std::collections::hash_map::RandomState::new).join();
    CALLS.load(Ordering::SeqCst) > before
}

static CALLS: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    // splitmix64 on a shared counter: lock-free, so it cannot deadlock inside an allocator or a
    // std lock that asked for randomness.
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::SeqCst)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `getrandom(2)` as the C library declares it: fills `buf` with `len` seeded bytes.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes, as for the C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getrandom(
    buf: *mut libc::c_void,
    len: libc::size_t,
    _flags: libc::c_uint,
) -> libc::ssize_t {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let out = buf.cast::<u8>();
    let mut written = 0;
    while written < len {
        let word = next().to_le_bytes();
        let take = (len - written).min(word.len());
        // SAFETY: the caller hands a buffer of `len` writable bytes; `written + take <= len`.
        unsafe { std::ptr::copy_nonoverlapping(word.as_ptr(), out.add(written), take) };
        written += take;
    }
    len as libc::ssize_t
}
