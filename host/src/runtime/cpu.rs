//! The CPU clock of the calling thread, which UDF time limits are measured on.

/// CPU time the calling thread has used, in ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through the valid pointer it is given;
    // CLOCK_THREAD_CPUTIME_ID exists on every Linux and macOS this builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::thread_cpu_ns;

    #[test]
    fn the_clock_counts_this_threads_work_not_its_sleep() {
        let start = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_ns() - start;
        let start = thread_cpu_ns();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu_ns() - start;
        assert!(slept < 10_000_000, "sleeping used {slept} ns of CPU");
        assert!(worked > 20_000_000, "spinning used only {worked} ns of CPU");
    }
}
