//! Image validation and content-addressed storage.
//!
//! Every uploaded image is decoded once under explicit limits (format, pixel dimensions,
//! decoder memory), so a corrupt file or a decompression bomb (a small file that declares a
//! huge canvas) is refused before it can take the server's memory. Originals are stored by
//! their SHA-256 under `images/`, with a JPEG thumbnail under `thumbnails/`.
//!
//! Images are stored during an import's validation pass, before anyone knows whether the
//! import will be refused. A refused or failed import removes the files it created (and their
//! `images` rows) unless something else uses them: an item, or another import running in this
//! process that stored or found the same image (`Claims`). Instances sharing one data
//! directory do not see each other's claims; the window is one import's run, and the worst
//! case is an image file removed under another instance's running import of the same image,
//! whose items then show a missing image.
use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use image::{ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::store::items::StoredImage;

pub const MAX_IMAGE_BYTES: u64 = 50 * 1024 * 1024;
pub const MAX_DIMENSION: u32 = 16_384;
pub const MAX_PIXELS: u64 = 100_000_000;
pub const MAX_DECODER_ALLOC: u64 = 1024 * 1024 * 1024;
pub const THUMBNAIL_SIZE: u32 = 320;

const ALLOWED: &[ImageFormat] =
    &[ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP, ImageFormat::Bmp];

pub fn original_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir.join("images").join(&sha256[..2]).join(sha256)
}

pub fn thumbnail_path(data_dir: &Path, sha256: &str) -> PathBuf {
    data_dir.join("thumbnails").join(&sha256[..2]).join(format!("{sha256}.jpg"))
}

pub fn content_type(format: &str) -> &'static str {
    match format {
        "png" => "image/png",
        "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        _ => "application/octet-stream",
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Gif => "gif",
        ImageFormat::WebP => "webp",
        _ => "bmp",
    }
}

/// How many running imports of this process claim each image (by SHA-256).
static CLAIMED: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// The images one import stored or found; released when dropped. While an image is claimed
/// by two imports, neither removes its files.
#[derive(Default, Debug)]
pub struct Claims {
    held: HashSet<String>,
}

impl Claims {
    fn claim(&mut self, sha256: &str) {
        if self.held.insert(sha256.to_string()) {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
            *claimed.entry(sha256.to_string()).or_default() += 1;
        }
    }

    /// Removes the files of the given images (stored by this import and no longer known to the
    /// database) unless another running import claims them too. Returns how many it removed.
    pub fn remove_unshared_files(&self, data_dir: &Path, shas: &[String]) -> usize {
        // Under the lock: an import that claims one of these images next finds no file and
        // stores it again, and one that claimed it already keeps it.
        let claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        let mut removed = 0;
        for sha in shas {
            if !self.held.contains(sha) || claimed.get(sha).copied().unwrap_or(0) > 1 {
                continue;
            }
            let _ = std::fs::remove_file(thumbnail_path(data_dir, sha));
            if std::fs::remove_file(original_path(data_dir, sha)).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        for sha in self.held.drain() {
            if let Some(n) = claimed.get_mut(&sha) {
                *n -= 1;
                if *n == 0 {
                    claimed.remove(&sha);
                }
            }
        }
    }
}

/// Validates the image and stores it (if not stored already), claiming it for the import.
/// Returns the image and whether this call created its file, or why it was refused.
pub fn validate_and_store(data_dir: &Path, bytes: &[u8], claims: &mut Claims) -> Result<(StoredImage, bool), String> {
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(format!("the image is larger than {} MiB", MAX_IMAGE_BYTES >> 20));
    }
    let sha256 = hex::encode(Sha256::digest(bytes));
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let format = reader
        .format()
        .filter(|f| ALLOWED.contains(f))
        .ok_or("not a PNG, JPEG, GIF, WebP or BMP image")?;
    // The header alone tells the canvas size: check it before decoding a single pixel.
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("cannot read the image header: {e}"))?;
    check_dimensions(w, h)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| format!("the image does not decode: {e}"))?;

    // Claim before looking at the file, so a refused import collecting it either sees the claim
    // or has removed the file before we look.
    claims.claim(&sha256);
    let original = original_path(data_dir, &sha256);
    let created = !original.exists();
    if created {
        write_atomically(&original, bytes).map_err(|e| format!("cannot store the image: {e}"))?;
    }
    let thumb = thumbnail_path(data_dir, &sha256);
    if !thumb.exists() {
        let small = decoded.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE).into_rgb8();
        let mut out = Vec::new();
        small
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .map_err(|e| format!("cannot make a thumbnail: {e}"))?;
        write_atomically(&thumb, &out).map_err(|e| format!("cannot store the thumbnail: {e}"))?;
    }
    let stored = StoredImage {
        sha256,
        format: format_name(format).to_string(),
        width: w as i64,
        height: h as i64,
        bytes: bytes.len() as i64,
    };
    Ok((stored, created))
}

fn check_dimensions(w: u32, h: u32) -> Result<(), String> {
    if w == 0 || h == 0 {
        return Err("the image is empty (0 pixels wide or high)".into());
    }
    if w > MAX_DIMENSION || h > MAX_DIMENSION || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!(
            "the image declares {w}×{h} pixels, over the limit of {MAX_DIMENSION}×{MAX_DIMENSION} \
             and {MAX_PIXELS} pixels (a decompression bomb, or just too large)"
        ));
    }
    Ok(())
}

/// Writes to a temporary file beside the target and renames it into place, so a crash never
/// leaves a half-written image under its final name.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("image paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn a_small_png_is_stored_with_a_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let mut claims = Claims::default();
        let (stored, created) = validate_and_store(dir.path(), &png(40, 30), &mut claims).unwrap();
        assert!(created);
        assert_eq!((stored.width, stored.height, stored.format.as_str()), (40, 30, "png"));
        assert!(original_path(dir.path(), &stored.sha256).exists());
        assert!(thumbnail_path(dir.path(), &stored.sha256).exists());
        // A second import finds it stored; while both claim it, neither removes it.
        let mut other = Claims::default();
        let (_, created_again) = validate_and_store(dir.path(), &png(40, 30), &mut other).unwrap();
        assert!(!created_again);
        let shas = vec![stored.sha256.clone()];
        assert_eq!(claims.remove_unshared_files(dir.path(), &shas), 0);
        drop(other);
        assert_eq!(claims.remove_unshared_files(dir.path(), &shas), 1);
        assert!(!original_path(dir.path(), &stored.sha256).exists());
        assert!(!thumbnail_path(dir.path(), &stored.sha256).exists());
    }

    #[test]
    fn a_declared_huge_canvas_is_refused_before_decoding() {
        // A valid 1×1 PNG whose IHDR is rewritten to claim 100000×100000 pixels.
        let mut bytes = png(1, 1);
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        let err = validate_and_store(dir.path(), &bytes, &mut Claims::default()).unwrap_err();
        assert!(err.contains("decompression bomb"), "{err}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn non_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(validate_and_store(dir.path(), b"hello, not an image", &mut Claims::default()).is_err());
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        assert!(validate_and_store(dir.path(), &truncated, &mut Claims::default()).is_err());
    }
}
