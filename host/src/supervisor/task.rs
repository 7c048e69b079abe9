//! A job's run as a task, not a thread: its steps run in its pipeline's worker pool (the
//! tenant's lane in the server), and one timer thread, shared by every job of the process,
//! wakes each at its next batch time. A command wakes the job at once. A thousand idle jobs
//! cost a thousand heap entries, not a thousand threads.
//!
//! Architecture Invariant: at most one step of a job runs at a time (the step holds the job's
//! lock; a wake that finds it held leaves the `woken` flag, which the step reads when it ends),
//! and only the latest timer entry of a job wakes it (each entry carries the job's generation).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{Core, Ended, JobState, Options, Run, Step, panicked};
use crate::engine::Clock;

/// A job's run.
pub(super) struct Task {
    pub(super) options: Options,
    pub(super) clock: Arc<dyn Clock>,
    /// The run between its steps; `None` before it is built and after it ends.
    run: Mutex<Option<(Core, Run)>>,
    /// The pool its steps run in, while it runs (a lane goes when its last job ends).
    pool: Mutex<Option<Arc<rayon::ThreadPool>>>,
    /// A command came since the last step began.
    woken: AtomicBool,
    /// Which timer entry is the live one.
    generation: AtomicU64,
    /// How the run ended, once it has.
    ended: Mutex<Option<Ended>>,
    ended_cv: Condvar,
}

impl Task {
    pub(super) fn new(options: Options, clock: Arc<dyn Clock>) -> Arc<Task> {
        Arc::new(Task {
            options,
            clock,
            run: Mutex::new(None),
            pool: Mutex::new(None),
            woken: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            ended: Mutex::new(None),
            ended_cv: Condvar::new(),
        })
    }

    /// The run is built: its steps begin in its pool.
    pub(super) fn begin(self: Arc<Self>, core: Core, run: Run) {
        *self.pool.lock().expect("pool lock") = Some(run.job.pipeline.pool());
        *self.run.lock().expect("a step never panics holding the lock") = Some((core, run));
        self.at(Instant::now());
    }

    /// The run ended: its last state, then whoever waits in `join`.
    pub(super) fn end(&self, mut core: Core, ended: Ended) {
        let last = match &ended {
            Ended::Failed { reason, .. } => JobState::Failed { reason: reason.clone() },
            _ => JobState::Stopped,
        };
        core.set(last, Some(&ended));
        drop(core);
        *self.ended.lock().expect("ended lock") = Some(ended);
        self.ended_cv.notify_all();
    }

    /// Waits for the run's end.
    pub(super) fn join(&self) -> Ended {
        let mut ended = self.ended.lock().expect("ended lock");
        loop {
            if let Some(e) = ended.as_ref() {
                return e.clone();
            }
            ended = self.ended_cv.wait(ended).expect("ended lock");
        }
    }

    /// A command came: step now.
    pub(super) fn wake(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.at(Instant::now());
    }

    /// Makes the timer step this job at `due` (and forget its earlier entry).
    fn at(self: &Arc<Self>, due: Instant) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        timer().add(due, generation, self.clone());
    }

    /// The timer's entry came due: a step in the pool.
    fn dispatch(self: Arc<Self>) {
        let pool = self.pool.lock().expect("pool lock").clone();
        if let Some(pool) = pool {
            pool.spawn(move || self.step());
        }
    }

    /// Runs what is due, then sets the timer for the next step (or ends the run).
    fn step(self: Arc<Self>) {
        let Ok(mut guard) = self.run.try_lock() else {
            // A step runs: it sees `woken` when it ends.
            return;
        };
        let Some((core, run)) = guard.as_mut() else { return };
        self.woken.store(false, Ordering::SeqCst);
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| run.step(core, &self.options, &*self.clock)))
            .unwrap_or_else(|panic| Step::Over(panicked(&self.options, panic)));
        match step {
            Step::Wait(ms) => {
                drop(guard);
                let wait = if self.woken.load(Ordering::SeqCst) {
                    Duration::ZERO
                } else {
                    // A manual clock (tests) moves without waking anyone: look again after
                    // `poll_ms` at most.
                    Duration::from_millis((ms.max(0) as u64).min(self.options.poll_ms.max(1)))
                };
                self.at(Instant::now() + wait);
            }
            Step::Over(ended) => {
                let (core, run) = guard.take().expect("the run was there");
                drop(guard);
                self.pool.lock().expect("pool lock").take();
                // The job's sources, pipeline and sinks go first, then the state says it ended.
                drop(run);
                self.end(core, ended);
            }
        }
    }
}

/// The process's one timer: a heap of (due, generation, job).
struct Timer {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    cv: Condvar,
}

struct Entry {
    due: Instant,
    generation: u64,
    task: Arc<Task>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.generation == other.generation
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.generation).cmp(&(other.due, other.generation))
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            heap: Mutex::new(BinaryHeap::new()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("sluice-timer".into())
            .spawn(move || timer.run())
            .expect("the OS can start a thread");
        timer
    })
}

impl Timer {
    fn add(&self, due: Instant, generation: u64, task: Arc<Task>) {
        self.heap
            .lock()
            .expect("timer lock")
            .push(Reverse(Entry { due, generation, task }));
        self.cv.notify_one();
    }

    fn run(&self) {
        let mut heap = self.heap.lock().expect("timer lock");
        let mut due = Vec::new();
        loop {
            let now = Instant::now();
            match heap.peek() {
                Some(Reverse(e)) if e.due <= now => {
                    // Every entry due now, then dispatched without the lock (steps that end
                    // meanwhile add their next entries).
                    while heap.peek().is_some_and(|Reverse(e)| e.due <= now) {
                        due.push(heap.pop().expect("peeked").0);
                    }
                    drop(heap);
                    for e in due.drain(..) {
                        if e.task.generation.load(Ordering::SeqCst) == e.generation {
                            e.task.dispatch();
                        }
                    }
                    heap = self.heap.lock().expect("timer lock");
                }
                Some(Reverse(e)) => {
                    let wait = e.due - now;
                    heap = self.cv.wait_timeout(heap, wait).expect("timer lock").0;
                }
                None => heap = self.cv.wait(heap).expect("timer lock"),
            }
        }
    }
}
