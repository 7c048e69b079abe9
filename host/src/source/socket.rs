//! The `socket` source: connects to `host:port` and reads text lines, like Spark's
//! `socketTextStream`. A background thread gathers lines between cuts; when the connection
//! fails or closes it reconnects, backing off from 100 ms to 2 s. Dropping the source stops it.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::{Clock, SystemClock, Tick};

type Buffer = Arc<Mutex<Vec<(Vec<u8>, i64)>>>;

/// Lines from a TCP server.
pub struct SocketSource {
    buffer: Buffer,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SocketSource {
    /// Starts reading from `host:port` in the background.
    pub fn start(host: String, port: u16) -> SocketSource {
        let buffer: Buffer = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (buf, flag) = (buffer.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("sluice-socket-{host}:{port}"))
            .spawn(move || read_loop(&host, port, &buf, &flag))
            .expect("the OS can start a thread");
        SocketSource {
            buffer,
            stop,
            thread: Some(thread),
        }
    }
}

fn read_loop(host: &str, port: u16, buffer: &Buffer, stop: &AtomicBool) {
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Relaxed) {
        match TcpStream::connect((host, port)) {
            Ok(stream) => {
                backoff = Duration::from_millis(100);
                tracing::info!("socket source connected to {host}:{port}");
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => {
                            if line.ends_with(b"\n") {
                                line.pop();
                                if line.ends_with(b"\r") {
                                    line.pop();
                                }
                                let now = SystemClock.now_ms();
                                buffer
                                    .lock()
                                    .expect("buffer lock")
                                    .push((std::mem::take(&mut line), now));
                            }
                        }
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("socket source {host}:{port}: {e}; reconnecting");
                            break;
                        }
                    }
                }
                tracing::info!("socket source {host}:{port} closed; reconnecting");
            }
            Err(e) => tracing::debug!("socket source cannot connect to {host}:{port}: {e}; retrying in {backoff:?}"),
        }
        let until = std::time::Instant::now() + backoff;
        while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl Source for SocketSource {
    fn next_batch(&mut self, _tick: Tick) -> Result<RecordBatch, SourceError> {
        let lines = std::mem::take(&mut *self.buffer.lock().expect("buffer lock"));
        let mut out = RecordBatch::with_capacity(lines.len(), lines.iter().map(|(l, _)| l.len() + 16).sum());
        for (line, ts) in &lines {
            out.push(None, line, *ts);
        }
        Ok(out)
    }

    fn is_live(&self) -> bool {
        true
    }
}

impl Drop for SocketSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
