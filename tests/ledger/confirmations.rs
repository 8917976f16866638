//! How a head's reply or link confirms: the latest request, both villages of a head of two, and
//! confirmations of deleted announcements closed by migration 14.

use super::*;

#[tokio::test]
async fn a_reply_confirms_the_heads_latest_request_never_an_older_one() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(
            &store,
            "n1",
            &[("hop", false), ("bao", false), ("cu", false)],
        )
        .await;
        let occurrence = |id: &str, days_ago: i64| {
            let mut o = claimed
                .iter()
                .find(|o| o.announcement_id == id)
                .expect("claimed")
                .clone();
            o.send_at = at - SignedDuration::from_hours(24 * days_ago);
            o
        };
        let head = |village: &str, user: &str, key: &str| NewConfirmation {
            village_id: village.into(),
            person: format!("Trưởng {village}"),
            user_id: Some(user.into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        // u1: a meeting request two days ago, still pending; today's storm warning, as head of
        // two villages. u2: a request three weeks ago.
        let (hop, bao, cu) = (
            occurrence("hop", 2),
            occurrence("bao", 0),
            occurrence("cu", 21),
        );
        let sets = [
            (&hop, vec![head("lang-tre", "u1", "k-hop")]),
            (
                &bao,
                vec![
                    head("lang-tre", "u1", "k-bao-1"),
                    head("mit", "u1", "k-bao-2"),
                ],
            ),
            (&cu, vec![head("mit", "u2", "k-cu")]),
        ];
        let expansions: Vec<Expansion> = sets
            .iter()
            .map(|(o, heads)| Expansion {
                occurrence: o,
                deliveries: &[],
                confirmations: heads,
                missed: None,
                start: o.send_at,
            })
            .collect();
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        let reply = |user: &'static str, msg: &'static str, when: Timestamp| {
            let store = store.clone();
            async move {
                let (inbound, _) = store
                    .record_inbound(C, user, Some(msg), "đã nhận", when)
                    .await
                    .expect("inbound");
                store
                    .confirm_by_reply(C, user, inbound, when)
                    .await
                    .expect("reply")
                    .map(|(_, announcement)| announcement)
            }
        };
        let pending = |key: &'static str| {
            let store = store.clone();
            async move { link_state(&store, key).await == "pending" }
        };
        // The head replies to today's message: both villages are confirmed, and a second reply
        // confirms nothing; the meeting stays pending.
        let minute = SignedDuration::from_mins(1);
        assert_eq!(
            reply("u1", "r1", at + minute).await.as_deref(),
            Some("bao"),
            "{}",
            db.name
        );
        assert!(!pending("k-bao-1").await && !pending("k-bao-2").await);
        assert_eq!(
            reply("u1", "r2", at + minute * 2).await,
            None,
            "{}",
            db.name
        );
        assert!(pending("k-hop").await, "{}", db.name);
        // Reminded of the meeting an hour later, the head answers the reminder: that confirms it.
        sqlx::query("UPDATE confirmations SET reminded_at = $1 WHERE link_key = 'k-hop'")
            .bind(loa::ledger::micros(at + minute * 60))
            .execute(store.pool())
            .await
            .expect("reminded");
        assert_eq!(
            reply("u1", "r4", at + minute * 61).await.as_deref(),
            Some("hop"),
            "{}",
            db.name
        );
        // An "ok" three weeks after a request is about something else.
        assert_eq!(reply("u2", "r3", at).await, None, "{}", db.name);
        assert!(pending("k-cu").await, "{}", db.name);
    }
}

#[tokio::test]
async fn a_head_of_two_villages_confirms_both_with_the_one_link_they_got() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", false), ("hop", false)]).await;
        let head = |village: &str, user: &str, key: &str| NewConfirmation {
            village_id: village.into(),
            person: "Trưởng hai thôn".into(),
            user_id: Some(user.into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        // One person heads two villages: one message reaches them, with the first village's link.
        let (bao, hop) = (&claimed[0], &claimed[1]);
        let two = [head("lang-tre", "u1", "k-1"), head("mit", "u1", "k-2")];
        let other = [head("lang-tre", "u1", "k-3")];
        let expansions = [
            Expansion {
                occurrence: bao,
                deliveries: &[],
                confirmations: &two,
                missed: None,
                start: at,
            },
            Expansion {
                occurrence: hop,
                deliveries: &[],
                confirmations: &other,
                missed: None,
                start: at,
            },
        ];
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        assert!(store.confirm_by_link(C, "k-1", at).await.expect("link"));
        let state = |key: &'static str| {
            let store = store.clone();
            async move { link_state(&store, key).await }
        };
        assert_eq!(state("k-2").await, "confirmed", "{}", db.name);
        assert_eq!(
            state("k-3").await,
            "pending",
            "another send is not confirmed"
        );
        assert!(!store.confirm_by_link(C, "k-1", at).await.expect("again"));
    }
}

#[tokio::test]
async fn migration_14_closes_what_announcements_deleted_before_it_left_pending() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("cu", false), ("con", false)]).await;
        let head = |key: &str| NewConfirmation {
            village_id: "mit".into(),
            person: "Trưởng mit".into(),
            user_id: Some("u1".into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        let (old, live) = ([head("k-cu")], [head("k-con")]);
        let by = |id: &str| {
            claimed
                .iter()
                .find(|o| o.announcement_id == id)
                .expect("claimed")
        };
        let expansions: Vec<Expansion> = [(by("cu"), &old), (by("con"), &live)]
            .into_iter()
            .map(|(o, heads)| Expansion {
                occurrence: o,
                deliveries: &[],
                confirmations: heads.as_slice(),
                missed: None,
                start: at,
            })
            .collect();
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        // Deleted by a version before this one: its confirmations were left open.
        sqlx::query("UPDATE announcements SET status = 'deleted' WHERE id = 'cu'")
            .execute(store.pool())
            .await
            .expect("deleted");
        let dialect = if db.name == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        };
        let migration = std::fs::read_to_string(format!(
            "migrations/{dialect}/0014_close_deleted_confirmations.sql"
        ))
        .expect("migration file");
        sqlx::raw_sql(&migration)
            .execute(store.pool())
            .await
            .expect("migration");
        let open = |id: &'static str| {
            let sql = format!(
                "SELECT COUNT(*) FROM confirmations WHERE announcement_id = '{id}' AND closed_at IS NULL"
            );
            let store = store.clone();
            async move { count(&store, &sql).await }
        };
        assert_eq!((open("cu").await, open("con").await), (0, 1), "{}", db.name);
    }
}
