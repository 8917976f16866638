//! Sends to followers, groups and phones, and every refusal in the reference.

use loa::deliver::zalo::wire::path;
use serde_json::json;

use super::*;

#[tokio::test]
async fn cs_success_and_refusals() {
    let h = start(config()).await;
    let r = h.cs(FRESH, "Thông báo họp thôn").await;
    assert_eq!(
        (r.status, r.error(), r.body.message.as_str()),
        (200, 0, "Success")
    );
    let id = r.data()["message_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 20);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r.data()["user_id"], FRESH);
    assert!(
        r.data()["sent_time"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );

    for (user, code) in [
        (NOT_FOLLOWER, -213),
        ("1999999999999999999", -213),
        (BLOCKED, -217),
        (BANNED, -227),
        (STALE, -230),
    ] {
        let r = h.cs(user, "x").await;
        assert_eq!(r.error(), code, "{user}");
        assert!(!r.body.message.is_empty());
    }
    assert_eq!(h.cs(FRESH, "  ").await.error(), -201);
    assert_eq!(h.cs(FRESH, &"ă".repeat(2001)).await.error(), -201);
    assert_eq!(
        h.cs(FRESH, &"ă".repeat(2000)).await.error(),
        0,
        "chars, not bytes"
    );
    let garbage = h.post(path::MESSAGE_CS, json!({"recipient": {}})).await;
    assert_eq!(garbage.error(), -201);
    assert_eq!(h.post(path::LEGACY_MESSAGE, json!({})).await.error(), -240);

    // A stale user becomes reachable once they interact again.
    assert!(h.sim.set_interaction(STALE, Timestamp::now()));
    assert_eq!(h.cs(STALE, "x").await.error(), 0);

    let messages = h.sim.messages();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].message_id, id);
    assert_eq!(
        (messages[0].seq, messages[0].kind, messages[0].to.as_str()),
        (1, "cs", FRESH)
    );
    assert_eq!(messages[0].reached, vec![FRESH.to_string()]);
    let stats = h.sim.stats();
    assert_eq!(stats.answers_by_error[&-213], 2);
    assert_eq!(stats.requests_by_path[path::MESSAGE_CS], 11);
}

#[tokio::test]
async fn group_sends() {
    let h = start(config()).await;
    let body =
        |g: &str, text: &str| json!({"recipient": {"group_id": g}, "message": {"text": text}});
    let r = h.post(path::GROUP_MESSAGE, body(GROUP, "Họp thôn")).await;
    assert_eq!(r.error(), 0);
    assert_eq!(r.data()["group_id"], GROUP);
    assert_eq!(r.data()["message_id"].as_str().unwrap().len(), 20);
    let m = &h.sim.messages()[0];
    assert_eq!(m.kind, "group");
    assert_eq!(m.reached, vec![FRESH.to_string(), HEAD.to_string()]);
    for (g, code) in [
        (DISABLED_GROUP, -237),
        (FOREIGN_GROUP, -403),
        ("ffffffffffffffffffff", -403),
    ] {
        assert_eq!(
            h.post(path::GROUP_MESSAGE, body(g, "x")).await.error(),
            code,
            "{g}"
        );
    }
    assert_eq!(
        h.post(path::GROUP_MESSAGE, body(GROUP, "")).await.error(),
        -201
    );
}

#[tokio::test]
async fn zns_sends() {
    let h = start(config()).await;
    let with = |phone: &str, template: &str, tracking: &str, data: serde_json::Value| json!({"phone": phone, "template_id": template, "template_data": data, "tracking_id": tracking});
    // The default template takes `content`, at most 400 characters; keys it does not name pass.
    let body = |phone: &str, template: &str, tracking: &str| {
        with(
            phone,
            template,
            tracking,
            json!({"content": "Cắt điện", "date": "05/12"}),
        )
    };
    let r = h
        .post(
            path::ZNS_TEMPLATE,
            body(HEAD_PHONE, "loa-announcement", "t-1"),
        )
        .await;
    assert_eq!(r.error(), 0);
    let data = r.data();
    assert_eq!(data["msg_id"].as_str().unwrap().len(), 20);
    assert!(data.get("message_id").is_none());
    assert!(data["quota"]["dailyQuota"].is_string());
    assert!(data["quota"]["remainingQuota"].is_string());
    let m = &h.sim.messages()[0];
    assert_eq!((m.kind, m.to.as_str()), ("zns", HEAD_PHONE));
    assert_eq!(m.tracking_id.as_deref(), Some("t-1"));
    assert_eq!(m.reached, vec![HEAD.to_string()]);
    assert!(m.text.contains("Cắt điện"));
    // A phone nobody in the population owns is accepted and reaches no known user.
    assert_eq!(
        h.post(
            path::ZNS_TEMPLATE,
            body("84911111111", "loa-announcement", "t")
        )
        .await
        .error(),
        0
    );
    assert!(h.sim.messages()[1].reached.is_empty());
    for (phone, template, tracking, code) in [
        (HEAD_PHONE, "other-template", "t", -109),
        ("0900000006", "loa-announcement", "t", -108),
        ("8490000000", "loa-announcement", "t", -108),
        (HEAD_PHONE, "loa-announcement", &"x".repeat(49)[..], -201),
        (NO_ZNS_PHONE, "loa-announcement", "t", -114),
    ] {
        let r = h
            .post(path::ZNS_TEMPLATE, body(phone, template, tracking))
            .await;
        assert_eq!(r.error(), code, "{phone} {template}");
    }
    for (data, code) in [
        (json!({}), -111),
        (json!({"title": "Cắt điện"}), -112),
        (json!({"content": "ă".repeat(401)}), -112),
        (json!({"content": 42}), 0),
        (json!({"content": "ă".repeat(400)}), 0),
    ] {
        let r = h
            .post(
                path::ZNS_TEMPLATE,
                with(HEAD_PHONE, "loa-announcement", "t", data.clone()),
            )
            .await;
        assert_eq!(r.error(), code, "{data}");
    }
    assert_eq!(h.sim.messages().len(), 4);
}
