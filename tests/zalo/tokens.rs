//! Tokens against the simulator's token endpoint: one refresh when two daemons race, a refused
//! refresh never replacing good tokens nor asked again on every send, an idle daemon keeping its
//! token alive, and a new pair the database refuses at first still kept.

use super::*;

#[tokio::test]
async fn two_daemons_race_to_refresh_and_refresh_once() {
    for db in support::databases().await {
        let sim = start_sim(SimConfig {
            void_access_on_refresh: true,
            ..SimConfig::default()
        })
        .await;
        let store = db.store().await;
        let config = zalo_config(&sim);
        let a = Arc::new(channel(&sim, &store, "daemon-a", config.clone()).await);
        // The second daemon has its own connection pool, as a second process would.
        let store_b = Store::open(&db.url).await.expect("second store");
        let b = Arc::new(
            ZaloChannel::open(config, store_b, "default", "daemon-b", Clock::System)
                .await
                .expect("b"),
        );
        // Both learn the token, then Zalo says it has expired: everyone asks for a new one at once.
        a.tokens.access().await.expect("a");
        let first = b.tokens.access().await.expect("b");
        sim.expire_access_tokens();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let ch = if i % 2 == 0 { a.clone() } else { b.clone() };
            let generation = first.generation;
            tasks.push(tokio::spawn(async move {
                ch.tokens.rejected(generation).await.map(|t| t.token)
            }));
        }
        let mut tokens = std::collections::HashSet::new();
        for t in tasks {
            tokens.insert(t.await.expect("join").expect("token"));
        }
        let stats = sim.stats();
        assert_eq!(
            stats.token_refreshes, 1,
            "{}: one refresh for everyone",
            db.name
        );
        assert_eq!(
            stats.refresh_reuse_rejections, 0,
            "{}: never locked out",
            db.name
        );
        assert_eq!(tokens.len(), 1, "{}: everyone uses the new token", db.name);
        // And the new token works for both.
        for ch in [&a, &b] {
            assert!(
                ch.send(&msg(TargetKind::Phone, "84912345678", "x"))
                    .await
                    .is_ok()
            );
        }
    }
}

#[tokio::test]
async fn a_refused_refresh_never_replaces_good_tokens() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let before = stored(&store).await;
    // Spend the stored refresh token behind loa's back (as a second, misconfigured integration
    // would): Zalo then answers loa's refresh with an error body, with HTTP 200.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let err = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("-14002"), "{err}");
    let after = stored(&store).await;
    assert_eq!(
        (
            after.access_token.as_str(),
            after.refresh_token.as_str(),
            after.generation
        ),
        (
            before.access_token.as_str(),
            before.refresh_token.as_str(),
            before.generation
        ),
        "the error body replaced nothing"
    );
    assert!(after.last_error.unwrap_or_default().contains("-14002"));
    assert_eq!(after.refreshing_by, None, "the lease is released");
}

#[tokio::test]
async fn a_refused_refresh_is_not_asked_again_for_every_send_and_a_new_authorisation_is_taken_at_once()
 {
    let sim = one_follower_sim().await;
    let db = support::sqlite();
    let store = db.store().await;
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_at(&sim, &store, "n1", zalo_config(&sim), clock.clone()).await;
    let before = stored(&store).await;
    // In use, as in a running daemon.
    ch.tokens.access().await.expect("token");
    // The refresh token spent behind loa's back, and the access token refused: each send of a
    // fan-out asks for a new one.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let spent_by_the_test = token_calls(&sim);
    for _ in 0..20 {
        assert!(ch.tokens.rejected(before.generation).await.is_err());
    }
    assert_eq!(
        token_calls(&sim) - spent_by_the_test,
        1,
        "one refusal, not one per send"
    );
    // Sends meanwhile wait for the operator to mend it (a spent refresh token), without
    // spending an attempt (counted, a fan-out's messages failed while the operator authorised
    // the OA again), and without a request: the refused access token is not tried again.
    sim.revoke_access_tokens();
    let notice = msg(TargetKind::User, "1000000000000000001", "Họp");
    let send = || ch.send(&notice);
    for _ in 0..5 {
        match send().await {
            Err(SendError::NotNow { code, after, .. }) => {
                assert_eq!(code, "-216");
                // Due again at once, for another daemon: this one claims nothing until its
                // next probe, minutes away.
                assert!(after.is_zero(), "{after:?}");
                let paused = ch.paused_until().expect("paused");
                assert!(
                    paused > clock.now() + SignedDuration::from_mins(5),
                    "{paused}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let refused = sim
        .stats()
        .answers_by_error
        .get(&-216)
        .copied()
        .unwrap_or(0);
    assert_eq!(refused, 0);
    assert_eq!(token_calls(&sim) - spent_by_the_test, 1);
    // The operator authorises the OA again (`loa zalo auth` writes a new pair): the next probe
    // takes it, and the messages go.
    let token = new_pair(&sim, &store, clock.now(), SignedDuration::from_hours(25)).await;
    clock.set(clock.now() + SignedDuration::from_mins(10));
    assert_eq!(code(&send().await), "sent");
    assert_eq!(code(&send().await), "sent");
    assert_eq!(stored(&store).await.access_token, token);
    // And a send that meets a refused access token takes a newer pair at once.
    let access = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect("the new pair");
    assert_eq!(access.token, token);
}

#[tokio::test]
async fn a_token_shorter_lived_than_the_margin_is_not_refreshed_on_every_use() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    // A one-hour token under the default six-hour margin.
    new_pair(
        &sim,
        &store,
        Timestamp::now(),
        SignedDuration::from_hours(1),
    )
    .await;
    let ch = channel_on(&sim, &store, Clock::System).await;
    for _ in 0..20 {
        ch.tokens.access().await.expect("access");
    }
    assert_eq!(token_calls(&sim), 0, "used until half its life is over");
}

#[tokio::test]
async fn an_idle_daemon_keeps_its_token_alive() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_on(&sim, &store, clock.clone()).await;
    let now = clock.now();
    new_pair(&sim, &store, now, SignedDuration::from_hours(25)).await;
    let before = sim.stats().token_refreshes;
    let task = tokio::spawn(
        ch.tokens
            .clone()
            .keep_alive(std::time::Duration::from_millis(20)),
    );
    ch.tokens.access().await.expect("fresh");
    // A day passes with nothing to send: the token is refreshed all the same.
    clock.set(now + SignedDuration::from_hours(24));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sim.stats().token_refreshes == before {
        assert!(std::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    assert_eq!(sim.stats().token_refreshes, before + 1);
}

#[tokio::test]
async fn a_new_pair_the_database_refuses_at_first_is_kept() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let before = stored(&store).await;
    // The database refuses to store a new pair for a moment (a full disk, a fail-over), after
    // Zalo has already spent the old refresh token.
    sqlx::query(
        "CREATE TRIGGER refuse_tokens BEFORE UPDATE OF access_token ON zalo_tokens
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let lifted = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
            sqlx::query("DROP TRIGGER refuse_tokens")
                .execute(store.pool())
                .await
                .expect("drop trigger");
        })
    };
    let access = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect("the new pair is kept until the database takes it");
    lifted.await.expect("lifted");
    let after = stored(&store).await;
    assert_eq!(after.access_token, access.token);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_eq!(after.generation, before.generation + 1);
    // The stored refresh token is the live one: the OA is not locked out.
    let again = ch
        .tokens
        .rejected(access.generation)
        .await
        .expect("refreshes again");
    assert_eq!(again.generation, access.generation + 1);
    assert_eq!(sim.stats().refresh_reuse_rejections, 0);
}

#[tokio::test]
async fn a_failed_early_refresh_waits_instead_of_retrying_on_every_send() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    // A 25-hour token, five hours before it expires: inside the six-hour margin, so each use
    // wants a refresh.
    let now = Timestamp::now();
    let expires = now + SignedDuration::from_hours(25);
    new_pair(&sim, &store, now, SignedDuration::from_hours(25)).await;
    let clock = Clock::manual(now);
    let ch = channel_on(&sim, &store, clock.clone()).await;
    ch.tokens.access().await.expect("fresh");
    clock.set(expires - SignedDuration::from_hours(5));
    let before = stored(&store).await;
    // The refresh token spent behind loa's back: every refresh is refused.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let refused = sim.stats().refresh_reuse_rejections;
    let asks: Vec<_> = (0..20).map(|_| ch.tokens.access()).collect();
    for access in futures_util::future::join_all(asks).await {
        let access = access.expect("the current token still works");
        assert_eq!(access.token, before.access_token);
    }
    for _ in 0..20 {
        ch.tokens.access().await.expect("still works");
    }
    assert_eq!(
        sim.stats().refresh_reuse_rejections - refused,
        1,
        "one refresh tried, then a pause"
    );
}
