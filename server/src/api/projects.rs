//! Projects and their members.
use app::api_types::{AddMember, Member, NewProject, Project, ProjectSummary, ProjectUpdate, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::{managed_project, visible_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::projects::{apply_update, validate_new_project};
use crate::state::AppState;
use crate::store;
use crate::store::projects::ProjectSettings;

pub async fn list_projects(State(state): State<AppState>, caller: CurrentUser) -> AppResult<Json<Vec<ProjectSummary>>> {
    let only_member_of = (!caller.is_admin()).then(|| caller.id());
    Ok(Json(store::projects::list_projects(&state.db, only_member_of).await?))
}

pub async fn create_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    JsonBody(new): JsonBody<NewProject>,
) -> AppResult<(StatusCode, Json<Project>)> {
    if caller.user.role == Role::Labeler {
        return Err(AppError::forbidden("only an admin or a lead can create projects"));
    }
    let p = validate_new_project(&new)?;
    let settings = ProjectSettings {
        name: &p.name,
        instructions: &p.instructions,
        kind: p.kind,
        labels: &p.labels,
        overlap: p.overlap,
        lease_seconds: p.lease_seconds,
        quality: &p.quality,
        assignment_order: p.assignment_order,
    };
    let project = store::projects::create_project(&state.db, &settings, caller.id()).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub async fn get_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Project>> {
    Ok(Json(visible_project(&state.db, &caller, pid).await?.project))
}

pub async fn update_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(update): JsonBody<ProjectUpdate>,
) -> AppResult<Json<Project>> {
    managed_project(&state.db, &caller, pid).await?;
    let updated =
        store::projects::update_project(&state.db, pid, caller.id(), |current, in_use| apply_update(current, &update, in_use)).await?;
    Ok(Json(updated))
}

pub async fn list_members(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Vec<Member>>> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(Json(store::users::list_members(&state.db, pid).await?))
}

pub async fn add_member(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(add): JsonBody<AddMember>,
) -> AppResult<Json<Vec<Member>>> {
    managed_project(&state.db, &caller, pid).await?;
    let user = match (add.user_id, add.username.as_deref().map(str::trim)) {
        (Some(id), _) => store::users::get_user(&state.db, id).await?,
        (None, Some(name)) if !name.is_empty() => store::users::find_user_by_username(&state.db, name).await?,
        _ => return Err(AppError::bad_request("give a user_id or a username")),
    }
    .ok_or_else(|| AppError::not_found("no such user"))?;
    store::users::add_member(&state.db, pid, user.id, Some(caller.id())).await?;
    Ok(Json(store::users::list_members(&state.db, pid).await?))
}

pub async fn remove_member(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, uid)): PathParam<(i64, i64)>,
) -> AppResult<StatusCode> {
    managed_project(&state.db, &caller, pid).await?;
    if store::users::remove_member(&state.db, pid, uid, caller.id()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(format!("user {uid} is not a member of project {pid}")))
    }
}
