//! Leakage search: which items of a release (near-)duplicate each other across splits, or an
//! item that can end up in training.
//!
//! Text: MinHash over word shingles with locality-sensitive hashing. Each text's set of word
//! 3-grams gets `bands × rows` min-hashes; items sharing all `rows` values of any band are
//! candidates, and a candidate counts when the exact Jaccard similarity of the two shingle sets
//! reaches the threshold. With 20 bands of 5 rows a pair at Jaccard 0.8 is missed with
//! probability (1 − 0.8^5)^20 ≈ 0.0004 (16 bands of 8 rows missed 4% of pairs just above 0.8),
//! and a pair at 0.5 is a candidate about half the time, which the exact check then drops.
//! The hash functions are h_i(x) = a_i·x + b_i over the mixed shingle (one multiply-add each),
//! so a million pool items cost seconds, not minutes. Only the release's items are indexed
//! (a band key per band and the sorted shingle hashes); the pool streams past the index one
//! item at a time, so a million-item pool costs no memory.
//!
//! Images: a 64-bit difference hash (dHash: 9 × 8 grey thumbnail, one bit per horizontal
//! gradient sign), compared by Hamming distance; it survives re-encoding and resizing.
use std::collections::HashMap;

/// Word shingle size, bands and rows of the LSH index, and the Jaccard threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinHashConfig {
    pub shingle_words: usize,
    pub bands: usize,
    pub rows: usize,
    pub threshold: f64,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        MinHashConfig { shingle_words: 3, bands: 20, rows: 5, threshold: 0.8 }
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The sorted, distinct hashes of a text's word k-grams (lower-cased runs of letters and
/// digits). A text shorter than k words is one shingle of all its words; an empty text has none.
pub fn shingles(text: &str, k: usize) -> Vec<u64> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let k = k.max(1);
    let mut out: Vec<u64> = if words.is_empty() {
        Vec::new()
    } else if words.len() < k {
        vec![shingle_hash(&words)]
    } else {
        words.windows(k).map(shingle_hash).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn shingle_hash(words: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in words {
        h = fnv1a(w.as_bytes(), h);
        h = fnv1a(b" ", h);
    }
    h
}

/// Jaccard similarity of two sorted, distinct hash lists (1 for two empty sets: both empty
/// texts are the same text).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / (a.len() + b.len() - both) as f64
}

/// One key per band: the hash of that band's `rows` min-hashes.
fn band_keys(sh: &[u64], cfg: &MinHashConfig) -> Vec<u64> {
    let n = cfg.bands * cfg.rows;
    // Hash function i: x ↦ a_i·x + b_i (mod 2^64) with odd a_i, over the mixed shingle.
    let coeffs: Vec<(u64, u64)> = (0..n as u64).map(|i| (mix(2 * i + 1) | 1, mix(2 * i + 2))).collect();
    let mut mins = vec![u64::MAX; n];
    for &s in sh {
        let x = mix(s);
        for (m, &(a, b)) in mins.iter_mut().zip(&coeffs) {
            let v = x.wrapping_mul(a).wrapping_add(b);
            if v < *m {
                *m = v;
            }
        }
    }
    (0..cfg.bands)
        .map(|b| {
            let mut h = mix(b as u64 + 1);
            for &m in &mins[b * cfg.rows..(b + 1) * cfg.rows] {
                h = mix(h ^ m);
            }
            h
        })
        .collect()
}

/// The release's texts, indexed for near-duplicate queries.
pub struct NearDuplicateIndex {
    cfg: MinHashConfig,
    shingles: Vec<Vec<u64>>,
    ids: Vec<u64>,
    /// (band, band key) → positions in `ids`.
    buckets: HashMap<(u32, u64), Vec<u32>>,
}

/// A near-duplicate found: the indexed item's id and the exact Jaccard similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub id: u64,
    pub jaccard: f64,
}

impl NearDuplicateIndex {
    pub fn new(cfg: MinHashConfig) -> Self {
        NearDuplicateIndex { cfg, shingles: Vec::new(), ids: Vec::new(), buckets: HashMap::new() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a text under `id`. Texts with no words are left out: they can only match other
    /// empty texts, which the exact-duplicate check (content hash) already finds.
    pub fn insert(&mut self, id: u64, text: &str) {
        let sh = shingles(text, self.cfg.shingle_words);
        if sh.is_empty() {
            return;
        }
        let pos = self.ids.len() as u32;
        for (b, key) in band_keys(&sh, &self.cfg).into_iter().enumerate() {
            self.buckets.entry((b as u32, key)).or_default().push(pos);
        }
        self.ids.push(id);
        self.shingles.push(sh);
    }

    /// Indexed items whose Jaccard similarity with `text` reaches the threshold, most similar
    /// first (ties by id).
    pub fn query(&self, text: &str) -> Vec<Match> {
        let sh = shingles(text, self.cfg.shingle_words);
        if sh.is_empty() {
            return Vec::new();
        }
        let mut candidates: Vec<u32> = band_keys(&sh, &self.cfg)
            .into_iter()
            .enumerate()
            .filter_map(|(b, key)| self.buckets.get(&(b as u32, key)))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut out: Vec<Match> = candidates
            .into_iter()
            .filter_map(|p| {
                let j = jaccard(&sh, &self.shingles[p as usize]);
                (j >= self.cfg.threshold).then(|| Match { id: self.ids[p as usize], jaccard: j })
            })
            .collect();
        out.sort_by(|a, b| b.jaccard.total_cmp(&a.jaccard).then(a.id.cmp(&b.id)));
        out
    }
}

/// The 64-bit difference hash of an image (see the module comment).
pub fn dhash(image: &image::DynamicImage) -> u64 {
    let small = image.grayscale().resize_exact(9, 8, image::imageops::FilterType::Triangle).to_luma8();
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            h = (h << 1) | (small.get_pixel(x, y)[0] < small.get_pixel(x + 1, y)[0]) as u64;
        }
    }
    h
}

/// Bits that differ between two perceptual hashes.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "The delivery arrived two days late and the box was crushed on one side, \
        but the headphones inside work perfectly and the sound is clear even at high volume. \
        Customer service answered my email within an hour and offered a small refund.";

    #[test]
    fn jaccard_of_shingle_sets() {
        let a = shingles("a b c d", 3);
        assert_eq!(a.len(), 2);
        assert_eq!(jaccard(&a, &a), 1.0);
        assert_eq!(jaccard(&a, &shingles("a b c e", 3)), 1.0 / 3.0);
        assert_eq!(jaccard(&[], &[]), 1.0);
        assert_eq!(jaccard(&a, &[]), 0.0);
        // Case and punctuation do not matter; a short text is one shingle.
        assert_eq!(shingles("Hello, WORLD!", 3), shingles("hello world", 3));
        assert_eq!(shingles("hello world", 3).len(), 1);
    }

    #[test]
    fn finds_an_edited_copy_and_not_an_unrelated_text() {
        let mut index = NearDuplicateIndex::new(MinHashConfig::default());
        index.insert(1, BASE);
        index.insert(2, "A completely different review about a blender that stopped working after a week of use.");
        // One word changed out of 48: Jaccard about 0.89.
        let edited = BASE.replace("crushed", "dented");
        let hits = index.query(&edited);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].id, 1);
        assert!(hits[0].jaccard > 0.8 && hits[0].jaccard < 1.0, "{hits:?}");
        assert_eq!(index.query(BASE)[0].jaccard, 1.0);
        // Half the text rewritten: well below 0.8, not reported.
        let half = format!("{} I would not buy from this shop again, the packaging was awful.", &BASE[..120]);
        assert!(index.query(&half).is_empty());
        assert!(index.query("").is_empty());
    }

    /// Over many random pairs, LSH misses almost no pair above the threshold.
    #[test]
    fn recall_above_the_threshold() {
        let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        let mut rng = crate::stats::rng::SeededRng::new(3);
        let mut index = NearDuplicateIndex::new(MinHashConfig::default());
        let mut texts = Vec::new();
        for id in 0..300u64 {
            let t: Vec<&str> = (0..60).map(|_| words[rng.below(500) as usize].as_str()).collect();
            index.insert(id, &t.join(" "));
            texts.push(t);
        }
        let (mut above, mut found) = (0, 0);
        for (id, t) in texts.iter().enumerate() {
            // Change 2 of 60 words: Jaccard of the 3-shingles ≈ 0.82–0.9.
            let mut t = t.clone();
            t[10] = "changed";
            t[40] = "again";
            let text = t.join(" ");
            let exact = jaccard(&shingles(&text, 3), &shingles(&texts[id].join(" "), 3));
            if exact >= 0.8 {
                above += 1;
                found += index.query(&text).iter().any(|m| m.id == id as u64) as usize;
            }
        }
        assert!(above > 250, "{above}");
        assert!(found as f64 >= 0.99 * above as f64, "found {found} of {above}");
    }

    #[test]
    fn dhash_survives_resizing_and_tells_images_apart() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        }));
        let smaller = img.resize_exact(32, 24, image::imageops::FilterType::Triangle);
        assert!(hamming(dhash(&img), dhash(&smaller)) <= 4);
        let other = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([255 - (x * 4) as u8, ((x * y) % 256) as u8, 0])
        }));
        assert!(hamming(dhash(&img), dhash(&other)) > 16);
    }
}
