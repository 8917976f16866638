//! When announcements go out. `occurrences` is the one pure function from (announcement, commune,
//! window, now) to the sends in that window, with what was moved or dropped and why; `loa plan`
//! prints it and the daemon materialises it.

pub mod deadline;
mod occurrence;
pub mod quiet;

pub use deadline::deadline;
pub use occurrence::{Fate, Occurrence, Trigger, Window, occurrences, plan};
pub use quiet::quiet_end;
