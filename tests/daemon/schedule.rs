//! Sends at their time: one-shot, weekly cron, reminders before an event, quiet hours (and a
//! reload or an edit during them), and new quiet hours or time zone in commune.yaml.

use super::*;

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
