//! Stamps the build with the git commit it was built from (`LISTWIRE_GIT_COMMIT`), for the
//! `listwire_build_info` metric and `listwire --version`. Outside a git checkout (a source
//! tarball, a container build without `.git`) the commit is `unknown`, unless the builder sets
//! `LISTWIRE_GIT_COMMIT` itself.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LISTWIRE_GIT_COMMIT");
    if let Ok(commit) = std::env::var("LISTWIRE_GIT_COMMIT") {
        println!("cargo:rustc-env=LISTWIRE_GIT_COMMIT={commit}");
        return;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch ref it names (a commit).
    // A path that does not exist would rerun this script on every build: skip it.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    // A branch ref packed by `git pack-refs` (or gc) lives here instead.
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=LISTWIRE_GIT_COMMIT={commit}");
}
