//! Followers' Zalo names: looked up after a sync a few at a time, those outside village groups
//! first, and shown in the reports for sends expanded before the name was known.

use super::*;

fn follower(id: &str, in_group: bool, name: Option<&str>) -> loa::deliver::targets::Follower {
    loa::deliver::targets::Follower {
        user_id: id.into(),
        village_id: Some("lang-tre".into()),
        in_group,
        groups: if in_group {
            vec!["g0".into()]
        } else {
            Vec::new()
        },
        last_interaction: None,
        display_name: name.map(str::to_string),
    }
}

#[tokio::test]
async fn names_learnt_after_a_send_show_in_its_report() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("hop", false)]).await;
        let followers = [
            follower("u1", true, None),
            follower("u2", false, None),
            follower("u3", false, Some("Lê Thị Mai")),
            follower("u4", false, None),
        ];
        store
            .record_follower_sync(C, &followers, at)
            .await
            .expect("sync");
        // The one in a group comes last: what the reports count one by one is named first.
        let unnamed = store.followers_without_name(C, 10).await.expect("unnamed");
        assert_eq!(unnamed, ["u2", "u4", "u1"], "{}", db.name);
        assert_eq!(
            store.followers_without_name(C, 1).await.expect("unnamed"),
            ["u2"]
        );
        // The send went to g0, and to u2 and u4 before their names were known.
        let to = |u: &str| NewDelivery {
            target_kind: "user",
            target: u.into(),
            ..target(0)
        };
        let deliveries = [target(0), to("u2"), to("u4")];
        expand_with(&store, &claimed[0], &deliveries, &[], at).await;
        // Zalo names u2 and has no name for u4: neither is asked again, and a later sync that
        // learns no name keeps the one known.
        store
            .record_follower_names(
                C,
                &[
                    ("u2".into(), "Đinh Văn Hùng".into()),
                    ("u4".into(), String::new()),
                ],
                at,
            )
            .await
            .expect("names");
        store
            .record_follower_sync(C, &followers, at + SignedDuration::from_secs(60))
            .await
            .expect("sync");
        assert_eq!(
            store.followers_without_name(C, 10).await.expect("unnamed"),
            ["u1"],
            "{}",
            db.name
        );
        let people = store
            .report_people(C, &loa::ledger::report::Selection::default())
            .await
            .expect("people");
        let person = |target: &str| {
            people
                .iter()
                .find(|p| p.target == target)
                .unwrap_or_else(|| panic!("{target} in {people:?}"))
                .person
                .clone()
        };
        assert_eq!(
            person("u2").as_deref(),
            Some("Đinh Văn Hùng"),
            "{}",
            db.name
        );
        assert_eq!(person("u4"), None, "{}", db.name);
        assert_eq!(person("g0"), None, "{}", db.name);
    }
}
