//! A project's items as the labeling rules see them, held in memory so a rule's statistics
//! over 100,000 items come back while the lead types (issue 10: within a second).
//!
//! - the texts, end to end in one string (a regular expression scans them);
//! - an inverted index of lowercased words: word → ascending item positions (a keyword rule is
//!   a union of a few posting lists, and never reads the texts);
//! - an index of `meta` values: attribute → value as text → ascending positions.
//!
//! Positions are the items' ranks in id order; `item_ids[pos]` is the id.
//!
//! The cache ([`CorpusCache`]) keeps the last few projects' corpora keyed by the project's
//! `(visible_max_item_id, item_count)`, as the dev-set pool cache does (`devsets::index`): an
//! import commits a new version, so the next request builds the corpus again; nothing else
//! changes an item's text or meta. It is process-wide (a `static`), not in `AppState`, since
//! each instance of the server builds its own and the figures do not depend on which.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

use super::rules::words;

#[derive(Default)]
pub struct Corpus {
    pub item_ids: Vec<i64>,
    text: String,
    /// `text[ends[i-1]..ends[i]]` is item i's text.
    ends: Vec<usize>,
    words: HashMap<Box<str>, Vec<u32>>,
    meta: HashMap<Box<str>, HashMap<Box<str>, Vec<u32>>>,
}

impl Corpus {
    pub fn len(&self) -> usize {
        self.item_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.item_ids.is_empty()
    }

    pub fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// Items containing the (lowercased) word.
    pub fn postings(&self, word: &str) -> Option<&[u32]> {
        self.words.get(word).map(Vec::as_slice)
    }

    /// Items whose attribute `key` is `value` (as text).
    pub fn meta_postings(&self, key: &str, value: &str) -> Option<&[u32]> {
        self.meta.get(key)?.get(value).map(Vec::as_slice)
    }

    /// The position of an item id, if the corpus has it.
    pub fn position(&self, item_id: i64) -> Option<usize> {
        self.item_ids.binary_search(&item_id).ok()
    }
}

/// A scalar meta value as the attribute rules compare it.
fn meta_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Builds a corpus from items pushed in ascending id order.
#[derive(Default)]
pub struct CorpusBuilder {
    corpus: Corpus,
    lower: String,
}

impl CorpusBuilder {
    pub fn push(&mut self, item_id: i64, text: Option<&str>, meta: &str) {
        let c = &mut self.corpus;
        let pos = c.item_ids.len() as u32;
        debug_assert!(c.item_ids.last().is_none_or(|&last| last < item_id), "items come in id order");
        c.item_ids.push(item_id);
        let text = text.unwrap_or("");
        c.text.push_str(text);
        c.ends.push(c.text.len());
        for w in words(text) {
            self.lower.clear();
            self.lower.extend(w.chars().flat_map(char::to_lowercase));
            // A word seen twice in one item is in its list once: the item is last there.
            match c.words.get_mut(self.lower.as_str()) {
                Some(list) if list.last() == Some(&pos) => {}
                Some(list) => list.push(pos),
                None => {
                    c.words.insert(self.lower.as_str().into(), vec![pos]);
                }
            }
        }
        // Meta that is not an object was refused at import; anything else indexes nothing.
        if let Ok(map) = serde_json::from_str::<serde_json::Map<String, Value>>(meta) {
            for (k, v) in &map {
                if let Some(v) = meta_text(v) {
                    let by_value = c.meta.entry(k.as_str().into()).or_default();
                    by_value.entry(v.into_boxed_str()).or_default().push(pos);
                }
            }
        }
    }

    pub fn finish(self) -> Corpus {
        self.corpus
    }
}

/// Projects whose corpora are kept (the last used are kept).
const CACHED_PROJECTS: usize = 2;

#[derive(Default)]
pub struct CorpusCache {
    entries: Mutex<Vec<(i64, (i64, i64), Arc<Corpus>)>>,
    /// One build at a time: requests right after an import wait for one build, not run several.
    building: tokio::sync::Mutex<()>,
}

/// The server's corpus cache (module comment: why a static).
pub static CORPORA: LazyLock<CorpusCache> = LazyLock::new(CorpusCache::default);

impl CorpusCache {
    fn cached(&self, project_id: i64, version: (i64, i64)) -> Option<Arc<Corpus>> {
        let mut entries = self.entries.lock().expect("corpus cache lock");
        let at = entries.iter().position(|(p, v, _)| *p == project_id && *v == version)?;
        let entry = entries.remove(at);
        let corpus = entry.2.clone();
        entries.push(entry);
        Some(corpus)
    }

    /// The project's corpus at `version`, built by `build` when not cached.
    pub async fn get<F, Fut, E>(&self, project_id: i64, version: (i64, i64), build: F) -> Result<Arc<Corpus>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Corpus, E>>,
    {
        if let Some(c) = self.cached(project_id, version) {
            return Ok(c);
        }
        let _one = self.building.lock().await;
        if let Some(c) = self.cached(project_id, version) {
            return Ok(c);
        }
        let corpus = Arc::new(build().await?);
        let mut entries = self.entries.lock().expect("corpus cache lock");
        entries.retain(|(p, _, _)| *p != project_id);
        entries.push((project_id, version, corpus.clone()));
        if entries.len() > CACHED_PROJECTS {
            entries.remove(0);
        }
        Ok(corpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_meta_are_indexed_once_per_item() {
        let mut b = CorpusBuilder::default();
        b.push(10, Some("Free FREE free-ish"), r#"{"lang": "en", "n": 2, "ok": true, "nested": {"a": 1}}"#);
        b.push(12, None, r#"{"lang": "de"}"#);
        b.push(15, Some("Straße"), "not json");
        let c = b.finish();
        assert_eq!(c.postings("free"), Some(&[0u32][..]));
        assert_eq!(c.postings("ish"), Some(&[0u32][..]));
        assert_eq!(c.postings("straße"), Some(&[2u32][..]));
        assert_eq!(c.meta_postings("lang", "de"), Some(&[1u32][..]));
        assert_eq!(c.meta_postings("n", "2"), Some(&[0u32][..]));
        assert_eq!(c.meta_postings("ok", "true"), Some(&[0u32][..]));
        assert_eq!(c.meta_postings("nested", "{\"a\":1}"), None);
        assert_eq!((c.text(0), c.text(1), c.text(2)), ("Free FREE free-ish", "", "Straße"));
        assert_eq!((c.position(12), c.position(11)), (Some(1), None));
    }

    #[tokio::test]
    async fn the_cache_builds_once_per_version() {
        let cache = CorpusCache::default();
        let build = |n: i64| move || async move {
            let mut b = CorpusBuilder::default();
            b.push(n, Some("x"), "{}");
            Ok::<_, ()>(b.finish())
        };
        let a = cache.get(1, (1, 1), build(1)).await.unwrap();
        let again = cache.get(1, (1, 1), build(99)).await.unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let after_import = cache.get(1, (2, 2), build(2)).await.unwrap();
        assert_eq!(after_import.item_ids, vec![2]);
    }
}
