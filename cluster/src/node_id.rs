//! The identity every node carries in gossip, placement and the internode handshake.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// The longest node id accepted, in bytes. The handshake and gossip carry it in every message,
/// so it stays short.
pub const NODE_ID_BYTES_MAX: usize = 128;

/// A node's id: a non-empty UTF-8 string of at most [`NODE_ID_BYTES_MAX`] bytes, unique across
/// the cluster and stable across restarts (restarts are told apart by the generation).
///
/// Cheap to clone (a reference-counted string).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<NodeId, Error> {
        let id = id.into();
        if id.is_empty() || id.len() > NODE_ID_BYTES_MAX {
            return Err(Error::InvalidConfig(format!(
                "node id must be 1 to {NODE_ID_BYTES_MAX} bytes, got {}",
                id.len()
            )));
        }
        Ok(NodeId(id.into()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's UTF-8 bytes, exactly as placement hashes them and the handshake signs them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty and overlong ids are refused; anything else round-trips.
    #[test]
    fn validates_length() {
        assert!(NodeId::new("").is_err());
        assert!(NodeId::new("x".repeat(NODE_ID_BYTES_MAX + 1)).is_err());
        let id = NodeId::new("node-1").unwrap();
        assert_eq!(id.as_str(), "node-1");
        assert_eq!(id.to_string(), "node-1");
    }
}
