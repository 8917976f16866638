//! Embedded migrations: `migrations/sqlite` and `migrations/postgres`, compiled into the binary and
//! applied by sqlx's migrator (which checksums what was applied, so an edited old migration is an
//! error: migrations are only ever appended).

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Dialect, Store};

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/sqlite/0001_ledger.sql"),
    ),
    (
        2,
        "sendable index",
        include_str!("../../migrations/sqlite/0002_sendable_index.sql"),
    ),
    (
        3,
        "drop redundant index",
        include_str!("../../migrations/sqlite/0003_drop_redundant_index.sql"),
    ),
    (
        4,
        "event trigger",
        include_str!("../../migrations/sqlite/0004_event_trigger.sql"),
    ),
    (
        5,
        "zalo",
        include_str!("../../migrations/sqlite/0005_zalo.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../migrations/sqlite/0006_webhooks.sql"),
    ),
    (
        7,
        "confirmations",
        include_str!("../../migrations/sqlite/0007_confirmations.sql"),
    ),
    (
        8,
        "follow-ups",
        include_str!("../../migrations/sqlite/0008_follow_ups.sql"),
    ),
    (
        9,
        "lean indexes",
        include_str!("../../migrations/sqlite/0009_lean_indexes.sql"),
    ),
    (
        10,
        "wire marks",
        include_str!("../../migrations/sqlite/0010_wire_marks.sql"),
    ),
    (
        11,
        "early receipts",
        include_str!("../../migrations/sqlite/0011_early_receipts.sql"),
    ),
    (
        12,
        "follower groups",
        include_str!("../../migrations/sqlite/0012_follower_groups.sql"),
    ),
    (
        13,
        "closed confirmations",
        include_str!("../../migrations/sqlite/0013_closed_confirmations.sql"),
    ),
    (
        14,
        "close deleted confirmations",
        include_str!("../../migrations/sqlite/0014_close_deleted_confirmations.sql"),
    ),
    (
        15,
        "group failovers",
        include_str!("../../migrations/sqlite/0015_group_failovers.sql"),
    ),
    (
        16,
        "zns quota",
        include_str!("../../migrations/sqlite/0016_zns_quota.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/postgres/0001_ledger.sql"),
    ),
    (
        2,
        "sendable index",
        include_str!("../../migrations/postgres/0002_sendable_index.sql"),
    ),
    (
        3,
        "drop redundant index",
        include_str!("../../migrations/postgres/0003_drop_redundant_index.sql"),
    ),
    (
        4,
        "event trigger",
        include_str!("../../migrations/postgres/0004_event_trigger.sql"),
    ),
    (
        5,
        "zalo",
        include_str!("../../migrations/postgres/0005_zalo.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../migrations/postgres/0006_webhooks.sql"),
    ),
    (
        7,
        "confirmations",
        include_str!("../../migrations/postgres/0007_confirmations.sql"),
    ),
    (
        8,
        "follow-ups",
        include_str!("../../migrations/postgres/0008_follow_ups.sql"),
    ),
    (
        9,
        "lean indexes",
        include_str!("../../migrations/postgres/0009_lean_indexes.sql"),
    ),
    (
        10,
        "wire marks",
        include_str!("../../migrations/postgres/0010_wire_marks.sql"),
    ),
    (
        11,
        "early receipts",
        include_str!("../../migrations/postgres/0011_early_receipts.sql"),
    ),
    (
        12,
        "follower groups",
        include_str!("../../migrations/postgres/0012_follower_groups.sql"),
    ),
    (
        13,
        "closed confirmations",
        include_str!("../../migrations/postgres/0013_closed_confirmations.sql"),
    ),
    (
        14,
        "close deleted confirmations",
        include_str!("../../migrations/postgres/0014_close_deleted_confirmations.sql"),
    ),
    (
        15,
        "group failovers",
        include_str!("../../migrations/postgres/0015_group_failovers.sql"),
    ),
    (
        16,
        "zns quota",
        include_str!("../../migrations/postgres/0016_zns_quota.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> futures_core::future::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(name),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub async fn run(store: &Store) -> anyhow::Result<()> {
    let source = match store.dialect {
        Dialect::Sqlite => Embedded(SQLITE),
        Dialect::Postgres => Embedded(POSTGRES),
    };
    let migrator = Migrator::new(source).await?;
    migrator.run(&store.pool).await?;
    Ok(())
}
