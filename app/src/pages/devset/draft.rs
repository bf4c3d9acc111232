//! The draft form: stratification, size or the size calculator, minimum, must-include and
//! exclusions. The plan (next card) says which requirement drove the size.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{Devset, DraftForm, ProfileSummary};
use crate::api_client;
use crate::components::{Status, StatusLine};

/// A text (or number) box bound to one field of the draft form, with its label and an
/// optional hint: the form's one field block.
#[component]
fn DraftField(
    form: RwSignal<DraftForm>,
    label: &'static str,
    get: fn(&DraftForm) -> &String,
    set: fn(&mut DraftForm, String),
    #[prop(optional)] id: Option<&'static str>,
    #[prop(default = "text")] input_type: &'static str,
    #[prop(optional)] min: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let (value, on_input) = bind(form, get, set);
    view! {
        <label class="field field-small">
            <span class="field-label">{label}</span>
            <input id=id class="input" type=input_type min=min prop:value=value on:input=on_input/>
            {hint.map(|h| view! { <span class="hint">{h}</span> })}
        </label>
    }
}

/// The value of one form field, and the input handler that sets it.
fn bind(
    form: RwSignal<DraftForm>,
    get: fn(&DraftForm) -> &String,
    set: fn(&mut DraftForm, String),
) -> (impl Fn() -> String + Copy + Send + Sync + 'static, impl Fn(leptos::ev::Event) + Copy + Send + Sync + 'static) {
    (move || form.with(|f| get(f).clone()), move |ev: leptos::ev::Event| form.update(|f| set(f, event_target_value(&ev))))
}

#[component]
pub fn DraftCard(
    pid: i64,
    profiles: RwSignal<Vec<ProfileSummary>>,
    on_created: impl Fn(i64) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let form = RwSignal::new(DraftForm { mode: "calculator".into(), accuracy: "0.9".into(), half_width: "3".into(), ..Default::default() });
    let status = RwSignal::new(None::<Status>);
    let (name, set_name) = bind(form, |f| &f.name, |f, v| f.name = v);
    let (attrs, set_attrs) = bind(form, |f| &f.attributes, |f, v| f.attributes = v);
    let is_size = move || form.with(|f| f.mode == "size");

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut f = form.get_untracked();
        if f.profile_id.is_none() {
            f.profile_id = profiles.with_untracked(|p| p.first().map(|p| p.id));
        }
        let request = match f.to_request() {
            Ok(r) => r,
            Err(m) => {
                status.set(Status::error(m));
                return;
            }
        };
        status.set(Status::info("Planning…"));
        spawn_local(async move {
            match api_client::send::<_, Devset>("POST", &format!("/api/projects/{pid}/devsets"), &request).await {
                Ok(d) => {
                    status.set(Status::ok(format!("Draft “{}” saved; its plan is below.", d.name)));
                    on_created(d.id);
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    };

    view! {
        <form class="card form-card" on:submit=submit novalidate aria-labelledby="draft-h">
            <h2 id="draft-h">"New dev-set draft"</h2>
            <div class="form-grid">
                <label class="field">
                    <span class="field-label">"Name"</span>
                    <input id="dv-name" class="input" type="text" prop:value=name on:input=set_name/>
                </label>
                <label class="field">
                    <span class="field-label">"Profile"</span>
                    <select class="input" on:change=move |ev| {
                        let v = event_target_value(&ev).parse().ok();
                        form.update(|f| f.profile_id = v);
                    }>
                        {move || profiles.get().into_iter().map(|p| view! {
                            <option value=p.id.to_string()>{format!("{} ({})", p.name, p.date)}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field field-wide">
                    <span class="field-label">"Stratify by (comma-separated meta attributes)"</span>
                    <input id="dv-attrs" class="input" type="text" placeholder="region, device" prop:value=attrs on:input=set_attrs/>
                </label>
                <fieldset class="field field-wide">
                    <legend class="field-label">"Size"</legend>
                    <div class="radio-row">
                        <label class="radio">
                            <input type="radio" name="dv-mode" value="calculator" prop:checked=move || !is_size()
                                on:change=move |_| form.update(|f| f.mode = "calculator".into())/>
                            " Size calculator"
                        </label>
                        <label class="radio">
                            <input type="radio" name="dv-mode" value="size" prop:checked=is_size
                                on:change=move |_| form.update(|f| f.mode = "size".into())/>
                            " Fixed size"
                        </label>
                    </div>
                </fieldset>
                <Show when=is_size>
                    <DraftField form label="Items" get=|f| &f.size set=|f, v| f.size = v input_type="number" min="1"/>
                </Show>
                <Show when=move || !is_size()>
                    <DraftField form label="Expected accuracy" id="dv-acc" get=|f| &f.accuracy set=|f, v| f.accuracy = v/>
                    <DraftField form label="± points overall" id="dv-hw" get=|f| &f.half_width set=|f, v| f.half_width = v/>
                    <DraftField form label="Key attribute (optional)" id="dv-key" get=|f| &f.key_attribute set=|f, v| f.key_attribute = v/>
                    <DraftField form label="± points per value" id="dv-khw" get=|f| &f.key_half_width set=|f, v| f.key_half_width = v/>
                </Show>
                <DraftField form label="Minimum per stratum" id="dv-min" get=|f| &f.min_per_stratum set=|f, v| f.min_per_stratum = v
                    input_type="number" min="0" hint="a floor, not an addition"/>
                <DraftField form label="Must include: weight ≥" id="dv-must-w" get=|f| &f.must_weight set=|f, v| f.must_weight = v/>
                <DraftField form label="Must include: external ids" id="dv-must-ids" get=|f| &f.must_ids set=|f, v| f.must_ids = v
                    hint="comma-separated"/>
                <DraftField form label="Exclude licences" id="dv-lic" get=|f| &f.exclude_licenses set=|f, v| f.exclude_licenses = v/>
                <DraftField form label="Exclude sources" id="dv-src" get=|f| &f.exclude_sources set=|f, v| f.exclude_sources = v/>
                <DraftField form label="Seed" id="dv-seed" get=|f| &f.seed set=|f, v| f.seed = v input_type="number" min="0"/>
            </div>
            <p class="hint">"Items already in another dev set are always excluded."</p>
            <button class="btn btn-primary" type="submit">"Save draft and plan"</button>
            <StatusLine status/>
        </form>
    }
    .into_any()
}
