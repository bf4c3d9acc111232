//! Image validation and content-addressed storage.
//!
//! Every uploaded image is decoded once under explicit limits (format, pixel dimensions,
//! decoder memory), so a corrupt file or a decompression bomb (a small file that declares a
//! huge canvas) is refused before it can take the server's memory. Originals are stored by
//! their SHA-256 under `images/`, with a JPEG thumbnail under `thumbnails/`.
use std::io::Cursor;
use std::path::{Path, PathBuf};

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

/// Validates the image and stores it (if not stored already). Returns why it was refused.
pub fn validate_and_store(data_dir: &Path, bytes: &[u8]) -> Result<StoredImage, String> {
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

    let original = original_path(data_dir, &sha256);
    if !original.exists() {
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
    Ok(StoredImage {
        sha256,
        format: format_name(format).to_string(),
        width: w as i64,
        height: h as i64,
        bytes: bytes.len() as i64,
    })
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
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        let stored = validate_and_store(dir.path(), &png(40, 30)).unwrap();
        assert_eq!((stored.width, stored.height, stored.format.as_str()), (40, 30, "png"));
        assert!(original_path(dir.path(), &stored.sha256).exists());
        assert!(thumbnail_path(dir.path(), &stored.sha256).exists());
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
        let err = validate_and_store(dir.path(), &bytes).unwrap_err();
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
        assert!(validate_and_store(dir.path(), b"hello, not an image").is_err());
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        assert!(validate_and_store(dir.path(), &truncated).is_err());
    }
}
