//! The `log` channel: writes each message it would send as one JSON line, to a file or stdout.
//! Each line is written with one `write` call on a file opened for appending, so a process killed
//! at any moment leaves whole lines only: the file is a faithful record of what was "sent".

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{Channel, Outgoing, SendError, Sent};

pub struct LogChannel {
    out: Mutex<Box<dyn std::io::Write + Send>>,
    /// Simulated provider latency, for tests and benchmarks that need sends to take time.
    delay: Duration,
}

impl LogChannel {
    /// `None` or `-` writes to stdout.
    pub fn open(path: Option<&PathBuf>, delay: Duration) -> std::io::Result<LogChannel> {
        let out: Box<dyn std::io::Write + Send> = match path {
            Some(p) if p.as_os_str() != "-" => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            _ => Box::new(std::io::stdout()),
        };
        Ok(LogChannel {
            out: Mutex::new(out),
            delay,
        })
    }
}

impl Channel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut line = serde_json::to_vec(&serde_json::json!({
            "at": jiff::Timestamp::now().to_string(),
            "delivery": msg.delivery_id,
            "announcement": msg.announcement_id,
            "kind": msg.kind.as_str(),
            "target": msg.target,
            "urgent": msg.urgent,
            "possible_duplicate": msg.possible_duplicate,
            "text": msg.text,
        }))
        .map_err(|e| SendError::Final {
            code: "log".into(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut out = self
                .out
                .lock()
                .map_err(|_| std::io::Error::other("log channel poisoned"))?;
            out.write_all(&line)?;
            out.flush()
        };
        write().map_err(|e| SendError::RetryLater {
            code: "io".into(),
            reason: e.to_string(),
            after: None,
            in_doubt: false,
        })?;
        Ok(Sent {
            message_id: format!("log-{}", msg.delivery_id),
            note: None,
        })
    }
}
