//! Broadcasts through the daemon when Zalo gets in the way: a token expiring midway, an OA
//! Zalo refuses (one probe each ten minutes, a restart, another daemon), pacing at the rate
//! limit, and 5xx and timeouts with every recipient final and none lost.

use super::*;

#[tokio::test]
async fn token_expiry_in_the_middle_of_a_broadcast() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(1500, SimConfig::default(), |c| c, "urgent").await;
    // Expire the token once some messages have gone out, while the broadcast runs.
    let expire = async {
        while sim.stats().messages < 300 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sim.expire_access_tokens();
    };
    let (report, ()) = tokio::join!(daemon.tick(due, &|| false), expire);
    let report = report.expect("tick");
    assert_eq!(report.sent, 1500, "{report:?}");
    let stats = sim.stats();
    assert_eq!(stats.token_refreshes, 1);
    assert_eq!(stats.refresh_reuse_rejections, 0);
    assert!(
        stats.answers_by_error.get(&-220).copied().unwrap_or(0) >= 1,
        "the expiry was seen mid-broadcast"
    );
    assert_eq!(states(&daemon.store).await.get("sent"), Some(&1500));
}

/// Zalo has disabled the OA (`-204` for every call).
fn disabled() -> Faults {
    Faults {
        oa_disabled: true,
        ..Faults::default()
    }
}

#[tokio::test]
async fn a_disabled_oa_costs_one_request_each_ten_minutes_and_everyone_goes_once_it_is_enabled() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(600, SimConfig::default(), |c| c, "normal").await;
    sim.set_faults(disabled());
    let refused = || answered(&sim, -204);
    let attempts = || scalar(&daemon.store, "SELECT SUM(attempts) FROM deliveries");
    let turn = |at: Timestamp| {
        daemon.clock.set(at);
        daemon.tick(at, &|| false)
    };
    let report = turn(due).await.expect("tick");
    assert_eq!(report.sent, 0, "{report:?}");
    // Only the chunk on the wire when the first refusal came was asked (128 in flight).
    let first = refused();
    assert!((1..=128).contains(&first), "{first}");
    // Nobody's message is given up, and no attempt is spent: those refused wait as `retrying`,
    // the others were not claimed.
    let waiting = || async {
        let st = states(&daemon.store).await;
        st.get("retrying").copied().unwrap_or(0) + st.get("planned").copied().unwrap_or(0)
    };
    assert_eq!(waiting().await, 600);
    assert_eq!(attempts().await, 0);
    // Five minutes on, nothing is claimed and nothing asked; at ten, one probe, refused.
    turn(due + SignedDuration::from_mins(5))
        .await
        .expect("tick");
    assert_eq!(refused(), first);
    turn(due + SignedDuration::from_mins(10) + SignedDuration::from_secs(1))
        .await
        .expect("tick");
    assert_eq!(refused(), first + 1);
    assert_eq!(waiting().await, 600);
    assert_eq!(attempts().await, 0);
    // Zalo enables the OA again: the next probe goes through, and everyone with it.
    sim.set_faults(Faults::default());
    let report = turn(due + SignedDuration::from_mins(20) + SignedDuration::from_secs(2))
        .await
        .expect("tick");
    assert_eq!(report.sent, 600, "{report:?}");
    assert_eq!(refused(), first + 1);
    assert_eq!(states(&daemon.store).await.get("sent"), Some(&600));
    assert_eq!(sim.messages().len(), 600, "each once");
}

#[tokio::test]
async fn a_restart_tries_at_once_what_waited_for_a_refused_oa() {
    let (sim, _db, dir, daemon, due) =
        broadcast_setup(40, SimConfig::default(), |c| c, "normal").await;
    sim.set_faults(disabled());
    let refused = || answered(&sim, -204);
    daemon.clock.set(due);
    daemon.tick(due, &|| false).await.expect("tick");
    assert_eq!(states(&daemon.store).await.get("retrying"), Some(&40));
    // A minute on, nothing is due yet (the next try is in ten).
    let later = due + SignedDuration::from_mins(1);
    daemon.clock.set(later);
    assert_eq!(daemon.tick(later, &|| false).await.expect("tick").sent, 0);
    // A new process (the operator restarts loa) tries them at once, the first as a probe, and
    // claims the others only once it gets through: still refused, that is one request, not one
    // per message.
    let (sim, store, dir) = (&sim, &daemon.store, dir.path());
    let restart = |at: Timestamp| async move {
        let clock = Clock::manual(at);
        let ch = channel_at(sim, store, "n1", zalo_config(sim), clock.clone()).await;
        let restarted = Daemon::new(store.clone(), ch, settings(dir, "n1")).with_clock(clock);
        restarted.recover(at, true).await.expect("recover");
        restarted.tick(at, &|| false).await.expect("tick")
    };
    let before = refused();
    assert_eq!(restart(later).await.sent, 0);
    assert_eq!(refused(), before + 1);
    assert_eq!(states(&daemon.store).await.get("retrying"), Some(&40));
    // The operator mends the OA and restarts loa again: they go at once.
    sim.set_faults(Faults::default());
    let report = restart(later + SignedDuration::from_mins(1)).await;
    assert_eq!(report.sent, 40, "{report:?}");
    assert_eq!(refused(), before + 1);
}

#[tokio::test]
async fn messages_zalo_refused_one_daemon_go_at_once_from_a_daemon_it_takes() {
    for db in support::databases().await {
        let name = db.name;
        let population = villages_of(600, 0.0);
        let proof = |c| ZaloConfig {
            appsecret_proof: true,
            ..c
        };
        let (sim, _db, dir, daemon, due) =
            setup_in(db, population, SimConfig::default(), proof, "normal").await;
        // A second daemon on the same database, whose operator mistyped the app secret: Zalo
        // refuses each of its calls (-242), and it stops calling.
        let mistyped = ZaloConfig {
            app_secret: Secret::new("a-mistyped-secret"),
            ..proof(zalo_config(&sim))
        };
        let clock = daemon.clock.clone();
        let ch = ZaloChannel::open(
            mistyped,
            daemon.store.clone(),
            "default",
            "n2",
            clock.clone(),
        )
        .await
        .expect("channel");
        let other = Daemon::new(daemon.store.clone(), ch, settings(dir.path(), "n2"))
            .with_clock(clock.clone());
        other.load_all(due).await.expect("load");
        assert_eq!(other.tick(due, &|| false).await.expect("tick").sent, 0);
        let refused = answered(&sim, -242);
        assert!((1..=128).contains(&refused), "{name}: {refused}");
        // Until its probe, ten minutes on, it claims nothing: no request, and no message held.
        let later = due + SignedDuration::from_secs(30);
        clock.set(later);
        assert_eq!(other.tick(later, &|| false).await.expect("tick").sent, 0);
        assert_eq!(answered(&sim, -242), refused, "{name}");
        assert_eq!(
            other.channel.paused_until(),
            Some(due + SignedDuration::from_mins(10))
        );
        // The daemon Zalo takes sends everything at once, the messages refused to the other
        // among them (before, those waited for the other's probe).
        let report = daemon.tick(later, &|| false).await.expect("tick");
        assert_eq!(report.sent, 600, "{name}: {report:?}");
        assert_eq!(
            states(&daemon.store).await.get("sent"),
            Some(&600),
            "{name}"
        );
        assert_eq!(sim.messages().len(), 600, "{name}: each once");
        // The refusals spent no attempt.
        let attempts = scalar(
            &daemon.store,
            "SELECT CAST(SUM(attempts) AS BIGINT) FROM deliveries",
        )
        .await;
        assert_eq!(attempts, 600, "{name}");
    }
}

#[tokio::test]
async fn no_rate_limit_errors_at_the_configured_limit() {
    // Zalo's 4,000 a minute, scaled: 100 per 500 ms on both sides.
    let sim_config = SimConfig {
        rate_limit: 100,
        rate_window: Duration::from_millis(500),
        ..SimConfig::default()
    };
    let (sim, _db, _dir, daemon, due) = broadcast_setup(
        596,
        sim_config,
        |c| ZaloConfig {
            rate_limit: 100,
            rate_window_ms: 500,
            ..c
        },
        "normal",
    )
    .await;
    let report = daemon.tick(due, &|| false).await.expect("tick");
    assert_eq!(report.sent, 596, "{report:?}");
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 0, "no -32");
    assert!(
        stats.max_requests_in_window <= 100,
        "{}",
        stats.max_requests_in_window
    );
}

#[tokio::test]
async fn under_server_errors_and_timeouts_every_recipient_ends_final_and_none_is_lost() {
    // The reliability suite's Zalo part: 10 % 5xx, 5 % timeouts, a burst of -32, and the access
    // token revoked in the middle.
    let faults = Faults {
        server_error_share: 0.10,
        timeout_share: 0.05,
        timeout_hang: Duration::from_millis(600),
        ..Faults::default()
    };
    let (sim, _db, _dir, daemon, due) = broadcast_setup(
        800,
        SimConfig {
            faults: faults.clone(),
            seed: 11,
            ..SimConfig::default()
        },
        |c| ZaloConfig {
            timeout_ms: 250,
            // After a -32 the client waits for the window to turn: keep the window short here.
            rate_window_ms: 200,
            ..c
        },
        "urgent",
    )
    .await;
    // The burst of -32 comes once the followers are synced, in the middle of the sends.
    sim.set_faults(Faults {
        rate_limit_burst: 20,
        ..faults
    });
    // Tick, then move the clock past the backoff, until nothing is left to send.
    let mut now = due;
    for round in 0..12 {
        daemon.clock.set(now);
        daemon.tick(now, &|| false).await.expect("tick");
        if round == 0 {
            sim.revoke_access_tokens();
        }
        now += SignedDuration::from_mins(30);
    }
    let by_state = states(&daemon.store).await;
    let non_final: usize = ["planned", "retrying", "sending"]
        .iter()
        .filter_map(|s| by_state.get(*s))
        .map(|n| *n as usize)
        .sum();
    assert_eq!(non_final, 0, "{by_state:?}");
    let rows = sqlx::query(
        "SELECT target, state, provider_message_id, possible_duplicate FROM deliveries",
    )
    .fetch_all(daemon.store.pool())
    .await
    .expect("rows");
    assert_eq!(rows.len(), 800);
    let mut received: HashMap<String, Vec<String>> = HashMap::new();
    for m in sim.messages() {
        received
            .entry(m.to.clone())
            .or_default()
            .push(m.message_id.clone());
    }
    let mut duplicates = 0;
    for r in &rows {
        let target: String = r.get("target");
        let state: String = r.get("state");
        let flagged = r.get::<i64, _>("possible_duplicate") != 0;
        let got = received.get(&target).map(Vec::len).unwrap_or(0);
        if state == "sent" {
            // Not lost: what the ledger calls sent, Zalo has, under the recorded id.
            let id: String = r.get("provider_message_id");
            assert!(
                received.get(&target).is_some_and(|ids| ids.contains(&id)),
                "{target}: sent but not at Zalo"
            );
        } else {
            assert_eq!(state, "failed", "{target}");
        }
        if got > 1 {
            duplicates += 1;
            assert!(
                flagged,
                "{target}: received {got} times without a possible-duplicate flag"
            );
        }
    }
    let stats = sim.stats();
    assert!(stats.server_errors > 0 && stats.timeouts > 0, "{stats:?}");
    assert!(stats.rate_limited > 0, "the burst answered -32: {stats:?}");
    // Every duplicate is a retried timeout: at most one per timeout the simulator produced.
    assert!(
        duplicates as u64 <= stats.timeouts,
        "{duplicates} > {}",
        stats.timeouts
    );
    println!(
        "reliability (Zalo: 10% 5xx, 5% timeouts, a -32 burst, token revoked): lost 0, duplicates {duplicates} (bound: timeouts {}, each flagged), non-final {non_final}; sent {:?}, failed {:?}, refreshes {}",
        stats.timeouts,
        by_state.get("sent"),
        by_state.get("failed"),
        stats.token_refreshes
    );
}
