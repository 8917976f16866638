//! The send loop's database work on SQLite, without the network: one announcement expanded to N
//! deliveries, then claimed and recorded chunk after chunk exactly as the send loop does (wire
//! mark, then the answers of one chunk with the claim of the next, in one transaction). Prints
//! the microseconds of wall and CPU time per delivery. In a fan-out through the simulator this
//! write is the pipeline's critical path: the next chunk cannot go out before it is claimed.
//!
//! `cargo bench --bench ledger [-- N CHUNK]` (default 50,000 deliveries, chunks of 128).
//!
//! For trying a schema change, `BENCH_SQL` is run on the new database before anything is written. For
//! instruction counts (valgrind's callgrind is repeatable where the time on a shared machine is
//! not), `EXPAND_ONLY=1` stops after the expansion: run both at two sizes and subtract.

use jiff::{SignedDuration, Timestamp};
use loa::ledger::{Claim, NewDelivery, NewOccurrence, NewRevision, Outcome, PlanChange, Store};

const C: &str = "xa-thu-tai";

fn cpu_seconds() -> f64 {
    // utime + stime of this process from /proc (Linux only, as the benchmarks), in clock ticks:
    // USER_HZ, which the kernel's ABI fixes at 100 for /proc whatever its own tick rate.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let chunk: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(128);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}/loa.db", dir.path().display())).await?;
    let now: Timestamp = "2026-11-24T01:00:00Z".parse()?;
    let due: Timestamp = "2026-11-24T02:00:00Z".parse()?;
    if let Ok(sql) = std::env::var("BENCH_SQL") {
        sqlx::raw_sql(&sql).execute(store.pool()).await?;
    }
    store.upsert_commune(C, "Xã Thử tải", now).await?;
    let change = PlanChange {
        revisions: vec![NewRevision {
            announcement_id: "tb".into(),
            content_hash: "h".into(),
            git_commit: None,
            path: "tb.yaml".into(),
            source: "title: tb\n".into(),
        }],
        occurrences: vec![NewOccurrence {
            announcement_id: "tb".into(),
            rule: 0,
            due,
            send_at: due,
            deadline: due + SignedDuration::from_hours(6),
            trigger: r#"{"type":"once"}"#.into(),
            urgent: true,
        }],
        ..Default::default()
    };
    store.apply_plan(C, &change, now).await?;
    let lease = SignedDuration::from_secs(30);
    let occurrences = store
        .claim_occurrences(C, "n1", due, due + lease, 1)
        .await?;
    let occurrence = occurrences
        .first()
        .ok_or_else(|| anyhow::anyhow!("nothing claimed"))?;
    let deliveries: Vec<NewDelivery> = (0..n)
        .map(|i| NewDelivery {
            village_id: Some(format!("v{}", i % 10)),
            target_kind: "user",
            target: format!("{}", 7_000_000_000u64 + i as u64),
            person: None,
            text: "Thông báo thử tải · Thôn 1: mời bà con xem thông báo của xã.".into(),
            fallback: None,
        })
        .collect();
    let expanding = std::time::Instant::now();
    store
        .expand(C, occurrence, &deliveries, None, "n1", due)
        .await?;
    let expanded = expanding.elapsed().as_secs_f64();

    if std::env::var_os("EXPAND_ONLY").is_some() {
        return Ok(());
    }
    let (wall, cpu) = (std::time::Instant::now(), cpu_seconds());
    let mut number = 1;
    let claim = |number: i64| Claim {
        now: due,
        lease_until: due + lease,
        limit: chunk,
        chunk: Some(number),
    };
    let (_, mut claimed) = store
        .record_and_claim(C, "n1", &[], due, claim(number))
        .await?;
    let mut recorded = 0;
    while !claimed.is_empty() {
        store.mark_on_wire("n1", number).await?;
        number += 1;
        let answered: Vec<Outcome> = claimed
            .iter()
            // Zalo's message ids are random 32-hex strings.
            .map(|d| Outcome::sent(d.id, Some(format!("{:032x}", rand::random::<u128>()))))
            .collect();
        let (done, next) = store
            .record_and_claim(C, "n1", &answered, due, claim(number))
            .await?;
        recorded += done;
        claimed = next;
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    anyhow::ensure!(recorded == n, "recorded {recorded} of {n}");
    println!(
        "expansion: {n} deliveries written in {:.0} ms ({:.1} µs each)",
        expanded * 1e3,
        expanded / n as f64 * 1e6
    );
    println!(
        "send loop's database work, SQLite, {n} deliveries in chunks of {chunk}: {:.1} µs wall, {:.1} µs CPU per delivery ({:.0} deliveries/s on one thread)",
        wall / n as f64 * 1e6,
        cpu / n as f64 * 1e6,
        n as f64 / wall
    );
    store.close().await;
    Ok(())
}
