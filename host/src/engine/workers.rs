//! The workers a pipeline runs partitions on: a rayon pool of its own (so a job's parallelism is
//! explicit and measurable) and one set of warm UDF instances per worker thread.
//!
//! Architecture Invariant: an instance is only ever used by the thread whose slot holds it; the
//! mutex around a slot is uncontended and only satisfies the borrow checker.

use std::sync::Mutex;

use crate::runtime::WarmInstances;

/// A pool of worker threads with their warm instances.
pub struct Workers {
    pool: rayon::ThreadPool,
    /// Slot 0 is for the thread that drives the pipeline; slot `i + 1` for pool thread `i`.
    slots: Vec<Mutex<WarmInstances>>,
}

impl Workers {
    /// `threads` worker threads (at least 1).
    pub fn new(threads: usize) -> Workers {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sluice-worker-{i}"))
            .build()
            .expect("the OS can start worker threads");
        let slots = (0..=threads).map(|_| Mutex::new(WarmInstances::new())).collect();
        Workers { pool, slots }
    }

    /// How many worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The calling thread's warm instances.
    pub fn slot(&self) -> &Mutex<WarmInstances> {
        let i = rayon::current_thread_index()
            .filter(|_| self.pool.current_thread_index().is_some())
            .map_or(0, |i| i + 1);
        &self.slots[i.min(self.slots.len() - 1)]
    }

    /// Runs `f` inside the pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// The cores of this machine.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
