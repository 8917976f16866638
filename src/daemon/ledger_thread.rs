//! The send loop's ledger writes run on a thread of their own. A fan-out keeps the runtime's
//! threads full of request tasks; a write polled among them waits behind hundreds of them at
//! each of its round trips to SQLite's worker (begin, each statement, each batch of returned rows,
//! commit), and took as long as the requests it was meant to overlap. On its own thread the
//! write is polled as soon as the database answers.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A thread with a single-threaded runtime that runs the jobs given to it, one after another.
/// It ends when the handle is dropped.
pub struct LedgerThread {
    jobs: mpsc::UnboundedSender<Job>,
}

impl LedgerThread {
    pub fn start() -> std::io::Result<LedgerThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("loa-ledger".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job().await;
                    }
                })
            })?;
        Ok(LedgerThread { jobs })
    }

    /// Runs `job` on the thread and returns its result. Err only if the thread is gone (the
    /// job panicked, or the process is shutting down).
    pub async fn run<T, F, Fut>(&self, job: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                Box::pin(async move {
                    let _ = reply.send(job().await);
                })
            }))
            .map_err(|_| anyhow::anyhow!("the ledger thread has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the ledger thread dropped a write"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_in_order_off_the_caller_thread() {
        let thread = LedgerThread::start().unwrap();
        let caller = std::thread::current().id();
        let (first, second) = tokio::join!(
            thread.run(move || async move { std::thread::current().id() }),
            thread.run(|| async { 2 })
        );
        assert_ne!(first.unwrap(), caller);
        assert_eq!(second.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_hang() {
        let thread = LedgerThread::start().unwrap();
        let r = thread.run(|| async { panic!("boom") as i32 }).await;
        assert!(r.is_err());
    }
}
