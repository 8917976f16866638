//! The names Zalo shows for the OA's followers, so that the reports and the dashboard say who a
//! message did not reach, or who wrote, instead of a Zalo id. `user/getlist` gives ids alone; a
//! group's member list and a head's `user/detail` carry names, and the sync keeps those. For the
//! others, each sync asks `user/detail` for up to `zalo.names_per_sync` followers still without a
//! name, those outside village groups first (their messages are the ones counted one by one), at
//! spare priority: never while a send waits for the rate limit. A large OA is named over a few
//! syncs.

use jiff::Timestamp;

use super::api::ApiError;
use super::channel::ZaloChannel;
use super::sync::{SyncError, SyncReport};
use crate::ledger::Store;

/// Names written to the ledger at a time: what was looked up is kept if the sync stops halfway.
const BATCH: usize = 50;

/// Failed lookups in a row after which the rest wait for the next sync: the OA's own trouble
/// (a revoked permission, say), not one user's.
const FAILURES_IN_A_ROW: usize = 5;

impl ZaloChannel {
    /// Looks up the names of followers the ledger has none for; returns how many were asked.
    /// Zalo's refusal for one user skips that user (asked again at the next sync); trouble with
    /// the calls themselves ends the lookups until then. Only the database's errors are errors.
    pub(super) async fn look_up_names(
        &self,
        store: &Store,
        commune: &str,
        now: Timestamp,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let limit = i64::from(self.config().names_per_sync);
        if limit == 0 {
            return Ok(());
        }
        let unnamed = store.followers_without_name(commune, limit).await?;
        let mut named: Vec<(String, String)> = Vec::new();
        let mut failed_in_a_row = 0;
        for user in unnamed {
            report.names += 1;
            match self.detail(&user, true, report).await {
                // An empty name is kept too: that follower is not asked again.
                Ok(Some(detail)) => {
                    failed_in_a_row = 0;
                    named.push((user, detail.display_name));
                }
                // No longer following: the next sync marks them so.
                Ok(None) => failed_in_a_row = 0,
                Err(SyncError::Api(ApiError::Zalo { code, message, .. })) => {
                    tracing::debug!(user, code, %message, "cannot look up a follower's name");
                    failed_in_a_row += 1;
                }
                Err(e @ SyncError::Store(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "follower names: the rest wait for the next sync");
                    break;
                }
            }
            if failed_in_a_row == FAILURES_IN_A_ROW {
                tracing::warn!(
                    "follower names: Zalo refused {FAILURES_IN_A_ROW} lookups in a row; the rest wait for the next sync"
                );
                break;
            }
            if named.len() == BATCH {
                store
                    .record_follower_names(commune, &std::mem::take(&mut named), now)
                    .await?;
            }
        }
        store.record_follower_names(commune, &named, now).await?;
        Ok(())
    }
}
