//! CPU time of the nodes the bench started, over a measured window, per unit of work (e.g. per
//! vote acknowledged): utime + stime of each node process from `/proc/<pid>/stat`, every
//! thread included, read at the start and the end of the window.

use serde::Serialize;
use tokio::time::Instant;

use crate::process::cpu_seconds;
use crate::target::Target;

/// One node's share of a window.
#[derive(Debug, Clone, Serialize)]
pub struct NodeCpu {
    /// The node's index in the target.
    pub node: usize,
    /// What it did: `owner` (hosts the list), `gateway` (holds clients), both, or `idle`.
    pub role: String,
    /// CPU seconds it used in the window.
    pub cpu_seconds: f64,
    /// Cores it kept busy on average (CPU seconds per second of the window).
    pub cores: f64,
    /// CPU microseconds per unit of work.
    pub us_per_unit: f64,
}

/// The CPU counters of every started node at the start of a window.
pub struct CpuMeter {
    started: Instant,
    at_start: Vec<(usize, u32, f64)>,
}

impl CpuMeter {
    /// Starts a window now (nodes without a known pid, e.g. remote ones, are left out).
    pub fn start(target: &Target) -> Self {
        let mut at_start = Vec::new();
        for node in 0..target.node_count() {
            if let Some(pid) = target.pid_of(node) {
                if let Ok(seconds) = cpu_seconds(pid) {
                    at_start.push((node, pid, seconds));
                }
            }
        }
        Self {
            started: Instant::now(),
            at_start,
        }
    }

    /// Ends the window: each node's CPU time, with `role_of(node)` and per one of `units`.
    pub fn finish(self, units: u64, role_of: impl Fn(usize) -> String) -> Vec<NodeCpu> {
        let window = self.started.elapsed().as_secs_f64().max(1e-9);
        let mut nodes = Vec::new();
        for (node, pid, before) in self.at_start {
            let Ok(after) = cpu_seconds(pid) else {
                continue;
            };
            let used = (after - before).max(0.0);
            nodes.push(NodeCpu {
                node,
                role: role_of(node),
                cpu_seconds: round3(used),
                cores: round3(used / window),
                us_per_unit: round3(used * 1e6 / units.max(1) as f64),
            });
        }
        nodes
    }
}

/// The role of `node` when `owner` hosts the list and `gateways` hold the clients.
pub fn role(node: usize, owner: usize, gateways: &[usize]) -> String {
    match (node == owner, gateways.contains(&node)) {
        (true, true) => "owner+gateway".into(),
        (true, false) => "owner".into(),
        (false, true) => "gateway".into(),
        (false, false) => "idle".into(),
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles name what a node did in the window.
    #[test]
    fn roles() {
        assert_eq!(role(0, 0, &[1, 2]), "owner");
        assert_eq!(role(1, 0, &[1, 2]), "gateway");
        assert_eq!(role(0, 0, &[0]), "owner+gateway");
        assert_eq!(role(3, 0, &[1, 2]), "idle");
    }
}
