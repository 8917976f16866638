//! Time, replaceable in tests. The daemon asks the clock for "now" whenever it compares times;
//! tests use a manual clock they move forward, so nothing waits for a schedule in real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: Timestamp) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.as_microsecond())))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(us) => Timestamp::from_microsecond(us.load(Ordering::SeqCst))
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// Moves a manual clock to `t` (never backwards); no effect on the system clock.
    pub fn set(&self, t: Timestamp) {
        if let Clock::Manual(us) = self {
            us.fetch_max(t.as_microsecond(), Ordering::SeqCst);
        }
    }

    pub fn advance(&self, by: SignedDuration) {
        self.set(self.now() + by);
    }
}
