//! Where a scenario's list lives and where its clients connect, on a cluster: the knobs that
//! turn a single-node scenario into "a list owned by one node, clients on others".

use serde::Serialize;

use crate::target::Target;

/// Placement of a scenario's list and clients. The default is "wherever": the list goes where
/// it hashes and clients spread round-robin over every node (on one node, both are that node).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Layout {
    /// The node that owns the scenario's list(s); `None`: wherever they hash.
    pub owner: Option<usize>,
    /// The nodes clients connect to, round-robin; empty: every node.
    pub gateways: Vec<usize>,
}

impl Layout {
    /// Checks the node indexes against `target`.
    pub fn validate(&self, target: &Target) -> anyhow::Result<()> {
        let nodes = target.node_count();
        for node in self.owner.iter().chain(&self.gateways) {
            anyhow::ensure!(*node < nodes, "no node {node}: the target has {nodes}");
        }
        Ok(())
    }

    /// The node client number `client` (0, 1, 2, …) connects to.
    pub fn gateway(&self, target: &Target, client: u64) -> usize {
        if self.gateways.is_empty() {
            return target.client_node(client);
        }
        self.gateways[(client % self.gateways.len() as u64) as usize]
    }

    /// The gateway nodes in use: the named ones, or every node.
    pub fn gateway_nodes(&self, target: &Target) -> Vec<usize> {
        if self.gateways.is_empty() {
            return (0..target.node_count()).collect();
        }
        self.gateways.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients go round-robin over the named gateways, or over every node by default.
    #[test]
    fn clients_go_to_the_gateways() {
        let urls: Vec<String> = (0..3)
            .map(|i| format!("http://127.0.0.1:{}", 7100 + i))
            .collect();
        let target = Target::remote(&urls, &[], b"secret").unwrap();
        let layout = Layout {
            owner: Some(0),
            gateways: vec![1, 2],
        };
        layout.validate(&target).unwrap();
        let nodes: Vec<usize> = (0..4).map(|c| layout.gateway(&target, c)).collect();
        assert_eq!(nodes, [1, 2, 1, 2]);
        let anywhere = Layout::default();
        assert_eq!(anywhere.gateway(&target, 5), 2);
        assert_eq!(anywhere.gateway_nodes(&target), [0, 1, 2]);
        let wrong = Layout {
            owner: Some(3),
            gateways: vec![],
        };
        assert!(wrong.validate(&target).is_err());
    }
}
