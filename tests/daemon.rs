//! The daemon on a manual clock, against a real SQLite ledger and the log channel: one-shot, cron,
//! reminders, quiet hours, deadlines and catch-up after downtime, edits, deletions and broken
//! edits mid-schedule, and retries. Nothing sleeps: the test moves the clock.

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

#[tokio::test]
async fn one_shot_goes_out_at_its_time_once_to_every_target() {
    let h = harness(
        &[(
            "a.yaml",
            "title: Họp dân\nsend:\n  - at: 2026-12-01 08:00\n",
        )],
        "2026-12-01 07:00",
    )
    .await;
    assert_eq!(h.at("2026-12-01 07:59").await.sent, 0);
    assert_eq!(
        h.at("2026-12-01 08:00").await.sent,
        3,
        "village A's group, village B's two heads"
    );
    assert_eq!(h.at("2026-12-01 08:05").await.sent, 0);
    let sent = h.sent();
    assert_eq!(sent.len(), 3);
    let targets: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        targets.contains(&"aaaaaa01")
            && targets.contains(&"200001")
            && targets.contains(&"84912345678")
    );
    assert!(
        sent.iter()
            .any(|(_, text)| text == "Họp dân · Thứ Ba, 01/12/2026 lúc 08:00 · Thôn A")
    );
    assert_eq!(h.count(DeliveryState::Sent).await, 3);
}

#[tokio::test]
async fn weekly_cron_over_three_weeks() {
    let file = "title: Họp thôn\nkind: meeting\naudience: { villages: [a] }\nsend:\n  - cron: \"0 7 * * MON\"\n    from: 2026-11-30\n";
    let h = harness(&[("hop.yaml", file)], "2026-11-29 12:00").await;
    for day in ["2026-11-30", "2026-12-07", "2026-12-14"] {
        assert_eq!(h.at(&format!("{day} 06:59")).await.sent, 0);
        assert_eq!(h.at(&format!("{day} 07:00")).await.sent, 1, "{day}");
    }
    assert_eq!(h.sent().len(), 3);
}

#[tokio::test]
async fn reminders_before_the_event() {
    let file = "title: Làm căn cước\naudience: { villages: [a] }\nevent: { starts: 2026-12-05 19:30 }\nsend:\n  - before_event: [1d, 2h]\n";
    let h = harness(&[("cccd.yaml", file)], "2026-12-01 12:00").await;
    assert_eq!(h.at("2026-12-04 19:30").await.sent, 1);
    assert_eq!(h.at("2026-12-05 17:30").await.sent, 1);
    let texts: Vec<String> = h.sent().into_iter().map(|(_, t)| t).collect();
    assert!(
        texts[0].contains("còn 1 ngày") && texts[1].contains("còn 2 giờ"),
        "{texts:?}"
    );
}

#[tokio::test]
async fn quiet_hours_hold_normal_sends_until_morning_but_not_urgent_ones() {
    let normal = "title: Thường\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 23:00\n";
    let urgent = "title: Khẩn\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 23:00\n";
    let h = harness(
        &[("thuong.yaml", normal), ("khan.yaml", urgent)],
        "2026-12-01 12:00",
    )
    .await;
    assert_eq!(
        h.at("2026-12-01 23:00").await.sent,
        1,
        "only the urgent one"
    );
    assert_eq!(h.at("2026-12-02 05:59").await.sent, 0);
    assert_eq!(
        h.at("2026-12-02 06:00").await.sent,
        1,
        "the normal one, when quiet hours end"
    );
}

#[tokio::test]
async fn a_reload_during_quiet_hours_does_not_send_the_held_message_twice() {
    // Every two hours: 22:00, 00:00, 02:00 and 04:00 are held until 06:00 and go out once. A
    // reload at 03:00 (SIGHUP, a restart, a template change) plans again from 03:00, where 04:00
    // is the first of the night; it must still be the one 06:00 send, not a second.
    let file = "title: Đều\naudience: { villages: [a] }\nsend:\n  - cron: \"0 */2 * * *\"\n";
    let h = harness(&[("deu.yaml", file)], "2026-11-30 20:30").await;
    assert_eq!(h.at("2026-11-30 22:00").await.sent, 0, "held");
    h.daemon
        .load_all(t("2026-12-01 03:00"))
        .await
        .expect("reload");
    assert_eq!(h.at("2026-12-01 03:00").await.sent, 0);
    assert_eq!(h.at("2026-12-01 06:00").await.sent, 1, "{:?}", h.sent());
    // The same when the horizon is extended in the night: planning goes a day at a time, at
    // about the hour the daemon started (here 00:30, so the next day's starts at 01:30).
    let g = harness(&[("deu.yaml", file)], "2026-11-30 00:30").await;
    let mut at = t("2026-11-30 00:30");
    while at < t("2026-12-02 06:30") {
        at += jiff::SignedDuration::from_hours(1);
        g.clock.set(at);
        g.daemon.extend_horizon(at).await.expect("extend");
        g.daemon.tick(at, &|| false).await.expect("tick");
    }
    // Each morning's 06:00 once (the night's sends held until then) and 08:00 to 20:00.
    assert_eq!(g.sent().len(), 1 + 7 + 1 + 7 + 1, "{:#?}", g.sent());
}

#[tokio::test]
async fn an_edit_during_quiet_hours_keeps_the_send_held_until_morning() {
    // Due at 23:00, held until 06:00; a typo fixed at 01:00 replaces it with the new text, it
    // does not cancel it.
    let v1 = "title: Một\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 23:00\n";
    let h = harness(&[("tb.yaml", v1)], "2026-12-01 12:00").await;
    assert_eq!(h.at("2026-12-01 23:00").await.sent, 0, "held");
    h.edit(
        "tb.yaml",
        Some(&v1.replace("Một", "Hai")),
        "2026-12-02 01:00",
    )
    .await;
    assert_eq!(h.at("2026-12-02 06:00").await.sent, 1);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("Hai"), "{sent:?}");
}

#[tokio::test]
async fn new_quiet_hours_or_time_zone_in_commune_yaml_move_the_sends_already_planned() {
    // At 22:00 every day, planned under quiet hours from 21:30: held until 06:00. The commune
    // moves its quiet hours to start at 23:00; the 22:00 send now goes at 22:00, once.
    let file = "title: Tối\naudience: { villages: [a] }\nsend:\n  - cron: \"0 22 * * *\"\n";
    let later = COMMUNE.replace("21:30-06:00", "23:00-06:00");
    let h = harness(&[("toi.yaml", file)], "2026-12-01 08:00").await;
    h.edit("commune.yaml", Some(&later), "2026-12-01 09:00")
        .await;
    assert_eq!(h.at("2026-12-01 22:00").await.sent, 1, "{:?}", h.sent());
    assert_eq!(h.at("2026-12-02 06:00").await.sent, 0, "{:?}", h.sent());
    // The same for a commune of many files (their planned sends are read in one query).
    let names: Vec<String> = (0..20).map(|i| format!("toi{i}.yaml")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), file)).collect();
    let many = harness(&files, "2026-12-01 08:00").await;
    many.edit("commune.yaml", Some(&later), "2026-12-01 09:00")
        .await;
    assert_eq!(many.at("2026-12-01 22:00").await.sent, 20);
    assert_eq!(many.at("2026-12-02 06:00").await.sent, 0);
    // The other way: sends at 20:00 and 21:00, then quiet hours from 19:30. Both are held until
    // 06:00, and the village gets one message then, not two at night.
    let two = "title: Hai\naudience: { villages: [a] }\nsend:\n  - cron: \"0 20,21 * * *\"\n";
    let earlier = COMMUNE.replace("21:30-06:00", "19:30-06:00");
    let g = harness(&[("hai.yaml", two)], "2026-12-01 08:00").await;
    g.edit("commune.yaml", Some(&earlier), "2026-12-01 09:00")
        .await;
    assert_eq!(g.at("2026-12-01 20:00").await.sent, 0, "{:?}", g.sent());
    assert_eq!(g.at("2026-12-01 21:00").await.sent, 0, "{:?}", g.sent());
    assert_eq!(g.at("2026-12-02 06:00").await.sent, 1, "{:?}", g.sent());
    // Quiet hours put back as they were: the next evening's two sends, merged into one morning
    // send meanwhile, are planned again, each at its own time.
    g.edit("commune.yaml", Some(COMMUNE), "2026-12-02 07:00")
        .await;
    assert_eq!(g.at("2026-12-02 20:00").await.sent, 1, "{:?}", g.sent());
    assert_eq!(g.at("2026-12-02 21:00").await.sent, 1, "{:?}", g.sent());
    // A new time zone moves a daily 08:00 by the zones' difference: it goes at 08:00 in the new
    // zone (06:00 in the old), and not also at 08:00 in the old one.
    let daily = "title: Sáng\naudience: { villages: [a] }\nsend:\n  - cron: \"0 8 * * *\"\n";
    let tokyo = format!("timezone: Asia/Tokyo\n{COMMUNE}");
    let z = harness(&[("sang.yaml", daily)], "2026-12-01 09:00").await;
    z.edit("commune.yaml", Some(&tokyo), "2026-12-01 09:30")
        .await;
    for day in ["2026-12-02", "2026-12-03"] {
        let at = |time: &str| format!("{day} {time}");
        assert_eq!(z.at(&at("05:59")).await.sent, 0, "{:?}", z.sent());
        assert_eq!(z.at(&at("06:00")).await.sent, 1, "{:?}", z.sent());
        assert_eq!(z.at(&at("08:00")).await.sent, 0, "{:?}", z.sent());
    }
}

#[tokio::test]
async fn a_send_by_hand_from_a_checkout_with_other_quiet_hours_moves_nothing_else() {
    // The server plans a 22:00 notice under quiet hours from 21:30 (held until 06:00). `loa send`
    // of the same file from a laptop whose commune.yaml is older (quiet hours from 23:00) plans
    // only its own send: the server's planned ones keep their times.
    let file = "title: Tối\naudience: { villages: [a] }\nsend:\n  - cron: \"0 22 * * *\"\n";
    let h = harness(&[("toi.yaml", file)], "2026-12-01 08:00").await;
    let laptop = tempfile::tempdir().expect("laptop");
    std::fs::write(
        laptop.path().join("commune.yaml"),
        COMMUNE.replace("21:30-06:00", "23:00-06:00"),
    )
    .expect("write");
    let commune = loa::announce::load_commune(laptop.path()).expect("commune");
    let (templates, _) = loa::render::Templates::load(&h.dir.path().join("templates"));
    let by_hand = Daemon::new(
        h.daemon.store.clone(),
        LogChannel::open(None, std::time::Duration::ZERO).expect("log"),
        settings(h.dir.path()),
    );
    by_hand
        .load_alone(
            commune,
            templates,
            &h.path("toi.yaml"),
            file.to_string(),
            t("2026-12-01 09:00"),
        )
        .await
        .expect("load alone");
    assert_eq!(h.at("2026-12-01 22:00").await.sent, 0, "{:?}", h.sent());
    assert_eq!(h.at("2026-12-02 06:00").await.sent, 1, "{:?}", h.sent());
}

#[tokio::test]
async fn a_file_edited_during_downtime_continues_from_where_planning_stopped() {
    // A storm warning every 6 hours; planned two days ahead, then the daemon is down for four
    // days and the warning is edited meanwhile. At the restart the latest overdue send goes out,
    // with the new text, and the earlier ones are recorded as missed, not silently dropped.
    let v1 = "title: Bão cũ\nkind: storm_warning\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - cron: \"0 */6 * * *\"\nexpires: 2026-12-10 00:00\n";
    let h = harness(&[("bao.yaml", v1)], "2026-12-01 12:00").await;
    std::fs::write(h.path("bao.yaml"), v1.replace("Bão cũ", "Bão mới")).expect("write");
    h.daemon
        .load_all(t("2026-12-05 13:00"))
        .await
        .expect("restart");
    let report = h.at("2026-12-05 13:00").await;
    let sent = h.sent();
    assert_eq!(report.sent, 1, "{report:?} {sent:?}");
    assert!(
        sent[0].1.starts_with("Bão mới") && sent[0].1.contains("05/12/2026 lúc 12:00"),
        "{sent:?}"
    );
    // Every six hours from 12:00 on the 1st to 12:00 on the 5th, but the one sent.
    assert_eq!(report.missed, 16, "{report:?}");
}

#[tokio::test]
async fn a_send_due_when_its_deadline_falls_goes_out_when_found_on_time() {
    // A meeting notice at the very start of the meeting: its deadline is its own time. The
    // daemon wakes a moment after it; that is on time, not after downtime.
    let file = "title: Họp ngay\nkind: meeting\naudience: { villages: [a] }\nevent: { starts: 2026-12-05 07:30 }\nsend:\n  - at: 2026-12-05 07:30\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-05 06:00").await;
    let report = h.at("2026-12-05 07:30:01").await;
    assert_eq!((report.sent, report.missed), (1, 0), "{report:?}");
    // Found an hour late it is missed, as before.
    let g = harness(&[("hop.yaml", file)], "2026-12-05 06:00").await;
    let report = g.at("2026-12-05 08:30").await;
    assert_eq!((report.sent, report.missed), (0, 1), "{report:?}");
}

#[tokio::test]
async fn downtime_past_the_deadline_is_missed_and_recorded() {
    // A meeting reminder is worthless once the meeting has started.
    let file = "title: Họp\nkind: meeting\naudience: { villages: [a] }\nevent: { starts: 2026-12-05 19:30 }\nsend:\n  - before_event: [2h]\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-05 12:00").await;
    // The daemon is down from before 17:30 until 20:00.
    let report = h.at("2026-12-05 20:00").await;
    assert_eq!((report.sent, report.missed), (0, 1));
    assert_eq!(h.count(DeliveryState::Missed).await, 1);
    assert!(h.sent().is_empty());
    let reason: String = sqlx::query("SELECT detail FROM delivery_events WHERE state = 'missed'")
        .fetch_one(h.daemon.store.pool())
        .await
        .expect("event")
        .try_get(0)
        .expect("detail");
    assert!(
        reason.contains("deadline") && reason.contains("not running"),
        "{reason}"
    );
}

#[tokio::test]
async fn downtime_within_the_deadline_sends_late_once() {
    // A storm warning every 6 hours stays true until it expires: after a night of downtime the
    // latest overdue one goes out, once; the two before it are recorded as missed.
    let file = "title: Bão\nkind: storm_warning\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - cron: \"0 */6 * * *\"\nexpires: 2026-12-03 00:00\n";
    let h = harness(&[("bao.yaml", file)], "2026-12-01 23:00").await;
    let report = h.at("2026-12-02 13:00").await;
    assert_eq!((report.sent, report.missed), (1, 2), "{report:?}");
    assert!(
        h.sent()[0].1.contains("12:00"),
        "the 12:00 warning: {:?}",
        h.sent()
    );
    assert_eq!(
        h.at("2026-12-02 18:00").await.sent,
        1,
        "then on schedule again"
    );
    // A general notice found two days late is past its one-day default deadline.
    let g = harness(
        &[(
            "tb.yaml",
            "title: TB\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:00\n",
        )],
        "2026-12-01 07:00",
    )
    .await;
    assert_eq!(g.at("2026-12-03 09:00").await.missed, 1);
}

#[tokio::test]
async fn edits_deletions_and_broken_edits_mid_schedule() {
    let v1 = "title: Phiên bản một\naudience: { villages: [a] }\nsend:\n  - cron: \"0 8 * * *\"\n    from: 2026-12-01\n";
    let h = harness(&[("tb.yaml", v1)], "2026-11-30 12:00").await;
    assert_eq!(h.at("2026-12-01 08:00").await.sent, 1);
    // Edited: the next send carries the new text; what was sent stays sent, nothing twice.
    h.edit(
        "tb.yaml",
        Some(&v1.replace("một", "hai")),
        "2026-12-01 09:00",
    )
    .await;
    assert_eq!(h.at("2026-12-02 08:00").await.sent, 1);
    // Broken: the last good version keeps going, and the problem is kept.
    h.edit("tb.yaml", Some("title: [không đóng\n"), "2026-12-02 09:00")
        .await;
    let problems = h.daemon.store.file_problems("thu").await.expect("problems");
    assert_eq!(problems.len(), 1);
    assert_eq!(h.at("2026-12-03 08:00").await.sent, 1);
    // Deleted: nothing more.
    h.edit("tb.yaml", None, "2026-12-03 09:00").await;
    assert_eq!(h.at("2026-12-04 08:00").await.sent, 0);
    let texts: Vec<String> = h.sent().into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), 3);
    assert!(
        texts[0].starts_with("Phiên bản một")
            && texts[1].starts_with("Phiên bản hai")
            && texts[2].starts_with("Phiên bản hai"),
        "{texts:?}"
    );
    let revisions: i64 = sqlx::query("SELECT COUNT(*) FROM revisions")
        .fetch_one(h.daemon.store.pool())
        .await
        .expect("q")
        .try_get(0)
        .expect("n");
    assert_eq!(revisions, 2, "the broken edit is not a revision");
}

/// A provider that fails as told: retry-later for the first `flaky` attempts of every message,
/// and finally for one target. It stands in for the provider's answers, which are what the
/// daemon's retry rules act on.
struct Scripted {
    flaky: i64,
    refuse: &'static str,
    attempts: Mutex<std::collections::HashMap<i64, i64>>,
}

impl Channel for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        let n = {
            let mut a = self.attempts.lock().expect("lock");
            let n = a.entry(msg.delivery_id).or_insert(0);
            *n += 1;
            *n
        };
        if msg.target == self.refuse {
            return Err(SendError::Final {
                code: "-213".into(),
                reason: "user has not followed the OA".into(),
            });
        }
        if n <= self.flaky {
            return Err(SendError::RetryLater {
                code: "-32".into(),
                reason: "rate limit".into(),
                after: None,
                in_doubt: false,
            });
        }
        Ok(Sent {
            message_id: format!("m{}", msg.delivery_id),
            note: None,
        })
    }
}

#[tokio::test]
async fn retries_back_off_then_succeed_fail_or_expire() {
    let file = "title: TB\nsend:\n  - at: 2026-12-01 08:00\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path(), &[("tb.yaml", file)]);
    let h = harness_with(
        dir,
        Scripted {
            flaky: 2,
            refuse: "200001",
            attempts: Mutex::default(),
        },
        "2026-12-01 07:00",
    )
    .await;
    let first = h.at("2026-12-01 08:00").await;
    assert_eq!(
        (first.sent, first.retrying, first.failed),
        (0, 2, 1),
        "{first:?}"
    );
    // Backoff: 60 s ±20% (48–72 s), then 240 s ±20% (192–288 s after 08:01:15, so by 08:06:03).
    assert_eq!(
        h.at("2026-12-01 08:00:30").await.sent,
        0,
        "not before the backoff"
    );
    assert_eq!(h.at("2026-12-01 08:01:15").await.retrying, 2);
    assert_eq!(h.at("2026-12-01 08:06:05").await.sent, 2);
    assert_eq!(
        (
            h.count(DeliveryState::Sent).await,
            h.count(DeliveryState::Failed).await
        ),
        (2, 1)
    );
    let attempts: i64 = sqlx::query("SELECT MAX(attempts) FROM deliveries")
        .fetch_one(h.daemon.store.pool())
        .await
        .expect("q")
        .try_get(0)
        .expect("n");
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn a_retry_past_the_deadline_expires() {
    let file =
        "title: TB\naudience: { villages: [a] }\ncatch_up: 2m\nsend:\n  - at: 2026-12-01 08:00\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path(), &[("tb.yaml", file)]);
    let h = harness_with(
        dir,
        Scripted {
            flaky: 10,
            refuse: "",
            attempts: Mutex::default(),
        },
        "2026-12-01 07:00",
    )
    .await;
    let first = h.at("2026-12-01 08:00").await;
    assert_eq!(first.retrying, 1);
    h.at("2026-12-01 08:01:15").await;
    h.at("2026-12-01 08:10:00").await;
    assert_eq!(h.count(DeliveryState::Expired).await, 1);
}

/// Holds its first send until released; every send is written down, whichever daemon made it.
struct Gate {
    hold_first: std::sync::atomic::AtomicBool,
    release: std::sync::Arc<tokio::sync::Notify>,
    sent: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Channel for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        if self
            .hold_first
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.release.notified().await;
        }
        self.sent.lock().expect("lock").push(msg.target.to_string());
        Ok(Sent {
            message_id: format!("m{}", msg.delivery_id),
            note: None,
        })
    }
}

#[tokio::test]
async fn a_chunk_held_past_its_lease_is_not_sent_after_another_daemon_took_it() {
    // Daemon A's first send hangs (as behind Zalo's rate-limit pause) past the lease, with the
    // next chunk claimed ahead. Daemon B takes that chunk back and sends it. When A's send
    // returns, A must not send the chunk it no longer holds.
    let file = "title: Họp\naudience: { villages: [a, b] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-01 07:00").await;
    let sent = std::sync::Arc::new(Mutex::new(Vec::new()));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let daemon = |node: &str, hold: bool| {
        let gate = Gate {
            hold_first: std::sync::atomic::AtomicBool::new(hold),
            release: release.clone(),
            sent: sent.clone(),
        };
        let settings = Settings {
            node: node.into(),
            concurrency: 1,
            ..settings(h.dir.path())
        };
        Daemon::new(h.daemon.store.clone(), gate, settings).with_clock(h.clock.clone())
    };
    let (a, b) = (std::sync::Arc::new(daemon("a", true)), daemon("b", false));
    a.load_all(t("2026-12-01 07:00")).await.expect("load a");
    b.load_all(t("2026-12-01 07:00")).await.expect("load b");
    let due = t("2026-12-01 08:00");
    h.clock.set(due);
    let sending = tokio::spawn({
        let a = a.clone();
        async move { a.tick(due, &|| false).await }
    });
    // A has one delivery on the wire and the next claimed ahead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.count(DeliveryState::Sending).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "A never claimed ahead"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let later = due + jiff::SignedDuration::from_secs(31);
    h.clock.set(later);
    let report = b.tick(later, &|| false).await.expect("tick b");
    assert_eq!(report.sent, 2, "{report:?}");
    release.notify_one();
    sending.await.expect("join").expect("tick a");
    let mut targets = sent.lock().expect("lock").clone();
    let all = targets.len();
    targets.sort();
    targets.dedup();
    assert_eq!(all, targets.len(), "sent twice: {:?}", sent.lock());
    assert_eq!(all, 3, "{targets:?}");
}

#[tokio::test]
async fn two_files_with_one_id_are_refused_until_one_goes() {
    // `tb.yaml` and `tb.yml` would both be announcement `tb`: neither goes out, both are
    // reported, and once one is removed the other is the announcement.
    let one = "title: Một\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let two = one.replace("Một", "Hai");
    let h = harness(&[("tb.yaml", one), ("tb.yml", &two)], "2026-12-01 07:00").await;
    let catalog = loa::announce::load_dir(&h.dir.path().join("announcements")).expect("load");
    let codes: Vec<&str> = catalog.problems.iter().map(|p| p.kind.code()).collect();
    assert_eq!(codes, ["same-id-file", "same-id-file"]);
    assert!(catalog.announcements.is_empty());
    h.edit("tb.yml", None, "2026-12-01 07:30").await;
    assert_eq!(h.at("2026-12-01 08:00").await.sent, 1);
    let sent = h.sent();
    assert!(sent[0].1.starts_with("Một"), "{sent:?}");
}

#[tokio::test]
async fn a_deleted_or_expired_announcement_is_not_followed_up() {
    // Two urgent sends asking heads to confirm within an hour: one file is deleted after its
    // send (a notice sent by mistake), the other expires before the hour is up.
    let nham = "title: Gửi nhầm\npriority: urgent\nsend:\n  - at: 2026-12-01 10:00\nconfirm: { by: [village_head], within: 1h, escalate_to: [ct] }\n";
    let h = harness(
        &[
            ("nham.yaml", nham),
            (
                "bao.yaml",
                "title: Bão\npriority: urgent\nsend:\n  - at: 2026-12-01 10:00\nexpires: 2026-12-01 10:30\nconfirm: { by: [village_head], within: 1h, escalate_to: [ct] }\n",
            ),
            (
                "hop.yaml",
                "title: Họp\npriority: urgent\nsend:\n  - at: 2026-12-01 10:00\nconfirm: { by: [village_head], within: 1h, escalate_to: [ct] }\n",
            ),
        ],
        "2026-12-01 09:00",
    )
    .await;
    h.at("2026-12-01 10:00").await;
    h.edit("nham.yaml", None, "2026-12-01 10:05").await;
    let before = h.sent().len();
    h.at("2026-12-01 11:01").await;
    h.at("2026-12-01 12:02").await;
    let follow_ups: Vec<String> = h.sent()[before..]
        .iter()
        .map(|(_, text)| text.clone())
        .collect();
    assert!(
        follow_ups
            .iter()
            .all(|t| !t.contains("Gửi nhầm") && !t.contains("Bão")),
        "{follow_ups:#?}"
    );
    // The expired storm's confirmations are closed: not read again at every tick, not pending.
    let late = h
        .daemon
        .store
        .late_confirmations("thu", t("2026-12-01 12:03"))
        .await
        .expect("late");
    assert!(
        late.iter().all(|l| l.announcement_id != "bao"),
        "{:?}",
        late.iter().map(|l| &l.announcement_id).collect::<Vec<_>>()
    );
    // The meeting is still followed up: a reminder to each head, then the chairman.
    assert!(
        follow_ups
            .iter()
            .any(|t| t.starts_with("Nhắc lại") && t.contains("Họp")),
        "{follow_ups:#?}"
    );
    assert!(
        follow_ups
            .iter()
            .any(|t| t.contains("Họp") && !t.starts_with("Nhắc lại")),
        "{follow_ups:#?}"
    );
    // The mistaken notice restored (a `git checkout` back): its old requests stay closed, and
    // nobody is reminded of it.
    h.edit("nham.yaml", Some(nham), "2026-12-01 12:03").await;
    let late = h
        .daemon
        .store
        .late_confirmations("thu", t("2026-12-01 12:04"))
        .await
        .expect("late");
    assert!(
        late.iter().all(|l| l.announcement_id != "nham"),
        "{:?}",
        late.iter().map(|l| &l.announcement_id).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_head_who_confirms_in_the_night_is_not_reminded_in_the_morning() {
    // A routine send at 20:30 asks both villages' heads to confirm within an hour; quiet hours
    // (21:30-06:00) hold the follow-ups until morning, and Thôn A's head confirms at 22:00.
    let h = harness(
        &[(
            "hop.yaml",
            "title: Họp\nsend:\n  - at: 2026-12-01 20:30\nconfirm: { by: [village_head], within: 1h, escalate_to: [ct] }\n",
        )],
        "2026-12-01 20:00",
    )
    .await;
    h.at("2026-12-01 20:30").await;
    let before = h.sent().len();
    h.at("2026-12-01 21:31").await;
    let store = &h.daemon.store;
    let (inbound, _) = store
        .record_inbound(
            "thu",
            "100001",
            Some("r1"),
            "đã nhận",
            t("2026-12-01 22:00"),
        )
        .await
        .expect("inbound");
    store
        .confirm_by_reply("thu", "100001", inbound, t("2026-12-01 22:00"))
        .await
        .expect("reply")
        .expect("confirmed");
    h.at("2026-12-01 22:31").await;
    h.at("2026-12-02 06:00").await;
    let morning: Vec<String> = h.sent()[before..].iter().map(|(_, t)| t.clone()).collect();
    assert!(!morning.is_empty(), "Thôn B's heads are reminded");
    assert!(
        morning
            .iter()
            .all(|t| t.starts_with("Nhắc lại") && t.contains("Thôn B")),
        "only Thôn B's heads, and no escalation yet: {morning:#?}"
    );
    // The chairman hears an hour after the reminder, of Thôn B only.
    h.at("2026-12-02 06:31").await;
    assert_eq!(h.sent().len() - before, morning.len(), "not yet");
    h.at("2026-12-02 07:01").await;
    let escalation: Vec<String> = h.sent()[before + morning.len()..]
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(escalation.len(), 1, "{escalation:#?}");
    assert!(
        escalation[0].contains("Thôn B") && !escalation[0].contains("Thôn A"),
        "{escalation:#?}"
    );
}

#[tokio::test]
async fn a_directory_moved_in_is_planned_and_one_moved_out_is_cancelled() {
    let h = harness(
        &[("hop.yaml", "title: Họp\nsend:\n  - at: 2026-12-01 10:00\n")],
        "2026-12-01 08:00",
    )
    .await;
    // `mv ~/soan/cccd announcements/`: the watcher reports the directory alone.
    let moved = h.dir.path().join("announcements/cccd");
    std::fs::create_dir_all(&moved).expect("dir");
    std::fs::write(
        moved.join("dot-1.yaml"),
        "title: Làm CCCD\nsend:\n  - at: 2026-12-01 09:00\n",
    )
    .expect("write");
    h.daemon
        .load_files(std::slice::from_ref(&moved), t("2026-12-01 08:05"))
        .await
        .expect("reload");
    h.at("2026-12-01 09:00").await;
    assert!(
        h.sent().iter().any(|(_, text)| text.contains("Làm CCCD")),
        "{:?}",
        h.sent()
    );
    // And moved out again: the meeting's send is cancelled with the directory holding it.
    let hop = h.dir.path().join("announcements/thon");
    std::fs::create_dir_all(&hop).expect("dir");
    std::fs::rename(h.path("hop.yaml"), hop.join("hop.yaml")).expect("move");
    std::fs::rename(&hop, h.dir.path().join("thon")).expect("move out");
    h.daemon
        .load_files(&[hop], t("2026-12-01 09:05"))
        .await
        .expect("reload");
    h.at("2026-12-01 10:00").await;
    assert!(
        !h.sent().iter().any(|(_, text)| text.contains("Họp")),
        "{:?}",
        h.sent()
    );
}

#[tokio::test]
async fn a_file_deleted_then_restored_unchanged_is_sent_as_planned() {
    // `git checkout` of a branch without the file and back, or a file deleted by mistake and put
    // back: the same content returns, and its sends must too.
    let file = "title: Họp\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 10:00\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-01 08:00").await;
    h.edit("hop.yaml", None, "2026-12-01 08:10").await;
    h.edit("hop.yaml", Some(file), "2026-12-01 08:20").await;
    let report = h.at("2026-12-01 10:00").await;
    assert_eq!(report.sent, 1, "{report:?}");
}

#[tokio::test]
async fn a_send_caught_up_after_downtime_waits_for_quiet_hours_to_end() {
    // A notice due at 20:00; the server is down from 19:00 until 02:00. The notice is still within
    // its deadline, but the whole village must not be woken at 02:00: it goes at 06:00.
    let file = "title: Thông báo\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 20:00\n";
    let h = harness(&[("tb.yaml", file)], "2026-12-01 19:00").await;
    let report = h.at("2026-12-02 02:00").await;
    assert_eq!((report.sent, report.missed), (0, 0), "{report:?}");
    assert_eq!(h.at("2026-12-02 05:59").await.sent, 0);
    assert_eq!(h.at("2026-12-02 06:00").await.sent, 1, "{:?}", h.sent());
    // Held, it is still a send not yet made: deleting the file at 03:00 cancels it.
    let d = harness(&[("tb.yaml", file)], "2026-12-01 19:00").await;
    d.at("2026-12-02 02:00").await;
    d.edit("tb.yaml", None, "2026-12-02 03:00").await;
    assert_eq!(d.at("2026-12-02 06:00").await.sent, 0, "{:?}", d.sent());
    // A send every 6 hours, the server down from 17:00 to 23:00: the 18:00 one is not held to
    // 06:00 beside the 06:00 one (itself holding midnight's): one message in the morning.
    let every = "title: Đều\naudience: { villages: [a] }\nsend:\n  - cron: \"0 */6 * * *\"\n";
    let e = harness(&[("deu.yaml", every)], "2026-12-01 16:30").await;
    let report = e.at("2026-12-01 23:00").await;
    assert_eq!((report.sent, report.missed), (0, 1), "{report:?}");
    assert_eq!(e.at("2026-12-02 06:00").await.sent, 1, "{:?}", e.sent());
    // An urgent one caught up at night goes at once, as it would have on time.
    let urgent = "title: Khẩn\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 20:00\n";
    let u = harness(&[("khan.yaml", urgent)], "2026-12-01 19:00").await;
    assert_eq!(u.at("2026-12-02 02:00").await.sent, 1);
}

#[tokio::test]
async fn heads_of_a_send_caught_up_late_get_their_full_time_to_confirm() {
    // Planned for 08:00 with two hours to confirm, caught up at 11:00: the reminder is due at
    // 13:00, not in the same moment as the message.
    let file = "title: Họp\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:00\nconfirm: { by: [village_head], within: 2h }\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-01 07:00").await;
    h.at("2026-12-01 11:00").await;
    let first = h.sent().len();
    assert_eq!(
        first,
        1,
        "the village group, no reminder with it: {:?}",
        h.sent()
    );
    h.at("2026-12-01 11:01").await;
    assert_eq!(h.sent().len(), first, "no reminder yet: {:?}", h.sent());
    h.at("2026-12-01 13:00").await;
    assert!(
        h.sent().len() > first,
        "the reminder at 13:00: {:?}",
        h.sent()
    );
}

#[tokio::test]
async fn an_urgent_send_due_during_a_long_fan_out_goes_ahead_of_its_rest() {
    // A routine notice to every head, one message a chunk and a budget spent by the first chunk:
    // each tick sends one chunk. A storm warning falling due after the first goes next, not
    // after the whole fan-out.
    let routine =
        "title: Thường\naudience: { roles: [village_head] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let urgent = "title: Bão khẩn\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:01\n";
    let h = harness(
        &[("thuong.yaml", routine), ("bao.yaml", urgent)],
        "2026-12-01 07:00",
    )
    .await;
    let log = h.dir.path().join("slow.jsonl");
    let settings = Settings {
        concurrency: 1,
        send_budget: std::time::Duration::ZERO,
        ..settings(h.dir.path())
    };
    let channel = LogChannel::open(Some(&log), std::time::Duration::ZERO).expect("log");
    let daemon = Daemon::new(h.daemon.store.clone(), channel, settings).with_clock(h.clock.clone());
    daemon.load_all(t("2026-12-01 07:00")).await.expect("load");
    for at in [
        "2026-12-01 08:00",
        "2026-12-01 08:01",
        "2026-12-01 08:01",
        "2026-12-01 08:01",
    ] {
        h.clock.set(t(at));
        daemon.tick(t(at), &|| false).await.expect("tick");
    }
    let titles: Vec<String> = std::fs::read_to_string(&log)
        .expect("sent")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .map(|v| v["announcement"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(titles, ["thuong", "bao", "thuong", "thuong"], "{titles:?}");
}
