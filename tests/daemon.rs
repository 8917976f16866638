//! The daemon on a manual clock, against a real SQLite ledger and the log channel: one-shot, cron,
//! reminders, quiet hours, deadlines and catch-up after downtime, edits, deletions and broken
//! edits mid-schedule, and retries. Nothing sleeps: the test moves the clock.
//!
//! One test binary: this file holds the harness the tests share, `daemon/` the tests by subject.

#[path = "daemon/downtime.rs"]
mod downtime;
#[path = "daemon/edits.rs"]
mod edits;
#[path = "daemon/follow_ups.rs"]
mod follow_ups;
#[path = "daemon/retries.rs"]
mod retries;
#[path = "daemon/schedule.rs"]
mod schedule;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use loa::clock::Clock;
use loa::daemon::{Daemon, Settings};
use loa::deliver::log::LogChannel;
use loa::deliver::{Channel, Outgoing, SendError, Sent};
use loa::ledger::DeliveryState;
use sqlx::Row as _;

const COMMUNE: &str = r#"commune: Xã Thử
quiet_hours: "21:30-06:00"
villages:
  - id: a
    name: Thôn A
    zalo_group: "aaaaaa01"
    heads: [{ name: Trưởng A, zalo_user: "100001" }]
  - id: b
    name: Thôn B
    heads:
      - { name: Trưởng B, zalo_user: "200001" }
      - { name: Phó B, phone: "0912345678" }
leaders:
  - { id: ct, name: Chủ tịch, zalo_user: "900001" }
"#;

const TEMPLATE: &str = "{{ title }} · {{ send.at }}{% if send.before_event %} · còn {{ send.before_event }}{% endif %}{% if village %} · {{ village.name }}{% endif %}";

fn t(local: &str) -> Timestamp {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    loa::announce::values::parse_datetime(local, &tz, false).expect("time")
}

struct Harness<C: Channel> {
    dir: tempfile::TempDir,
    daemon: Daemon<C>,
    clock: Clock,
    _db: support::TestDb,
}

fn settings(dir: &Path) -> Settings {
    Settings {
        commune_id: "thu".into(),
        dir: dir.join("announcements"),
        templates: dir.join("templates"),
        node: "test".into(),
        horizon: jiff::SignedDuration::from_hours(48),
        lease: jiff::SignedDuration::from_secs(30),
        max_sleep: jiff::SignedDuration::from_secs(5),
        concurrency: 16,
        max_attempts: 3,
        retry_base: jiff::SignedDuration::from_secs(60),
        send_budget: loa::daemon::SEND_BUDGET,
    }
}

fn write_repo(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("announcements")).expect("dir");
    std::fs::create_dir_all(dir.join("templates")).expect("dir");
    std::fs::write(dir.join("announcements/commune.yaml"), COMMUNE).expect("write");
    std::fs::write(dir.join("templates/general.tera"), TEMPLATE).expect("write");
    std::fs::write(dir.join("templates/meeting.tera"), TEMPLATE).expect("write");
    std::fs::write(dir.join("templates/storm_warning.tera"), TEMPLATE).expect("write");
    for (name, text) in files {
        std::fs::write(dir.join("announcements").join(name), text).expect("write");
    }
}

async fn harness(files: &[(&str, &str)], start: &str) -> Harness<LogChannel> {
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path(), files);
    let channel = LogChannel::open(
        Some(&dir.path().join("sent.jsonl")),
        std::time::Duration::ZERO,
    )
    .expect("log");
    harness_with(dir, channel, start).await
}

async fn harness_with<C: Channel>(dir: tempfile::TempDir, channel: C, start: &str) -> Harness<C> {
    let db = support::sqlite();
    let clock = Clock::manual(t(start));
    let daemon =
        Daemon::new(db.store().await, channel, settings(dir.path())).with_clock(clock.clone());
    daemon.load_all(t(start)).await.expect("load");
    Harness {
        dir,
        daemon,
        clock,
        _db: db,
    }
}

impl<C: Channel> Harness<C> {
    /// Moves the clock and does what the loop would: extend the horizon, then the due work.
    async fn at(&self, local: &str) -> loa::daemon::TickReport {
        let now = t(local);
        self.clock.set(now);
        self.daemon.extend_horizon(now).await.expect("extend");
        self.daemon.tick(now, &|| false).await.expect("tick")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("announcements").join(name)
    }

    async fn edit(&self, name: &str, text: Option<&str>, local: &str) {
        match text {
            Some(text) => std::fs::write(self.path(name), text).expect("write"),
            None => std::fs::remove_file(self.path(name)).expect("remove"),
        }
        self.daemon
            .load_files(&[self.path(name)], t(local))
            .await
            .expect("reload");
    }

    /// The messages the log channel wrote, as (target, text).
    fn sent(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("sent.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
            .map(|v| {
                (
                    v["target"].as_str().unwrap_or_default().to_string(),
                    v["text"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    async fn count(&self, state: DeliveryState) -> i64 {
        let counts = self
            .daemon
            .store
            .delivery_counts("thu")
            .await
            .expect("counts");
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}
