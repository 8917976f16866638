//! Deadlines and catch-up after downtime: late once within the deadline, missed and recorded past
//! it, a file edited meanwhile, quiet hours after a catch-up, and heads' full time to confirm.

use super::*;

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
