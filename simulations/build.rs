//! `listwire-sim` defines the C symbol `getrandom` (src/bin/listwire-sim/entropy.rs); the
//! symbol must be in the binary's dynamic symbol table, because std and the `getrandom` crate
//! look it up with `dlsym` rather than linking it.

fn main() {
    println!("cargo:rustc-link-arg-bin=listwire-sim=-Wl,--export-dynamic-symbol=getrandom");
}
