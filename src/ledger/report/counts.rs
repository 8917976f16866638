//! The counts of a set of deliveries, with the cumulative reading documented in `report.rs`:
//! each state adds to the levels it has reached, so merging villages into a send and sends into a
//! total is plain addition.

use serde::Serialize;

/// The counts of one set of deliveries (a village, a send, a follow-up, a whole report).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub targeted: i64,
    pub sent: i64,
    pub delivered: i64,
    pub seen: i64,
    /// Deliveries whose recipient confirmed.
    pub confirmed: i64,
    pub failed: i64,
    pub pending: i64,
    pub expired: i64,
    pub missed: i64,
    pub unknown: i64,
    pub heads_asked: i64,
    pub heads_confirmed: i64,
    /// `failed`, by provider code, most frequent first.
    pub failures: Vec<Failure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The provider's code (`-230`…), as stored.
    pub code: String,
    /// The provider's meaning, as stored (English).
    pub reason: String,
    pub count: i64,
}

impl Counts {
    /// Adds `n` deliveries in `state` (with the error code and reason they carry).
    pub fn add(&mut self, state: &str, code: Option<&str>, reason: Option<&str>, n: i64) {
        self.targeted += n;
        let rank = match state {
            "sent" => 1,
            "delivered" => 2,
            "seen" => 3,
            "confirmed" => 4,
            _ => 0,
        };
        self.sent += n * i64::from(rank >= 1);
        self.delivered += n * i64::from(rank >= 2);
        self.seen += n * i64::from(rank >= 3);
        self.confirmed += n * i64::from(rank >= 4);
        match state {
            "failed" => {
                self.failed += n;
                self.add_failure(code.unwrap_or(""), reason.unwrap_or(""), n);
            }
            "planned" | "sending" | "retrying" => self.pending += n,
            "expired" => self.expired += n,
            "missed" => self.missed += n,
            "unknown" => self.unknown += n,
            _ => {}
        }
    }

    fn add_failure(&mut self, code: &str, reason: &str, n: i64) {
        match self.failures.iter_mut().find(|f| f.code == code) {
            Some(f) => f.count += n,
            None => self.failures.push(Failure {
                code: code.to_string(),
                reason: reason.to_string(),
                count: n,
            }),
        }
    }

    /// Adds another set of counts (a village into its send, a send into the total).
    pub fn merge(&mut self, other: &Counts) {
        self.targeted += other.targeted;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.seen += other.seen;
        self.confirmed += other.confirmed;
        self.pending += other.pending;
        self.expired += other.expired;
        self.missed += other.missed;
        self.unknown += other.unknown;
        self.heads_asked += other.heads_asked;
        self.heads_confirmed += other.heads_confirmed;
        self.failed += other.failed;
        for f in &other.failures {
            self.add_failure(&f.code, &f.reason, f.count);
        }
    }

    pub(super) fn sort(&mut self) {
        self.failures
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    }
}

#[cfg(test)]
mod tests {
    use super::Counts;

    #[test]
    fn counts_are_cumulative_and_partition_the_targets() {
        let mut c = Counts::default();
        for (state, n) in [
            ("sent", 1),
            ("delivered", 2),
            ("seen", 3),
            ("confirmed", 4),
            ("retrying", 5),
            ("expired", 6),
            ("missed", 7),
            ("unknown", 8),
        ] {
            c.add(state, None, None, n);
        }
        c.add("failed", Some("-230"), Some("window"), 9);
        assert_eq!((c.sent, c.delivered, c.seen, c.confirmed), (10, 9, 7, 4));
        assert_eq!(
            c.targeted,
            c.sent + c.failed + c.pending + c.expired + c.missed + c.unknown
        );
        let mut total = Counts::default();
        total.merge(&c);
        total.merge(&c);
        assert_eq!(total.targeted, 2 * c.targeted);
        assert_eq!(total.failed, 18);
        assert_eq!(total.failures.len(), 1);
        assert_eq!(total.failures[0].count, 18);
    }
}
