//! Followers, details, groups, members and tags.

use loa::deliver::zalo::wire::path;
use serde_json::json;

use super::*;

fn data(q: Value) -> Vec<(&'static str, String)> {
    vec![("data", q.to_string())]
}

fn ids(r: &Reply) -> Vec<String> {
    r.data()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn user_list_pages_and_filters() {
    let h = start(config()).await;
    let list = async |q: Value| h.get(path::USER_LIST, &data(q)).await;
    let all = list(json!({"offset": 0, "count": 50})).await;
    assert_eq!(all.data()["total"], 7);
    let everyone = ids(&all);
    let first = list(json!({"offset": 0, "count": 3, "is_follower": true})).await;
    let second = list(json!({"offset": 3, "count": 3, "is_follower": true})).await;
    assert_eq!(first.data()["total"], 6);
    assert_eq!(
        (
            first.data()["count"].as_u64(),
            second.data()["offset"].as_u64()
        ),
        (Some(3), Some(3))
    );
    let paged: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    let followers: Vec<String> = everyone
        .iter()
        .filter(|u| *u != NOT_FOLLOWER)
        .cloned()
        .collect();
    assert_eq!(paged, followers, "stable order, no overlap");
    let past_end = list(json!({"offset": 6, "count": 3, "is_follower": true})).await;
    assert_eq!(past_end.data()["count"], 0);

    let tagged = list(json!({"offset": 0, "count": 50, "tag_name": "Gò Da"})).await;
    assert_eq!(ids(&tagged), vec![HEAD.to_string()]);
    let week = list(json!({"offset": 0, "count": 50, "last_interaction_period": "L7D"})).await;
    assert!(!ids(&week).contains(&STALE.to_string()));
    assert_eq!(week.data()["total"], 6);
    let month = list(json!({"offset": 0, "count": 50, "last_interaction_period": "L30D"})).await;
    assert_eq!(month.data()["total"], 7);

    assert_eq!(list(json!({"offset": 0, "count": 51})).await.error(), -201);
    assert_eq!(
        list(json!({"offset": 0, "count": 5, "last_interaction_period": "L9Y"}))
            .await
            .error(),
        -201
    );
    assert_eq!(
        h.get(path::USER_LIST, &[("data", "{not json".into())])
            .await
            .error(),
        -201
    );
}

#[tokio::test]
async fn user_detail() {
    let h = start(config()).await;
    let at: Timestamp = "2026-03-04T20:00:00Z".parse().unwrap(); // 05/03 in Vietnam
    h.sim.set_interaction(FRESH, at);
    let r = h
        .get(path::USER_DETAIL, &data(json!({"user_id": FRESH})))
        .await;
    let d = r.data();
    assert_eq!(d["user_id"], FRESH);
    assert_eq!(d["user_is_follower"], true);
    assert_eq!(d["user_last_interaction_date"], "05/03/2026");
    assert_eq!(d["tags_and_notes_info"]["tag_names"], json!(["Làng Trê"]));
    assert_eq!(d["shared_info"]["phone"], "84900000001");
    assert!(d["display_name"].as_str().unwrap().starts_with("Người"));
    let r = h
        .get(path::USER_DETAIL, &data(json!({"user_id": NOT_FOLLOWER})))
        .await;
    assert_eq!(r.error(), -213);
}

#[tokio::test]
async fn groups_and_members() {
    let h = start(config()).await;
    let page = |o: u32, c: u32| vec![("offset", o.to_string()), ("count", c.to_string())];
    let r = h.get(path::GROUPS_OF_OA, &page(0, 10)).await;
    assert_eq!(r.data()["total"], 2, "the OA is not in the foreign group");
    let groups = r.data()["groups"].as_array().unwrap();
    assert_eq!(groups[0]["group_id"], GROUP);
    assert_eq!(
        (
            groups[0]["status"].as_str(),
            groups[0]["total_member"].as_u64()
        ),
        (Some("enabled"), Some(2))
    );
    assert_eq!(groups[1]["status"], "disabled");
    let r = h.get(path::GROUPS_OF_OA, &page(1, 10)).await;
    assert_eq!(r.data()["groups"].as_array().unwrap().len(), 1);

    let mut q = page(1, 10);
    q.push(("group_id", GROUP.into()));
    let r = h.get(path::GROUP_MEMBERS, &q).await;
    assert_eq!(r.data()["total"], 2);
    assert_eq!(r.data()["members"][0]["user_id"], HEAD);
    assert_eq!(r.data()["members"][0]["name"], "Người 06");
    let mut q = page(0, 10);
    q.push(("group_id", FOREIGN_GROUP.into()));
    assert_eq!(h.get(path::GROUP_MEMBERS, &q).await.error(), -403);
}

#[tokio::test]
async fn tags() {
    let h = start(config()).await;
    let tags = || h.get(path::TAGS_OF_OA, &[]);
    assert_eq!(tags().await.data(), &json!(["Làng Trê", "Gò Da"]));
    let tf = json!({"user_id": FRESH, "tag_name": "Trưởng thôn"});
    assert_eq!(h.post(path::TAG_FOLLOWER, tf.clone()).await.error(), 0);
    assert_eq!(
        tags().await.data(),
        &json!(["Làng Trê", "Gò Da", "Trưởng thôn"])
    );
    let q = data(json!({"offset": 0, "count": 50, "tag_name": "Trưởng thôn"}));
    assert_eq!(
        ids(&h.get(path::USER_LIST, &q).await),
        vec![FRESH.to_string()]
    );
    let not_follower = json!({"user_id": NOT_FOLLOWER, "tag_name": "x"});
    assert_eq!(h.post(path::TAG_FOLLOWER, not_follower).await.error(), -213);

    assert_eq!(h.post(path::UNTAG_FOLLOWER, tf).await.error(), 0);
    assert_eq!(h.get(path::USER_LIST, &q).await.data()["total"], 0);
    assert_eq!(
        h.post(path::REMOVE_TAG, json!({"tag_name": "Làng Trê"}))
            .await
            .error(),
        0
    );
    assert_eq!(tags().await.data(), &json!(["Gò Da", "Trưởng thôn"]));
    assert!(h.sim.user(FRESH).unwrap().tags.is_empty());
    assert_eq!(
        h.post(path::REMOVE_TAG, json!({"tag_name": "Làng Trê"}))
            .await
            .error(),
        -201
    );
}
