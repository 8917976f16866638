//! Who was reached, from Zalo's side: webhook events applied to the ledger. A receipt moves a
//! delivery forward (sent → delivered → seen, never back), follows and unfollows keep the follower
//! list current between syncs, and what people write to the OA is kept for staff (and reopens
//! Zalo's 7-day window for writing to them). Village heads confirm by reply or by a signed link;
//! those who do not are reminded, then reported to the commune's leaders (`follow_up`).

pub mod events;
pub mod follow_up;
pub mod link;
pub mod phrases;
