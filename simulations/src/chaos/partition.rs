//! Network partitions between nodes by packet filtering on their loopback addresses.
//!
//! A partition isolates a set of nodes from the others: one `iptables` rule in the `OUTPUT`
//! chain per ordered pair of addresses across the cut (`-s A -d B -j DROP`), so gossip (UDP,
//! sent from each node's own address) and internode TCP (dialled from the node's own address,
//! see `listwire_cluster::transport::SourceTcpConnector`) stop both ways. Clients and the
//! database use 127.0.0.1, which no rule names: only traffic between node addresses is cut,
//! never the shared store.
//!
//! Every rule carries the comment `listwire-chaos pid=<runner pid>`. The [`Filter`] removes
//! its rules when healed, when dropped, and so on Ctrl-C (the runner drops it before exiting);
//! a run that was SIGKILLed leaves rules behind, which the next run removes at start (those of
//! runner pids no longer alive).

use std::net::Ipv4Addr;
use std::process::Command;

/// The comment prefix of every rule a chaos run adds.
const COMMENT_PREFIX: &str = "listwire-chaos pid=";
/// The installer of `iptables`, relative to the workspace.
const ENSURE_SCRIPT: &str = "ops/ensure-iptables.sh";

/// Packet filtering, once it is known to work here.
pub(crate) struct Filter {
    binary: String,
    comment: String,
    /// The rules in place, as `(source, destination)`.
    rules: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl Filter {
    /// Finds (or installs) `iptables` and proves it can add and remove a rule; `Err` says
    /// exactly why partitions cannot run here.
    pub(crate) fn probe() -> Result<Filter, String> {
        // SAFETY: geteuid only reads this process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: changing packet filter rules needs root".into());
        }
        let binary = find_or_install()?;
        let filter = Filter {
            binary,
            comment: format!("{COMMENT_PREFIX}{}", std::process::id()),
            rules: Vec::new(),
        };
        filter.remove_stale();
        let probe = (Ipv4Addr::new(127, 0, 0, 254), Ipv4Addr::new(127, 0, 0, 253));
        filter
            .rule("-A", probe)
            .map_err(|error| format!("iptables cannot add a rule here: {error}"))?;
        filter
            .rule("-D", probe)
            .map_err(|error| format!("iptables cannot remove a rule here: {error}"))?;
        Ok(filter)
    }

    /// Cuts every address in `isolated` off from every address in `others`, both ways.
    pub(crate) fn isolate(
        &mut self,
        isolated: &[Ipv4Addr],
        others: &[Ipv4Addr],
    ) -> Result<(), String> {
        for a in isolated {
            for b in others {
                for pair in [(*a, *b), (*b, *a)] {
                    self.rule("-A", pair)?;
                    self.rules.push(pair);
                }
            }
        }
        Ok(())
    }

    /// Removes every rule this filter added.
    pub(crate) fn heal(&mut self) {
        for pair in std::mem::take(&mut self.rules) {
            if let Err(error) = self.rule("-D", pair) {
                eprintln!("chaos: could not remove the rule {pair:?}: {error}");
            }
        }
    }

    fn rule(
        &self,
        action: &str,
        (source, destination): (Ipv4Addr, Ipv4Addr),
    ) -> Result<(), String> {
        let output = Command::new(&self.binary)
            .args(["-w", action, "OUTPUT"])
            .args(["-s", &source.to_string(), "-d", &destination.to_string()])
            .args(["-m", "comment", "--comment", &self.comment])
            .args(["-j", "DROP"])
            .output()
            .map_err(|error| format!("running {}: {error}", self.binary))?;
        if output.status.success() {
            return Ok(());
        }
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }

    /// Removes rules left by chaos runs that are no longer alive.
    fn remove_stale(&self) {
        let Ok(output) = Command::new(&self.binary)
            .args(["-w", "-S", "OUTPUT"])
            .output()
        else {
            return;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(pid) = stale_rule_pid(line) else {
                continue;
            };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let Some(spec) = line.strip_prefix("-A ") else {
                continue;
            };
            let mut args = vec!["-w".to_owned(), "-D".to_owned()];
            args.extend(split_rule(spec));
            let _ = Command::new(&self.binary).args(&args).output();
            eprintln!("chaos: removed a stale rule of run {pid}: {line}");
        }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        self.heal();
    }
}

/// The runner pid named by a chaos rule in `iptables -S` output.
fn stale_rule_pid(line: &str) -> Option<u32> {
    let at = line.find(COMMENT_PREFIX)? + COMMENT_PREFIX.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Splits an `iptables -S` rule into arguments (a quoted comment stays one argument).
fn split_rule(spec: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in spec.chars() {
        match character {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(character),
        }
    }
    if !current.is_empty() {
        args.push(current);
    }
    args
}

/// The `iptables` binary: on the path, or installed by [`ENSURE_SCRIPT`].
fn find_or_install() -> Result<String, String> {
    for name in ["iptables", "iptables-nft", "iptables-legacy"] {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let path = format!("{dir}/{name}");
            if std::path::Path::new(&path).exists() {
                return Ok(path);
            }
        }
    }
    let script = workspace_dir().join(ENSURE_SCRIPT);
    let output = Command::new(&script).output().map_err(|error| {
        format!(
            "iptables is missing and {} failed: {error}",
            script.display()
        )
    })?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && !path.is_empty() {
        return Ok(path);
    }
    Err(format!(
        "iptables is missing and could not be installed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// The workspace root (this crate's parent directory, fixed at build time).
fn workspace_dir() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stale rules are recognised by their comment and split back into arguments.
    #[test]
    fn reads_stale_rules() {
        let line = r#"-A OUTPUT -s 127.0.0.11/32 -d 127.0.0.12/32 -m comment --comment "listwire-chaos pid=4242" -j DROP"#;
        assert_eq!(stale_rule_pid(line), Some(4242));
        assert_eq!(stale_rule_pid("-A OUTPUT -j ACCEPT"), None);
        let args = split_rule(line.strip_prefix("-A ").unwrap());
        assert_eq!(args[0], "OUTPUT");
        assert!(args.contains(&"listwire-chaos pid=4242".to_owned()));
        assert_eq!(args.last().map(String::as_str), Some("DROP"));
    }
}
