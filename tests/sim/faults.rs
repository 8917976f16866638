//! The rate limit and injected faults.

use loa::sim::Faults;

use super::*;

#[tokio::test]
async fn rate_limit_counts_and_headers() {
    let h = start(SimConfig {
        rate_limit: 5,
        rate_window: Duration::from_secs(3),
        ..config()
    })
    .await;
    for i in 0..5u32 {
        let r = h.cs(FRESH, "x").await;
        assert_eq!(r.error(), 0, "call {i} is within the limit");
        assert_eq!((r.limit, r.remain), (Some(5), Some(4 - i)));
    }
    let r = h.cs(FRESH, "x").await;
    assert_eq!((r.error(), r.limit, r.remain), (-32, Some(5), Some(0)));
    let stats = h.sim.stats();
    assert_eq!((stats.rate_limited, stats.max_requests_in_window), (1, 6));
    assert_eq!(h.sim.messages().len(), 5);
}

#[tokio::test]
async fn rate_limit_burst() {
    let h = start(config()).await;
    h.sim.set_faults(Faults {
        rate_limit_burst: 2,
        ..Faults::default()
    });
    assert_eq!(h.cs(FRESH, "x").await.error(), -32);
    assert_eq!(h.cs(FRESH, "x").await.error(), -32);
    assert_eq!(h.cs(FRESH, "x").await.error(), 0);
}

#[tokio::test]
async fn a_share_of_server_errors() {
    let h = start(SimConfig {
        faults: Faults {
            server_error_share: 0.25,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    let mut errors = 0;
    for _ in 0..400 {
        let r = h
            .http
            .post(h.url(path::MESSAGE_CS))
            .header(header::ACCESS_TOKEN, &h.tokens.access_token)
            .json(&cs_body(FRESH, "x"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => {}
            500 | 502 | 503 => errors += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(
        (70..=130).contains(&errors),
        "{errors} server errors of 400"
    );
    assert_eq!(h.sim.messages().len(), 400 - errors, "5xx records nothing");
    assert_eq!(h.sim.stats().server_errors, errors as u64);
}

#[tokio::test]
async fn timeouts_hang_then_drop_and_some_are_recorded() {
    let h = start(config()).await;
    h.sim.set_faults(Faults {
        timeout_share: 1.0,
        timeout_hang: Duration::from_millis(100),
        ..Faults::default()
    });
    let calls = (0..20).map(|_| {
        let started = Instant::now();
        let request = h
            .http
            .post(h.url(path::MESSAGE_CS))
            .header(header::ACCESS_TOKEN, &h.tokens.access_token)
            .json(&cs_body(FRESH, "x"))
            .send();
        async move { (request.await.is_err(), started.elapsed()) }
    });
    for (failed, took) in futures_util::future::join_all(calls).await {
        assert!(failed, "a timed-out call gets no answer");
        assert!(took >= Duration::from_millis(100), "{took:?}");
    }
    let recorded = h.sim.messages().len();
    assert!(
        (3..=17).contains(&recorded),
        "{recorded} of 20 recorded before the hang"
    );
}

#[tokio::test]
async fn drops_close_the_connection_without_an_answer() {
    let h = start(config()).await;
    h.sim.set_faults(Faults {
        drop_share: 1.0,
        ..Faults::default()
    });
    for _ in 0..5 {
        let r = h
            .http
            .post(h.url(path::MESSAGE_CS))
            .header(header::ACCESS_TOKEN, &h.tokens.access_token)
            .json(&cs_body(FRESH, "x"))
            .send()
            .await;
        assert!(
            r.is_err(),
            "no status line, not even headers: {:?}",
            r.map(|r| r.status())
        );
    }
    assert!(h.sim.messages().is_empty());
    assert_eq!(h.sim.stats().drops, 5);
    // Back to normal, over the same client.
    h.sim.set_faults(Faults::default());
    assert_eq!(h.cs(FRESH, "x").await.error(), 0);
}

#[tokio::test]
async fn faults_and_inspection_over_http() {
    let h = start(config()).await;
    let r = h
        .http
        .post(h.url("/_sim/faults"))
        .json(&json!({"rate_limit_burst": 1, "timeout_hang": 250}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.cs(FRESH, "x").await.error(), -32);
    h.cs(FRESH, "một").await;
    h.cs(HEAD, "hai").await;
    let msgs: Vec<Value> = h
        .http
        .get(h.url("/_sim/messages"))
        .query(&[("to", HEAD), ("kind", "cs")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0]["text"].as_str(), msgs[0]["seq"].as_u64()),
        (Some("hai"), Some(2))
    );
    let since: Vec<Value> = h.control(false, "/_sim/messages?since_seq=1").await;
    assert_eq!(since.len(), 1);
    let stats: Value = h.control(false, "/_sim/stats").await;
    assert_eq!(stats["messages"], 2);
    assert_eq!(stats["answers_by_error"]["-32"], 1);
    let pair: TokenReply = h.control(true, "/_sim/tokens").await;
    let r = h
        .post_with(path::MESSAGE_CS, &pair.access_token, cs_body(FRESH, "x"))
        .await;
    assert_eq!(r.error(), 0);
    h.http.post(h.url("/_sim/revoke")).send().await.unwrap();
    assert_eq!(h.cs(FRESH, "x").await.error(), -216);
    let people: Value = h.control(false, "/_sim/people?limit=2").await;
    assert_eq!(people["users"].as_array().unwrap().len(), 2);
}
