//! loa: commune announcements, from YAML files in git to Zalo, with a record of who was reached.
//!
//! # Layout
//! The modules follow an announcement's path through the system:
//!
//! - [`announce`]: YAML files → validated [`announce::model::Announcement`]s, or every problem
//!   with file, line, column and field.
//! - [`render`]: Tera templates and the one view struct they see; Vietnamese date formatting.
//! - [`content`]: the repository as a whole — files and templates checked together.
//! - [`schedule`]: the pure function from an announcement and a time window to its sends
//!   (one-shot, cron, reminders), with quiet hours, expiry and past times applied.
//! - [`ledger`]: the database (SQLite or PostgreSQL): revisions, occurrences, per-recipient
//!   deliveries and their event log.
//! - [`deliver`]: channels (send one message to one target, classify the result) and targets.
//! - [`daemon`]: planning files into the ledger and the due loop that sends; [`config`] its settings
//!   and [`clock`] its time.
//! - [`sim`]: a simulator of the Zalo OA API (tokens, sends, webhooks, faults) for tests,
//!   benchmarks and the demo.
//! - [`confirm`]: Zalo's webhook events applied (receipts, replies), confirm links, follow-ups.
//! - [`web`]: the daemon's HTTP server: webhooks, confirm pages, metrics; [`listen`] the sockets
//!   it and the simulator listen on.
//! - [`cli`]: the `loa` subcommands, thin wrappers over the above; [`fuzzing`] the fuzzers' entry
//!   points.

pub mod announce;
pub mod cli;
pub mod clock;
pub mod config;
pub mod confirm;
pub mod content;
pub mod daemon;
pub mod deliver;
pub mod fuzzing;
pub mod ledger;
pub mod listen;
pub mod render;
pub mod schedule;
pub mod sim;
pub mod web;
