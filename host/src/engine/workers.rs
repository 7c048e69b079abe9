//! The workers a pipeline runs partitions on: a rayon pool (its own, or a lane shared with the
//! other jobs of its tenant, see `Lanes`) and the pipeline's own warm UDF instances, one set per
//! worker thread, leased from its tenant's instance budget.
//!
//! Architecture Invariant: an instance is only ever used by the thread whose slot holds it; the
//! mutex around a slot is uncontended and only satisfies the borrow checker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::runtime::{InstanceBudget, WarmInstances};

/// A pool of worker threads with this pipeline's warm instances.
pub struct Workers {
    pool: Arc<rayon::ThreadPool>,
    /// Slot 0 is for a thread outside the pool; slot `i + 1` for pool thread `i`.
    slots: Vec<Mutex<WarmInstances>>,
    budget: Arc<InstanceBudget>,
}

impl Workers {
    /// A pool of its own with `threads` worker threads (at least 1), no instance budget.
    pub fn new(threads: usize) -> Workers {
        Workers::on(Arc::new(pool(threads, "sluice-worker")), InstanceBudget::unlimited())
    }

    /// Workers on a shared pool, leasing instances from `budget`.
    pub fn on(pool: Arc<rayon::ThreadPool>, budget: Arc<InstanceBudget>) -> Workers {
        let slots = (0..=pool.current_num_threads())
            .map(|_| Mutex::new(WarmInstances::new()))
            .collect();
        Workers { pool, slots, budget }
    }

    /// How many worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The calling thread's warm instances.
    pub fn slot(&self) -> &Mutex<WarmInstances> {
        let i = self.pool.current_thread_index().map_or(0, |i| i + 1);
        &self.slots[i.min(self.slots.len() - 1)]
    }

    /// Every slot (to drop the instances of a swapped-out module).
    pub fn slots(&self) -> &[Mutex<WarmInstances>] {
        &self.slots
    }

    /// The instance budget the slots lease from.
    pub fn budget(&self) -> &Arc<InstanceBudget> {
        &self.budget
    }

    /// Runs `f` inside the pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// The pool.
    pub fn pool(&self) -> Arc<rayon::ThreadPool> {
        self.pool.clone()
    }
}

fn pool(threads: usize, name: &str) -> rayon::ThreadPool {
    let name = name.to_owned();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .expect("the OS can start worker threads")
}

/// The server's worker pool: a lane of threads per tenant, shared by all of that tenant's jobs
/// (their sources, stages and sinks all run in it), made when its first job starts and gone
/// when its last job stops.
///
/// Why lanes and not one rayon pool for everyone: rayon tasks are not preemptible, and a UDF
/// call at its CPU limit holds its thread for up to that limit, so in one pool a neighbour's
/// batch queues behind it for as long. With a lane per tenant the OS scheduler timeslices the
/// lanes, and a tenant's jobs together never run on more threads than its lane has
/// (`cpu_workers_max`), however many jobs it starts.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<i64, Weak<rayon::ThreadPool>>>,
}

impl Lanes {
    /// Tenant `tenant`'s lane, made with `threads` threads if it has none running.
    pub fn get(&self, tenant: i64, threads: usize) -> Arc<rayon::ThreadPool> {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        lanes.retain(|_, l| l.strong_count() > 0);
        if let Some(lane) = lanes.get(&tenant).and_then(Weak::upgrade) {
            return lane;
        }
        let lane = Arc::new(pool(threads, &format!("sluice-t{tenant}")));
        lanes.insert(tenant, Arc::downgrade(&lane));
        lane
    }

    /// How many lanes have jobs.
    pub fn active(&self) -> usize {
        self.lanes
            .lock()
            .expect("lanes lock")
            .values()
            .filter(|l| l.strong_count() > 0)
            .count()
    }
}

/// The cores of this machine.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    #[test]
    fn a_tenants_jobs_share_one_lane_that_goes_with_the_last() {
        let lanes = Lanes::default();
        let a1 = lanes.get(1, 2);
        let a2 = lanes.get(1, 8);
        assert!(std::sync::Arc::ptr_eq(&a1, &a2));
        assert_eq!(a2.current_num_threads(), 2, "the lane keeps its size");
        let b = lanes.get(2, 1);
        assert!(!std::sync::Arc::ptr_eq(&a1, &b));
        assert_eq!(lanes.active(), 2);
        drop((a1, a2));
        assert_eq!(lanes.active(), 1);
    }
}
