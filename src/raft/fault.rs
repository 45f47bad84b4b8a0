//! Fault injection for failover drills: a per-member switch that cuts the member's
//! peer traffic in both directions (a network partition of one member), while its
//! client ports keep serving.
//!
//! Invariant: only drills and tests flip it; when off (the default) it costs one
//! relaxed atomic load per peer message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cloneable; every clone flips the same switch.
#[derive(Clone, Debug, Default)]
pub struct FaultSwitch {
    isolated: Arc<AtomicBool>,
}

impl FaultSwitch {
    /// True while this member is cut off from its peers.
    pub fn isolated(&self) -> bool {
        self.isolated.load(Ordering::Relaxed)
    }

    /// Cuts (`true`) or restores (`false`) this member's peer traffic.
    pub fn set_isolated(&self, on: bool) {
        self.isolated.store(on, Ordering::Relaxed);
        tracing::warn!(
            isolated = on,
            "fault injection: peer traffic {}",
            if on { "blocked" } else { "restored" }
        );
    }
}
