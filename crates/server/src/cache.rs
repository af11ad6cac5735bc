//! Answers already computed, by ledger, head and question. An answer at a head never
//! changes (the log only grows, and a question names its as-of date and known-at time), so
//! a repeated question is served from here until the head moves. Bounded in bytes; the
//! least recently used answers go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use engine::Head;

/// (ledger, head seq, the question: route and resolved parameters).
pub type Key = (String, u64, String);

/// One rendered answer.
pub struct Cached {
    pub body: Bytes,
    pub media: &'static str,
    pub head: Option<Head>,
}

pub struct Answers {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, (Arc<Cached>, u64)>,
    bytes: usize,
    tick: u64,
}

impl Answers {
    pub fn new(max_bytes: usize) -> Answers {
        Answers {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Cached>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        let (cached, used) = inner.map.get_mut(key)?;
        *used = tick;
        Some(cached.clone())
    }

    pub fn put(&self, key: Key, cached: Cached) {
        let size = cached.body.len() + key.0.len() + key.2.len() + 64;
        if size > self.max_bytes / 8 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, _)) = inner.map.insert(key.clone(), (Arc::new(cached), tick)) {
            inner.bytes -= old.body.len() + key.0.len() + key.2.len() + 64;
        }
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            // Answers at an older head than their ledger's newest are dead; any least
            // recently used one goes first.
            let Some(victim) = inner
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = inner.map.remove(&victim) {
                inner.bytes -= old.body.len() + victim.0.len() + victim.2.len() + 64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Cached {
        Cached {
            body: Bytes::from(vec![b'x'; n]),
            media: "application/json",
            head: None,
        }
    }

    #[test]
    fn bounded_and_least_recently_used_first() {
        let a = Answers::new(8 * 1000);
        let key = |i: u64| ("main".to_string(), i, "q".to_string());
        for i in 0..20 {
            a.put(key(i), answer(900));
            assert!(a.get(&key(0)).is_some() || i > 0, "kept while used");
        }
        let inner = a.inner.lock().unwrap();
        assert!(inner.bytes <= 8 * 1000);
        assert!(inner.map.contains_key(&key(19)));
        assert!(
            inner.map.contains_key(&key(0)),
            "key 0 was used at every step"
        );
        assert!(!inner.map.contains_key(&key(1)));
    }
}
