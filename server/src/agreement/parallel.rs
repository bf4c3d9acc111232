//! Independent parts of a computation run on the machine's cores.
//!
//! A refresh is a handful of independent pieces of CPU work (the headline bootstrap, one
//! bootstrap per slice attribute, Dawid–Skene, ...), each deterministic on its own: every
//! bootstrap seeds its own generator, so running them side by side changes no number, only
//! the wall time. On the refresh's low-priority thread the helper threads inherit its nice
//! value (Linux schedules threads one by one and a new thread starts with its creator's
//! priority), so the requests still get a core whenever they want one.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One piece of work.
pub type Task<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs the tasks on up to `threads` threads (the caller's included) and returns their
/// results in the tasks' order, each with its own run time in seconds. Tasks are taken in
/// order, so put the longest first. A panicking task panics the caller.
pub fn run<'a, T: Send>(tasks: Vec<Task<'a, T>>, threads: usize) -> Vec<(T, f64)> {
    let n = tasks.len();
    let queue: Vec<Mutex<Option<Task<'a, T>>>> = tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<(T, f64)>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let task = queue[i].lock().expect("no task panicked holding it").take().expect("each task is taken once");
        let t = Instant::now();
        let out = task();
        *results[i].lock().expect("no task panicked holding it") = Some((out, t.elapsed().as_secs_f64()));
    };
    let helpers = threads.clamp(1, n.max(1)) - 1;
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    results.into_iter().map(|r| r.into_inner().expect("no task panicked holding it").expect("every task ran")).collect()
}

/// The cores this process may use (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_task_order_whatever_the_thread_count() {
        for threads in [1, 2, 3, 8] {
            let tasks: Vec<Task<'_, usize>> = (0..7usize)
                .map(|i| {
                    Box::new(move || {
                        // Uneven work, so the tasks finish out of order on several threads.
                        std::thread::sleep(std::time::Duration::from_millis(((7 - i) * 3) as u64));
                        i * i
                    }) as Task<'_, usize>
                })
                .collect();
            let out: Vec<usize> = run(tasks, threads).into_iter().map(|(v, _)| v).collect();
            assert_eq!(out, vec![0, 1, 4, 9, 16, 25, 36], "{threads} threads");
        }
        assert!(run::<u8>(Vec::new(), 2).is_empty());
    }

    #[test]
    fn tasks_may_borrow_from_the_caller_and_run_side_by_side() {
        let data: Vec<u64> = (1..=1000).collect();
        let (left, right) = data.split_at(500);
        // The first task finishes only once the second has started: with one thread it would
        // wait its whole timeout and fail.
        let (started, wait) = std::sync::mpsc::channel::<()>();
        let tasks: Vec<Task<'_, (u64, bool)>> = vec![
            Box::new(move || (left.iter().sum(), wait.recv_timeout(std::time::Duration::from_secs(20)).is_ok())),
            Box::new(move || {
                started.send(()).expect("the first task waits");
                (right.iter().sum(), true)
            }),
        ];
        let out = run(tasks, 2);
        assert_eq!(out[0].0 .0 + out[1].0 .0, 500_500);
        assert!(out[0].0 .1, "two threads asked for, two tasks: they ran side by side");
    }
}
