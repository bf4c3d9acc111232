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
//! (a u64 band key per band, in a sorted `KeyIndex`, and the sorted shingle hashes in one flat
//! vector: about 250 bytes a text); the pool streams past the index one item at a time, so a
//! million-item pool costs no memory.
//!
//! Images: a 64-bit difference hash (dHash: 9 × 8 grey thumbnail, one bit per horizontal
//! gradient sign), compared by Hamming distance; it survives re-encoding and resizing. Hashes
//! are bucketed by bands of bits (`ImageIndex`), so only candidates are compared.

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

/// The min-hash functions: h_i(x) = a_i·x + b_i (mod 2^64) with odd a_i, over the mixed
/// shingle. Computed once per index, not per text.
fn coefficients(cfg: &MinHashConfig) -> Vec<(u64, u64)> {
    (0..(cfg.bands * cfg.rows) as u64).map(|i| (mix(2 * i + 1) | 1, mix(2 * i + 2))).collect()
}

/// One key per band: the hash of that band's `rows` min-hashes (seeded with the band's
/// number, so equal keys of two different bands never meet).
fn band_keys(sh: &[u64], cfg: &MinHashConfig, coeffs: &[(u64, u64)]) -> Vec<u64> {
    let mut mins = vec![u64::MAX; coeffs.len()];
    for &s in sh {
        let x = mix(s);
        for (m, &(a, b)) in mins.iter_mut().zip(coeffs) {
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

/// A multimap from u64 keys to u32 positions, built once then read: the pairs sorted by key,
/// with a directory over the keys' top bits so a lookup reads one short run (keys are hashes,
/// so the runs are about one entry long). 12 bytes a pair plus 4 a directory slot, where a
/// `HashMap<_, Vec<_>>` costs some 80 bytes a key: a 100,000-item release has 2,000,000 band
/// keys (docs/bench.md, the releases benchmark).
#[derive(Default)]
pub struct KeyIndex {
    keys: Vec<u64>,
    values: Vec<u32>,
    dir: Vec<u32>,
    shift: u32,
}

impl KeyIndex {
    pub fn build(mut pairs: Vec<(u64, u32)>) -> KeyIndex {
        pairs.sort_unstable();
        let bits = (usize::BITS - pairs.len().max(1).leading_zeros()).clamp(1, 24);
        let shift = 64 - bits;
        let mut dir = vec![0u32; (1usize << bits) + 1];
        for &(k, _) in &pairs {
            dir[(k >> shift) as usize + 1] += 1;
        }
        for i in 1..dir.len() {
            dir[i] += dir[i - 1];
        }
        let (keys, values) = pairs.into_iter().unzip();
        KeyIndex { keys, values, dir, shift }
    }

    /// The positions stored under `key`.
    pub fn get(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let (lo, hi) = if self.keys.is_empty() {
            (0, 0)
        } else {
            let slot = (key >> self.shift) as usize;
            (self.dir[slot] as usize, self.dir[slot + 1] as usize)
        };
        (lo..hi).filter(move |&i| self.keys[i] == key).map(move |i| self.values[i])
    }
}

/// The release's texts, indexed for near-duplicate queries: `insert` them all, `finish`, then
/// `query`.
pub struct NearDuplicateIndex {
    cfg: MinHashConfig,
    coeffs: Vec<(u64, u64)>,
    /// Every indexed text's sorted shingle hashes, one after the other; `offsets[p]..offsets[p + 1]`.
    shingles: Vec<u64>,
    offsets: Vec<u32>,
    ids: Vec<u64>,
    /// (band key, position) while inserting; moved into `buckets` by `finish`.
    pending: Vec<(u64, u32)>,
    buckets: KeyIndex,
}

/// A near-duplicate found: the indexed item's id and the exact Jaccard similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub id: u64,
    pub jaccard: f64,
}

impl NearDuplicateIndex {
    pub fn new(cfg: MinHashConfig) -> Self {
        NearDuplicateIndex {
            cfg,
            coeffs: coefficients(&cfg),
            shingles: Vec::new(),
            offsets: vec![0],
            ids: Vec::new(),
            pending: Vec::new(),
            buckets: KeyIndex::default(),
        }
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
        for key in band_keys(&sh, &self.cfg, &self.coeffs) {
            self.pending.push((key, pos));
        }
        self.ids.push(id);
        self.shingles.extend_from_slice(&sh);
        self.offsets.push(self.shingles.len() as u32);
    }

    /// Ends the inserts: builds the band index the queries read.
    pub fn finish(&mut self) {
        let mut pairs = std::mem::take(&mut self.pending);
        pairs.extend(self.buckets.keys.iter().copied().zip(self.buckets.values.iter().copied()));
        self.buckets = KeyIndex::build(pairs);
        self.shingles.shrink_to_fit();
    }

    fn shingles_of(&self, p: u32) -> &[u64] {
        &self.shingles[self.offsets[p as usize] as usize..self.offsets[p as usize + 1] as usize]
    }

    /// Indexed items whose Jaccard similarity with `text` reaches the threshold, most similar
    /// first (ties by id). Only items indexed before the last `finish` are found.
    pub fn query(&self, text: &str) -> Vec<Match> {
        debug_assert!(self.pending.is_empty(), "NearDuplicateIndex::query before finish");
        let sh = shingles(text, self.cfg.shingle_words);
        if sh.is_empty() {
            return Vec::new();
        }
        let mut candidates: Vec<u32> =
            band_keys(&sh, &self.cfg, &self.coeffs).into_iter().flat_map(|key| self.buckets.get(key)).collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut out: Vec<Match> = candidates
            .into_iter()
            .filter_map(|p| {
                let j = jaccard(&sh, self.shingles_of(p));
                (j >= self.cfg.threshold).then(|| Match { id: self.ids[p as usize], jaccard: j })
            })
            .collect();
        out.sort_by(|a, b| b.jaccard.total_cmp(&a.jaccard).then(a.id.cmp(&b.id)));
        out
    }
}

/// Perceptual hashes indexed for "at most `max_bits` apart" queries without comparing every
/// pair: the 64 bits are cut into `max_bits + 1` bands, and two hashes that differ in at most
/// `max_bits` bits agree on at least one whole band (pigeonhole). So only hashes sharing a
/// band value are compared; with 7 bands of 9–10 bits that is about 1 in 500 of a random set
/// per band, where the pairwise loop compared all.
pub struct ImageIndex {
    max_bits: u32,
    bands: Vec<(u32, u32)>,
    hashes: Vec<(u32, u64)>,
    buckets: KeyIndex,
}

impl ImageIndex {
    /// `hashes`: (position, dHash) of the indexed images.
    pub fn new(hashes: Vec<(u32, u64)>, max_bits: u32) -> ImageIndex {
        let n = max_bits + 1;
        // Bands of 64 / n bits, the last ones one bit wider to use all 64.
        let (base, extra) = (64 / n, 64 % n);
        let mut bands = Vec::new();
        let mut start = 0;
        for b in 0..n {
            let width = base + u32::from(b >= n - extra);
            bands.push((start, width));
            start += width;
        }
        let mut pairs = Vec::with_capacity(hashes.len() * bands.len());
        for (i, &(_, h)) in hashes.iter().enumerate() {
            for (b, &band) in bands.iter().enumerate() {
                pairs.push((Self::band_key(b, band, h), i as u32));
            }
        }
        ImageIndex { max_bits, bands, hashes, buckets: KeyIndex::build(pairs) }
    }

    fn band_key(b: usize, (start, width): (u32, u32), h: u64) -> u64 {
        mix(((h >> start) & ((1u64 << width) - 1)) ^ ((b as u64 + 1) << 40))
    }

    /// (position, dHash) of the indexed images.
    pub fn hashes(&self) -> &[(u32, u64)] {
        &self.hashes
    }

    /// (position, Hamming distance) of the indexed hashes at most `max_bits` from `h`, each once,
    /// by position.
    pub fn near(&self, h: u64) -> Vec<(u32, u32)> {
        let mut found: Vec<u32> = Vec::new();
        for (b, &band) in self.bands.iter().enumerate() {
            found.extend(self.buckets.get(Self::band_key(b, band, h)));
        }
        found.sort_unstable();
        found.dedup();
        let mut out: Vec<(u32, u32)> = found
            .into_iter()
            .filter_map(|i| {
                let (pos, hp) = self.hashes[i as usize];
                let d = hamming(h, hp);
                (d <= self.max_bits).then_some((pos, d))
            })
            .collect();
        out.sort_unstable();
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
        index.finish();
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
        index.finish();
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

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn key_index_finds_every_value_of_a_key() {
        let pairs: Vec<(u64, u32)> = (0..10_000u32).map(|i| (mix(i as u64 % 5_000), i)).collect();
        let index = KeyIndex::build(pairs);
        let mut got: Vec<u32> = index.get(mix(7)).collect();
        got.sort_unstable();
        assert_eq!(got, vec![7, 5_007]);
        assert_eq!(index.get(mix(123_456)).count(), 0);
        assert_eq!(KeyIndex::build(Vec::new()).get(1).count(), 0);
    }

    /// The banded image index finds exactly what comparing every pair finds.
    #[test]
    fn image_index_equals_the_pairwise_comparison() {
        let mut rng = crate::stats::rng::SeededRng::new(11);
        let mut hashes: Vec<(u32, u64)> = Vec::new();
        for p in 0..2_000u32 {
            let h = if p % 3 == 0 && p > 0 {
                // A near copy of an earlier hash: up to 8 bits flipped.
                let mut h = hashes[rng.below(hashes.len() as u64) as usize].1;
                for _ in 0..rng.below(9) {
                    h ^= 1 << rng.below(64);
                }
                h
            } else {
                (rng.below(u32::MAX as u64) << 32) | rng.below(u32::MAX as u64)
            };
            hashes.push((p * 10, h));
        }
        let index = ImageIndex::new(hashes.clone(), 6);
        for &(_, h) in hashes.iter().step_by(7) {
            let pairwise: Vec<(u32, u32)> =
                hashes.iter().filter(|(_, x)| hamming(h, *x) <= 6).map(|&(p, x)| (p, hamming(h, x))).collect();
            assert_eq!(index.near(h), pairwise);
        }
    }
}
