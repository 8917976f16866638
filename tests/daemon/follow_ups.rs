//! Follow-ups the daemon must not send: for a deleted or expired announcement, or to a head who
//! confirmed in the night.

use super::*;

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
