//! Running the labeling rules over a project: between the API (`api::prelabel_rules`) and the
//! store (`store::prelabel_rules`), with the work itself in `rules` and `rules_index`.
//!
//! Every request reads the project's final labels afresh (they change as people label) and the
//! corpus from the cache (it changes only with an import); the CPU work runs on a blocking
//! thread.
use std::sync::Arc;
use std::time::Instant;

use app::api_types::{
    JobInfo, LabelDef, PrelabelRule, RuleDraft, RuleExample, RuleKind, RuleList, RulePreview, RulePreviewRequest, RulesApplied,
    RulesApplyStatus,
};

use super::rules::{compile, hits, label, statistics, Fabric, Finals, Rule};
use super::rules_index::{Corpus, CorpusBuilder, CORPORA};
use crate::error::{AppError, AppResult};
use crate::jobs::JobCtx;
use crate::store::jobs;
use crate::store::prelabel_rules::{self as store, RuleRow};
use crate::store::Db;

/// Rules a project may have: each runs over every item on every preview.
pub const MAX_RULES: usize = 200;
/// The job kind of an Apply (`crate::jobs`). Apply is a background job: at 1,000,000 items,
/// building the corpus after an import, running every rule and the label model, and writing
/// the pre-labels can outlast what a request should wait.
pub const APPLY_KIND: &str = "rules_apply";

/// The steps of an Apply its progress counts: the items read, the label model run, the
/// pre-labels written.
const APPLY_STEPS: i64 = 3;

/// What an Apply job is queued with: who asked (the audit log's actor).
#[derive(serde::Serialize, serde::Deserialize)]
struct ApplyParams {
    actor: i64,
}

/// Matched items a preview shows.
const EXAMPLES: usize = 5;
/// Characters of an example's text.
const EXAMPLE_CHARS: usize = 160;

/// A project's items for the rules: the cached corpus and today's final labels.
pub struct Loaded {
    pub corpus: Arc<Corpus>,
    pub finals: Finals,
    pub labels: Vec<String>,
}

/// The project's corpus (built on first use and after each import, `rules_index`) and the
/// final labels of its items as label codes.
pub async fn load(db: &Db, project_id: i64, label_defs: &[LabelDef]) -> AppResult<Loaded> {
    let version = crate::store::devsets::pool_version(db, project_id)
        .await?
        .ok_or_else(|| AppError::not_found("no such project"))?;
    let corpus = CORPORA
        .get(project_id, version, || async {
            let mut builder = CorpusBuilder::default();
            let mut after = i64::MIN;
            loop {
                let rows = store::corpus_chunk(db, project_id, after, version.0, store::CORPUS_CHUNK).await?;
                let Some(last) = rows.last().map(|r| r.0) else { break };
                after = last;
                let full = rows.len() as i64 == store::CORPUS_CHUNK;
                builder = tokio::task::spawn_blocking(move || {
                    for (id, text, meta) in &rows {
                        builder.push(*id, text.as_deref(), meta);
                    }
                    builder
                })
                .await
                .map_err(|e| AppError::Internal(anyhow::anyhow!("building the rules' corpus: {e}")))?;
                if !full {
                    break;
                }
            }
            Ok::<_, AppError>(builder.finish())
        })
        .await?;
    let labels: Vec<String> = label_defs.iter().map(|l| l.name.clone()).collect();
    let mut finals: Finals = vec![None; corpus.len()];
    for (item, decision, gold, consensus, n, k) in store::final_label_inputs(db, project_id).await? {
        let parse = |s: Option<String>| crate::review::parse_labels(s.as_deref());
        let f = crate::review::final_label(parse(decision), parse(gold), parse(consensus), n, k);
        if let (Some(names), Some(pos)) = (f.labels, corpus.position(item)) {
            let codes: Vec<u16> = names.iter().filter_map(|n| labels.iter().position(|l| l == n)).map(|c| c as u16).collect();
            finals[pos] = Some(codes.into());
        }
    }
    Ok(Loaded { corpus, finals, labels })
}

fn compile_row(row: &RuleRow, labels: &[String]) -> Result<Rule, String> {
    compile(row.kind(), &row.pattern, row.meta_key.as_deref(), row.label.as_deref(), labels)
}

/// Checks a draft before it is saved: a name, and a rule that compiles.
pub fn check_draft(d: &mut RuleDraft, labels: &[String]) -> AppResult<()> {
    d.name = d.name.trim().to_string();
    if d.name.is_empty() || d.name.chars().count() > 200 {
        return Err(AppError::bad_request("a rule needs a name of 1 to 200 characters"));
    }
    if d.kind != RuleKind::Meta {
        d.meta_key = None;
    }
    // 422: the request is well formed, the rule in it is not (a schema cannot say which
    // patterns compile or which labels the project has).
    compile(d.kind, &d.pattern, d.meta_key.as_deref(), d.label.as_deref(), labels).map_err(AppError::unprocessable)?;
    Ok(())
}

/// Every saved rule with its figures against the other enabled rules.
pub async fn list(db: &Db, project_id: i64, label_defs: &[LabelDef]) -> AppResult<RuleList> {
    let rows = store::list_rules(db, project_id).await?;
    let loaded = load(db, project_id, label_defs).await?;
    tokio::task::spawn_blocking(move || {
        let Loaded { corpus, finals, labels } = loaded;
        // A saved rule that no longer compiles (a label renamed since) is shown without figures.
        let compiled: Vec<Option<Rule>> = rows.iter().map(|r| compile_row(r, &labels).ok()).collect();
        let h: Vec<Vec<u32>> = compiled.iter().map(|r| r.as_ref().map(|r| hits(r, &corpus)).unwrap_or_default()).collect();
        let enabled: Vec<(&Rule, &[u32])> = rows
            .iter()
            .zip(&compiled)
            .zip(&h)
            .filter_map(|((row, r), h)| r.as_ref().filter(|_| row.enabled != 0).map(|r| (r, h.as_slice())))
            .collect();
        let fabric = Fabric::new(corpus.len(), labels.len(), &enabled);
        let rules = rows
            .into_iter()
            .zip(&compiled)
            .zip(&h)
            .map(|((row, r), h)| {
                let stats = match r {
                    Some(r) => statistics(r, h, &fabric, row.enabled != 0, &finals),
                    None => app::api_types::RuleStats {
                        accuracy: app::api_types::StatValue {
                            reason: compile_row(&row, &labels).err(),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                };
                wire(row, stats)
            })
            .collect();
        RuleList {
            items: corpus.len() as i64,
            labeled: finals.iter().filter(|f| f.is_some()).count() as i64,
            covered: fabric.covered(),
            rules,
        }
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the rules' figures: {e}")))
}

pub fn wire(row: RuleRow, stats: app::api_types::RuleStats) -> PrelabelRule {
    PrelabelRule {
        id: row.id,
        kind: row.kind(),
        name: row.name,
        pattern: row.pattern,
        meta_key: row.meta_key,
        label: row.label,
        enabled: row.enabled != 0,
        created_at: row.created_at,
        updated_at: row.updated_at,
        stats,
    }
}

/// The figures of an unsaved rule against the saved enabled rules (but the one it edits).
pub async fn preview(db: &Db, project_id: i64, label_defs: &[LabelDef], req: RulePreviewRequest) -> AppResult<RulePreview> {
    let labels: Vec<String> = label_defs.iter().map(|l| l.name.clone()).collect();
    let meta_key = if req.kind == RuleKind::Meta { req.meta_key.as_deref() } else { None };
    let rule = compile(req.kind, &req.pattern, meta_key, req.label.as_deref(), &labels).map_err(AppError::unprocessable)?;
    let rows: Vec<RuleRow> = store::list_rules(db, project_id)
        .await?
        .into_iter()
        .filter(|r| r.enabled != 0 && Some(r.id) != req.editing)
        .collect();
    let loaded = load(db, project_id, label_defs).await?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let Loaded { corpus, finals, labels } = loaded;
        let others: Vec<Rule> = rows.iter().filter_map(|r| compile_row(r, &labels).ok()).collect();
        let other_hits: Vec<Vec<u32>> = others.iter().map(|r| hits(r, &corpus)).collect();
        let pairs: Vec<(&Rule, &[u32])> = others.iter().zip(&other_hits).map(|(r, h)| (r, h.as_slice())).collect();
        let fabric = Fabric::new(corpus.len(), labels.len(), &pairs);
        let mine = hits(&rule, &corpus);
        let stats = statistics(&rule, &mine, &fabric, false, &finals);
        let examples = mine
            .iter()
            .take(EXAMPLES)
            .map(|&i| RuleExample {
                item_id: corpus.item_ids[i as usize],
                text: corpus.text(i as usize).chars().take(EXAMPLE_CHARS).collect(),
                final_labels: finals[i as usize]
                    .as_ref()
                    .map(|codes| codes.iter().map(|&c| labels[c as usize].clone()).collect()),
            })
            .collect();
        RulePreview { items: corpus.len() as i64, stats, examples, elapsed_ms: started.elapsed().as_secs_f64() * 1e3 }
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the rule's preview: {e}")))
}

/// Queues an Apply of the project's enabled rules and returns its job. A request while one is
/// still queued joins it (`jobs::enqueue`): both want the rules as they are when it runs.
pub async fn queue_apply(db: &Db, project_id: i64, actor: i64) -> AppResult<JobInfo> {
    let params = serde_json::to_string(&ApplyParams { actor }).map_err(anyhow::Error::from)?;
    let id = jobs::enqueue(db, APPLY_KIND, Some(project_id), &params).await?;
    match jobs::latest(db, APPLY_KIND, project_id).await? {
        Some(job) if job.id == id => Ok(job.into()),
        _ => Err(AppError::Internal(anyhow::anyhow!("the queued rules job {id} is not the project's newest"))),
    }
}

/// The project's newest Apply job, and the result of the newest one that finished.
pub async fn apply_status(db: &Db, project_id: i64) -> AppResult<RulesApplyStatus> {
    let job = jobs::latest(db, APPLY_KIND, project_id).await?.map(JobInfo::from);
    let applied = match jobs::latest_result(db, APPLY_KIND, project_id).await? {
        Some((text, _)) => Some(serde_json::from_str(&text).map_err(anyhow::Error::from)?),
        None => None,
    };
    Ok(RulesApplyStatus { job, applied })
}

/// The Apply job: [`apply`] with the job's progress; its result is the [`RulesApplied`] as JSON.
pub async fn apply_job(ctx: &JobCtx, project_id: i64, params: &str) -> anyhow::Result<String> {
    let ApplyParams { actor } = serde_json::from_str(params)?;
    let project = crate::store::projects::get_project(&ctx.db, project_id).await?.project;
    let applied = apply(ctx, project_id, actor, &project.labels).await?;
    Ok(serde_json::to_string(&applied)?)
}

/// Applies the enabled rules: the label model's label and probability for every item a voting
/// rule fires on replace the rules source's pre-labels.
async fn apply(ctx: &JobCtx, project_id: i64, actor: i64, label_defs: &[LabelDef]) -> anyhow::Result<RulesApplied> {
    let db = &ctx.db;
    ctx.progress(0, APPLY_STEPS).await?;
    let rows: Vec<RuleRow> = store::list_rules(db, project_id).await?.into_iter().filter(|r| r.enabled != 0).collect();
    let loaded = load(db, project_id, label_defs).await?;
    ctx.progress(1, APPLY_STEPS).await?;
    ctx.check_cancelled()?;
    let n_rules = rows.len();
    let (prelabels, iterations, converged) = tokio::task::spawn_blocking(move || {
        let Loaded { corpus, finals, labels } = loaded;
        let voters: Vec<Rule> =
            rows.iter().filter_map(|r| compile_row(r, &labels).ok()).filter(|r| r.label.is_some()).collect();
        let h: Vec<Vec<u32>> = voters.iter().map(|r| hits(r, &corpus)).collect();
        let pairs: Vec<(&Rule, &[u32])> = voters.iter().zip(&h).map(|(r, h)| (r, h.as_slice())).collect();
        if pairs.iter().all(|(_, h)| h.is_empty()) {
            // Nothing to vote on: the source is emptied, not left with what older rules said.
            return Ok((Vec::new(), 0, true));
        }
        let (out, iterations, converged) = label(&pairs, corpus.len(), labels.len(), &finals)
            .map_err(|u| AppError::bad_request(format!("the rules give no pre-labels: {u}")))?;
        let rows: Vec<(i64, String, f64)> = out
            .into_iter()
            .map(|(i, c, p)| (corpus.item_ids[i as usize], serde_json::json!([labels[c as usize]]).to_string(), p))
            .collect();
        Ok::<_, AppError>((rows, iterations, converged))
    })
    .await
    .map_err(|e| anyhow::anyhow!("applying the rules: {e}"))??;
    ctx.progress(2, APPLY_STEPS).await?;
    ctx.check_cancelled()?;
    let source_id = store::replace_rule_prelabels(db, project_id, actor, &prelabels, n_rules).await?;
    ctx.progress(APPLY_STEPS, APPLY_STEPS).await?;
    Ok(RulesApplied { source_id, prelabels: prelabels.len() as i64, iterations: iterations as i64, converged })
}
