//! Followers' names from Zalo: the sync names a village group's members from its member list and
//! the heads from `user/detail`, then looks up a few others each time; the reports show the
//! names for sends made before they were known.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// Every current follower in the ledger, with the name it knows for them.
async fn known_names(store: &Store) -> BTreeMap<String, Option<String>> {
    sqlx::query("SELECT user_id, display_name FROM followers WHERE following = 1")
        .fetch_all(store.pool())
        .await
        .expect("followers")
        .iter()
        .map(|r| (r.get("user_id"), r.get("display_name")))
        .collect()
}

fn named(known: &BTreeMap<String, Option<String>>) -> BTreeSet<String> {
    known
        .iter()
        .filter(|(_, n)| n.is_some())
        .map(|(u, _)| u.clone())
        .collect()
}

#[tokio::test]
async fn followers_are_named_by_groups_heads_and_a_few_lookups_a_sync() {
    let mut population = villages_of(80, 0.5);
    // The first village's head is not in its group: their name comes from `user/detail`.
    let heads: BTreeSet<String> = population
        .groups
        .iter()
        .map(|g| population.head_of(&g.name).expect("head").user_id.clone())
        .collect();
    let first_head = population
        .head_of(&population.groups[0].name)
        .expect("head")
        .user_id
        .clone();
    population.groups[0].members.retain(|m| *m != first_head);
    let (sim, _db, dir, daemon, due) = setup_repo(
        support::sqlite(),
        population.clone(),
        SimConfig::default(),
        |c| ZaloConfig {
            names_per_sync: 10,
            ..c
        },
        repo_with_heads,
    )
    .await;
    let zalo: HashMap<&str, &str> = population
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u.display_name.as_str()))
        .collect();
    let members: BTreeSet<String> = population
        .groups
        .iter()
        .flat_map(|g| g.members.iter().cloned())
        .collect();
    let known = known_names(&daemon.store).await;
    for (user, name) in &known {
        if let Some(name) = name {
            assert_eq!(Some(&name.as_str()), zalo.get(user.as_str()), "{user}");
        }
    }
    // The members and the heads, and of the others the first ten by id.
    let others: Vec<&String> = known
        .keys()
        .filter(|u| !members.contains(*u) && !heads.contains(*u))
        .collect();
    assert!(others.len() > 20, "{}", others.len());
    let mut expected: BTreeSet<String> = members.union(&heads).cloned().collect();
    expected.extend(others[..10].iter().map(|u| u.to_string()));
    assert_eq!(named(&known), expected);
    // One for each head (their last interaction decides how they are written to), then ten.
    assert_eq!(
        sim.stats().calls("/v3.0/oa/user/detail"),
        heads.len() as u64 + 10
    );

    // The send goes out; then a sync with room for all names the rest.
    daemon.tick(due, &|| false).await.expect("tick");
    let config = ZaloConfig {
        names_per_sync: 1_000,
        ..zalo_config(&sim)
    };
    let ch = channel(&sim, &daemon.store, "n2", config).await;
    let commune = loa::announce::load_commune(&dir.path().join("announcements")).expect("commune");
    let report = ch
        .sync_followers(&daemon.store, "default", &commune, Timestamp::now())
        .await
        .expect("sync");
    assert_eq!(report.names, others.len() - 10);
    let known = known_names(&daemon.store).await;
    assert_eq!(named(&known).len(), known.len());
    // The report names everyone the send wrote to one by one with Zalo's names; the heads
    // asked to confirm under their names in commune.yaml (the one outside the group is written
    // to as a follower).
    let people = daemon
        .store
        .report_people("default", &loa::ledger::report::Selection::default())
        .await
        .expect("people");
    let one_by_one: Vec<_> = people.iter().filter(|p| p.target_kind == "user").collect();
    assert!(one_by_one.len() > 20, "{}", one_by_one.len());
    for p in one_by_one {
        let name = p.person.as_deref().expect("named");
        if heads.contains(&p.target) && name.starts_with("Trưởng ") {
            assert_ne!(p.target, first_head);
        } else {
            assert_eq!(Some(&name), zalo.get(p.target.as_str()), "{}", p.target);
        }
    }
}
