//! The send loop's ledger: claims numbered and marked on the wire, deadlines, sends not yet
//! expanded, refused village groups failed over once, the ZNS quota's latest report, and a new
//! SQLite file opened from several places at once.

use super::*;

/// Regression: a daemon and another process opening a new SQLite file at the same moment raced
/// on the first migration and the daemon exited.
#[tokio::test(flavor = "multi_thread")]
async fn opening_a_new_sqlite_file_from_several_places_at_once() {
    for _ in 0..5 {
        let db = support::sqlite();
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { Store::open(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.expect("task").expect("every opener succeeds");
        }
    }
}

#[tokio::test]
async fn a_chunk_claimed_ahead_that_never_left_is_released_not_in_doubt() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "dead", &[("bao", true), ("hop", false)]).await;
        let lease = at + SignedDuration::from_secs(30);
        for o in &claimed {
            let targets: Vec<NewDelivery> = (0..4).map(target).collect();
            store
                .expand(C, o, &targets, None, "dead", at)
                .await
                .expect("expand");
        }
        let claim = |limit, chunk| Claim {
            now: at,
            lease_until: lease,
            limit,
            chunk: Some(chunk),
        };
        // Chunk 7 went out (marked); chunk 8 was claimed ahead, then the daemon died.
        let (_, on_wire) = store
            .record_and_claim(C, "dead", &[], at, claim(4, 7))
            .await
            .expect("claim 7");
        store.mark_on_wire("dead", 7).await.expect("mark");
        let (_, ahead) = store
            .record_and_claim(C, "dead", &[], at, claim(4, 8))
            .await
            .expect("claim 8");
        assert_eq!((on_wire.len(), ahead.len()), (4, 4), "{}", db.name);
        assert!(on_wire.iter().all(|d| d.urgent), "urgent first");

        let (resend, unknown) = store
            .recover_in_doubt(C, "new", lease + SignedDuration::from_secs(1), false)
            .await
            .expect("recover");
        // The urgent chunk on the wire is sent again, flagged; the normal chunk claimed ahead is
        // not in doubt at all: it waits to be sent, attempts as before, not flagged.
        assert_eq!((resend, unknown), (4, 0), "{}", db.name);
        let rows = sqlx::query(
            "SELECT state, attempts, possible_duplicate FROM deliveries WHERE urgent = 0 ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .expect("rows");
        for r in rows {
            let state: String = r.try_get(0).expect("state");
            let attempts: i64 = r.try_get(1).expect("attempts");
            let flagged: i64 = r.try_get(2).expect("flag");
            assert_eq!(
                (state.as_str(), attempts, flagged),
                ("planned", 0, 0),
                "{}",
                db.name
            );
        }
        let again = store
            .claim_deliveries(
                C,
                "new",
                lease + SignedDuration::from_secs(2),
                lease + SignedDuration::from_secs(60),
                10,
            )
            .await
            .expect("claim again");
        assert_eq!(again.len(), 8, "{}", db.name);
    }
}

#[tokio::test]
async fn a_wire_mark_never_moves_back() {
    // Two processes under one node name: one marks chunk 7 as it goes out, the other then marks
    // an older number. Chunk 7 was on the wire: after a crash it is in doubt, not released.
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "dead", &[("bao", true)]).await;
        let lease = at + SignedDuration::from_secs(30);
        let targets: Vec<NewDelivery> = (0..4).map(target).collect();
        store
            .expand(C, &claimed[0], &targets, None, "dead", at)
            .await
            .expect("expand");
        let claim = Claim {
            now: at,
            lease_until: lease,
            limit: 4,
            chunk: Some(7),
        };
        let (_, on_wire) = store
            .record_and_claim(C, "dead", &[], at, claim)
            .await
            .expect("claim 7");
        assert_eq!(on_wire.len(), 4, "{}", db.name);
        store.mark_on_wire("dead", 7).await.expect("mark");
        store.mark_on_wire("dead", 5).await.expect("older mark");
        let (resend, unknown) = store
            .recover_in_doubt(C, "new", lease + SignedDuration::from_secs(1), false)
            .await
            .expect("recover");
        assert_eq!((resend, unknown), (4, 0), "{}", db.name);
        let flagged = count(
            &store,
            "SELECT COUNT(*) FROM deliveries WHERE possible_duplicate = 1",
        )
        .await;
        assert_eq!(flagged, 4, "{}", db.name);
    }
}

#[tokio::test]
async fn a_delivery_past_its_deadline_is_not_claimed() {
    // A long send loop claims chunk after chunk; a delivery whose deadline passed meanwhile
    // (a reminder, worthless once the meeting started) is left for the next tick to expire.
    for db in support::databases().await {
        let store = db.store().await;
        let (_, at) = expanded_at_two(&store, "n1", 3).await;
        sqlx::query("UPDATE deliveries SET deadline = $1 WHERE target = $2")
            .bind(at.as_microsecond() - 1)
            .bind(target(1).target)
            .execute(store.pool())
            .await
            .expect("deadline");
        let got = store
            .claim_deliveries(C, "n1", at, at + SignedDuration::from_secs(30), 10)
            .await
            .expect("claim");
        let mut names: Vec<String> = got.into_iter().map(|d| d.target).collect();
        names.sort();
        let mut want = vec![target(0).target, target(2).target];
        want.sort();
        assert_eq!(names, want, "{}", db.name);
    }
}

#[tokio::test]
async fn a_send_not_yet_expanded_is_pending_not_done() {
    for db in support::databases().await {
        let store = db.store().await;
        // Claimed by a daemon that has not written its deliveries yet (as beside `loa send`).
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", true)]).await;
        let p = store.progress(claimed[0].id).await.expect("progress");
        assert_eq!((p.total, p.pending), (0, 1), "{}", db.name);
        store
            .expand(C, &claimed[0], &[target(1)], None, "n1", at)
            .await
            .expect("expand");
        let p = store.progress(claimed[0].id).await.expect("progress");
        assert_eq!((p.total, p.pending), (1, 1), "{}", db.name);
    }
}

/// The refused group deliveries whose members are still to be written to at `at`.
async fn refused_groups(store: &Store, at: Timestamp) -> Vec<RefusedGroup> {
    store.refused_groups(C, at).await.expect("refused")
}

#[tokio::test]
async fn a_refused_group_is_failed_over_once_whichever_daemon_comes_first() {
    for db in support::databases().await {
        let store = db.store().await;
        let (send, at) = expanded_at_two(&store, "n1", 2).await;
        // g0's members; u3 is in g0 and g1; u10 is in g00 only (its id contains g0's).
        let member = |id: &str, groups: &[&str]| loa::deliver::targets::Follower {
            user_id: id.into(),
            village_id: Some("lang-tre".into()),
            in_group: true,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            last_interaction: None,
            display_name: None,
        };
        let followers = [
            member("u1", &["g0"]),
            member("u2", &["g0"]),
            member("u3", &["g0", "g1"]),
            member("u10", &["g00"]),
        ];
        store
            .record_follower_sync(C, &followers, at)
            .await
            .expect("sync");
        assert!(refused_groups(&store, at).await.is_empty());
        // Zalo refused g0 (disabled since the sync).
        sqlx::query(
            "UPDATE deliveries SET state = 'failed', error_code = '-237' WHERE target = 'g0'",
        )
        .execute(store.pool())
        .await
        .expect("refuse");
        let refused = refused_groups(&store, at).await;
        assert_eq!(refused.len(), 1, "{}", db.name);
        assert_eq!(refused[0].group_id, "g0");
        let sent = store.send_targets(send.id).await.expect("targets");
        assert_eq!(sent.iter().filter(|s| s.refused).count(), 1);
        let members: Vec<NewDelivery> = ["u1", "u2"]
            .iter()
            .map(|u| NewDelivery {
                target_kind: "user",
                target: u.to_string(),
                text: refused[0].text.clone(),
                ..target(0)
            })
            .collect();
        // Two daemons at once: one writes, the other finds it done.
        let other = db.store().await;
        let (a, b) = tokio::join!(
            store.fail_over_group(C, &refused[0], &members, &[], "n1", at, at),
            other.fail_over_group(C, &refused[0], &members, &[], "n2", at, at)
        );
        let mut got = [a.expect("n1"), b.expect("n2")];
        got.sort();
        assert_eq!(got, [None, Some(2)], "{}", db.name);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM deliveries WHERE target_kind = 'user' AND state = 'planned'"
            )
            .await,
            2
        );
        assert_eq!(
            count(&store, "SELECT members FROM group_failovers").await,
            2
        );
        assert!(refused_groups(&store, at).await.is_empty());
        // The record no longer counts g0 for anyone; u3 is still reached by g1.
        let mut record: Vec<(String, bool, Vec<String>)> = store
            .followers(C)
            .await
            .expect("followers")
            .into_iter()
            .map(|f| (f.user_id, f.in_group, f.groups))
            .collect();
        record.sort();
        assert_eq!(
            record,
            vec![
                ("u1".into(), false, vec![]),
                ("u10".into(), true, vec!["g00".into()]),
                ("u2".into(), false, vec![]),
                ("u3".into(), true, vec!["g1".into()]),
            ],
            "{}",
            db.name
        );
    }
}

#[tokio::test]
async fn the_latest_zns_quota_report_stands_whichever_daemon_writes_last() {
    for db in support::databases().await {
        let store = db.store().await;
        assert_eq!(store.zns_quota(C).await.expect("read"), None, "{}", db.name);
        let report = |remaining: i64, at: &str, node: &str| StoredQuota {
            daily: 500,
            remaining,
            seen_at: t(at),
            node: node.into(),
        };
        let latest = report(37, "2026-12-01T02:13:00Z", "n1");
        store.put_zns_quota(C, &latest).await.expect("write");
        // Another daemon's report from before it, written late: it does not put back what
        // was spent since.
        let late = report(40, "2026-12-01T02:12:00Z", "n2");
        store.put_zns_quota(C, &late).await.expect("write");
        assert_eq!(
            store.zns_quota(C).await.expect("read").as_ref(),
            Some(&latest),
            "{}",
            db.name
        );
        // A later one replaces it, the next day's renewed quota too.
        let next_day = report(499, "2026-12-02T01:00:00Z", "n2");
        store.put_zns_quota(C, &next_day).await.expect("write");
        assert_eq!(
            store.zns_quota(C).await.expect("read"),
            Some(next_day),
            "{}",
            db.name
        );
    }
}
