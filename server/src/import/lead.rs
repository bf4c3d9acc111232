//! How the insertion reading of an upload follows its validation through the file.
//!
//! Validation reads a million lines in ~3 s; inserting them takes ~20. Run one after the
//! other, the 3 s were added to every import while the machine's other core sat idle. Run
//! together, insertion may only write a line once validation has checked it (and every line
//! before it): by then the line's fate is settled (a duplicate within the file is skipped, its
//! image is stored), and if a line turns out bad, insertion stops at once. So a bad file is
//! still refused as early as before, and only what was inserted in the meantime (a few seconds'
//! worth, pending and invisible) is deleted again.
//!
//! `Lead` is what validation has settled so far: it publishes it every `PUBLISH_LINES` lines
//! (and at once on a bad line), and the insertion reader waits for it when it catches up.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::store::items::StoredImage;

/// Lines validation checks between two publications: a lock and a wake-up per thousand lines.
pub const PUBLISH_LINES: i64 = 1000;

#[derive(Default)]
pub struct Lead {
    state: Mutex<Settled>,
    moved: Condvar,
    /// A bad line was met (or validation stopped without finishing): nothing more is inserted.
    refused: AtomicBool,
}

#[derive(Default)]
struct Settled {
    /// Every line up to this one is checked (`i64::MAX` once validation accepted the file).
    through: i64,
    /// Settled since the follower last took them: lines that repeat earlier content, and
    /// images stored for the first time (by name).
    duplicates: Vec<i64>,
    images: Vec<(String, StoredImage)>,
}

/// What the follower may do with line `line`.
pub enum Verdict {
    Insert,
    /// It repeats an earlier line of the file.
    Skip,
    /// Validation refused the upload: stop.
    Stop,
}

impl Lead {
    /// Validation checked every line up to `through`; `duplicates` and `images` are what it
    /// settled among them since its last publication.
    pub fn publish(&self, through: i64, duplicates: Vec<i64>, images: Vec<(String, StoredImage)>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.through = s.through.max(through);
        s.duplicates.extend(duplicates);
        s.images.extend(images);
        drop(s);
        self.moved.notify_all();
    }

    /// Validation ended: with every line good (`accepted`), or not (a bad line, an I/O error,
    /// a cancellation, a panic).
    pub fn end(&self, accepted: bool) {
        if accepted {
            self.publish(i64::MAX, Vec::new(), Vec::new());
        } else {
            self.refuse();
        }
    }

    /// A bad line was met: the follower and the inserter stop (validation goes on, to report
    /// every bad line).
    pub fn refuse(&self) {
        self.refused.store(true, Ordering::Release);
        let _guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.moved.notify_all();
    }

    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Acquire)
    }

    /// Ends the lead when dropped, refused unless `accept` was called: a validation that
    /// returns early or panics cannot leave the follower waiting.
    pub fn guard(&self) -> EndGuard<'_> {
        EndGuard { lead: self, accepted: false }
    }
}

pub struct EndGuard<'a> {
    lead: &'a Lead,
    accepted: bool,
}

impl EndGuard<'_> {
    pub fn accept(&mut self) {
        self.accepted = true;
    }
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.lead.end(self.accepted);
    }
}

/// The insertion reader's side: what it knows of validation's progress.
#[derive(Default)]
pub struct Follower {
    through: i64,
    duplicates: std::collections::HashSet<i64>,
    /// Images validation stored, by name.
    pub images: HashMap<String, StoredImage>,
}

impl Follower {
    /// Waits until validation has checked `line`, then says what to do with it.
    pub fn verdict(&mut self, lead: &Lead, line: i64) -> Verdict {
        if lead.refused() {
            return Verdict::Stop;
        }
        if line > self.through {
            let mut s = lead.state.lock().unwrap_or_else(|e| e.into_inner());
            while s.through < line && !lead.refused() {
                s = lead.moved.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            self.through = s.through;
            self.duplicates.extend(s.duplicates.drain(..));
            self.images.extend(s.images.drain(..));
            drop(s);
            if lead.refused() {
                return Verdict::Stop;
            }
        }
        if self.duplicates.remove(&line) {
            Verdict::Skip
        } else {
            Verdict::Insert
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_follower_waits_for_each_line_to_be_checked() {
        let lead = Arc::new(Lead::default());
        let follower = {
            let lead = lead.clone();
            std::thread::spawn(move || {
                let mut f = Follower::default();
                (1..=5).map(|line| matches!(f.verdict(&lead, line), Verdict::Insert)).collect::<Vec<_>>()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!follower.is_finished(), "nothing is checked yet");
        lead.publish(3, vec![2], vec![]);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!follower.is_finished(), "lines 4 and 5 are not checked yet");
        let mut guard = lead.guard();
        guard.accept();
        drop(guard);
        assert_eq!(follower.join().unwrap(), [true, false, true, true, true]);
    }

    #[test]
    fn a_bad_line_or_a_panic_stops_the_follower() {
        for how in ["refuse", "panic"] {
            let lead = Arc::new(Lead::default());
            let follower = {
                let lead = lead.clone();
                std::thread::spawn(move || matches!(Follower::default().verdict(&lead, 10), Verdict::Stop))
            };
            std::thread::sleep(Duration::from_millis(20));
            lead.publish(5, vec![], vec![]);
            match how {
                "refuse" => lead.refuse(),
                _ => {
                    let l = lead.clone();
                    let _ = std::thread::spawn(move || {
                        let _guard = l.guard();
                        panic!("injected panic in validation");
                    })
                    .join();
                }
            }
            assert!(follower.join().unwrap(), "{how}");
            assert!(lead.refused());
        }
    }
}
