//! Leakage search: which items of a release (near-)duplicate each other across splits, or an
//! item that can end up in training.
//!
//! Text: MinHash over word shingles with locality-sensitive hashing. Each text's set of word
//! 3-grams gets `bands × rows` min-hashes; items sharing all `rows` values of any band are
//! candidates, and a candidate counts when the exact Jaccard similarity of the two shingle sets
//! reaches the threshold. With 20 bands of 5 rows a pair at Jaccard 0.8 is missed with
//! probability (1 − 0.8^5)^20 ≈ 0.0004 (16 bands of 8 rows missed 4% of pairs just above 0.8),
//! and a pair at 0.5 is a candidate about half the time, which the exact check then drops.
//! The hash functions are h_i(x) = a_i·x + b_i (mod 2³²) over the mixed 32-bit shingle (one
//! multiply-add each, eight at a time with AVX2), so a million pool items cost seconds, not
//! minutes; the test `false_negative_rate_at_the_threshold_matches_the_theory` checks these
//! figures on the hashes themselves. Only the release's items are indexed (32 bits of a band key
//! per band, in a sorted `KeyIndex`, and the sorted 32-bit shingle hashes in one flat vector:
//! about 400 bytes a text); the pool streams past the index in batches, so a million-item
//! pool costs no memory.
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

/// The sorted, distinct 32-bit hashes of a text's word k-grams (lower-cased runs of letters
/// and digits). A text shorter than k words is one shingle of all its words; an empty text
/// has none.
///
/// Each word is hashed once (FNV-1a, 64 bits) and a k-gram's hash mixes its words' hashes
/// with their position, where hashing each k-gram's bytes read every word k times. 32 bits a
/// shingle: two distinct shingles of two 60-word texts collide with probability about
/// 60² / 2³² ≈ 1e-6, which moves a Jaccard figure by one shingle in a million pairs, and an
/// indexed 100,000-item release keeps half the bytes.
pub fn shingles(text: &str, k: usize) -> Vec<u32> {
    let k = k.max(1);
    let mut words: Vec<u64> = Vec::with_capacity(text.len() / 5 + 1);
    let mut buf = String::new();
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let h = if w.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
            fnv1a(w.as_bytes(), 0xcbf2_9ce4_8422_2325)
        } else {
            buf.clear();
            buf.extend(w.chars().flat_map(char::to_lowercase));
            fnv1a(buf.as_bytes(), 0xcbf2_9ce4_8422_2325)
        };
        words.push(h);
    }
    let gram = |ws: &[u64]| -> u32 {
        let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ ws.len() as u64;
        for &w in ws {
            h = mix(h ^ w);
        }
        (h >> 32) as u32
    };
    let mut out: Vec<u32> = if words.is_empty() {
        Vec::new()
    } else if words.len() < k {
        vec![gram(&words)]
    } else {
        words.windows(k).map(gram).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, distinct hash lists (1 for two empty sets: both empty
/// texts are the same text).
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
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

/// The min-hash functions h_i(x) = a_i·x + b_i (mod 2³²), a_i odd, over the shingle mixed
/// once more (so the inputs are uniform even for structured shingles). Computed once per
/// index, not per text. 32-bit lanes: a minimum over 8 functions is one AVX2 multiply, add
/// and min (`min_hashes`), where 64-bit products have no vector instruction before AVX-512.
struct Coefficients {
    a: Vec<u32>,
    b: Vec<u32>,
}

fn coefficients(cfg: &MinHashConfig) -> Coefficients {
    let n = (cfg.bands * cfg.rows) as u64;
    Coefficients {
        a: (0..n).map(|i| (mix(2 * i + 1) as u32) | 1).collect(),
        b: (0..n).map(|i| mix(2 * i + 2) as u32).collect(),
    }
}

/// `mins[i]` = min over the shingles x of a_i·x' + b_i, x' = x mixed. The loop over i is
/// written for the vectoriser; with AVX2 at run time the same loop is compiled for it.
fn min_hashes(sh: &[u32], c: &Coefficients, mins: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { min_hashes_avx2(sh, c, mins) };
            return;
        }
    }
    min_hashes_portable(sh, c, mins)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_hashes_avx2(sh: &[u32], c: &Coefficients, mins: &mut [u32]) {
    min_hashes_portable(sh, c, mins)
}

#[inline(always)]
fn min_hashes_portable(sh: &[u32], c: &Coefficients, mins: &mut [u32]) {
    let n = mins.len().min(c.a.len()).min(c.b.len());
    let (a, b, mins) = (&c.a[..n], &c.b[..n], &mut mins[..n]);
    for &s in sh {
        let x = (mix(s as u64) >> 32) as u32;
        for i in 0..n {
            mins[i] = mins[i].min(a[i].wrapping_mul(x).wrapping_add(b[i]));
        }
    }
}

/// One key per band: the hash of that band's `rows` min-hashes (seeded with the band's
/// number, so equal keys of two different bands never meet).
fn band_keys(sh: &[u32], cfg: &MinHashConfig, coeffs: &Coefficients) -> Vec<u64> {
    let mut mins = vec![u32::MAX; coeffs.a.len()];
    min_hashes(sh, coeffs, &mut mins);
    (0..cfg.bands)
        .map(|b| {
            let mut h = mix(b as u64 + 1);
            for &m in &mins[b * cfg.rows..(b + 1) * cfg.rows] {
                h = mix(h ^ m as u64);
            }
            h
        })
        .collect()
}

/// A multimap from 64-bit hash keys to u32 positions, built once then read: (key, position)
/// pairs sorted by key, with a directory over the keys' top bits so a lookup reads one short
/// run. It keeps each key's top 32 bits (`KeyIndex::short`): 8 bytes a pair plus 2 a directory
/// slot, where a `HashMap<_, Vec<_>>` costs some 80 bytes a key; a 100,000-item release has
/// 2,000,000 band keys (docs/bench.md, the releases benchmark). A lookup may so also give the
/// positions of another key with the same top 32 bits (a 100,000-item release against a
/// million pool items: some 25 such spurious hits in all); every caller confirms what it finds
/// (the exact Jaccard similarity, the normalised texts), so they cost a comparison each.
#[derive(Default)]
pub struct KeyIndex {
    pairs: Vec<(u32, u32)>,
    dir: Vec<u32>,
    shift: u32,
}

impl KeyIndex {
    /// The part of a key the index keeps.
    pub fn short(key: u64) -> u32 {
        (key >> 32) as u32
    }

    /// An index of (`short` key, position) pairs.
    pub fn build(mut pairs: Vec<(u32, u32)>) -> KeyIndex {
        pairs.sort_unstable();
        pairs.shrink_to_fit();
        // About two pairs a directory slot.
        let bits = (usize::BITS - pairs.len().max(1).leading_zeros()).saturating_sub(1).clamp(1, 24);
        let shift = 32 - bits;
        let mut dir = vec![0u32; (1usize << bits) + 1];
        for &(k, _) in &pairs {
            dir[(k >> shift) as usize + 1] += 1;
        }
        for i in 1..dir.len() {
            dir[i] += dir[i - 1];
        }
        KeyIndex { pairs, dir, shift }
    }

    /// The positions stored under `key` (and under any key with its top 32 bits).
    pub fn get(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let key = Self::short(key);
        let (lo, hi) = if self.pairs.is_empty() {
            (0, 0)
        } else {
            let slot = (key >> self.shift) as usize;
            (self.dir[slot] as usize, self.dir[slot + 1] as usize)
        };
        self.pairs[lo..hi].iter().filter(move |p| p.0 == key).map(|p| p.1)
    }
}

/// The release's texts, indexed for near-duplicate queries: `insert` them all, `finish`, then
/// `query`.
pub struct NearDuplicateIndex {
    cfg: MinHashConfig,
    coeffs: Coefficients,
    /// Every indexed text's sorted shingle hashes, one after the other; `offsets[p]..offsets[p + 1]`.
    shingles: Vec<u32>,
    offsets: Vec<u32>,
    ids: Vec<u64>,
    /// (short band key, position) while inserting; moved into `buckets` by `finish`.
    pending: Vec<(u32, u32)>,
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
            self.pending.push((KeyIndex::short(key), pos));
        }
        self.ids.push(id);
        self.shingles.extend_from_slice(&sh);
        self.offsets.push(self.shingles.len() as u32);
    }

    /// Ends the inserts: builds the band index the queries read.
    pub fn finish(&mut self) {
        let mut pairs = std::mem::take(&mut self.pending);
        pairs.extend_from_slice(&self.buckets.pairs);
        self.buckets = KeyIndex::build(pairs);
        self.shingles.shrink_to_fit();
    }

    fn shingles_of(&self, p: u32) -> &[u32] {
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
                pairs.push((KeyIndex::short(Self::band_key(b, band, h)), i as u32));
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

    /// The LSH parameters (20 bands of 5 rows over 32-bit min-hashes) against their theory:
    /// two sets at Jaccard J share one min-hash with probability J, and a band key with
    /// probability J⁵, so a pair is a candidate with probability 1 − (1 − J⁵)²⁰: 0.99961 at
    /// the 0.8 threshold (false negatives 0.04%), 0.47 at 0.5 (the exact check drops those).
    /// Measured over 3,000 random pairs of 90-shingle unions built at exactly those Jaccards.
    #[test]
    fn false_negative_rate_at_the_threshold_matches_the_theory() {
        let cfg = MinHashConfig::default();
        let coeffs = coefficients(&cfg);
        let mut rng = crate::stats::rng::SeededRng::new(17);
        let mut trial = |shared: usize, only: usize| -> (f64, f64) {
            let (mut candidates, mut rows_equal, pairs) = (0usize, 0usize, 3_000usize);
            for _ in 0..pairs {
                let mut draw = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(u32::MAX as u64) as u32).collect() };
                let common = draw(shared);
                let mut a = [common.clone(), draw(only)].concat();
                let mut b = [common, draw(only)].concat();
                a.sort_unstable();
                b.sort_unstable();
                let (mut ma, mut mb) = (vec![u32::MAX; coeffs.a.len()], vec![u32::MAX; coeffs.a.len()]);
                min_hashes(&a, &coeffs, &mut ma);
                min_hashes(&b, &coeffs, &mut mb);
                rows_equal += ma.iter().zip(&mb).filter(|(x, y)| x == y).count();
                let (ka, kb) = (band_keys(&a, &cfg, &coeffs), band_keys(&b, &cfg, &coeffs));
                candidates += ka.iter().zip(&kb).any(|(x, y)| x == y) as usize;
            }
            (candidates as f64 / pairs as f64, rows_equal as f64 / (pairs * coeffs.a.len()) as f64)
        };
        // Jaccard 0.8: 72 shared of a 90-shingle union.
        let (rate, row) = trial(72, 9);
        assert!((row - 0.8).abs() < 0.01, "one min-hash agrees with probability {row}, not 0.8");
        assert!(1.0 - rate <= 0.003, "false negatives at 0.8: {:.4} (theory 0.0004)", 1.0 - rate);
        // Jaccard 0.5: 30 shared of 60.
        let (rate, row) = trial(30, 15);
        assert!((row - 0.5).abs() < 0.01, "{row}");
        assert!((0.37..=0.57).contains(&rate), "candidates at 0.5: {rate} (theory 0.47)");
    }

    /// The vectorised minimum equals the plain one.
    #[test]
    fn min_hashes_equal_the_portable_loop() {
        let coeffs = coefficients(&MinHashConfig::default());
        let sh = shingles(BASE, 3);
        let (mut fast, mut plain) = (vec![u32::MAX; 100], vec![u32::MAX; 100]);
        min_hashes(&sh, &coeffs, &mut fast);
        min_hashes_portable(&sh, &coeffs, &mut plain);
        assert_eq!(fast, plain);
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
        let pairs: Vec<(u32, u32)> = (0..10_000u32).map(|i| (KeyIndex::short(mix(i as u64 % 5_000)), i)).collect();
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
