//! Decides which progress changes go out in frames, so a fast transfer
//! costs a bounded number of messages. An item is sent when it first
//! appears, when it finishes or learns its total, and when it moved by at
//! least 1 % of its total. An item without a total is sent at most every
//! 250 ms.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use strata_ui_model::{Node, ProgressItem, Transfer};

/// Shortest time between two sent updates of an item without a total.
pub(crate) const UNKNOWN_TOTAL_INTERVAL: Duration = Duration::from_millis(250);

/// The state of an item as the last frame carried it.
#[derive(Clone, Debug)]
struct Sent {
    current: u64,
    total: Option<u64>,
    done: bool,
    at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct ProgressThrottle {
    /// By node id and item id.
    nodes: HashMap<(String, String), Sent>,
    /// By transfer key.
    transfers: HashMap<String, Sent>,
}

impl ProgressThrottle {
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.transfers.clear();
    }

    /// Returns whether any progress item of `node` is due, and if so
    /// records all of them as sent, because the node goes out whole.
    pub(crate) fn node_due(&mut self, node: &Node, now: Instant) -> bool {
        let due = node.progress.iter().any(|item| {
            let sent = self.nodes.get(&(node.id.clone(), item.id.clone()));
            is_due(sent, item, now)
        });
        if due {
            self.record_node(node, now);
        }
        due
    }

    /// Records every item of `node` as sent, for a node that goes out for
    /// another reason.
    pub(crate) fn record_node(&mut self, node: &Node, now: Instant) {
        for item in &node.progress {
            self.nodes
                .insert((node.id.clone(), item.id.clone()), sent(item, now));
        }
    }

    /// Returns whether the last frame carried an older state of an item
    /// of `node`.
    pub(crate) fn node_stale(&self, node: &Node) -> bool {
        node.progress.iter().any(|item| {
            let sent = self.nodes.get(&(node.id.clone(), item.id.clone()));
            is_stale(sent, item)
        })
    }

    /// Returns whether `transfer` is due, and if so records it as sent.
    pub(crate) fn transfer_due(&mut self, transfer: &Transfer, now: Instant) -> bool {
        let due = is_due(self.transfers.get(&transfer.key), &transfer.item, now);
        if due {
            self.transfers
                .insert(transfer.key.clone(), sent(&transfer.item, now));
        }
        due
    }

    /// Returns whether `transfer` changed since it was last sent, and if
    /// so records it as sent.
    pub(crate) fn transfer_stale(&mut self, transfer: &Transfer, now: Instant) -> bool {
        let stale = is_stale(self.transfers.get(&transfer.key), &transfer.item);
        if stale {
            self.transfers
                .insert(transfer.key.clone(), sent(&transfer.item, now));
        }
        stale
    }
}

fn sent(item: &ProgressItem, at: Instant) -> Sent {
    Sent {
        current: item.current,
        total: item.total,
        done: item.done,
        at,
    }
}

fn is_stale(sent: Option<&Sent>, item: &ProgressItem) -> bool {
    match sent {
        None => true,
        Some(sent) => {
            sent.current != item.current || sent.total != item.total || sent.done != item.done
        }
    }
}

fn is_due(sent: Option<&Sent>, item: &ProgressItem, now: Instant) -> bool {
    let Some(sent) = sent else {
        return true;
    };
    if sent.done != item.done || sent.total != item.total {
        return true;
    }
    if sent.current == item.current {
        return false;
    }
    match item.total {
        Some(total) => item.current.abs_diff(sent.current).saturating_mul(100) >= total,
        None => now.duration_since(sent.at) >= UNKNOWN_TOTAL_INTERVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(current: u64, total: Option<u64>, done: bool) -> ProgressItem {
        ProgressItem {
            id: "layer".into(),
            label: "layer".into(),
            current,
            total,
            unit: "B".into(),
            done,
        }
    }

    fn transfer(current: u64, total: Option<u64>, done: bool) -> Transfer {
        Transfer {
            key: "export-0/layer".into(),
            kind: strata_ui_model::TransferKind::Export,
            phase: Some("export-0".into()),
            phase_name: None,
            vertex: None,
            item: item(current, total, done),
        }
    }

    #[test]
    fn known_total_sends_each_percent() {
        let mut throttle = ProgressThrottle::default();
        let now = Instant::now();
        let sent: Vec<u64> = (0..=1000)
            .step_by(3)
            .filter(|&current| throttle.transfer_due(&transfer(current, Some(1000), false), now))
            .collect();
        // Updates of 3 bytes each: a 1 % step (10 bytes) needs four of them.
        assert_eq!(sent.len(), 84);
        assert_eq!(sent[..3], [0, 12, 24]);
    }

    #[test]
    fn completion_always_sent() {
        let mut throttle = ProgressThrottle::default();
        let now = Instant::now();
        assert!(throttle.transfer_due(&transfer(999, Some(1000), false), now));
        assert!(!throttle.transfer_due(&transfer(1000, Some(1000), false), now));
        assert!(throttle.transfer_due(&transfer(1000, Some(1000), true), now));
        assert!(!throttle.transfer_due(&transfer(1000, Some(1000), true), now));
    }

    #[test]
    fn unknown_total_sends_by_time() {
        let mut throttle = ProgressThrottle::default();
        let start = Instant::now();
        assert!(throttle.transfer_due(&transfer(10, None, false), start));
        let soon = start + Duration::from_millis(100);
        assert!(!throttle.transfer_due(&transfer(20, None, false), soon));
        let later = start + UNKNOWN_TOTAL_INTERVAL;
        assert!(throttle.transfer_due(&transfer(30, None, false), later));
        // The total arriving is sent at once.
        assert!(throttle.transfer_due(&transfer(40, Some(40), true), later));
    }

    #[test]
    fn stale_after_skipped_update() {
        let mut throttle = ProgressThrottle::default();
        let now = Instant::now();
        assert!(throttle.transfer_due(&transfer(0, Some(1000), false), now));
        assert!(!throttle.transfer_due(&transfer(5, Some(1000), false), now));
        assert!(throttle.transfer_stale(&transfer(5, Some(1000), false), now));
        assert!(!throttle.transfer_stale(&transfer(5, Some(1000), false), now));
    }
}
