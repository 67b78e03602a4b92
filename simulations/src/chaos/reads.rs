//! (7) Every node reads the stored head once the cluster is quiet: a read through any node,
//! shortly after the faults stop, returns each list at its stored head. A node that kept
//! serving a copy it no longer owns (a stale owner waking up) fails this; the subscribers and
//! the history checks cannot see it when no write reaches that copy.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::check::Findings;
use super::clients::Nodes;

/// How long a node may take to serve the head after the faults stop (views converge within a
/// few gossip rounds; a copy behind the store is caught by its head rechecks).
const READ_SETTLE: Duration = Duration::from_secs(10);

/// Reads every list through every node until it shows its stored head, for at most
/// [`READ_SETTLE`] per pair; records a violation for each pair that never does.
pub(crate) async fn every_node_reads_the_head(
    findings: &mut Findings,
    http: &Nodes,
    token: &str,
    lists: &[Uuid],
    heads: &[u64],
) {
    for (list, head) in lists.iter().zip(heads) {
        for node in 0..http.count() {
            let deadline = Instant::now() + READ_SETTLE;
            let mut seen = None;
            while Instant::now() < deadline {
                seen = http.read_seq(node, token, *list).await;
                if seen == Some(*head) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if seen != Some(*head) {
                findings.add(
                    "every node reads the stored head",
                    format!(
                        "list {list} through node {node}: read {seen:?}, stored head {head} \
                         ({}s after the faults stopped)",
                        READ_SETTLE.as_secs()
                    ),
                );
            }
        }
    }
}
