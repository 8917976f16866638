//! Every answer Zalo may give a send, classified over the wire: each error code the simulator
//! produces, a refusal of the OA itself, and ZNS refused at night or past its daily quota.

use super::*;

#[tokio::test]
async fn any_code_zalo_may_answer_a_send_is_classified_over_the_wire() {
    let (sim, _db, ch) = one_follower_channel().await;
    let (follower, group, phone) = ("1000000000000000001", "aaaaaaaaaaaaaaaaaaa1", "84912345678");
    for (kind, target, fault, want) in [
        (TargetKind::User, follower, -200, "retry -200"),
        (TargetKind::Group, group, -200, "retry -200"),
        (TargetKind::User, follower, -211, "not now -211"),
        (TargetKind::User, follower, -244, "final -244"),
        (TargetKind::Phone, phone, -115, "not now -115"),
        (TargetKind::Phone, phone, -114, "final -114"),
    ] {
        sim.set_faults(loa::sim::Faults {
            send_error_share: 1.0,
            send_error_code: fault,
            ..loa::sim::Faults::default()
        });
        let got = code(&ch.send(&msg(kind, target, "Thông báo thử")).await);
        assert_eq!(got, want, "{kind:?} answered {fault}");
    }
    assert!(sim.messages().is_empty(), "a refused send records nothing");
    sim.set_faults(loa::sim::Faults::default());
    let sent = ch
        .send(&msg(TargetKind::User, follower, "Thông báo thử"))
        .await;
    assert_eq!(code(&sent), "sent");
}

#[tokio::test]
async fn every_error_the_simulator_produces_is_classified() {
    let mut population = Population::default();
    let mut blocked = user("1000000000000000002");
    blocked.blocked = true;
    let mut banned = user("1000000000000000003");
    banned.banned = true;
    let mut stale = user("1000000000000000004");
    stale.last_interaction = Timestamp::now() - SignedDuration::from_hours(8 * 24);
    let mut not_following = user("1000000000000000005");
    not_following.follower = false;
    let mut no_zns = user("1000000000000000006");
    no_zns.phone = Some("84900000006".into());
    no_zns.zns_reachable = false;
    population.users = vec![
        user("1000000000000000001"),
        blocked,
        banned,
        stale,
        not_following,
        no_zns,
    ];
    population.groups = vec![
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa1".into(),
            name: "A".into(),
            disabled: false,
            oa_is_member: true,
            members: vec!["1000000000000000001".into()],
        },
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa2".into(),
            name: "B".into(),
            disabled: true,
            oa_is_member: true,
            members: vec![],
        },
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa3".into(),
            name: "C".into(),
            disabled: false,
            oa_is_member: false,
            members: vec![],
        },
    ];
    let sim = start_sim(SimConfig {
        population,
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let mut config = zalo_config(&sim);
    config.timeout_ms = 300;
    // After a -32 the client pauses for the rest of the window: keep that short here.
    config.rate_window_ms = 200;
    let ch = channel(&sim, &store, "n1", config.clone()).await;
    let text = "Thông báo thử";
    let cases: Vec<(TargetKind, &str, &str, &str)> = vec![
        (TargetKind::User, "1000000000000000001", text, "sent"),
        (TargetKind::Group, "aaaaaaaaaaaaaaaaaaa1", text, "sent"),
        (TargetKind::Phone, "84912345678", text, "sent"),
        (TargetKind::User, "1000000000000000005", text, "final -213"),
        (TargetKind::User, "1999999999999999999", text, "final -213"),
        (TargetKind::User, "1000000000000000002", text, "final -217"),
        (TargetKind::User, "1000000000000000003", text, "final -227"),
        (TargetKind::User, "1000000000000000004", text, "final -230"),
        (
            TargetKind::Group,
            "aaaaaaaaaaaaaaaaaaa2",
            text,
            "final -237",
        ),
        (
            TargetKind::Group,
            "aaaaaaaaaaaaaaaaaaa3",
            text,
            "final -403",
        ),
        (
            TargetKind::Group,
            "ffffffffffffffffffff",
            text,
            "final -403",
        ),
        (TargetKind::Phone, "8412", text, "final -108"),
        (TargetKind::Phone, "84900000006", text, "final -114"),
        (TargetKind::User, "1000000000000000001", "", "final -201"),
    ];
    for (kind, target, text, want) in &cases {
        let got = code(&ch.send(&msg(*kind, target, text)).await);
        assert_eq!(&got, want, "{kind:?} {target}");
    }
    // The reason is said once, not Zalo's words repeating ours (it did: "…7 days: …7 days").
    match ch
        .send(&msg(TargetKind::User, "1000000000000000004", text))
        .await
    {
        Err(SendError::Final { reason, .. }) => {
            assert_eq!(reason, "no interaction with the OA in the last 7 days")
        }
        other => panic!("{other:?}"),
    }
    // A head outside the window, or inactive for 45 days, with a phone: reached by ZNS, and the
    // record says how. One who blocked the OA is not written to by phone either.
    for (user, code) in [
        ("1000000000000000004", "-230"),
        ("1000000000000000003", "-227"),
    ] {
        let mut head = msg(TargetKind::User, user, text);
        head.fallback = Some("84912345678");
        let sent = ch.send(&head).await.expect("by phone");
        let note = sent.note.as_deref().unwrap_or("");
        assert!(note.contains("ZNS") && note.contains(code), "{sent:?}");
    }
    let mut blocked = msg(TargetKind::User, "1000000000000000002", text);
    blocked.fallback = Some("84912345678");
    assert_eq!(code(&ch.send(&blocked).await), "final -217");

    // A ZNS template Zalo has not approved.
    let wrong = ZaloChannel::open(
        ZaloConfig {
            zns_template_id: "khong-duyet".into(),
            ..config.clone()
        },
        store.clone(),
        "default",
        "n1",
        Clock::System,
    )
    .await
    .expect("channel");
    assert_eq!(
        code(
            &wrong
                .send(&msg(TargetKind::Phone, "84912345678", text))
                .await
        ),
        "final -109"
    );

    // Faults: a rate limit (retry once the window turns), a 5xx (retry; nothing went), a timeout
    // (retry, flagged as possibly delivered).
    let faults = [
        (
            Faults {
                rate_limit_burst: 1,
                ..Faults::default()
            },
            "not now -32",
        ),
        (
            Faults {
                server_error_share: 1.0,
                ..Faults::default()
            },
            "retry http-5",
        ),
        (
            Faults {
                timeout_share: 1.0,
                timeout_hang: Duration::from_secs(2),
                ..Faults::default()
            },
            "retry timeout in-doubt",
        ),
    ];
    for (fault, want) in faults {
        sim.set_faults(fault);
        let got = code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", text))
                .await,
        );
        assert!(got.starts_with(want), "{got} (want {want})");
    }
    sim.set_faults(Faults::default());

    // Revoked (-216) and expired (-220, and ZNS's -124) tokens: refreshed once, then sent.
    let before = sim.stats().token_refreshes;
    sim.revoke_access_tokens();
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", text))
                .await
        ),
        "sent"
    );
    sim.expire_access_tokens();
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::Group, "aaaaaaaaaaaaaaaaaaa1", text))
                .await
        ),
        "sent"
    );
    sim.revoke_access_tokens();
    assert_eq!(
        code(&ch.send(&msg(TargetKind::Phone, "84912345678", text)).await),
        "sent"
    );
    let stats = sim.stats();
    assert_eq!(stats.token_refreshes - before, 3);
    assert_eq!(stats.refresh_reuse_rejections, 0);
    assert!(stats.answers_by_error.get(&-216).copied().unwrap_or(0) >= 1);
    assert!(stats.answers_by_error.get(&-220).copied().unwrap_or(0) >= 1);
    assert!(stats.answers_by_error.get(&-124).copied().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn a_refusal_of_the_oa_itself_gives_up_on_nobody_and_stops_calling() {
    let sim = one_follower_sim().await;
    let db = support::sqlite();
    let store = db.store().await;
    // The operator mistyped the app secret: every call's appsecret_proof is wrong (-242).
    let config = ZaloConfig {
        appsecret_proof: true,
        app_secret: Secret::new("mistyped-secret"),
        ..zalo_config(&sim)
    };
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_at(&sim, &store, "n1", config, clock.clone()).await;
    let notice = msg(TargetKind::User, "1000000000000000001", "Thông báo");
    let send = || ch.send(&notice);
    let refused = || answered(&sim, -242);
    // Refused for now: not counted as an attempt, whatever the message's count, and due again
    // at once (for another daemon, whose calls Zalo may take: this one claims nothing before
    // its next probe, in 10 minutes).
    let not_now = |r: Result<loa::deliver::Sent, SendError>| match r {
        Err(SendError::NotNow { code, after, .. }) if after.is_zero() => code,
        other => panic!("{other:?}"),
    };
    let t0 = clock.now();
    assert_eq!(not_now(send().await), "-242");
    assert_eq!(ch.paused_until(), Some(t0 + SignedDuration::from_mins(10)));
    // Until then the channel makes no request: every send is refused here.
    clock.set(clock.now() + SignedDuration::from_mins(4));
    for _ in 0..5 {
        assert_eq!(not_now(send().await), "-242");
    }
    assert_eq!(refused(), 1);
    assert_eq!(ch.paused_until(), Some(t0 + SignedDuration::from_mins(10)));
    // Ten minutes on, one send probes; the others wait for its answer.
    clock.set(clock.now() + SignedDuration::from_mins(6));
    let (a, b, c) = tokio::join!(send(), send(), send());
    for r in [a, b, c] {
        assert_eq!(not_now(r), "-242");
    }
    assert_eq!(refused(), 2);
    // A probe that gets no answer (Zalo times out) tells nothing: the sends that waited for it
    // do not probe in turn, one request each, but wait a minute for the next probe.
    sim.set_faults(Faults {
        timeout_share: 1.0,
        timeout_hang: Duration::from_secs(3),
        ..Faults::default()
    });
    let calls = || sim.stats().calls("/v3.0/oa/message/cs");
    let before = calls();
    assert_eq!(before, 2, "the two refused");
    clock.set(clock.now() + SignedDuration::from_mins(10));
    let (a, b, c) = tokio::join!(send(), send(), send());
    let outcomes: Vec<String> = [a, b, c].iter().map(code).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|c| c.as_str() == "not now -242")
            .count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(calls(), before + 1);
    assert_eq!(not_now(send().await), "-242");
    assert_eq!(
        ch.paused_until(),
        Some(clock.now() + SignedDuration::from_secs(60))
    );
}

#[tokio::test]
async fn zns_at_night_and_past_its_daily_quota_waits_and_refuses_nobody() {
    let population = Population {
        users: vec![user("1000000000000000001")],
        ..Population::default()
    };
    let sim = start_sim(SimConfig {
        population,
        zns_daily_quota: 1,
        faults: Faults {
            zns_night_ban: true,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let notice = msg(TargetKind::Phone, "84912345678", "Họp thôn");
    let send = || ch.send(&notice);
    // A head outside the 7-day window, reached by phone during the night ban: tried again later.
    assert_eq!(code(&send().await), "not now -133");
    sim.set_faults(Faults::default());
    assert_eq!(code(&send().await), "sent");
    // The day's quota spent: tried again later, not given up on.
    assert_eq!(code(&send().await), "not now -144");
    // The OA's texts are not ZNS: the ban and the quota do not touch them.
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", "Họp thôn"))
                .await
        ),
        "sent"
    );
    let stats = sim.stats();
    assert_eq!(stats.answers_by_error.get(&-133).copied(), Some(1));
    assert_eq!(stats.answers_by_error.get(&-144).copied(), Some(1));
}
