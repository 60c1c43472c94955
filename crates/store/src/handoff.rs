//! Fresh deliveries handed from a commit straight to this node's dispatcher.
//!
//! Without it every delivery an API request queues is written, then found
//! again by the dispatcher's claim (a `SELECT` joining three tables and an
//! `UPDATE` in a transaction of its own) before it is attempted. With it,
//! the commit that queues a delivery writes it already leased to this node,
//! and once that commit is durable the delivery goes to the dispatcher in
//! memory. Durability is unchanged: the row is in the same transaction as
//! the event, and its lease brings it back to a claim if this process dies
//! before the attempt is recorded (at once on a SQLite node's next start).

use std::sync::Arc;

use crate::ClaimedDelivery;

/// The receiving side: this node's dispatcher.
pub trait Handoff: Send + Sync {
    /// How long a handed delivery is leased (as a claim would lease it).
    fn lease_ms(&self) -> i64;
    /// Takes room for one delivery to `endpoint_id` (an endpoint id), as a
    /// claim would count it; `false` leaves the delivery to a claim.
    fn reserve(&self, endpoint_id: &str) -> bool;
    /// Gives back a reservation whose transaction did not commit.
    fn release(&self, endpoint_id: &str);
    /// Deliveries reserved for, leased, and committed.
    fn hand(&self, deliveries: Vec<ClaimedDelivery>);
}

/// The deliveries one transaction hands off. Dropped without
/// [`Handing::deliver`] (the transaction failed), it gives its reservations back.
pub(crate) struct Handing {
    to: Arc<dyn Handoff>,
    taken: Vec<ClaimedDelivery>,
}

impl Handing {
    pub fn new(to: Arc<dyn Handoff>) -> Self {
        Handing {
            to,
            taken: Vec::new(),
        }
    }

    pub fn lease_ms(&self) -> i64 {
        self.to.lease_ms()
    }

    pub fn reserve(&self, endpoint_id: &str) -> bool {
        self.to.reserve(endpoint_id)
    }

    /// A reserved delivery, written leased in this transaction.
    pub fn take(&mut self, delivery: ClaimedDelivery) {
        self.taken.push(delivery);
    }

    /// Gives back a reservation that was not written after all.
    pub fn unreserve(&self, endpoint_id: &str) {
        self.to.release(endpoint_id);
    }

    /// The transaction committed: the deliveries go to the dispatcher.
    pub fn deliver(mut self) {
        let taken = std::mem::take(&mut self.taken);
        if !taken.is_empty() {
            self.to.hand(taken);
        }
    }
}

impl Drop for Handing {
    fn drop(&mut self) {
        for d in &self.taken {
            self.to.release(&d.endpoint_id);
        }
    }
}

/// Where a store finds its dispatcher's [`Handoff`], if one is running.
#[derive(Default)]
pub(crate) struct HandoffSlot(std::sync::RwLock<Option<Arc<dyn Handoff>>>);

impl HandoffSlot {
    pub fn set(&self, to: Option<Arc<dyn Handoff>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// A hand-off for one transaction.
    pub fn begin(&self) -> Option<Handing> {
        let to = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        to.map(Handing::new)
    }
}
