//! Long texts and phones: numbered parts, a text cut off (by the rate limit, by the night ban)
//! carrying on after the parts already in, parts that fit the ZNS template, and the ZNS quota
//! Zalo reports kept for the operator.

use super::*;

#[tokio::test]
async fn a_long_text_cut_off_by_the_rate_limit_resumes_at_the_part_that_failed() {
    // Zalo takes 7 calls per half second here; the village groups' and the follower's deliveries
    // of a 3-part text need twice that. Each round sends what the window allows; a delivery stopped at
    // its second or third part carries on from there at its retry, and nobody gets a part twice.
    let (sim, _db, dir, daemon, due) = broadcast_setup(
        1,
        SimConfig {
            rate_limit: 7,
            rate_window: Duration::from_millis(500),
            ..SimConfig::default()
        },
        |c| ZaloConfig {
            rate_window_ms: 100,
            ..c
        },
        "urgent",
    )
    .await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let long = vec![paragraph; 5].join("\n\n");
    std::fs::write(
        dir.path().join("templates/general.tera"),
        format!("{{{{ title }}}}\n\n{long}"),
    )
    .expect("template");
    daemon.load_all(due).await.expect("reload");
    let mut now = due;
    for _ in 0..6 {
        daemon.clock.set(now);
        daemon.tick(now, &|| false).await.expect("tick");
        now += SignedDuration::from_mins(30);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let by_state = states(&daemon.store).await;
    let total: i64 = by_state.values().sum();
    assert!(total >= 4, "{by_state:?}");
    assert_eq!(by_state.get("sent"), Some(&total), "{by_state:?}");
    let mut parts: HashMap<(String, String), usize> = HashMap::new();
    for m in sim.messages() {
        let part = m.text.split(' ').next().unwrap_or_default().to_string();
        *parts.entry((m.to.clone(), part)).or_default() += 1;
    }
    assert_eq!(parts.len(), 3 * total as usize, "{parts:?}");
    assert!(parts.values().all(|n| *n == 1), "a part twice: {parts:?}");
    // Each delivery keeps the ids of all its parts, in order.
    let ids = texts(&daemon.store, "SELECT provider_message_id FROM deliveries").await;
    assert!(ids.iter().all(|i| i.split(',').count() == 3), "{ids:?}");
    // And the limit did cut texts off, without those refusals counting as attempts.
    let limited = answered(&sim, -32);
    assert!(
        limited > 0,
        "every text went out at once; the test tests nothing"
    );
    let attempts = scalar(&daemon.store, "SELECT MAX(attempts) FROM deliveries").await;
    assert_eq!(attempts, 1, "a rate-limit refusal is not an attempt");
}

/// A simulator whose one follower, 1000000000000000004, last wrote to the OA 8 days ago (outside
/// the 7-day window), with these ZNS templates.
async fn stale_follower_sim(zns_templates: Vec<ZnsTemplate>) -> Sim {
    let mut stale = user("1000000000000000004");
    stale.last_interaction = Timestamp::now() - SignedDuration::from_hours(8 * 24);
    start_sim(SimConfig {
        population: Population {
            users: vec![stale],
            ..Population::default()
        },
        zns_templates,
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_long_text_cut_off_by_phone_carries_on_by_phone() {
    // A head outside Zalo's 7-day window, reached by phone: the first part of a long text went
    // by ZNS, then a night ban cut it off. The retry tries the Zalo id first, is refused (-230),
    // and sends the rest by phone after the part already in.
    let sim = stale_follower_sim(SimConfig::default().zns_templates).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let text = vec![paragraph; 3].join("\n\n");
    let retry = Outgoing {
        fallback: Some("84912345678"),
        sent_parts: Some("zns-part-1"),
        ..msg(TargetKind::User, "1000000000000000004", &text)
    };
    let sent = ch.send(&retry).await.expect("the rest by phone");
    let ids: Vec<&str> = sent.message_id.split(',').collect();
    // A text that may go by phone is split to fit the template's 400-character parameter,
    // whichever way it goes: about 2,100 characters make six parts.
    let n = ids.len();
    assert_eq!(n, 6, "{ids:?}");
    assert_eq!(ids[0], "zns-part-1");
    let zns: Vec<String> = sim.messages().iter().map(|m| m.text.clone()).collect();
    assert_eq!(zns.len(), n - 1, "all but the first part: {zns:?}");
    for (i, text) in zns.iter().enumerate() {
        assert!(text.contains(&format!("({}/{n}) ", i + 2)), "{zns:?}");
    }
}

#[tokio::test]
async fn a_long_text_by_phone_goes_in_parts_the_template_takes() {
    // The simulator refuses a ZNS parameter longer than the template allows (-112), as Zalo
    // does; loa splits a text for a phone to `zns_text_max`. A head outside the window gets
    // the whole text by phone, in parts, each accepted.
    let template = ZnsTemplate::parse("loa-announcement:content=300").expect("spec");
    let sim = stale_follower_sim(vec![template]).await;
    let db = support::sqlite();
    let store = db.store().await;
    let text = "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(12);
    assert!(text.chars().count() > 800);
    let head = Outgoing {
        fallback: Some("84912345678"),
        ..msg(TargetKind::User, "1000000000000000004", &text)
    };
    // The template's parameter takes 300; loa, left at its default 400, sends a part too long.
    let loose = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let refused = loose.send(&head).await;
    assert_eq!(code(&refused), "final -112", "{refused:?}");
    match &refused {
        Err(SendError::Final { reason, .. }) => {
            assert!(reason.contains("template data invalid"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(answered(&sim, -112), 1);
    // Told the template's 300: every part fits, the head gets the whole text.
    let fitted = ZaloConfig {
        zns_text_max: 300,
        ..zalo_config(&sim)
    };
    let ch = channel(&sim, &store, "n1", fitted).await;
    let sent = ch.send(&head).await.expect("by phone in parts");
    assert!(sent.note.is_some_and(|n| n.contains("ZNS")));
    let parts: Vec<String> = sim.messages().iter().map(|m| m.text.clone()).collect();
    let n = parts.len();
    assert!(n >= 3, "{parts:?}");
    assert_eq!(sent.message_id.split(',').count(), n);
    for (i, p) in parts.iter().enumerate() {
        let data: serde_json::Value = serde_json::from_str(p).expect("template_data");
        let content = data["content"].as_str().expect("content");
        assert!(content.chars().count() <= 300, "{content}");
        assert!(
            content.starts_with(&format!("({}/{n}) ", i + 1)),
            "{content}"
        );
    }
    // The same head on Zalo, inside the window: the same parts, so that a text cut off on Zalo
    // carries on by phone where it stopped.
    let mut fresh = user("1000000000000000005");
    fresh.phone = Some("84912345679".into());
    sim.set_user(fresh);
    let before = sim.messages().len();
    let on_zalo = Outgoing {
        fallback: Some("84912345679"),
        ..msg(TargetKind::User, "1000000000000000005", &text)
    };
    let sent = ch.send(&on_zalo).await.expect("by cs");
    assert!(sent.note.is_none());
    assert_eq!(sim.messages().len() - before, n);
    // Without a phone to fall back on, Zalo's own limit: one message.
    let plain = msg(TargetKind::User, "1000000000000000005", &text);
    ch.send(&plain).await.expect("by cs");
    assert_eq!(sim.messages().len() - before, n + 1);
}

#[tokio::test]
async fn a_template_without_loas_parameter_is_refused_for_each_phone_not_retried() {
    // The approved template names its parameter otherwise than `zns_text_param`.
    let sim = start_sim(SimConfig {
        zns_templates: vec![ZnsTemplate::parse("loa-announcement:noi_dung").expect("spec")],
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let r = ch
        .send(&msg(TargetKind::Phone, "84912345678", "Mời bà con họp."))
        .await;
    assert_eq!(code(&r), "final -112", "{r:?}");
    let fixed = ZaloConfig {
        zns_text_param: "noi_dung".into(),
        ..zalo_config(&sim)
    };
    let ch = channel(&sim, &store, "n1", fixed).await;
    let r = ch
        .send(&msg(TargetKind::Phone, "84912345678", "Mời bà con họp."))
        .await;
    assert_eq!(code(&r), "sent", "{r:?}");
}

#[tokio::test]
async fn a_long_text_goes_in_numbered_parts() {
    let (sim, _db, ch) = one_follower_channel().await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let text = vec![paragraph; 7].join("\n\n");
    assert!(text.chars().count() > 4000);
    let sent = ch
        .send(&msg(TargetKind::User, "1000000000000000001", &text))
        .await
        .expect("sent");
    // Seven paragraphs of 700 characters: two whole paragraphs fit in a part, so four parts.
    let messages = sim.messages();
    assert_eq!(messages.len(), 4);
    assert_eq!(sent.message_id.split(',').count(), 4);
    for (i, m) in messages.iter().enumerate() {
        assert!(m.text.starts_with(&format!("({}/4) ", i + 1)), "{}", m.text);
        assert!(m.text.chars().count() <= 2000);
        assert!(sent.message_id.contains(&m.message_id));
    }
}

#[tokio::test]
async fn the_zns_quota_zalo_reports_is_kept_for_the_operator() {
    // Each ZNS Zalo accepts says how many the OA may send a day and how many are left; the
    // channel keeps the latest in the database, without holding up the send, where `loa zalo
    // status`, the dashboard and /metrics read it. Once spent, Zalo refuses phone messages
    // until midnight (-144), and they wait for it.
    let sim = start_sim(SimConfig {
        zns_daily_quota: 4,
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    assert_eq!(store.zns_quota("default").await.expect("read"), None);
    let before = Timestamp::now();
    for n in 0..3 {
        let phone = format!("8491234560{n}");
        ch.send(&msg(TargetKind::Phone, &phone, "Mời bà con họp."))
            .await
            .expect("by phone");
    }
    let kept = async {
        loop {
            match store.zns_quota("default").await.expect("read") {
                Some(q) if q.remaining == 1 => return q,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let q = tokio::time::timeout(Duration::from_secs(5), kept)
        .await
        .expect("the last report written");
    assert_eq!((q.daily, q.node.as_str()), (4, "n1"));
    assert!(q.seen_at >= before && q.seen_at <= Timestamp::now());
    // The last one of the day, then a refusal until midnight, which reports nothing.
    ch.send(&msg(TargetKind::Phone, "84912345603", "Mời bà con họp."))
        .await
        .expect("the day's last");
    let spent = ch
        .send(&msg(TargetKind::Phone, "84912345604", "Mời bà con họp."))
        .await;
    assert!(
        matches!(&spent, Err(SendError::NotNow { code, .. }) if code == "-144"),
        "{spent:?}"
    );
    let spent = async {
        while store
            .zns_quota("default")
            .await
            .expect("read")
            .map(|q| q.remaining)
            != Some(0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), spent)
        .await
        .expect("none left, recorded");
}
