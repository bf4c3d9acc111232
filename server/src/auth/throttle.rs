//! Sign-in throttling: failed password checks are counted per user name and per client
//! address in fixed windows (15 minutes by default). Once a name has 10 failures, or an
//! address 50, in the current window, further attempts for it are refused with 429 and a
//! `Retry-After` until the window ends, before any password is hashed. A successful sign-in
//! clears its name's count (a user who mistyped a few times is not held back), but not the
//! address's (one right password must not unlock guessing at every other name).
//!
//! The counters live in memory, per instance (several instances each allow the limit: still
//! a bound). Each map holds at most `max_keys` entries: when full, windows that ended are
//! dropped, then the window that started longest ago, so an attacker spraying names or
//! addresses cannot grow memory without limit. IPv6 addresses count per /64 network, the
//! smallest block a single client is usually given.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    pub window: Duration,
    pub failures_per_name: u32,
    pub failures_per_addr: u32,
    pub max_keys: usize,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            window: Duration::from_secs(15 * 60),
            failures_per_name: 10,
            failures_per_addr: 50,
            max_keys: 10_000,
        }
    }
}

/// Why an attempt is refused, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// "user name" or "address".
    pub what: &'static str,
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds, rounded up, for `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }

    pub fn message(&self) -> String {
        let minutes = self.retry_after_secs().div_ceil(60).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        format!("too many failed sign-ins for this {}; try again in {minutes} {unit}", self.what)
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counts per key, in bounded memory.
struct Counters<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new() -> Self {
        Counters { map: HashMap::new() }
    }

    /// How long the key is still refused, if it is.
    fn refused_for(&self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<Duration> {
        let w = self.map.get(key)?;
        let ends = w.started + window;
        (w.failures >= limit && ends > now).then(|| ends - now)
    }

    fn record(&mut self, key: K, window: Duration, max_keys: usize, now: Instant) {
        if let Some(w) = self.map.get_mut(&key) {
            if now.duration_since(w.started) >= window {
                *w = Window { started: now, failures: 1 };
            } else {
                w.failures = w.failures.saturating_add(1);
            }
            return;
        }
        if self.map.len() >= max_keys {
            self.map.retain(|_, w| now.duration_since(w.started) < window);
        }
        if self.map.len() >= max_keys {
            let oldest = self.map.iter().min_by_key(|(_, w)| w.started).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.map.remove(&k);
            }
        }
        self.map.insert(key, Window { started: now, failures: 1 });
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// The sign-in throttle of one server instance.
pub struct LoginThrottle {
    limits: ThrottleLimits,
    inner: Mutex<(Counters<String>, Counters<IpAddr>)>,
}

/// The key of a user name: as typed (trimmed; names are case-sensitive), cut to the
/// longest valid username so a long string cannot take much memory.
fn name_key(name: &str) -> String {
    name.trim().chars().take(64).collect()
}

/// The key of an address: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
fn addr_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        LoginThrottle { limits, inner: Mutex::new((Counters::new(), Counters::new())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Counters<String>, Counters<IpAddr>)> {
        // A panic while holding the lock leaves only counters behind: still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses an attempt for this name or from this address while either is over its limit.
    pub fn check(&self, name: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let l = &self.limits;
        let guard = self.lock();
        let (names, addrs) = &*guard;
        if let Some(d) = names.refused_for(&name_key(name), l.failures_per_name, l.window, now) {
            return Err(Throttled { what: "user name", retry_after: d });
        }
        if let Some(addr) = addr {
            if let Some(d) = addrs.refused_for(&addr_key(addr), l.failures_per_addr, l.window, now) {
                return Err(Throttled { what: "address", retry_after: d });
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, name: &str, addr: Option<IpAddr>, now: Instant) {
        let l = &self.limits;
        let mut guard = self.lock();
        let (names, addrs) = &mut *guard;
        names.record(name_key(name), l.window, l.max_keys, now);
        if let Some(addr) = addr {
            addrs.record(addr_key(addr), l.window, l.max_keys, now);
        }
    }

    pub fn record_success(&self, name: &str) {
        self.lock().0.clear(&name_key(name));
    }

    /// How many names and addresses are tracked (for tests of the bound).
    pub fn tracked(&self) -> (usize, usize) {
        let guard = self.lock();
        (guard.0.map.len(), guard.1.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ThrottleLimits {
        ThrottleLimits { window: Duration::from_secs(900), failures_per_name: 10, failures_per_addr: 50, max_keys: 100 }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_eleventh_attempt_for_a_name_is_refused_until_the_window_ends() {
        let t = LoginThrottle::new(limits());
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(t.check("ann", ip("10.0.0.1"), t0), Ok(()), "attempt {}", i + 1);
            t.record_failure("ann", ip("10.0.0.1"), t0);
        }
        let refused = t.check("ann", ip("10.0.0.2"), t0 + Duration::from_secs(60)).unwrap_err();
        assert_eq!(refused.what, "user name");
        assert_eq!(refused.retry_after_secs(), 840);
        assert_eq!(refused.message(), "too many failed sign-ins for this user name; try again in 14 minutes");
        // Other names are unaffected; the window's end frees the name.
        assert_eq!(t.check("bob", ip("10.0.0.1"), t0), Ok(()));
        assert_eq!(t.check("ann", ip("10.0.0.1"), t0 + Duration::from_secs(900)), Ok(()));
    }

    #[test]
    fn success_clears_the_name_but_not_the_address() {
        let t = LoginThrottle::new(ThrottleLimits { failures_per_addr: 12, ..limits() });
        let now = Instant::now();
        for _ in 0..9 {
            t.record_failure("ann", ip("10.0.0.1"), now);
        }
        t.record_success("ann");
        for _ in 0..3 {
            t.record_failure("ann", ip("10.0.0.1"), now);
        }
        assert_eq!(t.check("ann", None, now), Ok(()), "3 failures since the success");
        let refused = t.check("zed", ip("10.0.0.1"), now).unwrap_err();
        assert_eq!(refused.what, "address", "12 failures from the address in all");
    }

    #[test]
    fn fifty_failures_from_an_address_over_many_names_block_it() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..50 {
            assert_eq!(t.check(&format!("n{i}"), ip("192.0.2.7"), now), Ok(()));
            t.record_failure(&format!("n{i}"), ip("192.0.2.7"), now);
        }
        assert_eq!(t.check("n-new", ip("192.0.2.7"), now).unwrap_err().what, "address");
        assert_eq!(t.check("n-new", ip("192.0.2.8"), now), Ok(()));
        // The same client over IPv4-mapped IPv6 is the same address; a /64 is one client.
        assert_eq!(t.check("n-new", ip("::ffff:192.0.2.7"), now).unwrap_err().what, "address");
        for i in 0..50 {
            t.record_failure("x", ip(&format!("2001:db8:1:2::{i:x}")), now);
        }
        assert_eq!(t.check("y", ip("2001:db8:1:2:ffff::1"), now).unwrap_err().what, "address");
        assert_eq!(t.check("y", ip("2001:db8:1:3::1"), now), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_names() {
        let t = LoginThrottle::new(limits());
        let t0 = Instant::now();
        // The target's failures come first; a spray of 10,000 names follows.
        for _ in 0..10 {
            t.record_failure("target", None, t0);
        }
        for i in 0..10_000 {
            t.record_failure(&format!("spray{i}"), ip(&format!("10.{}.{}.1", i / 256 % 256, i % 256)), t0);
        }
        let (names, addrs) = t.tracked();
        assert!(names <= 100 && addrs <= 100, "bounded: {names} names, {addrs} addresses");
        // Ended windows are dropped first when the map is full.
        let later = t0 + Duration::from_secs(901);
        t.record_failure("fresh", None, later);
        assert_eq!(t.tracked().0, 1, "only the live window is left");
    }

    #[test]
    fn long_names_are_cut() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        let long = "a".repeat(10_000);
        for _ in 0..10 {
            t.record_failure(&long, None, now);
        }
        assert!(t.check(&"a".repeat(64), None, now).is_err(), "the same key as its first 64 characters");
    }
}
