//! The pool index: every visible item of a project with its `meta` attributes as small
//! integers, so a plan over a million items is a scan of a few arrays, not a million JSON
//! parses per request.
//!
//! Why an in-memory index and not SQL: a plan needs each item's *category* under the draft's
//! attributes (`ProfileAttribute::category`, numeric values bucketed by the profile's edges).
//! Computing the strata in SQL (GROUP BY over `meta -> '$.a'`, numbers bucketed by CASE) still
//! parses every item's JSON on every request: on SQLite 3.40 that was 1.1 s of CPU (2.8 s wall
//! on the loaded machine) for 1,000,000 items, and PostgreSQL parses `meta::jsonb` per row the
//! same way; it must also reproduce serde_json's number formatting and float parsing in SQL
//! to give the same categories. The index parses each item once, keeps per attribute the
//! distinct raw values (each turned into a category by the very function the rest of the
//! code uses, so plans stay identical) and per item the index of its value.
//!
//! Validity: an index is for one `(visible_max_item_id, item_count)` of its project. Items are
//! only ever added (an import's commit moves both numbers; pending rows above the watermark
//! are not in the pool), and their meta, weight, source and licence never change, so an index
//! whose numbers match the project row is exact. Dev-set membership changes without an import,
//! so it is not in the index: a plan reads it fresh (a few thousand rows). Another instance's
//! import moves the same numbers in the shared database, so every instance sees it.
//!
//! Memory: 4 bytes per item per attribute plus 24 per item (id, weight, source, licence); at
//! most `CACHED_PROJECTS` projects are kept (the least recently used is dropped).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::plan::PlanError;
use super::profile::{Categorize, ProfileAttribute};

/// An absent value (no such key, no source, no licence).
pub const NONE: u32 = u32::MAX;
/// Projects whose index is kept in memory.
pub const CACHED_PROJECTS: usize = 4;

/// One attribute over the pool: per item, the index of its raw value in `distinct` (or `NONE`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column {
    pub values: Vec<u32>,
    pub distinct: Vec<Value>,
}

/// What the index needs of one item.
#[derive(Debug)]
pub struct PoolItemRow {
    pub id: i64,
    pub meta: String,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolIndex {
    /// Item ids, ascending.
    pub ids: Vec<i64>,
    pub weight: Vec<f64>,
    pub source: Vec<u32>,
    pub sources: Vec<String>,
    pub license: Vec<u32>,
    pub licenses: Vec<String>,
    pub attributes: BTreeMap<String, Column>,
}

fn intern(dict: &mut HashMap<String, u32>, names: &mut Vec<String>, value: Option<String>) -> u32 {
    match value {
        None => NONE,
        Some(v) => {
            if let Some(&i) = dict.get(&v) {
                return i;
            }
            let i = names.len() as u32;
            names.push(v.clone());
            dict.insert(v, i);
            i
        }
    }
}

/// Builds an index from rows in ascending id order.
#[derive(Default)]
pub struct IndexBuilder {
    index: PoolIndex,
    source_dict: HashMap<String, u32>,
    license_dict: HashMap<String, u32>,
    /// Per attribute: raw value (strings by their text, others by their JSON text) → index.
    value_dict: HashMap<String, (HashMap<String, u32>, HashMap<String, u32>)>,
}

impl IndexBuilder {
    /// A builder that goes on from `index` (items are only ever appended, in id order): an
    /// import of k items then costs a pass over k items and a copy of the arrays, not a
    /// re-parse of the whole pool. The dictionaries are rebuilt from the index's values.
    pub fn resume(index: &PoolIndex) -> IndexBuilder {
        let dict = |names: &[String]| names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect();
        let mut value_dict: HashMap<String, (HashMap<String, u32>, HashMap<String, u32>)> = HashMap::new();
        for (name, column) in &index.attributes {
            let (strings, others) = value_dict.entry(name.clone()).or_default();
            for (i, v) in column.distinct.iter().enumerate() {
                match v {
                    Value::String(s) => strings.insert(s.clone(), i as u32),
                    other => others.insert(other.to_string(), i as u32),
                };
            }
        }
        IndexBuilder {
            index: index.clone(),
            source_dict: dict(&index.sources),
            license_dict: dict(&index.licenses),
            value_dict,
        }
    }

    pub fn push(&mut self, row: PoolItemRow) {
        let ix = &mut self.index;
        let pos = ix.ids.len();
        ix.ids.push(row.id);
        ix.weight.push(row.weight);
        ix.source.push(intern(&mut self.source_dict, &mut ix.sources, row.source));
        ix.license.push(intern(&mut self.license_dict, &mut ix.licenses, row.license));
        // A meta that is not an object has no attributes (as before: `parse_meta`).
        let Ok(meta) = serde_json::from_str::<Map<String, Value>>(&row.meta) else { return };
        for (name, value) in meta {
            let column = ix.attributes.entry(name.clone()).or_default();
            // Items before this one had no such key.
            column.values.resize(pos, NONE);
            let (strings, others) = self.value_dict.entry(name).or_default();
            let (dict, key) = match &value {
                Value::String(s) => (strings, s.clone()),
                other => (others, other.to_string()),
            };
            let i = match dict.get(&key) {
                Some(&i) => i,
                None => {
                    let i = column.distinct.len() as u32;
                    column.distinct.push(value);
                    dict.insert(key, i);
                    i
                }
            };
            column.values.push(i);
        }
    }

    pub fn finish(mut self) -> PoolIndex {
        let n = self.index.ids.len();
        for column in self.index.attributes.values_mut() {
            column.values.resize(n, NONE);
        }
        self.index
    }
}

/// The strata of the pool's items under some profile attributes: each item's combination of
/// categories as one number (mixed radix over the attributes' categories).
pub struct Categories<'a> {
    columns: Vec<Option<&'a Column>>,
    /// Per attribute: raw value index → category index, and the category of an absent value.
    to_category: Vec<(Vec<u32>, u32)>,
    /// Per attribute: the category names.
    names: Vec<Vec<String>>,
    radix: Vec<u128>,
}

impl<'a> Categories<'a> {
    pub fn new(index: &'a PoolIndex, attrs: &[&ProfileAttribute]) -> Result<Categories<'a>, PlanError> {
        let mut columns = Vec::new();
        let mut to_category = Vec::new();
        let mut names = Vec::new();
        for a in attrs {
            let column = index.attributes.get(&a.name);
            let mut seen: HashMap<String, u32> = HashMap::new();
            let mut these: Vec<String> = Vec::new();
            let mut category = |c: String| -> u32 {
                *seen.entry(c.clone()).or_insert_with(|| {
                    these.push(c);
                    these.len() as u32 - 1
                })
            };
            let map: Vec<u32> = column.map_or(Vec::new(), |c| c.distinct.iter().map(|v| category(a.category(Some(v)))).collect());
            let absent = category(a.category(None));
            columns.push(column);
            to_category.push((map, absent));
            names.push(these);
        }
        let mut radix = Vec::with_capacity(names.len());
        let mut r: u128 = 1;
        for n in &names {
            radix.push(r);
            r = r.checked_mul(n.len() as u128).ok_or_else(|| {
                PlanError("the stratification attributes have too many combinations of values to plan".into())
            })?;
        }
        Ok(Categories { columns, to_category, names, radix })
    }

    /// The stratum code of the item at `pos`.
    pub fn code(&self, pos: usize) -> u128 {
        let mut code = 0u128;
        for (a, column) in self.columns.iter().enumerate() {
            let (map, absent) = &self.to_category[a];
            let c = match column.map(|c| c.values[pos]) {
                Some(v) if v != NONE => map[v as usize],
                _ => *absent,
            };
            code += c as u128 * self.radix[a];
        }
        code
    }

    /// The category values of a code, in attribute order.
    pub fn values(&self, code: u128) -> Vec<String> {
        self.names
            .iter()
            .zip(&self.radix)
            .map(|(names, r)| names[((code / r) % names.len() as u128) as usize].clone())
            .collect()
    }
}

impl PoolIndex {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The attribute names any item has.
    pub fn attribute_names(&self) -> BTreeSet<String> {
        self.attributes.keys().cloned().collect()
    }

    /// Whether the item at `pos` has one of `names` as its licence (or source).
    pub fn flags(dict: &[String], names: &[String]) -> Vec<bool> {
        dict.iter().map(|d| names.contains(d)).collect()
    }

    /// Item counts per category combination, over the items `keep` accepts (by position).
    pub fn tally(
        &self,
        attrs: &[&ProfileAttribute],
        mut keep: impl FnMut(usize) -> bool,
    ) -> Result<BTreeMap<Vec<String>, u64>, PlanError> {
        let cats = Categories::new(self, attrs)?;
        let mut counts: HashMap<u128, u64> = HashMap::new();
        for pos in 0..self.len() {
            if keep(pos) {
                *counts.entry(cats.code(pos)).or_insert(0) += 1;
            }
        }
        Ok(counts.into_iter().map(|(code, n)| (cats.values(code), n)).collect())
    }
}

/// Dev-set membership of the pool's items, as positions in the index (ascending).
pub fn member_positions(index: &PoolIndex, members: &[(i64, i64)]) -> Vec<(usize, i64)> {
    let mut out: Vec<(usize, i64)> =
        members.iter().filter_map(|&(item, devset)| index.ids.binary_search(&item).ok().map(|p| (p, devset))).collect();
    out.sort_unstable();
    out
}

/// The last few projects' indexes, each with the `(visible_max_item_id, item_count)` it is for.
#[derive(Default)]
pub struct PoolCache {
    entries: Mutex<Vec<(i64, (i64, i64), Arc<PoolIndex>)>>,
    /// One build at a time: two requests after an import wait for one build, not run two.
    building: tokio::sync::Mutex<()>,
}

impl PoolCache {
    /// The project's cached index at whatever version it was built for.
    pub fn latest(&self, project_id: i64) -> Option<((i64, i64), Arc<PoolIndex>)> {
        let entries = self.entries.lock().expect("pool cache lock");
        entries.iter().find(|(p, _, _)| *p == project_id).map(|(_, v, ix)| (*v, ix.clone()))
    }

    pub fn cached(&self, project_id: i64, version: (i64, i64)) -> Option<Arc<PoolIndex>> {
        let mut entries = self.entries.lock().expect("pool cache lock");
        let at = entries.iter().position(|(p, v, _)| *p == project_id && *v == version)?;
        // Most recently used last.
        let entry = entries.remove(at);
        let index = entry.2.clone();
        entries.push(entry);
        Some(index)
    }

    fn insert(&self, project_id: i64, version: (i64, i64), index: Arc<PoolIndex>) {
        let mut entries = self.entries.lock().expect("pool cache lock");
        entries.retain(|(p, _, _)| *p != project_id);
        entries.push((project_id, version, index));
        if entries.len() > CACHED_PROJECTS {
            entries.remove(0);
        }
    }

    /// The project's index at `version`, built by `build` when not cached.
    pub async fn get<F, Fut, E>(&self, project_id: i64, version: (i64, i64), build: F) -> Result<Arc<PoolIndex>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<PoolIndex, E>>,
    {
        if let Some(index) = self.cached(project_id, version) {
            return Ok(index);
        }
        let _one = self.building.lock().await;
        if let Some(index) = self.cached(project_id, version) {
            return Ok(index);
        }
        let index = Arc::new(build().await?);
        self.insert(project_id, version, index.clone());
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, meta: &str) -> PoolItemRow {
        PoolItemRow { id, meta: meta.into(), weight: 1.0, source: None, license: Some("cc".into()) }
    }

    #[test]
    fn a_resumed_index_equals_one_built_in_one_pass() {
        let metas = [
            r#"{"region": "eu", "len": 3}"#,
            r#"{"region": "us"}"#,
            "not json",
            r#"{"region": "eu", "len": "3", "new": 1}"#,
            r#"{"region": 1, "len": 3}"#,
            r#"{"new": "x"}"#,
        ];
        let rows = |range: std::ops::Range<usize>| {
            range.map(|i| PoolItemRow {
                id: i as i64 + 1,
                meta: metas[i].into(),
                weight: i as f64,
                source: (i % 2 == 0).then(|| format!("s{}", i % 3)),
                license: Some(if i < 3 { "cc".into() } else { "mit".into() }),
            })
        };
        let mut whole = IndexBuilder::default();
        rows(0..metas.len()).for_each(|r| whole.push(r));
        let whole = whole.finish();
        for cut in 0..=metas.len() {
            let mut first = IndexBuilder::default();
            rows(0..cut).for_each(|r| first.push(r));
            let first = first.finish();
            let mut rest = IndexBuilder::resume(&first);
            rows(cut..metas.len()).for_each(|r| rest.push(r));
            assert_eq!(rest.finish(), whole, "resumed after {cut} items");
        }
    }

    #[test]
    fn categories_equal_the_per_item_function() {
        let metas = [
            r#"{"region": "eu", "len": 3}"#,
            r#"{"region": "us", "len": "12"}"#,
            r#"{"len": 40.5, "extra": null}"#,
            r#"{"region": 1, "len": "n/a"}"#,
            r#"{"region": "1", "len": 12}"#,
            "not json",
            r#"{"region": true, "len": null}"#,
        ];
        let mut b = IndexBuilder::default();
        for (i, m) in metas.iter().enumerate() {
            b.push(row(i as i64 + 10, m));
        }
        let index = b.finish();
        assert_eq!(index.attribute_names(), ["extra", "len", "region"].map(String::from).into());
        let region = ProfileAttribute { name: "region".into(), kind: "categorical".into(), edges: vec![] };
        let len = ProfileAttribute { name: "len".into(), kind: "numeric".into(), edges: vec![5.0, 12.0] };
        let attrs = [&len, &region];
        let cats = Categories::new(&index, &attrs).unwrap();
        for (pos, m) in metas.iter().enumerate() {
            let meta: Map<String, Value> = serde_json::from_str(m).unwrap_or_default();
            let expected: Vec<String> = attrs.iter().map(|a| a.category(meta.get(&a.name))).collect();
            assert_eq!(cats.values(cats.code(pos)), expected, "{m}");
        }
        // 1 and "1" are one category of a categorical attribute, as before.
        let tally = index.tally(&[&region], |_| true).unwrap();
        assert_eq!(tally.get(&vec!["1".to_string()]), Some(&2));
        assert_eq!(tally.get(&vec!["(missing)".to_string()]), Some(&2));
    }

    #[test]
    fn the_cache_keeps_the_last_projects_per_version() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let cache = PoolCache::default();
            let mut builds = 0;
            for (project, version) in [(1, (5, 5)), (1, (5, 5)), (1, (9, 9)), (2, (1, 1)), (1, (9, 9))] {
                cache
                    .get(project, version, || {
                        builds += 1;
                        async { Ok::<_, ()>(PoolIndex::default()) }
                    })
                    .await
                    .unwrap();
            }
            assert_eq!(builds, 3);
            for p in 3..3 + CACHED_PROJECTS as i64 {
                cache.get(p, (1, 1), || async { Ok::<_, ()>(PoolIndex::default()) }).await.unwrap();
            }
            assert!(cache.cached(1, (9, 9)).is_none(), "the least recently used project is dropped");
        });
    }
}
