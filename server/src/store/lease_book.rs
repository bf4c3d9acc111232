//! SQLite: the labeling leases, in memory (issue 11).
//!
//! Why: with leases in a table, every `next` wrote one, so every hand-out queued for SQLite's
//! single writer behind the submissions, and the writer spent about half of each label's time
//! on the hand-out (its settings, its scan, its answer, the lease's rows). Here a hand-out is a
//! read on an inline reader (`store::inline_reader`) plus a claim in this book; only
//! submissions and skips queue for the writer. One process serves a SQLite database, so the
//! book is the only place leases live while it runs (PostgreSQL, where several instances share
//! the database, keeps its leases table).
//!
//! **What guards k.** A submission decides on the writer, where the item's `label_count` is
//! exact: its new annotation needs `label_count + (other labelers' unexpired leases) < overlap`
//! (`answer`), and the book is locked while it checks, so no claim slips in between. A
//! hand-out only reserves slots, so that labelers are not refused later.
//!
//! **What a hand-out's snapshot may miss.** A hand-out reads in a snapshot that may predate
//! the writer's last commits, so an annotation may be missing from the `label_count` it reads.
//! An annotation therefore keeps its lease's slot in the book until every snapshot that could
//! have missed it has ended: `Pending` while its transaction is open (`convert`), then
//! `Converted(g)` once it commits as the book's `g`-th commit (`transaction_ended`). A reader
//! that started when `g - 1` commits were visible (`begin_read`) counts it; one that started
//! later reads it in `label_count`. Both at once only ever counts a slot twice (an item
//! handed out a moment later), never none.
//!
//! **Durability.** Leases are not durable, as issue 11 allows: a crash loses them and the
//! items are offered again; for the lease grace after it an answer needs no lease when its item
//! has room (`leases_lost`), so an answer resent after the crash is not refused. A graceful
//! shutdown keeps them in the leases table, and the next start reads them back
//! (`store::assignment::keep_leases`, `restore_leases`).
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// Where a labeler's entry for an item stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// A lease: the item was handed to the labeler until `expires_at`.
    Live,
    /// Their annotation of the item is written in the writer's open transaction. `had_lease`:
    /// it was a lease before (a rollback makes it one again); otherwise the item was handed
    /// out through a skip.
    Pending { had_lease: bool },
    /// Their annotation was committed as the book's `g`-th commit.
    Converted(u64),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    user_id: i64,
    project_id: i64,
    leased_at: i64,
    expires_at: i64,
    state: State,
}

/// A lease as the leases table stores it (for a graceful shutdown and the next start).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaseRow {
    pub item_id: i64,
    pub user_id: i64,
    pub project_id: i64,
    pub leased_at: i64,
    pub expires_at: i64,
}

#[derive(Default)]
struct Inner {
    by_item: HashMap<i64, Vec<Entry>>,
    /// The items each labeler of a project has a `Live` entry for (expired ones included).
    by_labeler: HashMap<(i64, i64), Vec<i64>>,
    /// (item, user) of the entries converted in the writer's open transaction.
    pending: Vec<(i64, i64)>,
    /// (g, item, user) of the `Converted` entries, in commit order.
    converted: VecDeque<(u64, i64, i64)>,
    /// How many commits with conversions readers can see.
    visible: u64,
    /// The `visible` at which each reader still reading began, and how many began then.
    readers: BTreeMap<u64, usize>,
    /// Until when an answer needs no lease (`LeaseBook::leases_lost`).
    lost_until: i64,
}

/// A hand-out asking to lease an item (`LeaseBook::claim`).
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub project_id: i64,
    pub item_id: i64,
    pub user_id: i64,
    pub now: i64,
    pub expires_at: i64,
    /// (`label_count` as the reader read it, the item's effective overlap, the reader's
    /// `ReadTicket::visible`); `None`: no capacity to check (a gold item, or one the labeler
    /// already holds).
    pub capacity: Option<(i64, i64, u64)>,
    /// How many unexpired leases the labeler may hold in the project: a new lease ends their
    /// oldest beyond it (ended, not forgotten: they may still answer within the grace).
    pub max_held: usize,
}

#[derive(Default)]
pub struct LeaseBook {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for LeaseBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseBook").finish_non_exhaustive()
    }
}

/// A reader's place in the book while its snapshot is open (`LeaseBook::begin_read`).
pub struct ReadTicket<'b> {
    book: &'b LeaseBook,
    pub visible: u64,
}

impl Drop for ReadTicket<'_> {
    fn drop(&mut self) {
        let mut inner = self.book.lock();
        if let Some(n) = inner.readers.get_mut(&self.visible) {
            *n -= 1;
            if *n == 0 {
                inner.readers.remove(&self.visible);
            }
        }
    }
}

impl Inner {
    fn entry_mut(&mut self, item_id: i64, user_id: i64) -> Option<&mut Entry> {
        self.by_item.get_mut(&item_id)?.iter_mut().find(|e| e.user_id == user_id)
    }

    /// The slots of item `item_id` that a reader which began at `visible` must count as taken
    /// by others than `user_id`, besides the `label_count` it read.
    fn reserved_for_reader(&self, item_id: i64, user_id: i64, now: i64, visible: u64) -> i64 {
        let Some(entries) = self.by_item.get(&item_id) else { return 0 };
        entries
            .iter()
            .filter(|e| e.user_id != user_id)
            .filter(|e| match e.state {
                State::Live => e.expires_at > now,
                State::Pending { .. } => true,
                State::Converted(g) => g > visible,
            })
            .count() as i64
    }

    fn unindex(&mut self, project_id: i64, user_id: i64, item_id: i64) {
        if let Some(items) = self.by_labeler.get_mut(&(project_id, user_id)) {
            items.retain(|i| *i != item_id);
            if items.is_empty() {
                self.by_labeler.remove(&(project_id, user_id));
            }
        }
    }

    fn remove(&mut self, item_id: i64, user_id: i64) -> Option<Entry> {
        let entries = self.by_item.get_mut(&item_id)?;
        let k = entries.iter().position(|e| e.user_id == user_id)?;
        let e = entries.swap_remove(k);
        if entries.is_empty() {
            self.by_item.remove(&item_id);
        }
        if e.state == State::Live {
            self.unindex(e.project_id, user_id, item_id);
        }
        Some(e)
    }

    fn insert_live(&mut self, item_id: i64, e: Entry) {
        self.by_item.entry(item_id).or_default().push(e);
        self.by_labeler.entry((e.project_id, e.user_id)).or_default().push(item_id);
    }

    /// The labeler's unexpired leases in the project, oldest first (`leased_at`, then item).
    fn held(&self, project_id: i64, user_id: i64, now: i64) -> Vec<(i64, i64)> {
        let Some(items) = self.by_labeler.get(&(project_id, user_id)) else { return Vec::new() };
        let mut held: Vec<(i64, i64)> = items
            .iter()
            .filter_map(|i| {
                let e = self.by_item.get(i)?.iter().find(|e| e.user_id == user_id)?;
                (e.state == State::Live && e.expires_at > now).then_some((e.leased_at, *i))
            })
            .collect();
        held.sort_unstable();
        held
    }

    /// Forgets the `Converted` entries no reader counts any more: those committed before the
    /// oldest reader still reading began (all of them when none is).
    fn forget_seen_conversions(&mut self) {
        let bound = self.readers.keys().next().copied().unwrap_or(self.visible);
        while let Some(&(g, item_id, user_id)) = self.converted.front() {
            if g > bound {
                break;
            }
            self.converted.pop_front();
            if self.entry_mut(item_id, user_id).is_some_and(|e| e.state == State::Converted(g)) {
                self.remove(item_id, user_id);
            }
        }
    }

    /// See `LeaseBook::answer`.
    fn for_submission(&self, item_id: i64, user_id: i64, now: i64, graced: i64) -> (bool, i64) {
        let entries = self.by_item.get(&item_id).map(Vec::as_slice).unwrap_or_default();
        let lost = now < self.lost_until && !entries.iter().any(|e| e.user_id == user_id);
        let own = lost || entries.iter().any(|e| e.user_id == user_id && e.state == State::Live && e.expires_at > graced);
        let others = entries.iter().filter(|e| e.user_id != user_id && e.state == State::Live && e.expires_at > now).count();
        (own, others as i64)
    }

    /// The labeler's annotation of the item is written in the writer's open transaction.
    fn convert(&mut self, project_id: i64, item_id: i64, user_id: i64) {
        let inner = self;
        // A lease keeps its times while pending: a rollback gives it back as it was.
        let e = match inner.remove(item_id, user_id) {
            Some(e) if e.state == State::Live => Entry { state: State::Pending { had_lease: true }, ..e },
            _ => Entry { user_id, project_id, leased_at: 0, expires_at: 0, state: State::Pending { had_lease: false } },
        };
        inner.by_item.entry(item_id).or_default().push(e);
        inner.pending.push((item_id, user_id));
    }

    /// A pending answer's entry back to its lease (or to nothing, when it had none).
    fn unconvert(&mut self, item_id: i64, user_id: i64) {
        let Some(e) = self.remove(item_id, user_id) else { return };
        if e.state == (State::Pending { had_lease: true }) {
            self.insert_live(item_id, Entry { state: State::Live, ..e });
        }
    }
}

impl LeaseBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change here is a few assignments that cannot panic halfway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a reader's view: to be taken before its read transaction's first statement, and
    /// kept until its last claim.
    pub fn begin_read(&self) -> ReadTicket<'_> {
        let mut inner = self.lock();
        let visible = inner.visible;
        *inner.readers.entry(visible).or_default() += 1;
        ReadTicket { book: self, visible }
    }

    /// `reserved_for_reader` for SQL (`mirrorset_lease_others`).
    pub fn reserved_for_reader(&self, item_id: i64, user_id: i64, now: i64, visible: u64) -> i64 {
        self.lock().reserved_for_reader(item_id, user_id, now, visible)
    }

    /// Whether the labeler holds the item at `now` or has answered it since the reader's
    /// snapshot may have begun (their entry is `Pending` or `Converted`): a hand-out passes
    /// over such items (`mirrorset_lease_holds`).
    pub fn holds(&self, item_id: i64, user_id: i64, now: i64) -> bool {
        let inner = self.lock();
        let Some(entries) = inner.by_item.get(&item_id) else { return false };
        entries.iter().any(|e| e.user_id == user_id && (e.state != State::Live || e.expires_at > now))
    }

    /// The labeler's unexpired leases in the project, oldest first.
    pub fn held(&self, project_id: i64, user_id: i64, now: i64) -> Vec<i64> {
        self.lock().held(project_id, user_id, now).into_iter().map(|(_, i)| i).collect()
    }

    /// Leases the item to the labeler when it can take them (see `Claim`); false when it
    /// cannot: its slots are taken, or the labeler has answered it meanwhile.
    pub fn claim(&self, c: Claim) -> bool {
        let mut inner = self.lock();
        if let Some((label_count, overlap, visible)) = c.capacity {
            if label_count + inner.reserved_for_reader(c.item_id, c.user_id, c.now, visible) >= overlap {
                return false;
            }
        }
        let held = inner.held(c.project_id, c.user_id, c.now);
        match inner.entry_mut(c.item_id, c.user_id) {
            Some(e) if e.state != State::Live => return false,
            Some(e) => e.expires_at = c.expires_at,
            None => {
                let e = Entry { user_id: c.user_id, project_id: c.project_id, leased_at: c.now, expires_at: c.expires_at, state: State::Live };
                inner.insert_live(c.item_id, e);
            }
        }
        let others: Vec<i64> = held.into_iter().map(|(_, i)| i).filter(|i| *i != c.item_id).collect();
        let surplus = (others.len() + 1).saturating_sub(c.max_held);
        for old in others.into_iter().take(surplus) {
            if let Some(e) = inner.entry_mut(old, c.user_id) {
                e.expires_at = c.now;
            }
        }
        true
    }

    /// A new answer of the labeler to the item, on the writer (where `label_count` is exact):
    /// `check` gets whether the labeler's lease entitles them to answer (`expires_at >
    /// graced`) and how many unexpired leases (`> now`) others hold on the item; when it
    /// accepts, the answer takes the lease's place (`convert`), under the same lock, so no
    /// claim takes the slot in between. The annotation is to be written next, in the writer's
    /// open transaction (`unanswer` if that fails alone).
    pub fn answer<E>(&self, project_id: i64, item_id: i64, user_id: i64, (now, graced): (i64, i64), check: impl FnOnce(bool, i64) -> Result<(), E>) -> Result<(), E> {
        let mut inner = self.lock();
        let (own, others) = inner.for_submission(item_id, user_id, now, graced);
        check(own, others)?;
        inner.convert(project_id, item_id, user_id);
        Ok(())
    }

    /// The annotation of `answer` was not written after all (its statement failed and SQLite
    /// undid it alone): the answer's entry is a lease again, or nothing.
    pub fn unanswer(&self, item_id: i64, user_id: i64) {
        let mut inner = self.lock();
        inner.pending.retain(|p| *p != (item_id, user_id));
        inner.unconvert(item_id, user_id);
    }

    #[cfg(test)]
    fn convert(&self, project_id: i64, item_id: i64, user_id: i64) {
        self.lock().convert(project_id, item_id, user_id);
    }

    #[cfg(test)]
    fn for_submission(&self, item_id: i64, user_id: i64, now: i64, graced: i64) -> (bool, i64) {
        self.lock().for_submission(item_id, user_id, now, graced)
    }
    /// Ends the labeler's lease of the item (a skip; an answer changed, not created).
    pub fn release(&self, item_id: i64, user_id: i64) {
        let mut inner = self.lock();
        if inner.entry_mut(item_id, user_id).is_some_and(|e| e.state == State::Live) {
            inner.remove(item_id, user_id);
        }
    }

    /// The writer's transaction ended: the conversions made in it become visible to readers
    /// (`committed`), or leases again (rolled back).
    pub fn transaction_ended(&self, committed: bool) {
        let mut inner = self.lock();
        if inner.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut inner.pending);
        if committed {
            let g = inner.visible + 1;
            for &(item_id, user_id) in &pending {
                if let Some(e) = inner.entry_mut(item_id, user_id) {
                    e.state = State::Converted(g);
                }
                inner.converted.push_back((g, item_id, user_id));
            }
            inner.visible = g;
        } else {
            for (item_id, user_id) in pending {
                inner.unconvert(item_id, user_id);
            }
        }
        inner.forget_seen_conversions();
    }

    /// Forgets leases that ended at or before `graced` (they count for nothing any more);
    /// answers how many.
    pub fn forget_ended(&self, graced: i64) -> u64 {
        let mut inner = self.lock();
        let ended: Vec<(i64, i64)> = inner
            .by_item
            .iter()
            .flat_map(|(i, es)| es.iter().filter(|e| e.state == State::Live && e.expires_at <= graced).map(move |e| (*i, e.user_id)))
            .collect();
        for &(item_id, user_id) in &ended {
            inner.remove(item_id, user_id);
        }
        inner.forget_seen_conversions();
        ended.len() as u64
    }

    /// Every lease, for the leases table at a graceful shutdown.
    pub fn leases(&self) -> Vec<LeaseRow> {
        let inner = self.lock();
        let mut rows: Vec<LeaseRow> = inner
            .by_item
            .iter()
            .flat_map(|(i, es)| {
                es.iter().filter(|e| e.state == State::Live).map(move |e| LeaseRow {
                    item_id: *i,
                    user_id: e.user_id,
                    project_id: e.project_id,
                    leased_at: e.leased_at,
                    expires_at: e.expires_at,
                })
            })
            .collect();
        rows.sort_unstable_by_key(|r| (r.item_id, r.user_id));
        rows
    }

    /// The previous server died with leases in memory, so which items were on the labelers'
    /// screens is unknown: until `until` (the lease grace from now), an answer to an item the
    /// labeler holds no entry for counts as leased, capacity allowing, so that an answer they
    /// send again after the crash is not refused.
    pub fn leases_lost(&self, until: i64) {
        self.lock().lost_until = until;
    }

    /// Takes the leases a previous server kept (`leases`).
    pub fn restore(&self, rows: &[LeaseRow]) {
        let mut inner = self.lock();
        for r in rows {
            inner.remove(r.item_id, r.user_id);
            let e = Entry { user_id: r.user_id, project_id: r.project_id, leased_at: r.leased_at, expires_at: r.expires_at, state: State::Live };
            inner.insert_live(r.item_id, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = 1;

    fn claim(book: &LeaseBook, item_id: i64, user_id: i64, now: i64, capacity: Option<(i64, i64, u64)>) -> bool {
        book.claim(Claim { project_id: P, item_id, user_id, now, expires_at: now + 60_000, capacity, max_held: 3 })
    }

    /// Leases of others take slots; one's own does not; an expired one frees its slot.
    #[test]
    fn leases_take_slots_until_they_end() {
        let book = LeaseBook::default();
        let v = book.begin_read().visible;
        assert!(claim(&book, 10, 1, 0, Some((0, 2, v))));
        assert!(claim(&book, 10, 2, 0, Some((0, 2, v))));
        assert!(!claim(&book, 10, 3, 0, Some((0, 2, v))), "two slots, both leased");
        assert!(!claim(&book, 10, 3, 0, Some((1, 2, v))));
        assert_eq!(book.reserved_for_reader(10, 1, 0, v), 1, "one's own lease is not counted against oneself");
        assert!(claim(&book, 10, 3, 60_000, Some((0, 2, v))), "both ended at 60 s");
        assert_eq!(book.held(P, 3, 60_000), vec![10]);
        assert!(book.holds(10, 3, 60_000) && !book.holds(10, 1, 60_000));
    }

    /// A fourth lease ends the oldest, which still entitles its labeler to answer (the grace).
    #[test]
    fn a_labeler_holds_at_most_max_held() {
        let book = LeaseBook::default();
        for (k, item) in [1, 2, 3, 4].into_iter().enumerate() {
            assert!(claim(&book, item, 7, k as i64, None));
        }
        assert_eq!(book.held(P, 7, 10), vec![2, 3, 4]);
        assert_eq!(book.for_submission(1, 7, 10, -3_600_000), (true, 0), "ended at 3 ms, within the grace");
        assert_eq!(book.for_submission(1, 8, 10, -3_600_000), (false, 0), "another labeler: their lease ended");
        assert_eq!(book.forget_ended(3), 1);
        assert_eq!(book.for_submission(1, 7, 10, 3), (false, 0));
    }

    /// An answer keeps its slot for readers whose snapshot may predate its commit, and only
    /// for them; the writer counts it in `label_count` and no longer as a lease.
    #[test]
    fn an_answer_keeps_its_slot_for_older_snapshots() {
        let book = LeaseBook::default();
        assert!(claim(&book, 10, 1, 0, None));
        let before = book.begin_read();
        book.convert(P, 10, 1);
        assert_eq!(book.for_submission(10, 2, 1, 0), (false, 0), "the writer reads the annotation itself");
        let during = book.begin_read();
        assert_eq!(book.reserved_for_reader(10, 2, 1, during.visible), 1, "pending: no reader sees it yet");
        book.transaction_ended(true);
        let after = book.begin_read();
        assert_eq!(book.reserved_for_reader(10, 2, 1, before.visible), 1);
        assert_eq!(book.reserved_for_reader(10, 2, 1, during.visible), 1);
        assert_eq!(book.reserved_for_reader(10, 2, 1, after.visible), 0, "a snapshot after the commit reads label_count");
        assert!(book.holds(10, 1, 1), "the labeler's own answer is passed over by their hand-outs");
        assert!(!claim(&book, 10, 1, 1, None), "nor can it be leased to them again");
        drop((before, during, after));
        book.transaction_ended(false);
        assert!(book.holds(10, 1, 1), "forgotten only at a later transaction's end");
        assert!(claim(&book, 11, 1, 1, None));
        book.convert(P, 11, 1);
        book.transaction_ended(true);
        assert!(!book.holds(10, 1, 1), "no reader left that could count it");
    }

    /// A rolled-back answer gives its lease back as it was; one made through a skip (no
    /// lease) leaves nothing.
    #[test]
    fn a_rollback_restores_the_leases() {
        let book = LeaseBook::default();
        assert!(claim(&book, 10, 1, 0, None));
        book.convert(P, 10, 1);
        book.convert(P, 11, 1);
        book.transaction_ended(false);
        assert_eq!(book.for_submission(10, 1, 1, 0), (true, 0));
        assert_eq!(book.held(P, 1, 1), vec![10]);
        assert!(!book.holds(11, 1, 1));
        assert_eq!(book.reserved_for_reader(11, 2, 1, 0), 0);
    }

    /// After a crash an answer needs no lease for a while, capacity allowing; a labeler's own
    /// entry still decides for them.
    #[test]
    fn lost_leases_let_answers_in_for_the_grace() {
        let book = LeaseBook::default();
        assert_eq!(book.for_submission(10, 1, 5, 0), (false, 0));
        book.leases_lost(100);
        assert!(claim(&book, 10, 2, 0, None));
        assert_eq!(book.for_submission(10, 1, 5, 0), (true, 1), "no entry: counted as leased; another's lease is counted");
        book.convert(P, 11, 1);
        assert_eq!(book.for_submission(11, 1, 5, 0), (false, 0), "their answer is pending: not a lease");
        assert_eq!(book.for_submission(10, 1, 100, 0), (false, 1), "the grace is over");
    }

    /// A released lease frees its slot at once; `leases` and `restore` carry the live ones.
    #[test]
    fn release_and_restore() {
        let book = LeaseBook::default();
        assert!(claim(&book, 10, 1, 0, None));
        assert!(claim(&book, 11, 2, 0, None));
        book.release(10, 1);
        assert_eq!(book.reserved_for_reader(10, 2, 0, 0), 0);
        let kept = book.leases();
        assert_eq!(kept, vec![LeaseRow { item_id: 11, user_id: 2, project_id: P, leased_at: 0, expires_at: 60_000 }]);
        let next = LeaseBook::default();
        next.restore(&kept);
        assert_eq!(next.held(P, 2, 1), vec![11]);
        assert_eq!(next.reserved_for_reader(11, 1, 1, 0), 1);
    }
}
