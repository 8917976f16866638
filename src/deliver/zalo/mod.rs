//! The `zalo` channel: a client for the Zalo Official Account API, as a sink folder — the wire
//! format, what each error code means, and (in the files that follow) tokens, request building,
//! rate limiting and the channel itself.

pub mod api;
pub mod auth;
pub mod channel;
pub mod config;
pub mod errors;
pub mod halt;
mod names;
mod pool;
pub mod quota;
pub mod ratelimit;
pub mod request;
mod sent_id;
pub mod sync;
pub mod wire;
