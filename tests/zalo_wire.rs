//! The client's requests, byte for byte, against the documented wire format: a bare capturing
//! server (not the simulator, which shares our wire types) records every request loa makes and
//! answers with Zalo's documented success bodies. Also the webhook signature against a value
//! computed by `sha256sum`, independently of loa.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use jiff::{SignedDuration, Timestamp};
use loa::clock::Clock;
use loa::deliver::zalo::channel::ZaloChannel;
use loa::deliver::zalo::config::{Secret, ZaloConfig};
use loa::deliver::{Channel, Outgoing, TargetKind};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn capture(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    log.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
    });
    let reply = match path.as_str() {
        "/v4/oa/access_token" => {
            json!({"access_token":"new-access","refresh_token":"new-refresh","expires_in":"90000"})
        }
        "/v3.0/oa/message/cs" => {
            json!({"error":0,"message":"Success","data":{"message_id":"m-cs","user_id":"2468458835296197922","sent_time":"1626926349402"}})
        }
        "/v3.0/oa/group/message" => {
            json!({"error":0,"message":"Success","data":{"message_id":"m-group","group_id":"f414c8f76fa586fbdfb4"}})
        }
        "/message/template" => {
            json!({"error":0,"message":"Success","data":{"msg_id":"m-zns","sent_time":"1626926349402","quota":{"dailyQuota":"500","remainingQuota":"499"}}})
        }
        "/v3.0/oa/user/getlist" => {
            json!({"error":0,"message":"Success","data":{"total":1,"count":1,"offset":0,"users":[{"user_id":"2468458835296197922"}]}})
        }
        "/v3.0/oa/group/listmember" => {
            json!({"error":0,"message":"Success","data":{"total":1,"members":[{"user_id":"2468458835296197922","name":"Hùng"}]}})
        }
        "/v3.0/oa/user/detail" => {
            json!({"error":0,"message":"Success","data":{"user_id":"2468458835296197922","display_name":"Hùng","user_is_follower":true,"user_last_interaction_date":"20/11/2026"}})
        }
        _ => json!({"error":-201,"message":"unknown path"}),
    };
    axum::Json(reply).into_response()
}

use axum::response::IntoResponse as _;

async fn server() -> (String, Log) {
    let log: Log = Default::default();
    let app = Router::new().fallback(capture).with_state(log.clone());
    let listener = loa::listen::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
}

fn config(base: &str) -> ZaloConfig {
    ZaloConfig {
        app_id: "3304985733420011111".into(),
        app_secret: Secret::new("app-secret"),
        oauth_url: base.into(),
        api_url: base.into(),
        zns_url: base.into(),
        zns_template_id: "loa-announcement".into(),
        appsecret_proof: true,
        rate_limit: 0,
        ..ZaloConfig::default()
    }
}

fn outgoing<'a>(kind: TargetKind, target: &'a str, text: &'a str) -> Outgoing<'a> {
    Outgoing {
        delivery_id: 7,
        announcement_id: "bao-so-3",
        kind,
        target,
        text,
        urgent: true,
        possible_duplicate: false,
        fallback: None,
        sent_parts: None,
    }
}

#[tokio::test]
async fn requests_match_the_documented_wire_format() {
    let (base, log) = server().await;
    let db = support::sqlite();
    let store = db.store().await;
    let now = Timestamp::now();
    // An expired pair: the first send must refresh first.
    store
        .put_zalo_tokens(
            "default",
            "old-access",
            "old-refresh",
            now - SignedDuration::from_secs(1),
            false,
            now,
        )
        .await
        .unwrap();
    let channel = ZaloChannel::open(config(&base), store.clone(), "default", "n1", Clock::System)
        .await
        .unwrap();
    let text = "Bão số 3: người dân Làng Trê chú ý.";
    for (kind, target) in [
        (TargetKind::Group, "f414c8f76fa586fbdfb4"),
        (TargetKind::User, "2468458835296197922"),
        (TargetKind::Phone, "84912345678"),
    ] {
        channel
            .send(&outgoing(kind, target, text))
            .await
            .expect("sent");
    }
    let commune = loa::announce::load_commune(std::path::Path::new("announcements"))
        .expect("example commune");
    channel
        .sync_followers(&store, "default", &commune, now)
        .await
        .expect("sync");

    let seen = log.lock().unwrap().clone();
    // The refresh: a form body with the grant, and the app secret in `secret_key`.
    let token = &seen[0];
    assert_eq!(
        (token.method.as_str(), token.path.as_str()),
        ("POST", "/v4/oa/access_token")
    );
    assert_eq!(token.headers["secret_key"], "app-secret");
    assert_eq!(
        token.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        std::str::from_utf8(&token.body).unwrap(),
        "grant_type=refresh_token&app_id=3304985733420011111&refresh_token=old-refresh"
    );
    // The refreshed pair is what the database holds now.
    let stored = store.zalo_tokens("default").await.unwrap().unwrap();
    assert_eq!(
        (stored.access_token.as_str(), stored.refresh_token.as_str()),
        ("new-access", "new-refresh")
    );

    let json_of = |s: &Seen| serde_json::from_slice::<Value>(&s.body).unwrap();
    let sends: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path != "/v4/oa/access_token")
        .collect();
    assert_eq!(sends.len(), 3);
    for s in &sends {
        // The bare `access_token` header, never `Authorization: Bearer`; JSON bodies; the proof.
        assert_eq!(s.headers["access_token"], "new-access");
        assert!(s.headers.get("authorization").is_none());
        assert_eq!(s.headers["content-type"], "application/json");
        assert_eq!(
            s.headers["appsecret_proof"],
            loa::deliver::zalo::request::appsecret_proof("app-secret", "new-access").as_str()
        );
    }
    assert_eq!(sends[0].path, "/v3.0/oa/group/message");
    assert_eq!(
        json_of(sends[0]),
        json!({"recipient":{"group_id":"f414c8f76fa586fbdfb4"},"message":{"text":text}})
    );
    assert_eq!(sends[1].path, "/v3.0/oa/message/cs");
    assert_eq!(
        json_of(sends[1]),
        json!({"recipient":{"user_id":"2468458835296197922"},"message":{"text":text}})
    );
    assert_eq!(sends[2].path, "/message/template");
    assert_eq!(
        json_of(sends[2]),
        json!({"phone":"84912345678","template_id":"loa-announcement","template_data":{"content":text},"tracking_id":"loa-7-1"})
    );

    // GETs: `data=<JSON>` for the user calls, plain parameters for the group ones.
    let gets: Vec<&Seen> = seen.iter().filter(|s| s.method == "GET").collect();
    let data_of = |s: &Seen| -> Value {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&s.query).unwrap();
        assert_eq!(pairs.len(), 1, "one `data` parameter: {}", s.query);
        assert_eq!(pairs[0].0, "data");
        serde_json::from_str(&pairs[0].1).unwrap()
    };
    let first_list = gets
        .iter()
        .find(|s| s.path == "/v3.0/oa/user/getlist")
        .unwrap();
    assert_eq!(
        data_of(first_list),
        json!({"offset":0,"count":50,"is_follower":true})
    );
    let tagged = gets
        .iter()
        .filter(|s| s.path == "/v3.0/oa/user/getlist")
        .map(|s| data_of(s))
        .find(|d| d.get("tag_name").is_some())
        .unwrap();
    assert_eq!(
        tagged,
        json!({"offset":0,"count":50,"is_follower":true,"tag_name":"Làng Trê"})
    );
    let members = gets
        .iter()
        .find(|s| s.path == "/v3.0/oa/group/listmember")
        .unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&members.query).unwrap();
    assert_eq!(
        pairs,
        vec![
            ("group_id".to_string(), "f414c8f76fa586fbdfb4".to_string()),
            ("offset".to_string(), "0".to_string()),
            ("count".to_string(), "50".to_string())
        ]
    );
    let detail = gets
        .iter()
        .find(|s| s.path == "/v3.0/oa/user/detail")
        .unwrap();
    assert_eq!(data_of(detail), json!({"user_id":"2468458835296197922"}));
    for g in &gets {
        assert_eq!(g.headers["access_token"], "new-access");
    }
    // The head's last interaction ("20/11/2026") was read and kept.
    let followers = store.followers("default").await.unwrap();
    assert_eq!(followers.len(), 1);
    assert_eq!(followers[0].village_id.as_deref(), Some("lang-tre"));
    assert!(followers[0].in_group);
    // The capturing server lists him in each of the commune's four groups: all kept.
    assert_eq!(followers[0].groups.len(), 4, "{:?}", followers[0].groups);
    assert!(
        followers[0]
            .groups
            .iter()
            .any(|g| g == "f414c8f76fa586fbdfb4")
    );
    assert_eq!(
        followers[0].last_interaction.unwrap(),
        jiff::civil::date(2026, 11, 20)
            .to_zoned(jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap())
            .unwrap()
            .timestamp()
    );
}

#[test]
fn webhook_signature_matches_sha256sum() {
    let body = r#"{"app_id":"3304985733420011111","event_name":"user_send_text","sender":{"id":"2468458835296197922"},"recipient":{"id":"1032900368129101010"},"message":{"text":"Đã nhận","msg_id":"abc"},"timestamp":"1763800000000"}"#.as_bytes();
    let concatenation = [
        b"3304985733420011111".as_slice(),
        body,
        b"1763800000000".as_slice(),
        b"oa-secret".as_slice(),
    ]
    .concat();
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&concatenation)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let expected = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let ours = loa::deliver::zalo::wire::signature(
        "3304985733420011111",
        body,
        "1763800000000",
        "oa-secret",
    );
    assert_eq!(ours, expected);
    let verify = loa::deliver::zalo::wire::verify_signature;
    assert!(verify(
        &format!("mac={expected}"),
        "3304985733420011111",
        body,
        "oa-secret"
    ));
    assert!(verify(&expected, "3304985733420011111", body, "oa-secret"));
    // One byte changed anywhere: refused.
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    assert!(!verify(
        &expected,
        "3304985733420011111",
        &tampered,
        "oa-secret"
    ));
    assert!(!verify(&expected, "other-app", body, "oa-secret"));
}

/// A channel whose Zalo is `app` (a bare server), configured by `adjust`, with a pair stored
/// that expires at `expires` (`None`: in 20 hours).
async fn channel_against(
    app: Router,
    adjust: impl FnOnce(ZaloConfig) -> ZaloConfig,
    expires: Option<Timestamp>,
) -> (ZaloChannel, support::TestDb) {
    let listener = loa::listen::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let db = support::sqlite();
    let store = db.store().await;
    let now = Timestamp::now();
    let expires = expires.unwrap_or(now + SignedDuration::from_hours(20));
    store
        .put_zalo_tokens("default", "access", "refresh", expires, false, now)
        .await
        .unwrap();
    let ch = ZaloChannel::open(adjust(config(&base)), store, "default", "n1", Clock::System)
        .await
        .unwrap();
    (ch, db)
}

/// Answers every send with an error whose `data` is not a success's (`""`, `{}`), and `user/detail`
/// with the phone as a number.
async fn odd_replies(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let reply = match uri.path() {
        "/v3.0/oa/message/cs" => {
            json!({"error":-213,"message":"User has not followed OA","data":""})
        }
        "/v3.0/oa/group/message" => json!({"error":-237,"message":"Group is disabled","data":{}}),
        "/v3.0/oa/user/detail" => json!({"error":0,"message":"Success","data":{
            "user_id":"2468458835296197922","display_name":"Hùng","user_is_follower":true,
            "user_last_interaction_date":"20/11/2026","shared_info":{"phone":84912345678u64,"name":"Hùng"}}}),
        _ => json!({"error":-201,"message":"unknown path"}),
    };
    axum::Json(reply).into_response()
}

#[tokio::test]
async fn an_error_reply_with_odd_data_is_still_the_error_and_a_numeric_phone_is_read() {
    let (ch, _db) = channel_against(Router::new().fallback(odd_replies), |c| c, None).await;
    for (kind, target, want) in [
        (TargetKind::User, "2468458835296197922", "-213"),
        (TargetKind::Group, "f414c8f76fa586fbdfb4", "-237"),
    ] {
        match ch.send(&outgoing(kind, target, "Thông báo")).await {
            Err(loa::deliver::SendError::Final { code, .. }) => assert_eq!(code, want),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    let detail: loa::deliver::zalo::wire::UserDetail = serde_json::from_value(json!({
        "user_id":"1","display_name":"Hùng","user_is_follower":true,
        "shared_info":{"phone":84912345678u64}
    }))
    .unwrap();
    assert_eq!(
        detail.shared_info.map(|s| s.phone).as_deref(),
        Some("84912345678")
    );
}

/// Answers every send with a success whose `data` is not the documented one: none at all on
/// `message/cs`, a string on group sends, and on ZNS a numeric `msg_id` beside a numeric
/// `sent_time` and a partial quota.
async fn odd_successes(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let reply = match uri.path() {
        "/v3.0/oa/message/cs" => json!({"error":0,"message":"Success"}),
        "/v3.0/oa/group/message" => json!({"error":0,"message":"Success","data":""}),
        "/message/template" => json!({"error":0,"message":"Success","data":{
            "msg_id":1234567890123u64,"sent_time":1626926349402u64,"quota":{"dailyQuota":500}}}),
        _ => json!({"error":-201,"message":"unknown path"}),
    };
    axum::Json(reply).into_response()
}

#[tokio::test]
async fn a_success_with_odd_data_is_sent_not_sent_again() {
    let (ch, _db) = channel_against(Router::new().fallback(odd_successes), |c| c, None).await;
    for (kind, target, want) in [
        (TargetKind::User, "2468458835296197922", "-"),
        (TargetKind::Group, "f414c8f76fa586fbdfb4", "-"),
        (TargetKind::Phone, "84912345678", "1234567890123"),
    ] {
        match ch.send(&outgoing(kind, target, "Thông báo")).await {
            Ok(sent) => assert_eq!(sent.message_id, want, "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

/// A token endpoint that takes two seconds to answer.
async fn slow_tokens(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if uri.path() == "/v4/oa/access_token" {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        return axum::Json(
            json!({"access_token":"new-access","refresh_token":"new-refresh","expires_in":"90000"}),
        )
        .into_response();
    }
    axum::Json(json!({"error":-201,"message":"unknown path"})).into_response()
}

#[tokio::test]
async fn a_slow_token_refresh_is_waited_for_longer_than_a_send() {
    // A refresh whose answer is lost to a timeout may have rotated the pair at Zalo, leaving
    // the OA to be authorised again: the token call waits 30 s, whatever a send's timeout is.
    let (ch, _db) = channel_against(
        Router::new().fallback(slow_tokens),
        |c| ZaloConfig {
            timeout_ms: 500,
            ..c
        },
        Some(Timestamp::now()),
    )
    .await;
    let access = ch.tokens.access().await.expect("refreshed");
    assert_eq!(access.token, "new-access");
}

/// Answers `message/cs` with a gateway's 502 and group sends with a 503.
async fn gateway_errors(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match uri.path() {
        "/v3.0/oa/message/cs" => axum::http::StatusCode::BAD_GATEWAY.into_response(),
        _ => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[tokio::test]
async fn a_gateways_502_may_have_delivered_and_a_503_did_not() {
    let (ch, _db) = channel_against(Router::new().fallback(gateway_errors), |c| c, None).await;
    for (kind, target, doubt) in [
        (TargetKind::User, "2468458835296197922", true),
        (TargetKind::Group, "f414c8f76fa586fbdfb4", false),
    ] {
        match ch.send(&outgoing(kind, target, "Thông báo")).await {
            Err(loa::deliver::SendError::RetryLater { in_doubt, .. }) => {
                assert_eq!(in_doubt, doubt, "{kind:?}")
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}
