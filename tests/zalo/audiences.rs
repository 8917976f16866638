//! Who a broadcast reaches through the daemon: village groups and the followers outside them,
//! the members of a group Zalo lists as disabled, and of groups it refuses between two syncs
//! (their heads, asked only to confirm, then sent the message itself).

use super::*;

#[tokio::test]
async fn followers_outside_groups_are_reached_one_by_one() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(300, SimConfig::default(), |c| c, "normal").await;
    let report = daemon.tick(due, &|| false).await.expect("tick");
    // Four village groups (each holding only its head), and each of the other 296 followers by
    // `message/cs`.
    assert_eq!(report.sent, 300, "{report:?}");
    let messages = sim.messages();
    assert_eq!(messages.iter().filter(|m| m.kind == "group").count(), 4);
    assert_eq!(messages.iter().filter(|m| m.kind == "cs").count(), 296);
    let ids = texts(
        &daemon.store,
        "SELECT provider_message_id FROM deliveries WHERE state = 'sent'",
    )
    .await;
    let sim_ids: std::collections::HashSet<&str> =
        messages.iter().map(|m| m.message_id.as_str()).collect();
    assert!(
        ids.iter().all(|id| sim_ids.contains(id.as_str())),
        "every recorded id is Zalo's"
    );
}

/// Whom the simulator's messages of `kind` (`cs`, `group`, `zns`) were sent to, in order.
fn sent_to(messages: &[loa::sim::SimMessage], kind: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.to.clone())
        .collect()
}

#[tokio::test]
async fn the_members_of_a_disabled_village_group_are_reached_one_by_one() {
    let mut population = villages_of(200, 1.0);
    // Zalo has disabled one village's group; listmember still names its members.
    population.groups[1].disabled = true;
    let disabled = population.groups[1].group_id.clone();
    let members: std::collections::BTreeSet<String> =
        population.groups[1].members.iter().cloned().collect();
    assert!(members.len() > 10, "{members:?}");
    let (sim, _db, _dir, daemon, due) =
        setup_for(population, SimConfig::default(), |c| c, "normal").await;
    daemon.tick(due, &|| false).await.expect("tick");
    let messages = sim.messages();
    // The three other groups carry it; the disabled one's members get it one by one.
    let groups = sent_to(&messages, "group");
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert!(!groups.contains(&disabled));
    let one_by_one: std::collections::BTreeSet<String> =
        sent_to(&messages, "cs").into_iter().collect();
    assert_eq!(one_by_one, members);
    // The group's own message is recorded as refused, in Zalo's words.
    let refused = texts(
        &daemon.store,
        "SELECT error_code FROM deliveries WHERE state = 'failed'",
    )
    .await;
    assert_eq!(refused, vec!["-237".to_string()]);
}

#[tokio::test]
async fn members_of_village_groups_refused_since_the_sync_are_reached_one_by_one_once() {
    for db in support::databases().await {
        let population = villages_of(200, 1.0);
        let (sim, _db, _dir, daemon, due) =
            setup_in(db, population, SimConfig::default(), |c| c, "normal").await;
        // After the sync, Zalo disables one village's group and the OA is taken out of another.
        let mut groups = sim.population().groups;
        groups[1].disabled = true;
        groups[2].oa_is_member = false;
        let refused = [groups[1].group_id.clone(), groups[2].group_id.clone()];
        let mut members: Vec<String> = groups[1].members.clone();
        members.extend(groups[2].members.iter().cloned());
        members.sort();
        assert!(members.len() > 20, "{members:?}");
        for g in &groups[1..3] {
            sim.set_group(g.clone());
        }
        daemon.tick(due, &|| false).await.expect("tick");
        let messages = sim.messages();
        let groups_sent = sent_to(&messages, "group");
        assert_eq!(groups_sent.len(), 2, "{groups_sent:?}");
        // Each member of the two refused groups got the message once, in that same tick.
        let mut one_by_one = sent_to(&messages, "cs");
        one_by_one.sort();
        assert_eq!(one_by_one, members);
        let mut codes = texts(
            &daemon.store,
            "SELECT error_code FROM deliveries WHERE state = 'failed' ORDER BY error_code",
        )
        .await;
        codes.sort();
        assert_eq!(codes, vec!["-237".to_string(), "-403".to_string()]);
        assert_eq!(
            states(&daemon.store).await.get("sent").copied(),
            Some(2 + members.len() as i64)
        );
        // Nothing more on the next ticks: the failover is done once.
        for later in [1, 60] {
            let at = due + SignedDuration::from_secs(later);
            daemon.tick(at, &|| false).await.expect("tick");
        }
        assert_eq!(sim.messages().len(), messages.len());
        // Until the next sync, the record no longer counts anyone as reached by those groups.
        let followers = daemon.store.followers("default").await.expect("followers");
        assert!(
            followers
                .iter()
                .all(|f| !f.groups.iter().any(|g| refused.contains(g))),
            "{followers:?}"
        );
        let out = followers.iter().filter(|f| !f.in_group).count();
        assert_eq!(out, members.len());
    }
}

#[tokio::test]
async fn a_head_asked_only_to_confirm_is_sent_the_message_when_zalo_refuses_their_group() {
    let population = villages_of(40, 1.0);
    let (sim, _db, _dir, daemon, due) = setup_repo(
        support::sqlite(),
        population,
        SimConfig::default(),
        |c| c,
        repo_with_heads,
    )
    .await;
    let links = loa::confirm::link::Links::new(
        b"test commune secret",
        "https://loa.test",
        SignedDuration::from_hours(3),
    );
    let daemon = daemon.with_links(links.clone());
    // After the sync, Zalo disables the second village's group.
    let mut groups = sim.population().groups;
    groups[1].disabled = true;
    sim.set_group(groups[1].clone());
    let population = sim.population();
    let head_of = |g: &SimGroup| population.head_of(&g.name).expect("head").user_id.clone();
    let (refused_head, other_head) = (head_of(&groups[1]), head_of(&groups[0]));
    daemon.tick(due, &|| false).await.expect("tick");
    let messages = sim.messages();
    let to = |user: &str| -> Vec<String> {
        messages
            .iter()
            .filter(|m| m.to == user)
            .map(|m| m.text.clone())
            .collect()
    };
    // The head whose group took the message: their request alone.
    let other = to(&other_head);
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(
        other[0].contains("Xin ông/bà xác nhận đã nhận"),
        "{other:?}"
    );
    // The head whose group Zalo refused: the request, then the message itself with their link.
    let refused = to(&refused_head);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].contains("Xin ông/bà xác nhận đã nhận"),
        "{refused:?}"
    );
    assert!(
        refused[1].starts_with("Nhóm Zalo của thôn không nhận được thông báo này")
            && refused[1].contains(&format!("Thông báo thử · {}", groups[1].name)),
        "{refused:?}"
    );
    let url = loa::confirm::link::find_url(&refused[1], "https://loa.test").expect("link");
    links
        .verify(url.rsplit('/').next().expect("token"), Timestamp::now())
        .expect("the link works");
    // The group's other members, one by one, once each.
    for m in groups[1].members.iter().filter(|m| **m != refused_head) {
        assert_eq!(to(m).len(), 1, "{m}");
    }
    // Recorded as a follow-up of the send, sent; nothing more on the next ticks.
    assert_eq!(
        scalar(
            &daemon.store,
            "SELECT COUNT(*) FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id
             WHERE o.rule = -3 AND o.parent_id IS NOT NULL AND d.state = 'sent'"
        )
        .await,
        1
    );
    for later in [1, 60] {
        let at = due + SignedDuration::from_secs(later);
        daemon.tick(at, &|| false).await.expect("tick");
    }
    assert_eq!(sim.messages().len(), messages.len());
}
