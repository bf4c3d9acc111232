//! `serve --demo`: two small projects to try Mirrorset with, made once.
//!
//! The items go through the ordinary import pipeline (a zip with a JSONL file and images),
//! so the demo exercises the same code a user's upload does.
use std::io::{Cursor, Write};

use app::api_types::{LabelDef, LabelKind, Role};
use image::{ImageFormat, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::import::{self, ImportCtx, ImportFormat, ImportJob};
use crate::store;
use crate::store::projects::ProjectSettings;

pub const TEXT_PROJECT: &str = "Demo: review sentiment";
pub const IMAGE_PROJECT: &str = "Demo: shapes and colours";

fn label(name: &str, key: &str, color: &str) -> LabelDef {
    LabelDef { name: name.into(), key: key.into(), color: color.into() }
}

pub async fn create_demo_project(ctx: &ImportCtx) -> anyhow::Result<()> {
    let db = &ctx.db;
    let existing = store::projects::list_projects(db, None).await?;
    if existing.iter().any(|p| p.project.name == TEXT_PROJECT) {
        return Ok(());
    }
    let admin = store::users::list_users(db)
        .await?
        .into_iter()
        .find(|u| u.role == Role::Admin)
        .ok_or_else(|| anyhow::anyhow!("no admin to own the demo projects"))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    let text_labels = [label("positive", "1", "#2e7d32"), label("neutral", "2", "#757575"), label("negative", "3", "#c62828")];
    let text = store::projects::create_project(
        db,
        &ProjectSettings {
            name: TEXT_PROJECT,
            instructions: "Label the **overall sentiment** of the review.\n\n- *positive*: the customer is happy overall\n- *neutral*: mixed or purely factual\n- *negative*: the customer is unhappy overall",
            kind: LabelKind::Single,
            labels: &text_labels,
            overlap: 1,
            lease_seconds: 600,
            quality: &app::api_types::QualitySettings::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        },
        admin.id,
    )
    .await?;
    let mut jsonl = Vec::new();
    for i in 0..300 {
        let region = ["eu", "us", "apac", "latam"][rng.gen_range(0..4)];
        let device = ["mobile", "desktop", "tablet"][rng.gen_range(0..3)];
        let line = json!({
            "id": format!("review-{i:04}"),
            "text": review_text(&mut rng, i),
            "meta": { "region": region, "device": device },
            "source": "mirrorset demo generator",
            "license": "CC0-1.0",
        });
        writeln!(jsonl, "{line}")?;
    }
    import_zip(ctx, text.id, &[("items.jsonl", jsonl)]).await?;

    let image_labels = [
        label("red", "r", "#d32f2f"),
        label("green", "g", "#388e3c"),
        label("blue", "b", "#1976d2"),
        label("circle", "c", "#6d4c41"),
        label("square", "q", "#455a64"),
    ];
    let images = store::projects::create_project(
        db,
        &ProjectSettings {
            name: IMAGE_PROJECT,
            instructions: "Choose **every** colour and shape you see, then press Enter.",
            kind: LabelKind::Multi,
            labels: &image_labels,
            overlap: 1,
            lease_seconds: 600,
            quality: &app::api_types::QualitySettings::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        },
        admin.id,
    )
    .await?;
    let mut files = Vec::new();
    let mut jsonl = Vec::new();
    for i in 0..100 {
        let name = format!("images/shape-{i:03}.png");
        files.push((name.clone(), shape_png(&mut rng)?));
        let camera = ["phone", "dslr"][i % 2];
        let line = json!({
            "id": format!("shape-{i:03}"),
            "image": name,
            "meta": { "camera": camera },
            "license": "CC0-1.0",
        });
        writeln!(jsonl, "{line}")?;
    }
    files.push(("items.jsonl".to_string(), jsonl));
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    import_zip(ctx, images.id, &refs).await?;
    tracing::info!("created the demo projects");
    Ok(())
}

async fn import_zip(ctx: &ImportCtx, project_id: i64, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    let spool = tempfile::NamedTempFile::new_in(ctx.spool_dir.as_path())?;
    {
        let mut zip = zip::ZipWriter::new(spool.reopen()?);
        for (name, bytes) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())?;
            zip.write_all(bytes)?;
        }
        zip.finish()?;
    }
    let job = ImportJob::start(ctx, project_id).await.map_err(|e| anyhow::anyhow!("demo import failed: {e}"))?;
    import::import_file(ctx, job, spool.into_temp_path(), ImportFormat::Zip)
        .await
        .map_err(|e| anyhow::anyhow!("demo import failed: {e}"))?;
    Ok(())
}

fn review_text(rng: &mut impl Rng, i: usize) -> String {
    const OPENINGS: &[&str] = &[
        "I ordered the blender last week.",
        "Our team has used this app for a month.",
        "The hotel was booked through the site.",
        "Bought these headphones for the commute.",
        "The delivery came two days early.",
        "Customer support answered within an hour.",
    ];
    const MIDDLES: &[&str] = &[
        "It does exactly what it promises and feels well made.",
        "Setup took longer than expected, but it works.",
        "It broke after three uses and the refund is still pending.",
        "The battery lasts all day, which surprised me.",
        "Half the features are hidden behind menus nobody can find.",
        "Nothing special, nothing wrong either.",
        "The packaging was damaged and one part was missing.",
    ];
    const ENDINGS: &[&str] = &[
        "Would buy again.",
        "I returned it.",
        "Fine for the price.",
        "Five stars from me.",
        "Not sure I would recommend it.",
        "",
    ];
    let mut s = format!(
        "{} {} {}",
        OPENINGS[rng.gen_range(0..OPENINGS.len())],
        MIDDLES[rng.gen_range(0..MIDDLES.len())],
        ENDINGS[rng.gen_range(0..ENDINGS.len())]
    );
    if i % 25 == 0 {
        // A few long reviews, to show long text stays readable.
        for _ in 0..12 {
            s.push(' ');
            s.push_str(MIDDLES[rng.gen_range(0..MIDDLES.len())]);
        }
    }
    format!("{} (#{i})", s.trim())
}

fn shape_png(rng: &mut impl Rng) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (480u32, 320u32);
    let mut img = RgbImage::from_pixel(w, h, Rgb([245, 245, 240]));
    let colours = [Rgb([211, 47, 47]), Rgb([56, 142, 60]), Rgb([25, 118, 210])];
    for _ in 0..rng.gen_range(1..=3) {
        let colour = colours[rng.gen_range(0..3)];
        let (cx, cy) = (rng.gen_range(60..w - 60) as i64, rng.gen_range(60..h - 60) as i64);
        let r = rng.gen_range(25..55) as i64;
        let circle = rng.gen_bool(0.5);
        for y in (cy - r).max(0)..(cy + r).min(h as i64) {
            for x in (cx - r).max(0)..(cx + r).min(w as i64) {
                let inside = !circle || (x - cx).pow(2) + (y - cy).pow(2) <= r * r;
                if inside {
                    img.put_pixel(x as u32, y as u32, colour);
                }
            }
        }
    }
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    Ok(out)
}
